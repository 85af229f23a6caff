//! Who is calling, with which rights, in which namespace, and until when.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// The set of `service:action` grants a principal holds.
///
/// A grant is `*` (everything), `service:*` (every action of one service) or `service:action`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scopes(Arc<[String]>);

impl Scopes {
    /// Grants every action of every service.
    pub fn all() -> Self {
        static ALL: std::sync::OnceLock<Scopes> = std::sync::OnceLock::new();
        ALL.get_or_init(|| Scopes(Arc::from(vec!["*".to_owned()])))
            .clone()
    }

    /// Grants nothing.
    pub fn none() -> Self {
        Scopes(Arc::from(Vec::new()))
    }

    /// Grants exactly the listed `*`, `service:*` or `service:action` entries.
    pub fn new<I, S>(grants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Scopes(grants.into_iter().map(Into::into).collect())
    }

    /// Whether these scopes allow `service:action`.
    pub fn allows(&self, service: &str, action: &str) -> bool {
        self.0.iter().any(|grant| match grant.split_once(':') {
            None => grant == "*",
            Some((svc, act)) => (svc == "*" || svc == service) && (act == "*" || act == action),
        })
    }

    /// The grants, as given.
    pub fn grants(&self) -> &[String] {
        &self.0
    }
}

/// Per-request information passed from the transport through middleware to the service.
///
/// [`RequestContext::local`] is the context for trusted in-process callers (all scopes, no
/// deadline); transports build one per request from the caller's credentials.
#[derive(Clone)]
pub struct RequestContext {
    principal: Option<String>,
    scopes: Scopes,
    namespace: Option<String>,
    request_id: String,
    deadline: Option<Instant>,
}

impl RequestContext {
    /// A trusted in-process caller: principal `local`, every scope, no deadline.
    pub fn local() -> Self {
        RequestContext {
            principal: Some("local".to_owned()),
            scopes: Scopes::all(),
            namespace: None,
            request_id: new_request_id(),
            deadline: None,
        }
    }

    /// A caller that presented no credentials: no principal and no scopes.
    pub fn anonymous() -> Self {
        RequestContext {
            principal: None,
            scopes: Scopes::none(),
            namespace: None,
            request_id: new_request_id(),
            deadline: None,
        }
    }

    /// Sets the authenticated principal.
    pub fn with_principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// Sets the granted scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the default namespace for services that partition data (memory, context).
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Sets the request id (e.g. from an incoming `x-request-id` header).
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// The request must finish within `timeout` from now.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Some(Instant::now() + timeout);
        self
    }

    /// The request must finish by `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// The authenticated principal, if any.
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &Scopes {
        &self.scopes
    }

    /// The default namespace, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// The request id, unique per request unless the transport supplied one.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The deadline, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Time left before the deadline (`None` when there is no deadline; zero once it passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }
}

impl Default for RequestContext {
    fn default() -> Self {
        RequestContext::local()
    }
}

impl fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestContext")
            .field("principal", &self.principal)
            .field("scopes", &self.scopes.grants())
            .field("namespace", &self.namespace)
            .field("request_id", &self.request_id)
            .field("remaining", &self.remaining())
            .finish()
    }
}

/// A process-wide random half (one random UUID drawn once) and a counter: unique within the
/// process, and across processes as unlikely to collide as two random 64-bit numbers, without
/// asking the OS for randomness on every request.
fn new_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let (high, low) = uuid::Uuid::new_v4().as_u64_pair();
        high ^ low
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    uuid::Uuid::from_u64_pair(seed, n).simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_match_service_and_action_wildcards() {
        let scopes = Scopes::new(["memory:*", "files:read"]);
        assert!(scopes.allows("memory", "store"));
        assert!(scopes.allows("files", "read"));
        assert!(!scopes.allows("files", "write"));
        assert!(!scopes.allows("context", "search"));
        assert!(Scopes::all().allows("context", "search"));
        assert!(Scopes::new(["*:read"]).allows("files", "read"));
        assert!(!Scopes::none().allows("files", "read"));
        // A grant without a colon other than `*` grants nothing.
        assert!(!Scopes::new(["memory"]).allows("memory", "store"));
    }

    #[tokio::test(start_paused = true)]
    async fn remaining_counts_down_with_the_clock() {
        let ctx = RequestContext::local().with_timeout(Duration::from_secs(2));
        assert_eq!(ctx.remaining(), Some(Duration::from_secs(2)));
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(ctx.remaining(), Some(Duration::ZERO));
        assert_ne!(
            RequestContext::local().request_id(),
            RequestContext::local().request_id()
        );
    }
}
