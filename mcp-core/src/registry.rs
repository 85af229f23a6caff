//! The registry: the one place every transport dispatches through, with the middleware chain
//! and the request deadline applied on the way to the service.

use std::any::Any;
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;

use serde::{Deserialize, Serialize};

use crate::middleware::{Call, Middleware, Next};
use crate::{
    ActionOutput, ActionSpec, BackendHealth, Error, Params, RequestContext, Result, Service,
};

/// Registered services plus the middleware that wraps every call. Cheap to clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    services: BTreeMap<String, Arc<dyn Service>>,
    middleware: Vec<Arc<dyn Middleware>>,
}

/// Builds a [`Registry`]. Middleware runs in the order it is added: the first layer added is
/// the outermost, so add authorization before rate limiting (unauthorized callers must not
/// spend anyone's budget) and metrics/audit after them if rejected calls should not count, or
/// before them if they should.
#[derive(Default)]
pub struct RegistryBuilder {
    services: BTreeMap<String, Arc<dyn Service>>,
    middleware: Vec<Arc<dyn Middleware>>,
    duplicate: Option<String>,
}

impl RegistryBuilder {
    /// Registers a service under its [`Service::name`].
    pub fn service(mut self, service: Arc<dyn Service>) -> Self {
        let name = service.name().to_owned();
        if self.services.insert(name.clone(), service).is_some() {
            self.duplicate.get_or_insert(name);
        }
        self
    }

    /// Adds a middleware layer inside the ones added before it.
    pub fn layer(mut self, middleware: impl Middleware) -> Self {
        self.middleware.push(Arc::new(middleware));
        self
    }

    /// Finishes the registry; fails if two services share a name.
    pub fn build(self) -> Result<Registry> {
        if let Some(name) = self.duplicate {
            return Err(Error::InvalidArgument(format!(
                "service `{name}` registered twice"
            )));
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                services: self.services,
                middleware: self.middleware,
            }),
        })
    }
}

/// Health of every backend of every service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// True when every backend answered.
    pub ok: bool,
    /// Backends per service name.
    pub services: BTreeMap<String, Vec<BackendHealth>>,
}

impl Registry {
    /// Starts a registry with no services and no middleware.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Dispatches `service`/`action` through the middleware to the service, within the
    /// context's deadline. Unknown services and actions are [`Error::NotFound`]; a passed
    /// deadline is [`Error::Timeout`].
    pub async fn call(
        &self,
        service: &str,
        action: &str,
        params: impl Into<Params>,
        ctx: &RequestContext,
    ) -> Result<ActionOutput> {
        let target = self
            .inner
            .services
            .get(service)
            .ok_or_else(|| Error::NotFound(format!("unknown service `{service}`")))?;
        let spec = target
            .actions()
            .iter()
            .find(|spec| spec.name == action)
            .ok_or_else(|| Error::NotFound(format!("unknown action `{service}/{action}`")))?;
        let call = Call {
            service,
            action: spec,
            params: params.into(),
            ctx,
        };
        let next = Next::new(&self.inner.middleware, target.as_ref());
        let run = async {
            match ctx.deadline() {
                None => next.run(call).await,
                Some(deadline) => tokio::time::timeout_at(deadline, next.run(call))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Error::Timeout(format!(
                            "{service}/{action} did not finish before the request deadline"
                        )))
                    }),
            }
        };
        // A panic in a service or layer is a bug; it fails this call with `Internal` (the
        // panic's text goes to the log, not to the caller) instead of taking down the
        // connection or session that carried it.
        AssertUnwindSafe(run)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| {
                tracing::error!(
                    service,
                    action,
                    request_id = ctx.request_id(),
                    panic = panic_text(panic.as_ref()),
                    "action panicked"
                );
                Err(Error::Internal(format!(
                    "{service}/{action} failed on an internal error (request {})",
                    ctx.request_id()
                )))
            })
    }

    /// A registered service by name.
    pub fn service(&self, name: &str) -> Option<&Arc<dyn Service>> {
        self.inner.services.get(name)
    }

    /// Names of the registered services, sorted.
    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.inner.services.keys().map(String::as_str)
    }

    /// Every `(service, action)` pair, sorted by service then in the service's own order.
    pub fn actions(&self) -> Vec<(&str, &ActionSpec)> {
        self.inner
            .services
            .iter()
            .flat_map(|(name, service)| {
                service
                    .actions()
                    .iter()
                    .map(move |spec| (name.as_str(), spec))
            })
            .collect()
    }

    /// Pings every backend of every service, the services concurrently, so one slow or
    /// stopped backend costs its own timeout once rather than delaying every other service.
    pub async fn health(&self) -> HealthReport {
        let mut pings = tokio::task::JoinSet::new();
        for (name, service) in &self.inner.services {
            let (name, service) = (name.clone(), service.clone());
            pings.spawn(async move { (name, service.health().await) });
        }
        let mut services = BTreeMap::new();
        while let Some(pinged) = pings.join_next().await {
            match pinged {
                Ok((name, backends)) => {
                    services.insert(name, backends);
                }
                Err(err) => tracing::error!(%err, "a health check panicked"),
            }
        }
        for name in self.inner.services.keys() {
            services.entry(name.clone()).or_insert_with(|| {
                vec![BackendHealth::from_ping(
                    "health",
                    "unknown",
                    Err(Error::Internal("the health check panicked".into())),
                )]
            });
        }
        let ok = services
            .values()
            .all(|backends: &Vec<BackendHealth>| backends.iter().all(|b| b.ok));
        HealthReport { ok, services }
    }
}

/// The message a panic was raised with, when it is text.
fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not text)")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::{json, Value};

    use super::*;

    struct Echo {
        actions: Vec<ActionSpec>,
    }

    impl Echo {
        fn new() -> Self {
            Echo {
                actions: vec![
                    ActionSpec::new::<Value, Value>("echo", "Returns its arguments").read_only(),
                    ActionSpec::new::<Value, Value>("sleep", "Sleeps for `ms`"),
                    ActionSpec::new::<Value, Value>("panic", "Panics, as a bug would"),
                ],
            }
        }
    }

    #[async_trait]
    impl Service for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn actions(&self) -> &[ActionSpec] {
            &self.actions
        }
        async fn call(
            &self,
            action: &str,
            params: Params,
            _ctx: &RequestContext,
        ) -> Result<ActionOutput> {
            let params: Value = crate::parse_params(action, params)?;
            if action == "panic" {
                panic!("a bug in the service");
            }
            if action == "sleep" {
                let ms = params["ms"].as_u64().unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            crate::to_result(&params)
        }
        async fn health(&self) -> Vec<BackendHealth> {
            vec![BackendHealth::from_ping("echo", "memory", Ok(()))]
        }
    }

    fn registry() -> Registry {
        Registry::builder()
            .service(Arc::new(Echo::new()))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn dispatches_to_the_named_service() {
        let out = registry()
            .call("echo", "echo", json!({"a": 1}), &RequestContext::local())
            .await
            .unwrap();
        assert_eq!(out, json!({"a": 1}));
    }

    #[tokio::test]
    async fn unknown_service_and_action_are_not_found() {
        let reg = registry();
        let ctx = RequestContext::local();
        let err = reg.call("nope", "echo", json!({}), &ctx).await.unwrap_err();
        assert_eq!(err, Error::NotFound("unknown service `nope`".into()));
        let err = reg.call("echo", "nope", json!({}), &ctx).await.unwrap_err();
        assert_eq!(err, Error::NotFound("unknown action `echo/nope`".into()));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_turns_into_timeout() {
        let ctx = RequestContext::local().with_timeout(Duration::from_millis(50));
        let err = registry()
            .call("echo", "sleep", json!({"ms": 1000}), &ctx)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout(_)), "{err:?}");
        let ctx = RequestContext::local().with_timeout(Duration::from_millis(50));
        let ok = registry()
            .call("echo", "sleep", json!({"ms": 10}), &ctx)
            .await;
        assert!(ok.is_ok());
    }

    #[tokio::test]
    async fn a_panicking_action_fails_that_call_only() {
        let reg = registry();
        let ctx = RequestContext::local().with_request_id("req-7");
        let err = reg
            .call("echo", "panic", json!({}), &ctx)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            Error::Internal("echo/panic failed on an internal error (request req-7)".into())
        );
        let out = reg
            .call("echo", "echo", json!({"b": 2}), &ctx)
            .await
            .unwrap();
        assert_eq!(out, json!({"b": 2}));
    }

    #[tokio::test]
    async fn lists_actions_and_health() {
        let reg = registry();
        let names: Vec<_> = reg
            .actions()
            .into_iter()
            .map(|(s, a)| format!("{s}_{}", a.name))
            .collect();
        assert_eq!(names, ["echo_echo", "echo_sleep", "echo_panic"]);
        let health = reg.health().await;
        assert!(health.ok);
        assert_eq!(health.services["echo"][0].backend, "memory");
    }

    #[test]
    fn duplicate_service_names_are_rejected() {
        let err = Registry::builder()
            .service(Arc::new(Echo::new()))
            .service(Arc::new(Echo::new()))
            .build()
            .err()
            .unwrap();
        assert!(matches!(err, Error::InvalidArgument(_)));
    }
}
