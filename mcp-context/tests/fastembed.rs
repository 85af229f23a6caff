//! `FastEmbedder` (feature `fastembed`) against the sentence-transformers README example.
//! Needs the files from `scripts/fetch-model.sh` (`MINILM_DIR`, and `ORT_DYLIB_PATH` or the
//! library next to the model); without `MINILM_DIR` the model tests skip, unless `CI=true`.
#![cfg(feature = "fastembed")]

use std::path::PathBuf;
use std::sync::Arc;

use mcp_backends::memory::{MemoryGraphStore, MemoryVectorIndex};
use mcp_context::{
    AddRequest, CachedEmbedder, ContextService, Embedder, FastEmbedder, SearchMode, SearchRequest,
};
use mcp_core::Error;

fn embedder() -> Option<FastEmbedder> {
    let Some(dir) = std::env::var_os("MINILM_DIR").map(PathBuf::from) else {
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("MINILM_DIR is not set, but CI=true: run `eval \"$(scripts/fetch-model.sh)\"`");
        }
        eprintln!("skipping: MINILM_DIR is not set (run `eval \"$(scripts/fetch-model.sh)\"`)");
        return None;
    };
    let library = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.join("../ort/libonnxruntime.so.1.32.0"));
    Some(FastEmbedder::new(library, dir).unwrap())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn readme_example_similarities() {
    let Some(embedder) = embedder() else { return };
    assert_eq!(embedder.dimensions(), 384);
    let texts: Vec<String> = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    .map(String::from)
    .to_vec();
    let vectors = embedder.embed(&texts).await.unwrap();
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        assert!((dot(vector, vector).sqrt() - 1.0).abs() < 1e-4);
    }
    // sentence-transformers reference matrix (fp32); the int8 model stays within 0.005.
    let expected = [(0, 1, 0.6660), (0, 2, 0.1046), (1, 2, 0.1411)];
    for (a, b, want) in expected {
        let got = dot(&vectors[a], &vectors[b]);
        assert!(
            (got - want).abs() < 0.005,
            "cos({a},{b}) = {got}, expected {want}"
        );
    }
    // Alone or inside a batch, a text embeds the same.
    let alone = embedder.embed(&texts[2..]).await.unwrap();
    assert!(dot(&alone[0], &vectors[2]) > 0.9999);
    assert!(embedder.embed(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn semantic_search_finds_paraphrases() {
    let Some(embedder) = embedder() else { return };
    let service = ContextService::new(
        Arc::new(embedder),
        Arc::new(MemoryVectorIndex::new(384)),
        Arc::new(MemoryGraphStore::new()),
    )
    .unwrap();
    for (id, text) in [
        ("cat", "A cat is sleeping on the rug."),
        ("market", "Quarterly revenue grew five percent."),
    ] {
        service
            .add(AddRequest {
                text: text.into(),
                id: Some(id.into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let found = service
        .search(SearchRequest {
            query: "kitten napping on a carpet".into(),
            mode: Some(SearchMode::Semantic),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.results[0].id, "cat");
}

/// Largest difference between two vectors, element by element.
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// One `FastEmbedder`, and one `CachedEmbedder` over it, each shared by 8 concurrent tasks
/// embedding different texts: every task gets the embedding of its own text, as when the text
/// is embedded alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shared_embedder_serves_concurrent_tasks() {
    const TASKS: usize = 8;
    const ROUNDS: usize = 3;
    let Some(embedder) = embedder() else { return };
    let embedder = Arc::new(embedder);
    let topics = [
        "cats sleeping on a warm windowsill",
        "quarterly revenue and operating margins",
        "how to prune roses in early spring",
        "the borrow checker rejects two mutable references",
        "a thunderstorm rolled over the mountains at dusk",
        "Neo4j answers Cypher queries over a property graph",
        "steeping green tea below boiling point",
        "the orchestra tuned to a single oboe note",
    ];
    // Different lengths, so concurrent calls also differ in shape.
    let texts: Vec<String> = topics
        .iter()
        .enumerate()
        .map(|(i, topic)| format!("{topic}. ").repeat(i + 1))
        .collect();
    assert_eq!(texts.len(), TASKS);
    let mut alone = Vec::with_capacity(TASKS);
    for text in &texts {
        let mut vectors = embedder.embed(std::slice::from_ref(text)).await.unwrap();
        alone.push(vectors.pop().unwrap());
    }
    for (i, a) in alone.iter().enumerate() {
        for b in &alone[i + 1..] {
            assert!(max_difference(a, b) > 0.01, "the texts embed differently");
        }
    }

    let cached = Arc::new(CachedEmbedder::new(embedder.clone(), 100));
    let shared: [Arc<dyn Embedder>; 2] = [embedder, cached.clone()];
    for (name, shared) in ["FastEmbedder", "CachedEmbedder"].iter().zip(shared) {
        let tasks: Vec<_> = texts
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, text)| {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let mut vectors = Vec::with_capacity(ROUNDS);
                    for _ in 0..ROUNDS {
                        let mut got = shared.embed(std::slice::from_ref(&text)).await.unwrap();
                        assert_eq!(got.len(), 1);
                        vectors.push(got.pop().unwrap());
                    }
                    (i, vectors)
                })
            })
            .collect();
        for task in tasks {
            let (i, vectors) = task.await.unwrap();
            for vector in vectors {
                let difference = max_difference(&vector, &alone[i]);
                assert!(
                    difference < 1e-5,
                    "{name}, task {i}: differs by {difference}"
                );
            }
        }
    }
    // The cache embedded each text once (the first round of every task, concurrently) and
    // answered the later rounds.
    let stats = cached.cache_stats().unwrap();
    assert_eq!(
        (stats.misses, stats.hits),
        (TASKS as u64, (TASKS * (ROUNDS - 1)) as u64)
    );
}

#[test]
fn missing_library_is_an_error_not_a_panic() {
    let err = FastEmbedder::new("/nonexistent/libonnxruntime.so", "/nonexistent")
        .err()
        .unwrap();
    assert!(
        matches!(&err, Error::Unavailable(m) if m.contains("/nonexistent/libonnxruntime.so")),
        "{err:?}"
    );
}
