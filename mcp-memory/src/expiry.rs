//! Expiry notices: publishes `{"namespace", "key"}` on [`EXPIRY_TOPIC`] when a value this
//! instance stored with a TTL runs out, so subscribers (WebSocket clients, MCP resource
//! subscriptions) learn that it is gone without polling.
//!
//! Stores do not announce expiries (Redis keyspace notifications are off by default and
//! PostgreSQL has none), so each instance remembers the deadlines of the TTL writes it made
//! and, when one passes, asks the store whether the key is really gone before publishing.
//! A later write of the key (on any instance: it arrives as an invalidation carrying another
//! epoch) or a delete cancels the pending notice, so a deleted or rewritten key is never
//! reported as expired.
//!
//! Notices are best effort, at most once per instance and deadline: pending deadlines live in
//! memory (a restarted instance forgets them), at most [`MAX_PENDING`] are kept (later ones
//! are not announced, and a warning counts them), and only the instance that made the last
//! write of a key announces its expiry.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mcp_backends::{Delivery, EventBus, KeyTtl, KvStore, Subscription};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Topic on which expiry notices `{"namespace": ..., "key": ...}` are published.
pub const EXPIRY_TOPIC: &str = "memory.expired";

/// Pending deadlines one instance keeps at most.
pub const MAX_PENDING: usize = 100_000;

/// One expiry notice as published on [`EXPIRY_TOPIC`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExpiryNotice {
    /// The namespace the key lived in.
    pub namespace: String,
    /// The key, as the caller named it.
    pub key: String,
}

/// A deadline this instance is waiting for.
struct Pending {
    deadline: Instant,
    /// The epoch (hex) the write set; an invalidation with another epoch cancels.
    epoch: String,
    notice: ExpiryNotice,
}

#[derive(Default)]
struct Schedule {
    by_key: HashMap<String, Pending>,
    by_deadline: BTreeSet<(Instant, String)>,
}

impl Schedule {
    fn remove(&mut self, stored_key: &str) -> Option<Pending> {
        let pending = self.by_key.remove(stored_key)?;
        self.by_deadline
            .remove(&(pending.deadline, stored_key.to_owned()));
        Some(pending)
    }
}

/// The schedule shared by the writer path and the two background tasks.
pub(crate) struct ExpiryWatch {
    schedule: Mutex<Schedule>,
    changed: Arc<Notify>,
    dropped: AtomicU64,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl ExpiryWatch {
    /// Starts watching: one task announces due deadlines, one cancels them on invalidations.
    /// `origin` marks this instance's own invalidations, which the writer path already
    /// applied.
    pub(crate) async fn start(
        kv: Arc<dyn KvStore>,
        bus: Arc<dyn EventBus>,
        origin: String,
    ) -> mcp_core::Result<Arc<ExpiryWatch>> {
        let invalidations = bus.subscribe(crate::cache::INVALIDATION_TOPIC).await?;
        let watch = Arc::new(ExpiryWatch {
            schedule: Mutex::new(Schedule::default()),
            changed: Arc::new(Notify::new()),
            dropped: AtomicU64::new(0),
            tasks: Mutex::new(Vec::new()),
        });
        let announcer = tokio::spawn(announce_due(
            Arc::downgrade(&watch),
            watch.changed.clone(),
            kv,
            bus,
        ));
        let canceller = tokio::spawn(cancel_on_invalidation(
            Arc::downgrade(&watch),
            invalidations,
            origin,
        ));
        watch.lock_tasks().extend([announcer, canceller]);
        Ok(watch)
    }

    /// Remembers that `stored_key` (written with `epoch`) expires after `ttl`.
    pub(crate) fn schedule(
        &self,
        stored_key: &str,
        epoch: &str,
        ttl: Duration,
        notice: ExpiryNotice,
    ) {
        let deadline = Instant::now() + ttl;
        let mut schedule = self.lock_schedule();
        schedule.remove(stored_key);
        if schedule.by_key.len() >= MAX_PENDING {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "too many pending memory expiries; some will not be announced"
                );
            }
            return;
        }
        let earliest = schedule.by_deadline.first().map(|(at, _)| *at);
        schedule
            .by_deadline
            .insert((deadline, stored_key.to_owned()));
        schedule.by_key.insert(
            stored_key.to_owned(),
            Pending {
                deadline,
                epoch: epoch.to_owned(),
                notice,
            },
        );
        drop(schedule);
        if earliest.is_none_or(|earliest| deadline < earliest) {
            self.changed.notify_one();
        }
    }

    /// Forgets `stored_key`'s deadline (it was deleted or rewritten without a TTL).
    pub(crate) fn cancel(&self, stored_key: &str) {
        self.lock_schedule().remove(stored_key);
    }

    /// Takes every pending entry whose deadline has passed, and the next deadline.
    fn take_due(&self, now: Instant) -> (Vec<(String, Pending)>, Option<Instant>) {
        let mut schedule = self.lock_schedule();
        let mut due = Vec::new();
        while let Some((deadline, key)) = schedule.by_deadline.first().cloned() {
            if deadline > now {
                break;
            }
            if let Some(pending) = schedule.remove(&key) {
                due.push((key, pending));
            }
        }
        let next = schedule.by_deadline.first().map(|(at, _)| *at);
        (due, next)
    }

    fn lock_schedule(&self) -> std::sync::MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for ExpiryWatch {
    fn drop(&mut self) {
        for task in self.lock_tasks().drain(..) {
            task.abort();
        }
    }
}

/// How long the announcer sleeps when nothing is pending (it also wakes on new deadlines).
const IDLE: Duration = Duration::from_secs(3600);

async fn announce_due(
    watch: std::sync::Weak<ExpiryWatch>,
    changed: Arc<Notify>,
    kv: Arc<dyn KvStore>,
    bus: Arc<dyn EventBus>,
) {
    loop {
        let Some(strong) = watch.upgrade() else {
            return;
        };
        let (due, next) = strong.take_due(Instant::now());
        for (stored_key, pending) in due {
            match kv.ttl(&stored_key).await {
                Ok(KeyTtl::Missing) => publish(bus.as_ref(), &pending.notice).await,
                // The store's clock is behind ours: look again when it says.
                Ok(KeyTtl::Expires(left)) => strong.schedule(
                    &stored_key,
                    &pending.epoch,
                    left + Duration::from_millis(1),
                    pending.notice,
                ),
                // Made persistent behind our back: nothing will expire.
                Ok(KeyTtl::Persistent) => {}
                Err(err) => {
                    tracing::warn!(%err, key = stored_key, "cannot confirm a memory expiry; retrying in 1 s");
                    strong.schedule(
                        &stored_key,
                        &pending.epoch,
                        Duration::from_secs(1),
                        pending.notice,
                    );
                }
            }
        }
        let wake = next.unwrap_or_else(|| Instant::now() + IDLE);
        drop(strong);
        tokio::select! {
            () = tokio::time::sleep_until(wake) => {}
            () = changed.notified() => {}
        }
    }
}

async fn publish(bus: &dyn EventBus, notice: &ExpiryNotice) {
    match serde_json::to_vec(notice) {
        Ok(payload) => {
            if let Err(err) = bus.publish(EXPIRY_TOPIC, payload).await {
                tracing::warn!(%err, key = notice.key, "could not publish a memory expiry");
            }
        }
        Err(err) => tracing::warn!(%err, "cannot encode a memory expiry notice"),
    }
}

/// Cancels a pending deadline when another instance's invalidation for its key carries another
/// epoch (a later write or a delete there).
async fn cancel_on_invalidation(
    watch: std::sync::Weak<ExpiryWatch>,
    mut invalidations: Subscription,
    origin: String,
) {
    while let Some(delivery) = invalidations.recv().await {
        let Some(watch) = watch.upgrade() else {
            return;
        };
        let Delivery::Event(event) = delivery else {
            // Lagged: a missed write may leave a stale deadline, which the store check at the
            // deadline catches unless the key was deleted; nothing better to do.
            continue;
        };
        let Ok(invalidation) =
            serde_json::from_slice::<crate::service::Invalidation>(&event.payload)
        else {
            continue;
        };
        if invalidation.origin.as_deref() == Some(origin.as_str()) {
            continue;
        }
        let mut schedule = watch.lock_schedule();
        let stale = schedule
            .by_key
            .get(&invalidation.key)
            .is_some_and(|pending| invalidation.epoch.as_deref() != Some(pending.epoch.as_str()));
        if stale {
            schedule.remove(&invalidation.key);
        }
    }
}
