//! In-memory `LockManager`: leases on tokio's clock with per-resource fencing counters that
//! survive release and expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::kv::poisoned;
use crate::lock::{Lease, LockManager};
use crate::{Error, Result};

#[derive(Debug, Default)]
struct Resource {
    last_token: u64,
    holder: Option<(String, u64, Instant)>,
}

impl Resource {
    fn live_holder(&self, now: Instant) -> Option<&(String, u64, Instant)> {
        self.holder
            .as_ref()
            .filter(|(_, _, deadline)| *deadline > now)
    }
}

/// Exclusive leases in process memory.
#[derive(Debug, Default)]
pub struct MemoryLockManager {
    resources: Mutex<HashMap<String, Resource>>,
}

impl MemoryLockManager {
    /// A manager with no leases.
    pub fn new() -> Self {
        Self::default()
    }
}

fn lease(resource: &str, owner: &str, token: u64, deadline: Instant, now: Instant) -> Lease {
    Lease {
        resource: resource.to_owned(),
        owner: owner.to_owned(),
        token,
        expires_in: deadline - now,
    }
}

#[async_trait]
impl LockManager for MemoryLockManager {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Lease> {
        crate::lock::validate_ttl(ttl)?;
        let now = Instant::now();
        let mut resources = self.resources.lock().map_err(|_| poisoned())?;
        let state = resources.entry(resource.to_owned()).or_default();
        if let Some((holder, _, deadline)) = state.live_holder(now) {
            return Err(Error::Locked(format!(
                "{resource} is held by {holder} for another {} ms",
                (*deadline - now).as_millis()
            )));
        }
        state.last_token += 1;
        let deadline = now + ttl;
        state.holder = Some((owner.to_owned(), state.last_token, deadline));
        Ok(lease(resource, owner, state.last_token, deadline, now))
    }

    async fn refresh(&self, resource: &str, token: u64, ttl: Duration) -> Result<Lease> {
        crate::lock::validate_ttl(ttl)?;
        let now = Instant::now();
        let mut resources = self.resources.lock().map_err(|_| poisoned())?;
        let holder = resources
            .get_mut(resource)
            .and_then(|state| state.holder.as_mut())
            .filter(|(_, held, deadline)| *held == token && *deadline > now);
        match holder {
            Some((owner, _, deadline)) => {
                *deadline = now + ttl;
                Ok(lease(resource, owner, token, *deadline, now))
            }
            None => Err(Error::Locked(format!(
                "token {token} does not hold a live lease on {resource}"
            ))),
        }
    }

    async fn release(&self, resource: &str, token: u64) -> Result<bool> {
        let now = Instant::now();
        let mut resources = self.resources.lock().map_err(|_| poisoned())?;
        let Some(state) = resources.get_mut(resource) else {
            return Ok(false);
        };
        let held = state
            .live_holder(now)
            .is_some_and(|(_, held, _)| *held == token);
        if held {
            state.holder = None;
        }
        Ok(held)
    }

    async fn inspect(&self, resource: &str) -> Result<Option<Lease>> {
        let now = Instant::now();
        let resources = self.resources.lock().map_err(|_| poisoned())?;
        Ok(resources
            .get(resource)
            .and_then(|state| state.live_holder(now))
            .map(|(owner, token, deadline)| lease(resource, owner, *token, *deadline, now)))
    }

    async fn ping(&self) -> Result<()> {
        self.resources.lock().map(|_| ()).map_err(|_| poisoned())
    }
}
