//! Text embedders: the [`Embedder`] trait, the zero-setup [`HashEmbedder`] and the
//! [`CachedEmbedder`] wrapper that skips texts it has already embedded.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use mcp_core::{Error, Result};
use moka::future::Cache;

/// Turns texts into fixed-length vectors; similar texts get vectors with a high cosine.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Length of every vector this embedder returns.
    fn dimensions(&self) -> usize;

    /// Embeds a batch of texts, returning one vector per text in the same order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;

    /// Hit and miss counts, for an embedder that caches.
    fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        None
    }
}

/// Default dimension of [`HashEmbedder`] (the same as all-MiniLM-L6-v2, so indexes can switch).
pub const DEFAULT_DIMENSIONS: usize = 384;

/// Weight of a word bigram relative to a unigram.
const BIGRAM_WEIGHT: f32 = 0.5;

/// Deterministic feature-hashing embedder: lowercase word unigrams and bigrams are hashed
/// (blake3) into `dimensions` signed buckets and the vector is L2-normalised. It needs no model
/// and captures lexical overlap only; texts without words embed to the zero vector.
#[derive(Clone, Debug)]
pub struct HashEmbedder {
    dimensions: usize,
}

impl HashEmbedder {
    /// An embedder producing `dimensions`-long vectors; zero is [`Error::InvalidArgument`].
    pub fn new(dimensions: usize) -> Result<Self> {
        if dimensions == 0 {
            return Err(Error::InvalidArgument(
                "embedding dimensions must be positive".into(),
            ));
        }
        Ok(HashEmbedder { dimensions })
    }

    /// Embeds one text synchronously.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut vector = vec![0.0f32; self.dimensions];
        let words = words(text);
        for word in &words {
            self.add_feature(&mut vector, word.as_bytes(), 1.0);
        }
        for pair in words.windows(2) {
            let feature = format!("{} {}", pair[0], pair[1]);
            self.add_feature(&mut vector, feature.as_bytes(), BIGRAM_WEIGHT);
        }
        normalize(&mut vector);
        vector
    }

    fn add_feature(&self, vector: &mut [f32], feature: &[u8], weight: f32) {
        let hash = blake3::hash(feature);
        let bytes = hash.as_bytes();
        let mut index = [0u8; 8];
        index.copy_from_slice(&bytes[..8]);
        let bucket = (u64::from_le_bytes(index) % self.dimensions as u64) as usize;
        let sign = if bytes[8] & 1 == 0 { 1.0 } else { -1.0 };
        vector[bucket] += sign * weight;
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        HashEmbedder {
            dimensions: DEFAULT_DIMENSIONS,
        }
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts.iter().map(|text| self.embed_one(text)).collect())
    }
}

/// Lowercase alphanumeric words of `text` (Unicode-aware).
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Scales `vector` to unit length (a zero vector stays zero).
pub(crate) fn normalize(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Wraps an embedder with an in-process cache keyed by the blake3 hash of each text, so a
/// repeated text is embedded once. Misses of one batch go to the inner embedder as one batch.
pub struct CachedEmbedder {
    inner: Arc<dyn Embedder>,
    cache: Cache<[u8; 32], Arc<Vec<f32>>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl CachedEmbedder {
    /// Caches up to `capacity` vectors from `inner`.
    pub fn new(inner: Arc<dyn Embedder>, capacity: u64) -> Self {
        CachedEmbedder {
            inner,
            cache: Cache::new(capacity),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }
}

#[async_trait]
impl Embedder for CachedEmbedder {
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }

    /// Texts found in the cache, and texts embedded (a text repeated within one batch counts
    /// as a hit after its first occurrence).
    fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        Some(mcp_core::CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        })
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let keys: Vec<[u8; 32]> = texts
            .iter()
            .map(|text| *blake3::hash(text.as_bytes()).as_bytes())
            .collect();
        let mut cached: Vec<Option<Arc<Vec<f32>>>> = Vec::with_capacity(texts.len());
        let mut missing: Vec<usize> = Vec::new();
        for (position, key) in keys.iter().enumerate() {
            let hit = self.cache.get(key).await;
            if hit.is_none() && !missing.iter().any(|&m| keys[m] == *key) {
                missing.push(position);
            }
            cached.push(hit);
        }
        self.misses
            .fetch_add(missing.len() as u64, Ordering::Relaxed);
        self.hits
            .fetch_add((texts.len() - missing.len()) as u64, Ordering::Relaxed);
        let mut fresh: HashMap<[u8; 32], Arc<Vec<f32>>> = HashMap::new();
        if !missing.is_empty() {
            let batch: Vec<String> = missing.iter().map(|&m| texts[m].clone()).collect();
            let vectors = self.inner.embed(&batch).await?;
            if vectors.len() != batch.len() {
                return Err(Error::Internal(format!(
                    "embedder returned {} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                )));
            }
            for (&position, vector) in missing.iter().zip(vectors) {
                let vector = Arc::new(vector);
                self.cache.insert(keys[position], vector.clone()).await;
                fresh.insert(keys[position], vector);
            }
        }
        cached
            .into_iter()
            .zip(&keys)
            .map(|(hit, key)| {
                hit.or_else(|| fresh.get(key).cloned())
                    .map(|vector| vector.as_ref().clone())
                    .ok_or_else(|| Error::Internal("embedding missing from batch".into()))
            })
            .collect()
    }
}
