//! Context service benchmarks, each against a baseline measured in the same run.
//!
//! - `add` throughput (feature `fastembed`, `MINILM_DIR` and `ORT_DYLIB_PATH` from
//!   `scripts/fetch-model.sh`): `ContextService::add` with an uncached `FastEmbedder` against
//!   `FastEmbedder::embed` (fastembed's `TextEmbedding::embed` on a blocking thread) of the same
//!   chunk batches; criterion.
//! - In-memory vector search latency at 10k and 100k records, exact `MemoryVectorIndex`
//!   against `HnswVectorIndex`, with HNSW recall@10 against the exact answers; p50/p99 from
//!   its own timing loop (criterion reports means).
//! - Neo4j vector search latency at 10k records (feature `neo4j`, `MCP_TEST_NEO4J_URL`).
//!
//! The search sets are synthetic 384-d vectors with the low intrinsic dimension of text
//! embeddings (a 24-d Gaussian latent through a fixed random projection plus 10 % noise):
//! embedding 100k texts with MiniLM on 2 cores would take over an hour. Uniformly random
//! vectors, the worst case for any graph index, are reported too.
//!
//! `cargo bench --features fastembed,neo4j --bench context` (append `-- add`, `-- search` or
//! `-- neo4j` for one section); results are in BENCHMARKS.md.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use criterion::Criterion;
use mcp_backends::memory::{HnswVectorIndex, MemoryVectorIndex};
use mcp_backends::testing::data::{self, GaussianVectors};
use mcp_backends::{Metadata, VectorIndex, VectorRecord};
use tokio::runtime::Runtime;

const DIMENSIONS: usize = 384;
/// Queries timed per index and size.
const QUERIES: usize = 1_000;
/// Interleaved rounds of the paired add-vs-embed comparison, per caller count.
#[cfg(feature = "fastembed")]
const PAIRED_ROUNDS: usize = 30;
/// Queries whose recall@10 is checked against the exact index.
const RECALL_QUERIES: usize = 200;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Which synthetic vectors a run uses.
#[derive(Clone, Copy)]
enum Data {
    /// 24-d latent structure, like text embeddings.
    EmbeddingLike,
    /// Independent Gaussian components: no structure at all.
    Uniform,
}

impl Data {
    fn name(self) -> &'static str {
        match self {
            Data::EmbeddingLike => "embedding-like",
            Data::Uniform => "uniformly random",
        }
    }

    fn vectors(self, count: usize, seed: u64) -> Vec<Vec<f32>> {
        match self {
            Data::Uniform => {
                let mut source = GaussianVectors::new(seed);
                (0..count).map(|_| source.gaussian(DIMENSIONS)).collect()
            }
            Data::EmbeddingLike => data::embedding_like(count, DIMENSIONS, seed),
        }
    }
}

fn records(vectors: &[Vec<f32>]) -> Vec<VectorRecord> {
    vectors
        .iter()
        .enumerate()
        .map(|(i, vector)| {
            let mut metadata = Metadata::new();
            metadata.insert("doc_id".into(), format!("doc{i}").into());
            metadata.insert("namespace".into(), "default".into());
            VectorRecord {
                id: format!("doc{i}#0"),
                vector: vector.clone(),
                metadata,
            }
        })
        .collect()
}

/// p50 and p99 of `k`-NN searches for `queries`, in milliseconds.
async fn latency(index: &dyn VectorIndex, queries: &[Vec<f32>], k: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(queries.len());
    for query in queries {
        let start = Instant::now();
        let hits = index
            .search(query, k, &Metadata::new())
            .await
            .expect("search");
        times.push(start.elapsed());
        assert!(!hits.is_empty());
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    (at(0.50).as_secs_f64() * 1e3, at(0.99).as_secs_f64() * 1e3)
}

/// Mean recall@10 of `approximate` against `exact`.
async fn recall_at_10(
    approximate: &dyn VectorIndex,
    exact: &dyn VectorIndex,
    queries: &[Vec<f32>],
) -> f64 {
    let mut total = 0.0;
    for query in queries {
        let truth: HashSet<String> = exact
            .search(query, 10, &Metadata::new())
            .await
            .expect("exact search")
            .into_iter()
            .map(|hit| hit.id)
            .collect();
        let found = approximate
            .search(query, 10, &Metadata::new())
            .await
            .expect("approximate search");
        total += found.iter().filter(|hit| truth.contains(&hit.id)).count() as f64 / 10.0;
    }
    total / queries.len() as f64
}

async fn search_latency(data: Data, size: usize) {
    let vectors = data.vectors(size, 1);
    let queries = data.vectors(QUERIES, 2);
    let exact = MemoryVectorIndex::new(DIMENSIONS);
    exact.upsert(records(&vectors)).await.expect("exact upsert");
    let hnsw = HnswVectorIndex::new(DIMENSIONS);
    let start = Instant::now();
    for batch in records(&vectors).chunks(1_000) {
        hnsw.upsert(batch.to_vec()).await.expect("hnsw upsert");
    }
    let build = start.elapsed();
    let recall = recall_at_10(&hnsw, &exact, &queries[..RECALL_QUERIES]).await;
    let config = hnsw.config();
    println!(
        "\n{} vectors, {size} x {DIMENSIONS}-d: HNSW (m {}, ef_construction {}, ef_search {}) \
         built in {:.1} s ({:.0} inserts/s); recall@10 vs exact {recall:.3}",
        data.name(),
        config.m,
        config.ef_construction,
        config.ef_search,
        build.as_secs_f64(),
        size as f64 / build.as_secs_f64(),
    );
    for k in [10, 50] {
        let (exact_p50, exact_p99) = latency(&exact, &queries, k).await;
        let (hnsw_p50, hnsw_p99) = latency(&hnsw, &queries, k).await;
        println!(
            "  k={k}: exact p50 {exact_p50:.3} ms p99 {exact_p99:.3} ms | HNSW p50 {hnsw_p50:.3} ms \
             p99 {hnsw_p99:.3} ms | HNSW p50 speed-up {:.1}x",
            exact_p50 / hnsw_p50
        );
    }
}

#[cfg(feature = "neo4j")]
async fn neo4j_latency() {
    use mcp_backends::neo4j::Neo4jVectorIndex;

    let Ok(url) = std::env::var("MCP_TEST_NEO4J_URL") else {
        println!("\nNeo4j: skipped, MCP_TEST_NEO4J_URL is not set");
        return;
    };
    let size = 10_000;
    let vectors = Data::EmbeddingLike.vectors(size, 1);
    let queries = Data::EmbeddingLike.vectors(200, 2);
    let index = Neo4jVectorIndex::connect(&url, "BenchContextChunk", DIMENSIONS)
        .await
        .expect("neo4j connect");
    if index.len().await.expect("neo4j len") != size {
        let ids: Vec<String> = (0..size * 2).map(|i| format!("doc{i}#0")).collect();
        index.delete(&ids).await.expect("neo4j clear");
        for batch in records(&vectors).chunks(500) {
            index.upsert(batch.to_vec()).await.expect("neo4j upsert");
        }
    }
    let exact = MemoryVectorIndex::new(DIMENSIONS);
    exact.upsert(records(&vectors)).await.expect("exact upsert");
    let recall = recall_at_10(&index, &exact, &queries).await;
    let (p50, p99) = latency(&index, &queries, 10).await;
    let (exact_p50, _) = latency(&exact, &queries, 10).await;
    println!(
        "\nNeo4j vector index, {size} x {DIMENSIONS}-d embedding-like: k=10 p50 {p50:.3} ms \
         p99 {p99:.3} ms (in-memory exact p50 {exact_p50:.3} ms, same run); recall@10 vs exact \
         {recall:.3}"
    );
}

#[cfg(feature = "fastembed")]
fn add_throughput(criterion: &mut Criterion, runtime: &Runtime) {
    use std::sync::Arc;

    use mcp_backends::memory::MemoryGraphStore;
    use mcp_context::{AddRequest, ChunkConfig, ContextService, Embedder, FastEmbedder};

    let (Some(dir), Some(library)) = (
        std::env::var_os("MINILM_DIR"),
        std::env::var_os("ORT_DYLIB_PATH"),
    ) else {
        println!("add throughput: skipped, run eval \"$(scripts/fetch-model.sh)\" first");
        return;
    };
    let embedder = Arc::new(FastEmbedder::new(library, dir).expect("MiniLM"));
    let texts: Vec<String> = serde_json::from_str::<Vec<serde_json::Value>>(include_str!(
        "../mcp-context/tests/corpus/documents.json"
    ))
    .expect("corpus")
    .into_iter()
    .take(32)
    .filter_map(|document| document["text"].as_str().map(str::to_owned))
    .collect();
    let chunking = ChunkConfig::default();
    let batches: Vec<Vec<String>> = texts
        .iter()
        .map(|text| {
            chunking
                .split(text)
                .expect("chunks")
                .into_iter()
                .map(|chunk| chunk.text)
                .collect()
        })
        .collect();
    let service = ContextService::new(
        embedder.clone(),
        Arc::new(HnswVectorIndex::new(DIMENSIONS)),
        Arc::new(MemoryGraphStore::new()),
    )
    .expect("service");

    let mut group = criterion.benchmark_group("context_add_32_documents");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15))
        .throughput(criterion::Throughput::Elements(texts.len() as u64));
    group.bench_function("raw FastEmbedder::embed (baseline)", |bench| {
        bench.to_async(runtime).iter(|| async {
            for batch in &batches {
                embedder.embed(batch).await.expect("embed");
            }
        })
    });
    let mut round = 0u64;
    group.bench_function("ContextService::add", |bench| {
        bench.to_async(runtime).iter(|| {
            round += 1;
            let service = &service;
            let texts = &texts;
            async move {
                for (i, text) in texts.iter().enumerate() {
                    service
                        .add(AddRequest {
                            text: text.clone(),
                            id: Some(format!("r{round}-d{i}")),
                            ..Default::default()
                        })
                        .await
                        .expect("add");
                }
            }
        })
    });
    group.finish();

    // Criterion measures the two one after the other; on a shared machine the load can change
    // in between. Interleaving them round by round compares them under the same load, with
    // the exact in-memory index (the `in_memory()` default) and with HNSW.
    let exact_service = ContextService::new(
        embedder.clone(),
        Arc::new(MemoryVectorIndex::new(DIMENSIONS)),
        Arc::new(MemoryGraphStore::new()),
    )
    .expect("service");
    let (add_ms, hash_ms) = runtime.block_on(service_work_per_document(&texts, &batches));
    println!(
        "\nservice work per document without a model: add with HashEmbedder {add_ms:.3} ms - its \
         embed {hash_ms:.3} ms = {:.3} ms",
        add_ms - hash_ms,
    );
    // Sequentially (one caller: the latency cost of `add`) and with 4 callers at once (the
    // throughput a service sees): the model runs one batch at a time either way, so with
    // several callers the rest of an add (graph, vector index) overlaps another's embedding.
    for concurrency in [1, 4] {
        let mut ratios = [Vec::new(), Vec::new()];
        let mut totals = [Duration::ZERO; 3];
        runtime.block_on(async {
            for round in 0..PAIRED_ROUNDS {
                // Arm 0 is the raw embed, 1 and 2 the services; the order rotates every round
                // so no arm always runs first (or last) after the others warmed the caches.
                let mut times = [Duration::ZERO; 3];
                for turn in 0..3 {
                    let arm = (round + turn) % 3;
                    let start = Instant::now();
                    let callers = (0..concurrency).map(|caller| {
                        let (embedder, batches, texts) = (&embedder, &batches, &texts);
                        let service = [&exact_service, &service][arm.max(1) - 1];
                        async move {
                            let mine = (caller..texts.len()).step_by(concurrency);
                            for i in mine {
                                if arm == 0 {
                                    embedder.embed(&batches[i]).await.expect("embed");
                                } else {
                                    service
                                        .add(AddRequest {
                                            text: texts[i].clone(),
                                            id: Some(format!("paired{concurrency}-{round}-d{i}")),
                                            ..Default::default()
                                        })
                                        .await
                                        .expect("add");
                                }
                            }
                        }
                    });
                    futures::future::join_all(callers).await;
                    times[arm] = start.elapsed();
                }
                for (total, time) in totals.iter_mut().zip(times) {
                    *total += time;
                }
                for arm in 0..2 {
                    ratios[arm].push(times[arm + 1].as_secs_f64() / times[0].as_secs_f64());
                }
            }
        });
        let documents = (PAIRED_ROUNDS * texts.len()) as f64;
        println!(
            "\n{PAIRED_ROUNDS} interleaved rounds of {} documents, {concurrency} caller(s): raw \
             embed {:.1} docs/s ({:.3} ms per document)",
            texts.len(),
            documents / totals[0].as_secs_f64(),
            totals[0].as_secs_f64() * 1e3 / documents
        );
        for (arm, name) in ["exact MemoryVectorIndex", "HnswVectorIndex"]
            .into_iter()
            .enumerate()
        {
            ratios[arm].sort_by(f64::total_cmp);
            println!(
                "  ContextService::add over {name}: {:.1} docs/s; add time / raw time: median \
                 {:.3}, total {:.3}",
                documents / totals[arm + 1].as_secs_f64(),
                ratios[arm][PAIRED_ROUNDS / 2],
                totals[arm + 1].as_secs_f64() / totals[0].as_secs_f64(),
            );
        }
    }
}

/// The service's own work per added document, without a model: `add` through a service with
/// the (microsecond-cheap) `HashEmbedder` minus that embedder's `embed` of the same batches.
#[cfg(feature = "fastembed")]
async fn service_work_per_document(texts: &[String], batches: &[Vec<String>]) -> (f64, f64) {
    use std::sync::Arc;

    use mcp_backends::memory::MemoryGraphStore;
    use mcp_context::{AddRequest, ContextService, Embedder, HashEmbedder};

    let embedder = Arc::new(HashEmbedder::default());
    let service = ContextService::new(
        embedder.clone(),
        Arc::new(MemoryVectorIndex::new(DIMENSIONS)),
        Arc::new(MemoryGraphStore::new()),
    )
    .expect("service");
    let (mut embed_time, mut add_time) = (Duration::ZERO, Duration::ZERO);
    for round in 0..PAIRED_ROUNDS {
        let start = Instant::now();
        for batch in batches {
            embedder.embed(batch).await.expect("embed");
        }
        embed_time += start.elapsed();
        let start = Instant::now();
        for (i, text) in texts.iter().enumerate() {
            service
                .add(AddRequest {
                    text: text.clone(),
                    id: Some(format!("work{round}-d{i}")),
                    ..Default::default()
                })
                .await
                .expect("add");
        }
        add_time += start.elapsed();
    }
    let documents = (PAIRED_ROUNDS * texts.len()) as f64;
    (
        add_time.as_secs_f64() * 1e3 / documents,
        embed_time.as_secs_f64() * 1e3 / documents,
    )
}

/// Whether the section `name` (`add`, `search`, `neo4j`) runs: all of them without a filter
/// argument, else those whose name contains it (`cargo bench --bench context -- add`).
fn selected(name: &str) -> bool {
    std::env::args()
        .skip(1)
        .find(|arg| !arg.starts_with('-'))
        .is_none_or(|filter| name.contains(filter.as_str()) || filter.contains(name))
}

fn main() {
    let runtime = runtime();
    let mut criterion = Criterion::default().configure_from_args();
    if selected("add") {
        #[cfg(feature = "fastembed")]
        add_throughput(&mut criterion, &runtime);
        #[cfg(not(feature = "fastembed"))]
        println!("add throughput: skipped, needs --features fastembed");
    }
    runtime.block_on(async {
        if selected("search") {
            for size in [10_000, 100_000] {
                search_latency(Data::EmbeddingLike, size).await;
            }
            search_latency(Data::Uniform, 10_000).await;
        }
        if selected("neo4j") {
            #[cfg(feature = "neo4j")]
            neo4j_latency().await;
            #[cfg(not(feature = "neo4j"))]
            println!("\nNeo4j: skipped, needs --features neo4j");
        }
    });
    criterion.final_summary();
}
