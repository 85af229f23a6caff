//! Atomic writes: concurrent readers never see a torn file, and racing `expected_version`
//! writers get exactly one winner with the loser's content never on disk.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::Fixture;
use mcp_core::Error;
use mcp_files::{FilesService, ReadRange, WriteOptions};

const SIZE: usize = 256 * 1024;

fn uniform(content: &[u8]) -> bool {
    content.len() == SIZE && content.iter().all(|b| *b == content[0])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_torn_file() {
    let fx = Fixture::new();
    let mut config = fx.config();
    config.cache_bytes = 0;
    let files = Arc::new(FilesService::in_memory(config).unwrap());
    files
        .write("big.bin", vec![b'a'; SIZE], WriteOptions::default())
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let disk_reader = {
        let (path, stop) = (fx.root.join("big.bin"), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let content = std::fs::read(&path).unwrap();
                assert!(uniform(&content), "torn read from disk");
                reads += 1;
            }
            reads
        })
    };
    let service_reader = {
        let (files, stop) = (files.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0;
            while !stop.load(Ordering::Relaxed) {
                let read = files.read("big.bin", ReadRange::Whole).await.unwrap();
                assert!(uniform(&read.bytes()), "torn read through the service");
                reads += 1;
            }
            reads
        })
    };
    for round in 0..60 {
        let byte = if round % 2 == 0 { b'b' } else { b'a' };
        files
            .write("big.bin", vec![byte; SIZE], WriteOptions::default())
            .await
            .unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let disk_reads = disk_reader.join().unwrap();
    let service_reads = service_reader.await.unwrap();
    assert!(disk_reads > 0 && service_reads > 0);
    assert_eq!(
        files.versions("big.bin").await.unwrap().versions[0].version,
        61
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_expected_version_writers_have_one_winner() {
    let fx = Fixture::new();
    let files = Arc::new(fx.service());
    files
        .write("race.txt", b"base".to_vec(), WriteOptions::default())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for writer in 0..16 {
        let files = files.clone();
        tasks.push(tokio::spawn(async move {
            let content = format!("writer {writer}").into_bytes();
            let options = WriteOptions {
                expected_version: Some(1),
                ..Default::default()
            };
            (writer, files.write("race.txt", content, options).await)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        let (writer, outcome) = task.await.unwrap();
        match outcome {
            Ok(written) => winners.push((writer, written.version)),
            Err(Error::Conflict(_)) => {}
            Err(other) => panic!("writer {writer}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let (winner, version) = winners[0];
    assert_eq!(version, 2);
    assert_eq!(
        std::fs::read_to_string(fx.root.join("race.txt")).unwrap(),
        format!("writer {winner}")
    );
    let leftovers = std::fs::read_dir(&fx.root).unwrap().count();
    assert_eq!(leftovers, 1, "no temp files remain");
}
