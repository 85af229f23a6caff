//! Redis backends (feature `redis`): `KvStore` on plain string keys with native TTLs,
//! `EventBus` on pub/sub, `LockManager` with fencing counters and Lua scripts, and a GCRA
//! `RateLimiter` shared by every instance on one server. Connections are multiplexed, reconnect by themselves after an
//! outage, and every command is bounded by a timeout, so a dead server yields
//! `Error::Unavailable` quickly instead of a hang.

mod events;
mod kv;
mod lock;
mod rate_limit;

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use events::RedisEventBus;
pub use kv::RedisKvStore;
pub use lock::RedisLockManager;
pub use rate_limit::RedisRateLimiter;

use crate::Error;

const BACKEND: &str = "redis";

/// How long connecting or one command may take before the call fails with `Unavailable`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Maps a client error: connection-level failures mean the server is unavailable.
fn map_err(err: redis::RedisError) -> Error {
    if err.is_timeout() {
        Error::Timeout { backend: BACKEND }
    } else if err.is_connection_refusal() || err.is_io_error() || err.is_connection_dropped() {
        Error::Unavailable {
            backend: BACKEND,
            message: err.to_string(),
        }
    } else {
        Error::Backend {
            backend: BACKEND,
            message: err.to_string(),
        }
    }
}

fn open_client(url: &str) -> crate::Result<redis::Client> {
    redis::Client::open(url).map_err(|err| Error::InvalidArgument(format!("bad Redis URL: {err}")))
}

async fn connect_manager(client: redis::Client) -> crate::Result<ConnectionManager> {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(DEFAULT_TIMEOUT))
        .set_response_timeout(Some(DEFAULT_TIMEOUT))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(map_err)
}

/// Sends `PING` over `conn`.
async fn ping(conn: &ConnectionManager) -> crate::Result<()> {
    let _: String = redis::cmd("PING")
        .query_async(&mut conn.clone())
        .await
        .map_err(map_err)?;
    Ok(())
}
