//! Leases through the service over the in-memory lock manager: fencing and contention.

mod common;

use std::sync::Arc;

use common::Fixture;
use mcp_files::FilesService;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_tasks_racing_for_one_lock_never_see_two_holders() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.watch = true;
    let files = FilesService::in_memory(config).unwrap();
    common::lock_contention(Arc::new(files), 32, 200).await;
}

#[tokio::test]
async fn a_locked_path_needs_the_token() {
    let fx = Fixture::new();
    common::locked_path_needs_the_token(&fx.service(), &fx.root).await;
}
