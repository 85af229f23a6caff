//! `FastEmbedder` (feature `fastembed`) against the sentence-transformers README example.
//! Needs the files from `scripts/fetch-model.sh` (`MINILM_DIR`, and `ORT_DYLIB_PATH` or the
//! library next to the model); without `MINILM_DIR` the model tests skip, unless `CI=true`.
#![cfg(feature = "fastembed")]

use std::path::PathBuf;
use std::sync::Arc;

use mcp_backends::memory::{MemoryGraphStore, MemoryVectorIndex};
use mcp_context::{AddRequest, ContextService, Embedder, FastEmbedder, SearchMode, SearchRequest};
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
