//! Builds the registry from a [`ServerConfig`]: connects each configured backend, constructs the
//! services on them and puts the middleware chain (authorization, rate limit, metrics, audit) in
//! front, so every transport dispatches through the same checks.

use std::sync::Arc;

use mcp_backends::memory::{
    MemoryAuditLog, MemoryEventBus, MemoryKvStore, MemoryLockManager, MemoryVersionStore,
};
use mcp_backends::{
    AuditLog, AuditLogSink, EventBus, GcraLimiter, KvStore, LockManager, Quota, RateLimiter,
    VersionStore,
};
use mcp_context::ContextService;
use mcp_core::middleware::{Audit, Authorize, Metrics, RateLimit};
use mcp_core::Registry;
use mcp_files::{FilesConfig, FilesService};
use mcp_memory::MemoryService;

#[cfg(feature = "postgres")]
use crate::audit_buffer::BufferedAuditLog;
use crate::config::{scheme, ServerConfig};
#[cfg(feature = "redis")]
use crate::limiter::FallbackLimiter;
use crate::Error;

/// Serialized bytes of memory values kept in process when the key-value store is remote.
const MEMORY_CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The assembled services and the shared pieces transports need besides the registry.
#[derive(Clone)]
pub struct App {
    /// Every service behind the middleware chain.
    pub registry: Registry,
    /// The files roots, canonical, in configuration order (the first one is the default).
    pub roots: Arc<Vec<std::path::PathBuf>>,
    /// The event bus services publish on; WebSocket subscribers listen to it.
    pub events: Arc<dyn EventBus>,
    /// The configuration the app was built from.
    pub config: Arc<ServerConfig>,
}

impl App {
    /// Validates `config`, connects every backend it names and builds the registry.
    pub async fn build(mut config: ServerConfig) -> Result<App, Error> {
        config.validate()?;
        if config.roots.is_empty() {
            config.roots.push(std::env::current_dir()?);
        }
        let backends = &config.backends;
        let kv = connect_kv(&backends.kv).await?;
        let events = connect_events(&backends.events).await?;
        let audit = connect_audit(&backends.audit).await?;
        let quota = config.limits.quota()?;
        let limiter = connect_rate_limiter(&backends.rate_limit, quota).await?;
        let mut memory = MemoryService::builder(kv).events(events.clone());
        if scheme(&backends.kv) != "memory" {
            // A remote store: cache parsed values in process, so a read of an unchanged key
            // costs one small epoch lookup instead of fetching and parsing the value (the
            // epoch check keeps every instance from serving a value older than a write that
            // returned; see mcp-memory's cache docs).
            memory = memory.cache(MEMORY_CACHE_BYTES);
        }
        let memory = memory.build().await?;
        let context = connect_context(&backends.vectors).await?;
        let mut files_config = FilesConfig::new(config.roots.iter().cloned());
        // A shared event bus means other instances may write the same roots; their
        // invalidations arrive asynchronously, so every cache hit checks the file first.
        files_config.verify_cache_hits = scheme(&backends.events) != "memory";
        let files = FilesService::builder(files_config)
            .versions(connect_versions(&backends.versions).await?)
            .locks(connect_locks(&backends.locks).await?)
            .audit(audit.clone())
            .events(events.clone())
            .build()
            .await?;
        let registry = Registry::builder()
            .layer(Authorize)
            .layer(RateLimit::new(limiter))
            .layer(Metrics)
            // The files service writes its own access records (with path and bytes).
            .layer(Audit::new(Arc::new(AuditLogSink(audit))).except(["files"]))
            .service(Arc::new(files))
            .service(Arc::new(memory))
            .service(Arc::new(context))
            .build()?;
        let roots = config
            .roots
            .iter()
            .map(|root| root.canonicalize())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(App {
            roots: Arc::new(roots),
            registry,
            events,
            config: Arc::new(config),
        })
    }
}

async fn connect_kv(url: &str) -> Result<Arc<dyn KvStore>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryKvStore::new())),
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(
            mcp_backends::redis::RedisKvStore::connect(url).await?,
        )),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(
            mcp_backends::postgres::PostgresKvStore::connect(url).await?,
        )),
        _ => Err(not_built("kv", url)),
    }
}

async fn connect_events(url: &str) -> Result<Arc<dyn EventBus>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryEventBus::new())),
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(
            mcp_backends::redis::RedisEventBus::connect(url).await?,
        )),
        _ => Err(not_built("events", url)),
    }
}

async fn connect_locks(url: &str) -> Result<Arc<dyn LockManager>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryLockManager::new())),
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(
            mcp_backends::redis::RedisLockManager::connect(url).await?,
        )),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(
            mcp_backends::postgres::PostgresLockManager::connect(url).await?,
        )),
        _ => Err(not_built("locks", url)),
    }
}

async fn connect_versions(url: &str) -> Result<Arc<dyn VersionStore>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryVersionStore::new())),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(
            mcp_backends::postgres::PostgresVersionStore::connect(url).await?,
        )),
        _ => Err(not_built("versions", url)),
    }
}

/// A remote audit log sits behind a [`BufferedAuditLog`], so no call waits for it or fails
/// because it is down.
async fn connect_audit(url: &str) -> Result<Arc<dyn AuditLog>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(MemoryAuditLog::new())),
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(Arc::new(BufferedAuditLog::new(Arc::new(
            mcp_backends::postgres::PostgresAuditLog::connect(url).await?,
        )))),
        _ => Err(not_built("audit", url)),
    }
}

async fn connect_rate_limiter(url: &str, quota: Quota) -> Result<Arc<dyn RateLimiter>, Error> {
    match scheme(url) {
        "memory" => Ok(Arc::new(GcraLimiter::new(quota))),
        // While Redis is down the same quota is enforced per instance.
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(FallbackLimiter::new(
            Arc::new(mcp_backends::redis::RedisRateLimiter::connect(url, quota).await?),
            quota,
        ))),
        _ => Err(not_built("rate_limit", url)),
    }
}

async fn connect_context(url: &str) -> Result<ContextService, Error> {
    match scheme(url) {
        "memory" => Ok(ContextService::in_memory()),
        #[cfg(feature = "neo4j")]
        "bolt" | "neo4j" => {
            use mcp_context::{CachedEmbedder, HashEmbedder};
            let embedder = Arc::new(CachedEmbedder::new(
                Arc::new(HashEmbedder::default()),
                10_000,
            ));
            Ok(
                ContextService::connect_neo4j(url, "mcp_server_chunks", "mcp-server", embedder)
                    .await?,
            )
        }
        _ => Err(not_built("vectors", url)),
    }
}

fn not_built(role: &str, url: &str) -> Error {
    Error::Config(format!(
        "backends.{role} = `{url}`: this build of mcp-server has no backend for that scheme"
    ))
}
