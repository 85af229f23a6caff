//! `LockManager`: exclusive leases on named resources with a TTL and fencing tokens.
//!
//! A lease is granted to one owner at a time and carries a fencing token that is strictly
//! greater than every token granted before for the same resource, so a storage layer can
//! reject writes from a holder whose lease has already expired and been re-granted.

use std::time::Duration;

use async_trait::async_trait;

use crate::Result;

/// The longest lease any backend grants (100 years): far beyond any real use, and well inside
/// every backend's clock range (Redis expiry times, PostgreSQL timestamps, `Instant` arithmetic).
pub const MAX_LEASE_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Checks a lease TTL for every backend: positive and at most [`MAX_LEASE_TTL`].
pub fn validate_ttl(ttl: Duration) -> Result<()> {
    if ttl.is_zero() || ttl > MAX_LEASE_TTL {
        return Err(crate::Error::InvalidArgument(format!(
            "lease ttl must be positive and at most {MAX_LEASE_TTL:?}, got {ttl:?}"
        )));
    }
    Ok(())
}

/// A granted lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The locked resource (e.g. a file path).
    pub resource: String,
    /// Who holds it (free-form, e.g. a principal).
    pub owner: String,
    /// Fencing token: strictly increasing per resource across all grants.
    pub token: u64,
    /// Time left on the lease when it was read (backends round to milliseconds).
    pub expires_in: Duration,
}

impl Lease {
    /// A lease as a remote backend reports it: `millis_left` on the server's clock (negative
    /// values, from a lease expiring while it was read, count as zero).
    #[cfg(any(feature = "redis", feature = "postgres"))]
    pub(crate) fn from_millis_left(
        resource: &str,
        owner: String,
        token: u64,
        millis_left: i64,
    ) -> Self {
        Lease {
            resource: resource.to_owned(),
            owner,
            token,
            expires_in: Duration::from_millis(millis_left.max(0) as u64),
        }
    }
}

/// Exclusive, expiring leases.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - `acquire` on a free or expired resource grants a new lease; on a live lease held by
///   anyone (even the same owner) it fails with [`crate::Error::Locked`].
/// - Tokens for one resource strictly increase across grants, including after release and
///   expiry.
/// - `refresh` and `release` take the token; a token that is not the live lease's fails with
///   [`crate::Error::Locked`] (refresh) or returns `false` (release).
/// - A zero TTL, or one above [`MAX_LEASE_TTL`], is [`crate::Error::InvalidArgument`]
///   ([`validate_ttl`]) and changes nothing.
#[async_trait]
pub trait LockManager: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Grants `owner` a lease on `resource` for `ttl`.
    async fn acquire(&self, resource: &str, owner: &str, ttl: Duration) -> Result<Lease>;

    /// Extends the live lease with `token` to `ttl` from now.
    async fn refresh(&self, resource: &str, token: u64, ttl: Duration) -> Result<Lease>;

    /// Releases the live lease with `token`; returns whether it was released.
    async fn release(&self, resource: &str, token: u64) -> Result<bool>;

    /// The live lease on `resource`, if any.
    async fn inspect(&self, resource: &str) -> Result<Option<Lease>>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}

/// Convenience checks built on [`LockManager`].
#[async_trait]
pub trait LockManagerExt: LockManager {
    /// Succeeds when `resource` is unlocked, or locked with exactly `token`; otherwise
    /// [`crate::Error::Locked`]. Writers call this before changing a locked resource.
    async fn check_writable(&self, resource: &str, token: Option<u64>) -> Result<()> {
        match self.inspect(resource).await? {
            None => Ok(()),
            Some(lease) if Some(lease.token) == token => Ok(()),
            Some(lease) => Err(crate::Error::Locked(format!(
                "{resource} is locked by {} for another {} ms",
                lease.owner,
                lease.expires_in.as_millis()
            ))),
        }
    }
}

impl<T: LockManager + ?Sized> LockManagerExt for T {}
