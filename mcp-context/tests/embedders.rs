//! The hash embedder and the caching wrapper.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use mcp_context::{CachedEmbedder, Embedder, HashEmbedder, DEFAULT_DIMENSIONS};

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[tokio::test]
async fn hash_embedder_is_deterministic_normalised_and_lexical() {
    let embedder = HashEmbedder::default();
    assert_eq!(embedder.dimensions(), DEFAULT_DIMENSIONS);
    let texts: Vec<String> = [
        "The cat sat on the mat",
        "the CAT sat on the mat!",
        "Quarterly revenue grew five percent",
        "",
        "日本語のテキスト 🚀",
    ]
    .map(String::from)
    .to_vec();
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(vectors.len(), texts.len());
    for vector in &vectors[..3] {
        assert_eq!(vector.len(), DEFAULT_DIMENSIONS);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    assert!((cosine(&vectors[0], &vectors[1]) - 1.0).abs() < 1e-5);
    assert!(cosine(&vectors[0], &vectors[2]).abs() < 0.3);
    assert!(vectors[3].iter().all(|x| *x == 0.0));
    assert_eq!(embedder.embed(&texts).await.unwrap(), vectors);
    assert!(HashEmbedder::new(0).is_err());
    assert_eq!(HashEmbedder::new(16).unwrap().embed_one("a b").len(), 16);
}

struct Counting {
    inner: HashEmbedder,
    texts: AtomicUsize,
    calls: AtomicUsize,
}

#[async_trait]
impl Embedder for Counting {
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[String]) -> mcp_core::Result<Vec<Vec<f32>>> {
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn cached_embedder_embeds_each_text_once() {
    let counting = Arc::new(Counting {
        inner: HashEmbedder::default(),
        texts: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    let cached = CachedEmbedder::new(counting.clone(), 100);
    let batch: Vec<String> = ["a b", "c d", "a b"].map(String::from).to_vec();
    let first = cached.embed(&batch).await.unwrap();
    assert_eq!(counting.texts.load(Ordering::SeqCst), 2);
    assert_eq!(first[0], first[2]);
    assert_eq!(first[0], HashEmbedder::default().embed_one("a b"));
    let second = cached
        .embed(&["c d".to_owned(), "e f".to_owned()])
        .await
        .unwrap();
    assert_eq!(counting.texts.load(Ordering::SeqCst), 3);
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    assert_eq!(second[0], first[1]);
    cached.embed(&batch).await.unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 2);
    assert_eq!(cached.dimensions(), DEFAULT_DIMENSIONS);
}
