//! [`MemoryService`]: the typed operations, over any [`KvStore`], with the optional L1 cache
//! and event-bus invalidation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mcp_backends::{glob, Delivery, EventBus, KeyTtl, KvStore, SetOptions};
use mcp_core::{ActionSpec, Error, Result};
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::cache::{Cached, Epochs, INVALIDATION_TOPIC, L1};
use crate::expiry::{ExpiryNotice, ExpiryWatch};
use crate::{
    Deleted, Expired, MemoryConfig, Retrieved, RetrievedMany, SearchPage, SearchQuery, Stats,
    StoreOptions, Stored, TtlInfo,
};

/// JSON values under string keys, per namespace, with TTLs.
///
/// Build one with [`MemoryService::new`] (no cache, e.g. over the in-memory store) or
/// [`MemoryService::builder`] (L1 cache and cross-instance invalidation, for a shared remote
/// store). The typed methods below take the namespace explicitly; the JSON adapter
/// ([`mcp_core::Service::call`]) resolves it from the arguments, the request context, or
/// `default`.
pub struct MemoryService {
    pub(crate) kv: Arc<dyn KvStore>,
    pub(crate) events: Option<Arc<dyn EventBus>>,
    cache: Option<L1>,
    pub(crate) config: MemoryConfig,
    epochs: Epochs,
    hits: AtomicU64,
    misses: AtomicU64,
    pub(crate) actions: Vec<ActionSpec>,
    subscriber: Option<JoinHandle<()>>,
    /// With an event bus: announces expiries of the TTL writes made here.
    expiry: Option<Arc<ExpiryWatch>>,
}

/// Configures a [`MemoryService`].
pub struct MemoryServiceBuilder {
    kv: Arc<dyn KvStore>,
    events: Option<Arc<dyn EventBus>>,
    cache_bytes: Option<u64>,
    config: MemoryConfig,
}

impl MemoryServiceBuilder {
    /// Replaces the default limits.
    pub fn config(mut self, config: MemoryConfig) -> Self {
        self.config = config;
        self
    }

    /// Puts an L1 cache of at most `max_bytes` (serialized values) in front of the store.
    /// Worth it when the store is remote; reads still cost one small lookup (see the
    /// coherence notes in the crate docs).
    pub fn cache(mut self, max_bytes: u64) -> Self {
        self.cache_bytes = Some(max_bytes);
        self
    }

    /// Publishes invalidations on `bus` after every write and, with a cache, evicts on the
    /// invalidations of every other instance.
    pub fn events(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.events = Some(bus);
        self
    }

    /// Builds the service; with both a cache and an event bus it subscribes to the
    /// invalidation topic first and spawns the task that applies them, and with an event bus
    /// it starts announcing expiries on [`crate::EXPIRY_TOPIC`] (so it must run inside a
    /// tokio runtime).
    pub async fn build(self) -> Result<MemoryService> {
        let cache = self.cache_bytes.map(L1::new);
        let epochs = Epochs::new();
        let expiry = match &self.events {
            Some(bus) => Some(
                ExpiryWatch::start(self.kv.clone(), bus.clone(), epochs.origin().to_owned())
                    .await?,
            ),
            None => None,
        };
        let subscriber = match (&cache, &self.events) {
            (Some(cache), Some(bus)) => {
                let subscription = bus.subscribe(INVALIDATION_TOPIC).await?;
                Some(tokio::spawn(apply_invalidations(
                    subscription,
                    cache.clone(),
                )))
            }
            _ => None,
        };
        Ok(MemoryService {
            kv: self.kv,
            events: self.events,
            cache,
            config: self.config,
            epochs,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            actions: crate::api::action_specs(),
            subscriber,
            expiry,
        })
    }
}

/// Evicts every key another instance (or this one) wrote, unless the cached entry was already
/// filled under the epoch that write set; clears everything after a lag.
async fn apply_invalidations(mut subscription: mcp_backends::Subscription, cache: L1) {
    while let Some(delivery) = subscription.recv().await {
        match delivery {
            Delivery::Event(event) => {
                match serde_json::from_slice::<Invalidation>(&event.payload) {
                    Ok(invalidation) => {
                        let current = cache.get(&invalidation.key).await.is_some_and(|entry| {
                            invalidation.epoch.as_deref() == Some(hex(&entry.epoch).as_str())
                        });
                        if !current {
                            cache.invalidate(&invalidation.key).await;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "malformed memory invalidation; clearing the L1 cache");
                        cache.invalidate_all();
                    }
                }
            }
            Delivery::Lagged { missed } => {
                tracing::warn!(missed, "memory invalidations lagged; clearing the L1 cache");
                cache.invalidate_all();
            }
        }
    }
    tracing::warn!(
        "memory invalidation subscription ended; the L1 cache relies on epoch checks alone"
    );
}

/// The payload published on [`INVALIDATION_TOPIC`].
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Invalidation {
    /// The store key written.
    pub(crate) key: String,
    /// The epoch the write set (hex), `None` when it removed the value.
    pub(crate) epoch: Option<String>,
    /// The writing instance's mark ([`Epochs::origin`]); absent from older writers.
    #[serde(default)]
    pub(crate) origin: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Drop for MemoryService {
    fn drop(&mut self) {
        if let Some(task) = &self.subscriber {
            task.abort();
        }
    }
}

/// What a write did to the key's epoch.
enum EpochChange {
    /// The value changed and lives for this long (`None`: forever).
    Renewed(Option<Duration>),
    /// The value is gone.
    Removed,
}

impl MemoryService {
    /// A service over `kv` with default limits, no cache and no event bus.
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        MemoryService {
            kv,
            events: None,
            cache: None,
            config: MemoryConfig::default(),
            epochs: Epochs::new(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            actions: crate::api::action_specs(),
            subscriber: None,
            expiry: None,
        }
    }

    /// Starts configuring a service over `kv`.
    pub fn builder(kv: Arc<dyn KvStore>) -> MemoryServiceBuilder {
        MemoryServiceBuilder {
            kv,
            events: None,
            cache_bytes: None,
            config: MemoryConfig::default(),
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &MemoryConfig {
        &self.config
    }

    /// Stores `value` under `key`. Oversized values are `PayloadTooLarge`; with
    /// `if_absent`, an existing live value is `Conflict`.
    pub async fn store(
        &self,
        namespace: &str,
        key: &str,
        value: &Value,
        options: StoreOptions,
    ) -> Result<Stored> {
        self.check_namespace(namespace)?;
        self.check_key(key)?;
        let ttl = self.check_ttl(options.ttl)?;
        let bytes = serde_json::to_vec(value)
            .map_err(|err| Error::InvalidArgument(format!("value cannot be serialized: {err}")))?;
        if bytes.len() > self.config.max_value_bytes {
            return Err(Error::PayloadTooLarge(format!(
                "value is {} bytes, the limit is {}",
                bytes.len(),
                self.config.max_value_bytes
            )));
        }
        let stored_key = data_key(namespace, key);
        let set = SetOptions {
            ttl,
            if_absent: options.if_absent,
        };
        if !self.kv.set(&stored_key, bytes, set).await? {
            return Err(Error::Conflict(format!(
                "key `{key}` already exists in namespace `{namespace}`"
            )));
        }
        self.after_write(namespace, key, &stored_key, EpochChange::Renewed(ttl))
            .await?;
        Ok(Stored {
            status: "stored".to_owned(),
            key: key.to_owned(),
            ttl: ttl.map_or(0, |ttl| ttl.as_secs()),
        })
    }

    /// The live value under `key`; missing or expired is `NotFound`.
    pub async fn retrieve(&self, namespace: &str, key: &str) -> Result<Retrieved> {
        self.check_namespace(namespace)?;
        self.check_key(key)?;
        let stored_key = data_key(namespace, key);
        let Some(cache) = &self.cache else {
            let (value, ttl) = tokio::join!(self.kv.get(&stored_key), self.kv.ttl(&stored_key));
            let found = match (value?, ttl?) {
                (Some(bytes), KeyTtl::Persistent) => Some((parse(&bytes)?, None)),
                (Some(bytes), KeyTtl::Expires(left)) => Some((parse(&bytes)?, Some(left))),
                // Missing, or expired between the two reads.
                _ => None,
            };
            self.count(found.is_some());
            return match found {
                Some((value, left)) => Ok(Retrieved {
                    value,
                    ttl_remaining: left.map(ceil_secs),
                }),
                None => Err(not_found(namespace, key)),
            };
        };

        let epoch_key = epoch_key(namespace, key);
        let cached = cache.get(&stored_key).await;
        let (epoch, value, ttl, fetched_at) = match cached {
            Some(entry) => {
                // Freshness check first: the epoch must be read before the value is fetched.
                let epoch = self.kv.get(&epoch_key).await?;
                if let Some(epoch) = &epoch {
                    let now = Instant::now();
                    if entry.epoch == *epoch && entry.alive(now) {
                        self.count(true);
                        return Ok(Retrieved {
                            value: entry.value.clone(),
                            ttl_remaining: entry
                                .deadline
                                .map(|deadline| ceil_secs(deadline.saturating_duration_since(now))),
                        });
                    }
                }
                let fetched_at = Instant::now();
                let (value, ttl) = tokio::join!(self.kv.get(&stored_key), self.kv.ttl(&stored_key));
                (epoch, value?, ttl?, fetched_at)
            }
            None => {
                // Nothing to check: epoch and value in one read (`get_many` reads its keys in
                // one snapshot on every backend: Redis MGET, one SQL statement, one lock), so
                // the epoch is never read after the value, in one round trip; the TTL alongside.
                let keys = [epoch_key, stored_key.clone()];
                let fetched_at = Instant::now();
                let (pair, ttl) = tokio::join!(self.kv.get_many(&keys), self.kv.ttl(&stored_key));
                let mut pair = pair?.into_iter();
                let (epoch, value) = (pair.next().flatten(), pair.next().flatten());
                (epoch, value, ttl?, fetched_at)
            }
        };
        self.count(false);
        let (bytes, left) = match (value, ttl) {
            (Some(bytes), KeyTtl::Persistent) => (bytes, None),
            (Some(bytes), KeyTtl::Expires(left)) => (bytes, Some(left)),
            _ => return Err(not_found(namespace, key)),
        };
        let value = parse(&bytes)?;
        if let Some(epoch) = epoch {
            // Never beyond the stored expiry: the store measured `left` after `fetched_at`;
            // one more millisecond covers its rounding.
            let deadline =
                left.map(|left| fetched_at + left.saturating_sub(Duration::from_millis(1)));
            let entry = Cached {
                value: value.clone(),
                deadline,
                epoch,
                weight: u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            };
            cache.insert(stored_key, entry).await;
        }
        Ok(Retrieved {
            value,
            ttl_remaining: left.map(ceil_secs),
        })
    }

    /// The live values of `keys` (read from the store in one batch, bypassing the cache),
    /// and the keys that have none.
    pub async fn retrieve_many(&self, namespace: &str, keys: &[String]) -> Result<RetrievedMany> {
        self.check_namespace(namespace)?;
        if keys.len() > self.config.max_batch_keys {
            return Err(Error::InvalidArgument(format!(
                "{} keys requested, the limit is {}",
                keys.len(),
                self.config.max_batch_keys
            )));
        }
        for key in keys {
            self.check_key(key)?;
        }
        let stored: Vec<String> = keys.iter().map(|key| data_key(namespace, key)).collect();
        let values = self.kv.get_many(&stored).await?;
        let mut result = RetrievedMany::default();
        for (key, value) in keys.iter().zip(values) {
            match value {
                Some(bytes) => {
                    result.values.insert(key.clone(), parse(&bytes)?);
                }
                None => result.missing.push(key.clone()),
            }
        }
        if self.cache.is_none() {
            self.count_many(result.values.len() as u64, result.missing.len() as u64);
        }
        Ok(result)
    }

    /// One page of keys in `namespace` matching the glob `query.pattern`.
    pub async fn search(&self, namespace: &str, query: SearchQuery) -> Result<SearchPage> {
        self.check_namespace(namespace)?;
        if query.pattern.len() > 2 * self.config.max_key_bytes {
            return Err(Error::InvalidArgument(format!(
                "pattern is longer than {} bytes",
                2 * self.config.max_key_bytes
            )));
        }
        let limit = query.limit.unwrap_or(self.config.default_search_limit);
        if limit == 0 || limit > self.config.max_search_limit {
            return Err(Error::InvalidArgument(format!(
                "limit must be between 1 and {}",
                self.config.max_search_limit
            )));
        }
        let prefix = data_key(namespace, "");
        let pattern = format!("{}{}", glob::escape(&prefix), query.pattern);
        let page = self
            .kv
            .scan(&pattern, query.cursor.as_deref(), limit)
            .await?;
        let keys: Vec<String> = page
            .keys
            .iter()
            .filter_map(|stored| stored.strip_prefix(&prefix).map(str::to_owned))
            .collect();
        let values = if query.with_values {
            let stored: Vec<String> = keys.iter().map(|key| format!("{prefix}{key}")).collect();
            let mut values = std::collections::BTreeMap::new();
            for (key, value) in keys.iter().zip(self.kv.get_many(&stored).await?) {
                if let Some(bytes) = value {
                    values.insert(key.clone(), parse(&bytes)?);
                }
            }
            Some(values)
        } else {
            None
        };
        Ok(SearchPage {
            keys,
            values,
            next_cursor: page.next_cursor,
        })
    }

    /// Gives the live value under `key` a new TTL; `None` or zero removes it now. Returns
    /// whether a live value existed.
    pub async fn expire(
        &self,
        namespace: &str,
        key: &str,
        ttl: Option<Duration>,
    ) -> Result<Expired> {
        self.check_namespace(namespace)?;
        self.check_key(key)?;
        let ttl = self.check_ttl(ttl)?;
        let stored_key = data_key(namespace, key);
        let existed = self
            .kv
            .expire(&stored_key, ttl.unwrap_or(Duration::ZERO))
            .await?;
        if existed {
            let change = match ttl {
                Some(ttl) => EpochChange::Renewed(Some(ttl)),
                None => EpochChange::Removed,
            };
            self.after_write(namespace, key, &stored_key, change)
                .await?;
        }
        Ok(Expired { expired: existed })
    }

    /// Removes `key`; returns whether a live value was removed.
    pub async fn delete(&self, namespace: &str, key: &str) -> Result<Deleted> {
        self.check_namespace(namespace)?;
        self.check_key(key)?;
        let stored_key = data_key(namespace, key);
        let deleted = self.kv.delete(&stored_key).await?;
        if deleted {
            self.after_write(namespace, key, &stored_key, EpochChange::Removed)
                .await?;
        }
        Ok(Deleted { deleted })
    }

    /// The remaining lifetime of `key`.
    pub async fn ttl(&self, namespace: &str, key: &str) -> Result<TtlInfo> {
        self.check_namespace(namespace)?;
        self.check_key(key)?;
        Ok(match self.kv.ttl(&data_key(namespace, key)).await? {
            KeyTtl::Missing => TtlInfo {
                ttl: None,
                exists: false,
            },
            KeyTtl::Persistent => TtlInfo {
                ttl: None,
                exists: true,
            },
            KeyTtl::Expires(left) => TtlInfo {
                ttl: Some(ceil_secs(left)),
                exists: true,
            },
        })
    }

    /// Live keys in `namespace` (counted by a bounded scan) and the read counters of this
    /// instance.
    pub async fn stats(&self, namespace: &str) -> Result<Stats> {
        self.check_namespace(namespace)?;
        let pattern = format!("{}*", glob::escape(&data_key(namespace, "")));
        let cap = self.config.stats_scan_limit as u64;
        let mut keys = 0u64;
        let mut cursor: Option<String> = None;
        loop {
            let page = self.kv.scan(&pattern, cursor.as_deref(), 1000).await?;
            keys += page.keys.len() as u64;
            cursor = page.next_cursor;
            if cursor.is_none() || keys >= cap {
                break;
            }
        }
        let mcp_core::CacheStats { hits, misses } = self.read_counts();
        let total = hits + misses;
        Ok(Stats {
            keys: keys.min(cap),
            keys_capped: cursor.is_some() || keys > cap,
            hits,
            misses,
            hit_ratio: if total == 0 {
                0.0
            } else {
                hits as f64 / total as f64
            },
        })
    }

    /// Pings the store and the event bus.
    pub(crate) async fn ping_all(&self) -> Vec<mcp_core::BackendHealth> {
        let mut health = vec![mcp_core::BackendHealth::from_ping(
            "kv",
            self.kv.backend(),
            self.kv.ping().await.map_err(Error::from),
        )];
        if let Some(bus) = &self.events {
            health.push(mcp_core::BackendHealth::from_ping(
                "events",
                bus.backend(),
                bus.ping().await.map_err(Error::from),
            ));
        }
        health
    }

    /// Renews or removes the epoch, evicts locally and tells the other instances, in that
    /// order, before the write returns.
    async fn after_write(
        &self,
        namespace: &str,
        key: &str,
        stored_key: &str,
        change: EpochChange,
    ) -> Result<()> {
        let epoch_key = epoch_key(namespace, key);
        let epoch = match change {
            EpochChange::Renewed(ttl) => {
                let options = SetOptions {
                    ttl,
                    if_absent: false,
                };
                let epoch = self.epochs.next();
                let tag = hex(&epoch);
                self.kv.set(&epoch_key, epoch, options).await?;
                if let Some(expiry) = &self.expiry {
                    match ttl {
                        Some(ttl) => expiry.schedule(
                            stored_key,
                            &tag,
                            ttl,
                            ExpiryNotice {
                                namespace: namespace.to_owned(),
                                key: key.to_owned(),
                            },
                        ),
                        None => expiry.cancel(stored_key),
                    }
                }
                Some(tag)
            }
            EpochChange::Removed => {
                self.kv.delete(&epoch_key).await?;
                if let Some(expiry) = &self.expiry {
                    expiry.cancel(stored_key);
                }
                None
            }
        };
        if let Some(cache) = &self.cache {
            cache.invalidate(stored_key).await;
        }
        if let Some(bus) = &self.events {
            let payload = serde_json::to_vec(&Invalidation {
                key: stored_key.to_owned(),
                epoch,
                origin: Some(self.epochs.origin().to_owned()),
            })
            .map_err(|err| Error::Internal(err.to_string()))?;
            // The epoch already guarantees coherence; a lost event only delays eviction.
            if let Err(err) = bus.publish(INVALIDATION_TOPIC, payload).await {
                tracing::warn!(%err, key = stored_key, "could not publish a memory invalidation");
            }
        }
        Ok(())
    }

    /// Reads so far that found a live value (hits) and that did not (misses).
    pub(crate) fn read_counts(&self) -> mcp_core::CacheStats {
        mcp_core::CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn count(&self, hit: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn count_many(&self, hits: u64, misses: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
    }

    fn check_namespace(&self, namespace: &str) -> Result<()> {
        if namespace.is_empty() {
            return Err(Error::InvalidArgument("namespace must not be empty".into()));
        }
        if namespace.len() > self.config.max_namespace_bytes {
            return Err(Error::InvalidArgument(format!(
                "namespace is longer than {} bytes",
                self.config.max_namespace_bytes
            )));
        }
        if namespace.contains(':') {
            return Err(Error::InvalidArgument(
                "namespace must not contain `:`".into(),
            ));
        }
        Ok(())
    }

    fn check_key(&self, key: &str) -> Result<()> {
        if key.is_empty() {
            return Err(Error::InvalidArgument("key must not be empty".into()));
        }
        if key.len() > self.config.max_key_bytes {
            return Err(Error::InvalidArgument(format!(
                "key is {} bytes, the limit is {}",
                key.len(),
                self.config.max_key_bytes
            )));
        }
        Ok(())
    }

    /// Rejects TTLs beyond the limit; a zero TTL means none.
    fn check_ttl(&self, ttl: Option<Duration>) -> Result<Option<Duration>> {
        match ttl {
            Some(ttl) if ttl > self.config.max_ttl => Err(Error::InvalidArgument(format!(
                "ttl of {} s exceeds the limit of {} s",
                ttl.as_secs(),
                self.config.max_ttl.as_secs()
            ))),
            Some(ttl) if ttl.is_zero() => Ok(None),
            ttl => Ok(ttl),
        }
    }
}

/// The store key of `key` in `namespace`.
fn data_key(namespace: &str, key: &str) -> String {
    format!("mem:{namespace}:{key}")
}

/// The epoch key of `key` in `namespace` (outside every namespace's `mem:` scan range).
fn epoch_key(namespace: &str, key: &str) -> String {
    format!("memv:{namespace}:{key}")
}

fn parse(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|err| Error::Internal(format!("stored value is not JSON: {err}")))
}

fn not_found(namespace: &str, key: &str) -> Error {
    Error::NotFound(format!("key `{key}` in namespace `{namespace}`"))
}

fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}
