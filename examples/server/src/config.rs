//! The server configuration: TOML file, environment overrides and command-line values, with
//! defaults that need nothing installed (every backend in memory, HTTP on loopback).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use mcp_core::middleware::Quota;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Error;

/// Everything the server needs to start.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// Files roots (the current directory when empty).
    pub roots: Vec<PathBuf>,
    /// Backend URL per storage role.
    pub backends: BackendUrls,
    /// Request limits.
    pub limits: Limits,
    /// API keys; when empty only loopback clients are served.
    pub keys: Vec<ApiKey>,
    /// Browser origins accepted on `/mcp` and `/ws/mcp` besides loopback ones.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            roots: Vec::new(),
            backends: BackendUrls::default(),
            limits: Limits::default(),
            keys: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Where each storage role lives: `memory://` (default), `redis://`, `postgres://` or
/// `bolt://` URLs, depending on what the role supports.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackendUrls {
    /// Memory service key-value store: `memory://`, `redis://`, `postgres://`.
    pub kv: String,
    /// Cache invalidation and push events: `memory://`, `redis://`.
    pub events: String,
    /// Files leases: `memory://`, `redis://`, `postgres://`.
    pub locks: String,
    /// Files versions and blobs: `memory://`, `postgres://`.
    pub versions: String,
    /// Audit log: `memory://`, `postgres://`.
    pub audit: String,
    /// Context vectors and knowledge graph: `memory://`, `bolt://` (Neo4j).
    pub vectors: String,
    /// Context knowledge graph; must equal `vectors` when that is Neo4j.
    pub graph: String,
    /// Per-key rate limiter: `memory://` (per process) or `redis://` (shared GCRA).
    pub rate_limit: String,
}

impl Default for BackendUrls {
    fn default() -> Self {
        let memory = || MEMORY_URL.to_owned();
        BackendUrls {
            kv: memory(),
            events: memory(),
            locks: memory(),
            versions: memory(),
            audit: memory(),
            vectors: memory(),
            graph: memory(),
            rate_limit: memory(),
        }
    }
}

/// The URL of the in-process backends.
pub const MEMORY_URL: &str = "memory://";

/// Request limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest accepted request body in bytes (larger → 413).
    pub max_body_bytes: usize,
    /// Per-request deadline in milliseconds (exceeded → 504).
    pub request_timeout_ms: u64,
    /// Sustained requests per second per key; fractions allowed (`0.5` is one request every
    /// 2 s), down to [`MIN_RATE_PER_SECOND`].
    pub rate_per_second: f64,
    /// Burst size per key.
    pub rate_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 * 1024 * 1024,
            request_timeout_ms: 30_000,
            rate_per_second: 1_000.0,
            rate_burst: 2_000,
        }
    }
}

/// The slowest accepted sustained rate: one request a day.
pub const MIN_RATE_PER_SECOND: f64 = 1.0 / 86_400.0;

impl Limits {
    /// The per-request deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The per-key rate limit: one request earned every `1 / rate_per_second` seconds, bursts
    /// of up to `rate_burst`. Fails for a rate that is not a number, below
    /// [`MIN_RATE_PER_SECOND`], or so high that a request is earned in under a nanosecond.
    pub fn quota(&self) -> Result<Quota, Error> {
        let rate = self.rate_per_second;
        let interval = if rate.is_finite() && rate >= MIN_RATE_PER_SECOND {
            Duration::try_from_secs_f64(1.0 / rate).ok()
        } else {
            None
        };
        match interval {
            Some(interval) if !interval.is_zero() && self.rate_burst > 0 => Ok(Quota {
                burst: self.rate_burst,
                interval,
            }),
            _ => Err(Error::Config(format!(
                "limits.rate_per_second = {rate} and limits.rate_burst = {}: the rate must be \
                 between one a day ({MIN_RATE_PER_SECOND:e}) and 1e9, the burst positive",
                self.rate_burst
            ))),
        }
    }
}

/// One API key: the hex SHA-256 of the bearer token, who it is, and what it may call.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Lowercase hex SHA-256 of the token (`mcp-server hash-key TOKEN` prints it).
    pub hash: String,
    /// The principal the key authenticates.
    pub principal: String,
    /// `*`, `service:*` or `service:action` grants.
    pub scopes: Vec<String>,
}

/// The hex SHA-256 of a bearer token, as stored in [`ApiKey::hash`].
pub fn hash_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Environment variables that override the file: `MCP_SERVER_LISTEN` and one
/// `MCP_SERVER_<ROLE>_URL` per backend role.
pub const ENV_OVERRIDES: [&str; 9] = [
    "MCP_SERVER_LISTEN",
    "MCP_SERVER_KV_URL",
    "MCP_SERVER_EVENTS_URL",
    "MCP_SERVER_LOCKS_URL",
    "MCP_SERVER_VERSIONS_URL",
    "MCP_SERVER_AUDIT_URL",
    "MCP_SERVER_VECTORS_URL",
    "MCP_SERVER_GRAPH_URL",
    "MCP_SERVER_RATE_LIMIT_URL",
];

impl ServerConfig {
    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|err| Error::Config(format!("invalid configuration: {err}")))
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|err| Error::Config(format!("cannot read {}: {err}", path.display())))?;
        ServerConfig::from_toml(&text)
    }

    /// Applies the [`ENV_OVERRIDES`] found through `lookup` (`std::env::var` in the binary).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), Error> {
        if let Some(listen) = lookup("MCP_SERVER_LISTEN") {
            self.listen = parse_listen(&listen)?;
        }
        let roles: [(&str, &mut String); 8] = [
            ("MCP_SERVER_KV_URL", &mut self.backends.kv),
            ("MCP_SERVER_EVENTS_URL", &mut self.backends.events),
            ("MCP_SERVER_LOCKS_URL", &mut self.backends.locks),
            ("MCP_SERVER_VERSIONS_URL", &mut self.backends.versions),
            ("MCP_SERVER_AUDIT_URL", &mut self.backends.audit),
            ("MCP_SERVER_VECTORS_URL", &mut self.backends.vectors),
            ("MCP_SERVER_GRAPH_URL", &mut self.backends.graph),
            ("MCP_SERVER_RATE_LIMIT_URL", &mut self.backends.rate_limit),
        ];
        for (name, slot) in roles {
            if let Some(url) = lookup(name) {
                *slot = url;
            }
        }
        Ok(())
    }

    /// Checks what can be checked without connecting: URL schemes per role, key hashes,
    /// limits.
    pub fn validate(&self) -> Result<(), Error> {
        let b = &self.backends;
        check_scheme("kv", &b.kv, &["memory", "redis", "postgres", "postgresql"])?;
        check_scheme("events", &b.events, &["memory", "redis"])?;
        check_scheme(
            "locks",
            &b.locks,
            &["memory", "redis", "postgres", "postgresql"],
        )?;
        check_scheme(
            "versions",
            &b.versions,
            &["memory", "postgres", "postgresql"],
        )?;
        check_scheme("audit", &b.audit, &["memory", "postgres", "postgresql"])?;
        check_scheme("vectors", &b.vectors, &["memory", "bolt", "neo4j"])?;
        check_scheme("graph", &b.graph, &["memory", "bolt", "neo4j"])?;
        check_scheme("rate_limit", &b.rate_limit, &["memory", "redis"])?;
        if scheme(&b.vectors) != scheme(&b.graph) {
            return Err(Error::Config(
                "backends.vectors and backends.graph must both be memory:// or both Neo4j".into(),
            ));
        }
        for key in &self.keys {
            if key.hash.len() != 64 || !key.hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::Config(format!(
                    "key for `{}`: hash must be 64 hex digits (mcp-server hash-key TOKEN)",
                    key.principal
                )));
            }
        }
        let limits = &self.limits;
        if limits.max_body_bytes == 0 || limits.request_timeout_ms == 0 {
            return Err(Error::Config(
                "limits.max_body_bytes and limits.request_timeout_ms must be positive".into(),
            ));
        }
        limits.quota()?;
        Ok(())
    }
}

/// Parses a listen address such as `127.0.0.1:8787`.
pub fn parse_listen(text: &str) -> Result<SocketAddr, Error> {
    text.parse()
        .map_err(|err| Error::Config(format!("listen address `{text}`: {err}")))
}

/// The scheme of a backend URL (`memory`, `redis`, ...).
pub fn scheme(url: &str) -> &str {
    url.split_once("://").map_or("", |(scheme, _)| scheme)
}

fn check_scheme(role: &str, url: &str, allowed: &[&str]) -> Result<(), Error> {
    let found = scheme(url);
    if allowed.contains(&found) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "backends.{role} = `{url}`: expected a URL with scheme {}",
            allowed.join(", ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_in_memory_on_loopback() {
        let config = ServerConfig::default();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.backends.kv, "memory://");
        assert!(config.validate().is_ok());
    }

    #[test]
    fn toml_env_and_validation() {
        let mut config = ServerConfig::from_toml(
            r#"
            listen = "127.0.0.1:9000"
            [backends]
            kv = "redis://127.0.0.1:6379"
            [[keys]]
            hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
            principal = "ci"
            scopes = ["memory:*"]
            "#,
        )
        .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.keys[0].hash, hash_key("test"));
        config
            .apply_env(|name| (name == "MCP_SERVER_KV_URL").then(|| "postgres://x/y".to_owned()))
            .unwrap();
        assert_eq!(config.backends.kv, "postgres://x/y");
        assert!(config.validate().is_ok());
        config.backends.events = "postgres://x/y".into();
        assert!(matches!(config.validate(), Err(Error::Config(m)) if m.contains("events")));
        assert!(ServerConfig::from_toml("nope = 1").is_err());
    }

    #[test]
    fn rates_may_be_fractions_or_integers() {
        let config =
            ServerConfig::from_toml("[limits]\nrate_per_second = 0.01\nrate_burst = 3\n").unwrap();
        let quota = config.limits.quota().unwrap();
        assert_eq!(quota.interval, Duration::from_secs(100));
        assert_eq!(quota.burst, 3);
        let config = ServerConfig::from_toml("[limits]\nrate_per_second = 250\n").unwrap();
        assert_eq!(
            config.limits.quota().unwrap().interval,
            Duration::from_millis(4)
        );
        for rate in [
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            MIN_RATE_PER_SECOND / 2.0,
            1e10,
        ] {
            let limits = Limits {
                rate_per_second: rate,
                ..Limits::default()
            };
            assert!(limits.quota().is_err(), "{rate}");
        }
        let limits = Limits {
            rate_burst: 0,
            ..Limits::default()
        };
        assert!(matches!(
            ServerConfig {
                limits,
                ..ServerConfig::default()
            }
            .validate(),
            Err(Error::Config(_))
        ));
    }
}
