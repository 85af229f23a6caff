//! The service over Redis leases (needs `MCP_TEST_REDIS_URL`).

mod common;

use std::sync::Arc;

use common::Fixture;
use mcp_backends::redis::RedisLockManager;
use mcp_backends::testing::{server_url, unique_prefix};
use mcp_files::FilesService;

async fn service(url: &str, fx: &Fixture) -> FilesService {
    let locks = RedisLockManager::connect(url)
        .await
        .unwrap()
        .with_prefix(unique_prefix());
    FilesService::builder(fx.config())
        .locks(Arc::new(locks))
        .build()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_redis_locked_path_needs_the_token() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let fx = Fixture::new();
    common::locked_path_needs_the_token(&service(&url, &fx).await, &fx.root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_racing_through_redis_locks_never_see_two_holders() {
    let Some(url) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let fx = Fixture::new();
    common::lock_contention(Arc::new(service(&url, &fx).await), 32, 100).await;
}
