//! `HnswVectorIndex` against the exact `MemoryVectorIndex`: recall@10, filtered searches,
//! deletion with rebuilds, and concurrent searches during writes.

use std::collections::HashSet;
use std::sync::Arc;

use mcp_backends::memory::{HnswConfig, HnswVectorIndex, MemoryVectorIndex};
use mcp_backends::testing::data::{self, GaussianVectors};
use mcp_backends::{Metadata, VectorIndex, VectorRecord};
use serde_json::json;

fn records(count: usize, dimensions: usize, seed: u64) -> Vec<VectorRecord> {
    let mut vectors = GaussianVectors::new(seed);
    (0..count)
        .map(|i| {
            let metadata =
                json!({"group": i % 50, "parity": if i % 2 == 0 { "even" } else { "odd" }});
            VectorRecord {
                id: format!("v{i}"),
                vector: vectors.gaussian(dimensions),
                metadata: metadata.as_object().cloned().unwrap_or_default(),
            }
        })
        .collect()
}

fn graph_only(config: HnswConfig) -> HnswConfig {
    HnswConfig {
        exact_below: 0,
        ..config
    }
}

async fn ids(index: &dyn VectorIndex, query: &[f32], k: usize, filter: &Metadata) -> Vec<String> {
    index
        .search(query, k, filter)
        .await
        .unwrap()
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

/// Mean recall@k of `approximate` against `exact` over `queries`.
async fn recall(
    approximate: &dyn VectorIndex,
    exact: &dyn VectorIndex,
    queries: &[Vec<f32>],
    k: usize,
    filter: &Metadata,
) -> f64 {
    let mut total = 0.0;
    for query in queries {
        let truth: HashSet<String> = ids(exact, query, k, filter).await.into_iter().collect();
        let found = ids(approximate, query, k, filter).await;
        assert!(found.len() <= k);
        total += found.iter().filter(|id| truth.contains(*id)).count() as f64 / truth.len() as f64;
    }
    total / queries.len() as f64
}

async fn loaded(
    count: usize,
    dimensions: usize,
    config: HnswConfig,
) -> (HnswVectorIndex, MemoryVectorIndex) {
    let hnsw = HnswVectorIndex::with_config(dimensions, config).unwrap();
    let exact = MemoryVectorIndex::new(dimensions);
    let data = records(count, dimensions, 7);
    hnsw.upsert(data.clone()).await.unwrap();
    exact.upsert(data).await.unwrap();
    (hnsw, exact)
}

/// Small enough for a debug build: 2,000 random 64-d vectors, searched through the graph.
#[tokio::test]
async fn recall_at_10_against_exact() {
    let (hnsw, exact) = loaded(2_000, 64, graph_only(HnswConfig::default())).await;
    let queries: Vec<Vec<f32>> = (0..50)
        .map(|i| GaussianVectors::new(1_000 + i).gaussian(64))
        .collect();
    let recall = recall(&hnsw, &exact, &queries, 10, &Metadata::new()).await;
    println!("recall@10 on 2,000 x 64-d: {recall:.3}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

/// `count` 384-d embedding-like vectors (see [`data::embedding_like`]).
fn embedding_like(count: usize, seed: u64) -> Vec<Vec<f32>> {
    data::embedding_like(count, 384, seed)
}

/// The 20,000 x 384-d case, on uniformly random vectors (the hardest input: no structure)
/// and on embedding-like ones; too slow for a debug build, run it with
/// `cargo test -p mcp-backends --release --features testing --test hnsw -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "builds two 20k x 384-d graphs: run with --release"]
async fn recall_at_10_against_exact_20k_384d() {
    let uniform = HnswVectorIndex::new(384);
    let uniform_exact = MemoryVectorIndex::new(384);
    let data = records(20_000, 384, 7);
    uniform.upsert(data.clone()).await.unwrap();
    uniform_exact.upsert(data).await.unwrap();
    let queries: Vec<Vec<f32>> = (0..100)
        .map(|i| GaussianVectors::new(5_000 + i).gaussian(384))
        .collect();
    let uniform_recall = recall(&uniform, &uniform_exact, &queries, 10, &Metadata::new()).await;
    println!("recall@10 on 20,000 uniformly random 384-d vectors: {uniform_recall:.3}");

    let structured = HnswVectorIndex::new(384);
    let structured_exact = MemoryVectorIndex::new(384);
    let data: Vec<VectorRecord> = embedding_like(20_000, 11)
        .into_iter()
        .enumerate()
        .map(|(i, vector)| VectorRecord {
            id: format!("e{i}"),
            vector,
            metadata: Metadata::new(),
        })
        .collect();
    structured.upsert(data.clone()).await.unwrap();
    structured_exact.upsert(data).await.unwrap();
    let queries = embedding_like(100, 12);
    let structured_recall = recall(
        &structured,
        &structured_exact,
        &queries,
        10,
        &Metadata::new(),
    )
    .await;
    println!("recall@10 on 20,000 embedding-like 384-d vectors: {structured_recall:.3}");
    assert!(structured_recall >= 0.95, "recall@10 {structured_recall}");
}

/// A selective filter (1 record in 50) still returns the true filtered top k, and a broad one
/// (1 in 2) keeps high recall.
#[tokio::test]
async fn filtered_searches_return_the_filtered_top_k() {
    let (hnsw, exact) = loaded(2_000, 32, graph_only(HnswConfig::default())).await;
    let selective = json!({"group": 7}).as_object().cloned().unwrap_or_default();
    for seed in 0..10 {
        let query = GaussianVectors::new(seed).gaussian(32);
        let found = ids(&hnsw, &query, 10, &selective).await;
        assert_eq!(found, ids(&exact, &query, 10, &selective).await);
    }
    let broad = json!({"parity": "odd"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let queries: Vec<Vec<f32>> = (0..20)
        .map(|i| GaussianVectors::new(300 + i).gaussian(32))
        .collect();
    let recall = recall(&hnsw, &exact, &queries, 10, &broad).await;
    assert!(recall >= 0.95, "filtered recall@10 {recall}");
    for query in &queries {
        for hit in hnsw.search(query, 10, &broad).await.unwrap() {
            assert_eq!(hit.metadata["parity"], "odd");
        }
    }
}

/// Small indexes are scanned exactly: the same hits, scores and order as the exact index.
#[tokio::test]
async fn small_indexes_are_exact() {
    let (hnsw, exact) = loaded(500, 16, HnswConfig::default()).await;
    for seed in 0..10 {
        let query = GaussianVectors::new(seed).gaussian(16);
        let a = hnsw.search(&query, 20, &Metadata::new()).await.unwrap();
        let b = exact.search(&query, 20, &Metadata::new()).await.unwrap();
        assert_eq!(a.len(), 20);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!((&a.id, &a.metadata), (&b.id, &b.metadata));
            assert!((a.score - b.score).abs() < 1e-5);
        }
    }
}

/// Deleting most records (which rebuilds the graph) and replacing others keeps search
/// correct: deleted ids never come back, replaced ones are found at their new place.
#[tokio::test]
async fn deletes_and_replacements_survive_rebuilds() {
    let config = graph_only(HnswConfig::default());
    let (hnsw, exact) = loaded(1_500, 24, config).await;
    let gone: Vec<String> = (0..1_500)
        .filter(|i| i % 3 != 0)
        .map(|i| format!("v{i}"))
        .collect();
    assert_eq!(hnsw.delete(&gone).await.unwrap(), 1_000);
    assert_eq!(exact.delete(&gone).await.unwrap(), 1_000);
    assert_eq!(hnsw.len().await.unwrap(), 500);
    assert_eq!(hnsw.delete(&gone).await.unwrap(), 0, "already deleted");

    let moved = GaussianVectors::new(99).gaussian(24);
    let replacement = VectorRecord {
        id: "v0".into(),
        vector: moved.clone(),
        metadata: json!({"replaced": true})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    hnsw.upsert(vec![replacement.clone()]).await.unwrap();
    exact.upsert(vec![replacement]).await.unwrap();
    assert_eq!(hnsw.len().await.unwrap(), 500);
    let top = hnsw.search(&moved, 1, &Metadata::new()).await.unwrap();
    assert_eq!(top[0].id, "v0");
    assert_eq!(top[0].metadata["replaced"], true);

    let deleted: HashSet<&String> = gone.iter().collect();
    let queries: Vec<Vec<f32>> = (0..30)
        .map(|i| GaussianVectors::new(400 + i).gaussian(24))
        .collect();
    for query in &queries {
        let found = ids(&hnsw, query, 10, &Metadata::new()).await;
        assert_eq!(found.len(), 10);
        assert!(found.iter().all(|id| !deleted.contains(id)));
    }
    let recall = recall(&hnsw, &exact, &queries, 10, &Metadata::new()).await;
    assert!(recall >= 0.95, "recall@10 after deletes {recall}");

    let everything: Vec<String> = (0..1_500).map(|i| format!("v{i}")).collect();
    assert_eq!(hnsw.delete(&everything).await.unwrap(), 500);
    assert!(hnsw.is_empty().await.unwrap());
    assert!(hnsw
        .search(&moved, 5, &Metadata::new())
        .await
        .unwrap()
        .is_empty());
}

/// Searches from several tasks run while another task upserts; every search answers with
/// hits of the right shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_searches_during_writes() {
    let index =
        Arc::new(HnswVectorIndex::with_config(16, graph_only(HnswConfig::default())).unwrap());
    index.upsert(records(500, 16, 1)).await.unwrap();
    let writer = {
        let index = Arc::clone(&index);
        tokio::spawn(async move {
            for batch in 0..10u64 {
                let mut more = records(50, 16, 100 + batch);
                for record in &mut more {
                    record.id = format!("b{batch}-{}", record.id);
                }
                index.upsert(more).await.unwrap();
            }
        })
    };
    let searchers: Vec<_> = (0..4u64)
        .map(|task| {
            let index = Arc::clone(&index);
            tokio::spawn(async move {
                for round in 0..50 {
                    let query = GaussianVectors::new(task * 1_000 + round).gaussian(16);
                    let hits = index.search(&query, 5, &Metadata::new()).await.unwrap();
                    assert_eq!(hits.len(), 5);
                    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for searcher in searchers {
        searcher.await.unwrap();
    }
    assert_eq!(index.len().await.unwrap(), 1_000);
}
