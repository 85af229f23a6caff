//! Conformance suite for [`LockManager`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::join_all;
use tokio::time::sleep;

use super::unique_prefix;
use crate::lock::{LockManager, LockManagerExt};
use crate::Error;

const LONG: Duration = Duration::from_secs(30);

/// Runs every LockManager check.
pub async fn run_all(locks: &dyn LockManager) {
    exclusion_and_release(locks).await;
    tokens_increase(locks).await;
    refresh_and_expiry(locks).await;
    racing_acquirers(locks).await;
    contention(locks, 32, 30).await;
}

/// One holder at a time; release with the right token only.
pub async fn exclusion_and_release(locks: &dyn LockManager) {
    let r = format!("{}res", unique_prefix());
    let lease = locks.acquire(&r, "alice", LONG).await.unwrap();
    assert_eq!(
        (lease.resource.as_str(), lease.owner.as_str()),
        (r.as_str(), "alice")
    );
    assert!(matches!(
        locks.acquire(&r, "bob", LONG).await,
        Err(Error::Locked(_))
    ));
    assert!(matches!(
        locks.acquire(&r, "alice", LONG).await,
        Err(Error::Locked(_))
    ));
    let seen = locks.inspect(&r).await.unwrap().expect("a live lease");
    assert_eq!((seen.owner.as_str(), seen.token), ("alice", lease.token));
    assert!(locks.check_writable(&r, Some(lease.token)).await.is_ok());
    assert!(matches!(
        locks.check_writable(&r, None).await,
        Err(Error::Locked(_))
    ));
    assert!(!locks.release(&r, lease.token + 1).await.unwrap());
    assert!(locks.release(&r, lease.token).await.unwrap());
    assert!(!locks.release(&r, lease.token).await.unwrap());
    assert_eq!(locks.inspect(&r).await.unwrap(), None);
    assert!(locks.check_writable(&r, None).await.is_ok());
    assert!(matches!(
        locks.acquire(&r, "alice", Duration::ZERO).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        locks.acquire(&r, "alice", Duration::MAX).await,
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(locks.inspect(&r).await.unwrap(), None);
    locks.ping().await.unwrap();
}

/// Fencing tokens strictly increase across release and expiry.
pub async fn tokens_increase(locks: &dyn LockManager) {
    let r = format!("{}res", unique_prefix());
    let mut last = 0;
    for round in 0..5 {
        let ttl = if round % 2 == 0 {
            LONG
        } else {
            Duration::from_millis(100)
        };
        let lease = locks.acquire(&r, "owner", ttl).await.unwrap();
        assert!(lease.token > last, "token {} after {last}", lease.token);
        last = lease.token;
        if round % 2 == 0 {
            locks.release(&r, lease.token).await.unwrap();
        } else {
            sleep(Duration::from_millis(300)).await;
        }
    }
}

/// Refresh extends a live lease; an expired lease frees the resource and its token is stale.
pub async fn refresh_and_expiry(locks: &dyn LockManager) {
    let r = format!("{}res", unique_prefix());
    let lease = locks
        .acquire(&r, "alice", Duration::from_millis(300))
        .await
        .unwrap();
    let refreshed = locks.refresh(&r, lease.token, LONG).await.unwrap();
    assert_eq!(refreshed.token, lease.token);
    assert!(refreshed.expires_in > Duration::from_secs(20));
    assert!(matches!(
        locks.refresh(&r, lease.token + 1, LONG).await,
        Err(Error::Locked(_))
    ));
    locks
        .refresh(&r, lease.token, Duration::from_millis(200))
        .await
        .unwrap();
    sleep(Duration::from_millis(500)).await;
    assert_eq!(locks.inspect(&r).await.unwrap(), None);
    assert!(matches!(
        locks.refresh(&r, lease.token, LONG).await,
        Err(Error::Locked(_))
    ));
    assert!(!locks.release(&r, lease.token).await.unwrap());
    let next = locks.acquire(&r, "bob", LONG).await.unwrap();
    assert!(next.token > lease.token);
    locks.release(&r, next.token).await.unwrap();
}

/// Many concurrent acquirers: exactly one wins each round.
pub async fn racing_acquirers(locks: &dyn LockManager) {
    let r = format!("{}res", unique_prefix());
    for _ in 0..10 {
        let attempts = (0..32).map(|i| {
            let r = r.clone();
            async move { locks.acquire(&r, &format!("task{i}"), LONG).await }
        });
        let results = join_all(attempts).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "exactly one holder per round");
        assert!(results
            .iter()
            .all(|r| r.is_ok() || matches!(r, Err(Error::Locked(_)))));
        locks.release(&r, winners[0].token).await.unwrap();
    }
}

/// `tasks` tasks race for one resource until `rounds` leases have been granted in all: each
/// loser retries after a short pause, each winner holds briefly, checks it is the only holder
/// (an in-test counter of holders is exactly 1, `inspect` shows its token, `refresh` keeps it)
/// while the losers keep trying, then releases.
/// The tokens granted, in grant order, strictly increase.
pub async fn contention(locks: &dyn LockManager, tasks: usize, rounds: usize) {
    let r = format!("{}contended", unique_prefix());
    let holders = AtomicUsize::new(0);
    let granted = AtomicUsize::new(0);
    let tokens = Mutex::new(Vec::with_capacity(rounds));
    let task = |i: usize| {
        let (r, holders, granted, tokens) = (&r, &holders, &granted, &tokens);
        async move {
            let owner = format!("task{i}");
            let pause = Duration::from_millis(1 + (i % 4) as u64);
            while granted.load(Ordering::SeqCst) < rounds {
                let lease = match locks.acquire(r, &owner, LONG).await {
                    Ok(lease) => lease,
                    Err(Error::Locked(_)) => {
                        sleep(pause).await;
                        continue;
                    }
                    Err(err) => panic!("{owner}: acquire failed: {err:?}"),
                };
                let before = holders.fetch_add(1, Ordering::SeqCst);
                assert_eq!(
                    before, 0,
                    "{owner} holds token {} beside another holder",
                    lease.token
                );
                tokens.lock().unwrap().push(lease.token);
                granted.fetch_add(1, Ordering::SeqCst);
                let seen = locks.inspect(r).await.unwrap().expect("the lease is live");
                assert_eq!(
                    (seen.token, seen.owner.as_str()),
                    (lease.token, owner.as_str())
                );
                let refreshed = locks.refresh(r, lease.token, LONG).await.unwrap();
                assert_eq!(refreshed.token, lease.token, "refresh keeps the token");
                sleep(Duration::from_millis(2)).await;
                assert_eq!(holders.fetch_sub(1, Ordering::SeqCst), 1);
                assert!(
                    locks.release(r, lease.token).await.unwrap(),
                    "{owner} releases"
                );
            }
        }
    };
    join_all((0..tasks).map(task)).await;
    let tokens = tokens.into_inner().unwrap();
    assert!(tokens.len() >= rounds, "{} grants", tokens.len());
    assert!(
        tokens.windows(2).all(|pair| pair[0] < pair[1]),
        "tokens must strictly increase in grant order: {tokens:?}"
    );
    assert_eq!(locks.inspect(&r).await.unwrap(), None);
}
