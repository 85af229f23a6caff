//! Retrieval quality on the labelled corpus in `tests/corpus/` (200 short documents over 20
//! topics, 50 queries of which 15 are paraphrases sharing no keyword with their answer):
//! recall@5 and MRR@10 for keyword, semantic and hybrid search, printed as a table
//! (`cargo test -p mcp-context --test retrieval -- --nocapture`).

use std::collections::HashSet;

use mcp_context::{AddRequest, ContextService, SearchMode, SearchRequest};
use serde::Deserialize;

#[derive(Deserialize)]
struct CorpusDocument {
    id: String,
    topic: String,
    text: String,
}

#[derive(Deserialize)]
struct Query {
    query: String,
    relevant: Vec<String>,
    kind: String,
}

/// Mean recall@5 and MRR@10 of one mode over a set of queries.
#[derive(Clone, Copy, Debug, Default)]
struct Scores {
    recall_at_5: f64,
    mrr: f64,
}

fn documents() -> Vec<CorpusDocument> {
    serde_json::from_str(include_str!("corpus/documents.json")).unwrap()
}

fn queries() -> Vec<Query> {
    serde_json::from_str(include_str!("corpus/queries.json")).unwrap()
}

async fn load(service: &ContextService) {
    for document in documents() {
        let mut metadata = serde_json::Map::new();
        metadata.insert("topic".into(), document.topic.into());
        service
            .add(AddRequest {
                text: document.text,
                metadata: Some(metadata),
                id: Some(document.id),
                namespace: None,
            })
            .await
            .unwrap();
    }
}

async fn evaluate(service: &ContextService, mode: SearchMode, kind: Option<&str>) -> Scores {
    let queries: Vec<Query> = queries()
        .into_iter()
        .filter(|query| kind.is_none_or(|kind| query.kind == kind))
        .collect();
    let mut total = Scores::default();
    for query in &queries {
        let ranked: Vec<String> = service
            .search(SearchRequest {
                query: query.query.clone(),
                limit: Some(10),
                mode: Some(mode),
                ..Default::default()
            })
            .await
            .unwrap()
            .results
            .into_iter()
            .map(|hit| hit.id)
            .collect();
        let relevant: HashSet<&String> = query.relevant.iter().collect();
        let found = ranked
            .iter()
            .take(5)
            .filter(|id| relevant.contains(id))
            .count();
        total.recall_at_5 += found as f64 / relevant.len() as f64;
        if let Some(rank) = ranked.iter().position(|id| relevant.contains(id)) {
            total.mrr += 1.0 / (rank as f64 + 1.0);
        }
    }
    let count = queries.len() as f64;
    Scores {
        recall_at_5: total.recall_at_5 / count,
        mrr: total.mrr / count,
    }
}

/// Prints the table and returns `[mode][subset]` scores (subsets: all, keyword, paraphrase).
async fn report(service: &ContextService, embedder: &str) -> Vec<[Scores; 3]> {
    println!("\nretrieval on tests/corpus ({embedder} embedder): recall@5 / MRR@10");
    println!("| mode | all (50) | keyword queries (35) | paraphrase queries (15) |");
    println!("|---|---|---|---|");
    let mut table = Vec::new();
    for (name, mode) in [
        ("keyword", SearchMode::Keyword),
        ("semantic", SearchMode::Semantic),
        ("hybrid", SearchMode::Hybrid),
    ] {
        let row = [
            evaluate(service, mode, None).await,
            evaluate(service, mode, Some("keyword")).await,
            evaluate(service, mode, Some("paraphrase")).await,
        ];
        let cells: Vec<String> = row
            .iter()
            .map(|s| format!("{:.3} / {:.3}", s.recall_at_5, s.mrr))
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
        table.push(row);
    }
    table
}

#[test]
fn corpus_is_well_formed() {
    let documents = documents();
    assert!(documents.len() >= 200);
    let ids: HashSet<&String> = documents.iter().map(|d| &d.id).collect();
    assert_eq!(ids.len(), documents.len());
    let queries = queries();
    assert_eq!(queries.len(), 50);
    assert_eq!(
        queries.iter().filter(|q| q.kind == "paraphrase").count(),
        15
    );
    for query in &queries {
        assert!(!query.relevant.is_empty());
        assert!(
            query.relevant.iter().all(|id| ids.contains(id)),
            "{}",
            query.query
        );
    }
}

#[tokio::test]
async fn hash_embedder_retrieval_quality() {
    let service = ContextService::in_memory();
    load(&service).await;
    let table = report(&service, "hash").await;
    let [keyword, semantic, hybrid] = [table[0], table[1], table[2]];
    // Lexical methods find keyword queries; thresholds sit below the measured figures.
    // Measured: 1.0 recall@5 on keyword queries in every mode; paraphrases are out of reach
    // of a lexical embedder (recall@5 0.0 keyword, 0.07 semantic/hybrid).
    assert!(keyword[1].recall_at_5 >= 0.95, "{keyword:?}");
    assert!(semantic[1].recall_at_5 >= 0.9, "{semantic:?}");
    assert!(hybrid[1].recall_at_5 >= 0.95, "{hybrid:?}");
    assert!(hybrid[0].mrr >= 0.65, "{hybrid:?}");
}

/// The same corpus over `HnswVectorIndex` with every search going through the graph (no exact
/// scan for small indexes): the figures stay those of the exact index.
#[tokio::test]
async fn hnsw_index_keeps_retrieval_quality() {
    use std::sync::Arc;

    use mcp_backends::memory::{HnswConfig, HnswVectorIndex, MemoryGraphStore};
    use mcp_context::{CachedEmbedder, HashEmbedder};

    let exact = ContextService::in_memory();
    load(&exact).await;
    let graph_only = HnswConfig {
        exact_below: 0,
        ..HnswConfig::default()
    };
    let hnsw = ContextService::new(
        Arc::new(CachedEmbedder::new(
            Arc::new(HashEmbedder::default()),
            10_000,
        )),
        Arc::new(HnswVectorIndex::with_config(384, graph_only).unwrap()),
        Arc::new(MemoryGraphStore::new()),
    )
    .unwrap();
    load(&hnsw).await;
    for mode in [SearchMode::Semantic, SearchMode::Hybrid] {
        let (a, b) = (
            evaluate(&exact, mode, None).await,
            evaluate(&hnsw, mode, None).await,
        );
        assert!(
            (a.recall_at_5 - b.recall_at_5).abs() < 0.02,
            "{a:?} vs {b:?}"
        );
        assert!((a.mrr - b.mrr).abs() < 0.02, "{a:?} vs {b:?}");
    }
}

/// The same table with all-MiniLM-L6-v2 (feature `fastembed`; skips without `MINILM_DIR`
/// unless `CI=true`).
#[cfg(feature = "fastembed")]
#[tokio::test]
async fn minilm_retrieval_quality() {
    use std::sync::Arc;

    use mcp_backends::memory::{MemoryGraphStore, MemoryVectorIndex};
    use mcp_context::{CachedEmbedder, FastEmbedder};

    let Some(dir) = std::env::var_os("MINILM_DIR").map(std::path::PathBuf::from) else {
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "MINILM_DIR is not set, but CI=true"
        );
        eprintln!("skipping: MINILM_DIR is not set");
        return;
    };
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("../ort/libonnxruntime.so.1.32.0"));
    let embedder = FastEmbedder::new(library, dir).unwrap();
    let service = ContextService::new(
        Arc::new(CachedEmbedder::new(Arc::new(embedder), 10_000)),
        Arc::new(MemoryVectorIndex::new(384)),
        Arc::new(MemoryGraphStore::new()),
    )
    .unwrap();
    load(&service).await;
    let table = report(&service, "all-MiniLM-L6-v2").await;
    let [keyword, semantic, hybrid] = [table[0], table[1], table[2]];
    assert!(semantic[2].recall_at_5 >= 0.9, "{semantic:?}");
    assert!(hybrid[0].recall_at_5 >= 0.85, "{hybrid:?}");
    // Hybrid with MiniLM beats keyword-only and hybrid with the hashing embedder.
    let hashing = ContextService::in_memory();
    load(&hashing).await;
    let hash_hybrid = evaluate(&hashing, SearchMode::Hybrid, None).await;
    assert!(
        hybrid[0].recall_at_5 > keyword[0].recall_at_5,
        "{hybrid:?} {keyword:?}"
    );
    assert!(
        hybrid[0].recall_at_5 > hash_hybrid.recall_at_5,
        "{hybrid:?} {hash_hybrid:?}"
    );
}
