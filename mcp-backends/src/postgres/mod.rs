//! PostgreSQL backends (feature `postgres`): `KvStore` in one table with an `expires_at`
//! column filtered on every read; `LockManager` with leases judged by the server's clock and
//! a fencing counter per resource; `VersionStore` with content-addressed blobs and gap-free
//! per-path histories; `AuditLog` with an index per query filter. Schema changes are numbered SQL files under `migrations/`,
//! embedded and applied on connect (sqlx serialises concurrent migrators with an advisory
//! lock). The pool bounds how long a call waits for a connection, so an outage yields
//! `Error::Unavailable` quickly, and reconnects by itself when the server returns.

mod audit;
mod kv;
mod lock;
mod version;

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

pub use audit::PostgresAuditLog;
pub use kv::PostgresKvStore;
pub use lock::PostgresLockManager;
pub use version::PostgresVersionStore;

use crate::Error;

const BACKEND: &str = "postgres";

/// How long a call may wait for a pooled connection before failing with `Unavailable`.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

fn map_err(err: sqlx::Error) -> Error {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => Error::Unavailable {
            backend: BACKEND,
            message: err.to_string(),
        },
        other => Error::Backend {
            backend: BACKEND,
            message: other.to_string(),
        },
    }
}

/// Connects a pool to `url` and applies the embedded migrations.
async fn connect_pool(url: &str) -> crate::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(DEFAULT_ACQUIRE_TIMEOUT)
        .connect(url)
        .await
        .map_err(map_err)?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .map_err(|err| Error::Backend {
            backend: BACKEND,
            message: format!("migration failed: {err}"),
        })?;
    Ok(pool)
}

/// Checks that the server answers.
async fn ping(pool: &PgPool) -> crate::Result<()> {
    sqlx::query("SELECT 1")
        .execute(pool)
        .await
        .map_err(map_err)
        .map(|_| ())
}

/// Refuses text PostgreSQL cannot store: a `text` value never holds a NUL character.
fn check_text(field: &str, value: &str) -> crate::Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidArgument(format!(
            "{field} must not contain a NUL character"
        )));
    }
    Ok(())
}
