//! Files service speed against baselines measured in the same run.
//!
//! - cached `read` of a 4 KiB file (typed method, and JSON through the registry) vs
//!   `std::fs::read` of the same file;
//! - `write` (atomic temp + rename, version recorded) of a 4 KiB file with the in-memory
//!   version store and, with `--features postgres` and `MCP_TEST_POSTGRES_URL`, with the
//!   PostgreSQL version store;
//! - `list` of one page (100 entries) and of every page of a 10 000-entry directory, vs
//!   `std::fs::read_dir` of it.
//!
//! `cargo bench --bench files --features postgres`. Results are in BENCHMARKS.md.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mcp_core::{Registry, RequestContext};
use mcp_files::{FilesConfig, FilesService, ReadRange, Source, WriteOptions};
use serde_json::json;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn temp_root(name: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("mcp-files-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("bench root");
    root
}

fn cached_read(c: &mut Criterion) {
    let rt = runtime();
    let root = temp_root("read");
    let content: Vec<u8> = (0..4096).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(root.join("page.txt"), &content).expect("bench file");
    let files = Arc::new(FilesService::in_memory(FilesConfig::new([&root])).expect("service"));
    let mut verifying = FilesConfig::new([&root]);
    verifying.verify_cache_hits = true;
    let verified = FilesService::in_memory(verifying).expect("service");
    let registry = Registry::builder()
        .service(files.clone())
        .build()
        .expect("registry");
    rt.block_on(async {
        for service in [files.as_ref(), &verified] {
            // Fill the cache (the watcher may evict once for the initial write).
            for _ in 0..1000 {
                if service
                    .read("page.txt", ReadRange::Whole)
                    .await
                    .expect("read")
                    .source
                    == Source::Cache
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(
                service
                    .read("page.txt", ReadRange::Whole)
                    .await
                    .expect("read")
                    .source,
                Source::Cache
            );
        }
    });
    let ctx = RequestContext::local();
    let mut group = c.benchmark_group("files_read_4k");
    group.throughput(Throughput::Bytes(4096));
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    let path = root.join("page.txt");
    group.bench_function("std_fs_read (baseline)", |b| {
        b.iter(|| std::fs::read(&path).expect("read"))
    });
    group.bench_function("files.read typed, cached", |b| {
        b.to_async(&rt).iter(|| async {
            let read = files
                .read("page.txt", ReadRange::Whole)
                .await
                .expect("read");
            debug_assert_eq!(read.source, Source::Cache);
            read
        })
    });
    group.bench_function("files.read typed, cached, hit verified by stat", |b| {
        b.to_async(&rt).iter(|| async {
            let read = verified
                .read("page.txt", ReadRange::Whole)
                .await
                .expect("read");
            debug_assert_eq!(read.source, Source::Cache);
            read
        })
    });
    group.bench_function("registry.call files/read JSON, cached", |b| {
        b.to_async(&rt).iter(|| async {
            registry
                .call("files", "read", json!({"path": "page.txt"}), &ctx)
                .await
                .expect("read")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

fn write_versioned(c: &mut Criterion) {
    let rt = runtime();
    let root = temp_root("write");
    let mut config = FilesConfig::new([&root]);
    config.watch = false;
    let content: Vec<u8> = vec![b'w'; 4096];
    let mut group = c.benchmark_group("files_write_4k");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    group.bench_function("std_fs_write (baseline, not atomic)", |b| {
        let path = root.join("raw.txt");
        b.iter(|| std::fs::write(&path, &content).expect("write"))
    });
    let memory = FilesService::in_memory(config.clone()).expect("service");
    let mut i = 0u64;
    group.bench_function("files.write, in-memory versions", |b| {
        b.to_async(&rt).iter(|| {
            i += 1;
            let mut body = content.clone();
            body[..8].copy_from_slice(&i.to_le_bytes());
            let memory = &memory;
            async move {
                memory
                    .write("mem.txt", body, WriteOptions::default())
                    .await
                    .expect("write")
            }
        })
    });
    postgres_write(&rt, &mut group, &config, &content);
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(feature = "postgres")]
fn postgres_write(
    rt: &Runtime,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    config: &FilesConfig,
    content: &[u8],
) {
    let Ok(url) = std::env::var("MCP_TEST_POSTGRES_URL") else {
        eprintln!("skipping the PostgreSQL write bench: MCP_TEST_POSTGRES_URL is not set");
        return;
    };
    let files = rt.block_on(async {
        let store = mcp_backends::postgres::PostgresVersionStore::connect(&url)
            .await
            .expect("postgres");
        FilesService::builder(config.clone())
            .versions(Arc::new(store))
            .build()
            .await
            .expect("service")
    });
    let mut i = 0u64;
    group.bench_function("files.write, PostgreSQL versions", |b| {
        b.to_async(rt).iter(|| {
            i += 1;
            let mut body = content.to_vec();
            body[..8].copy_from_slice(&i.to_le_bytes());
            let files = &files;
            async move {
                files
                    .write("pg.txt", body, WriteOptions::default())
                    .await
                    .expect("write")
            }
        })
    });
}

#[cfg(not(feature = "postgres"))]
fn postgres_write(
    _: &Runtime,
    _: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    _: &FilesConfig,
    _: &[u8],
) {
    eprintln!("skipping the PostgreSQL write bench: built without --features postgres");
}

fn list_10k(c: &mut Criterion) {
    let rt = runtime();
    let root = temp_root("list");
    std::fs::create_dir_all(root.join("big")).expect("dir");
    for i in 0..10_000 {
        std::fs::write(root.join(format!("big/entry-{i:05}.txt")), b"x").expect("file");
    }
    let mut config = FilesConfig::new([&root]);
    config.watch = false;
    let files = FilesService::in_memory(config).expect("service");
    let mut group = c.benchmark_group("files_list_10k");
    group.measurement_time(Duration::from_secs(5));
    group.warm_up_time(Duration::from_secs(1));
    group.sample_size(20);
    let dir = root.join("big");
    group.bench_function("std_fs_read_dir + metadata (baseline)", |b| {
        b.iter(|| {
            let mut n = 0;
            for entry in std::fs::read_dir(&dir).expect("read_dir") {
                let entry = entry.expect("entry");
                n += entry.metadata().expect("metadata").len();
            }
            n
        })
    });
    group.bench_function("files.list first page (100)", |b| {
        b.to_async(&rt).iter(|| async {
            let page = files
                .list("big", false, None, Some(100))
                .await
                .expect("list");
            assert_eq!(page.entries.len(), 100);
            page
        })
    });
    group.bench_function("files.list all pages (10 x 1000)", |b| {
        b.to_async(&rt).iter(|| async {
            let mut cursor: Option<String> = None;
            let mut seen = 0;
            loop {
                let page = files
                    .list("big", false, cursor.as_deref(), Some(1000))
                    .await
                    .expect("list");
                seen += page.entries.len();
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, 10_000);
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&root);
}

criterion_group!(benches, cached_read, write_versioned, list_10k);
criterion_main!(benches);
