//! `VectorIndex`: k-nearest-neighbour search by cosine similarity over records that carry
//! JSON metadata, with metadata filters.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::Result;

/// JSON object metadata attached to vectors and graph nodes.
pub type Metadata = Map<String, Value>;

/// A vector with its id and metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorRecord {
    /// Unique id; upserting an existing id replaces the record.
    pub id: String,
    /// The embedding; every record in one index has the index's dimension.
    pub vector: Vec<f32>,
    /// Filterable metadata.
    pub metadata: Metadata,
}

/// A search hit.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorHit {
    /// Record id.
    pub id: String,
    /// Cosine similarity in `[-1, 1]`, higher is closer.
    pub score: f32,
    /// The record's metadata.
    pub metadata: Metadata,
}

/// Whether `metadata` satisfies `filter`: for every `(key, wanted)` in the filter the metadata
/// value equals `wanted`, or is an array containing `wanted`. An empty filter matches all.
pub fn filter_matches(filter: &Metadata, metadata: &Metadata) -> bool {
    filter.iter().all(|(key, wanted)| match metadata.get(key) {
        Some(Value::Array(items)) if !wanted.is_array() => items.contains(wanted),
        Some(value) => value == wanted,
        None => false,
    })
}

/// Cosine similarity of two equal-length vectors (0 when either has zero norm).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut norm_a, mut norm_b) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    if norm_a == 0.0 || norm_b == 0.0 {
        0.0
    } else {
        dot / (norm_a.sqrt() * norm_b.sqrt())
    }
}

/// A vector index of fixed dimension.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - A vector of the wrong dimension, or with a NaN/infinite component, is
///   [`crate::Error::InvalidArgument`] and nothing from that call is stored.
/// - `search` returns at most `k` hits satisfying `filter` ([`filter_matches`]), best first,
///   scored by [`cosine`]. Exact backends return the true top k; approximate ones document
///   their recall.
/// - `upsert` of an existing id replaces vector and metadata; `delete` of unknown ids is not
///   an error.
#[async_trait]
pub trait VectorIndex: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Vector dimension of this index.
    fn dimensions(&self) -> usize;

    /// Inserts or replaces records.
    async fn upsert(&self, records: Vec<VectorRecord>) -> Result<()>;

    /// Removes records by id; returns how many existed.
    async fn delete(&self, ids: &[String]) -> Result<usize>;

    /// The `k` records nearest to `query` that satisfy `filter`.
    async fn search(&self, query: &[f32], k: usize, filter: &Metadata) -> Result<Vec<VectorHit>>;

    /// Number of records.
    async fn len(&self) -> Result<usize>;

    /// Whether the index holds no records.
    async fn is_empty(&self) -> Result<bool> {
        Ok(self.len().await? == 0)
    }

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}

/// Checks dimension and finiteness of `vector` for an index of `dimensions`.
pub fn validate_vector(vector: &[f32], dimensions: usize) -> Result<()> {
    if vector.len() != dimensions {
        return Err(crate::Error::InvalidArgument(format!(
            "vector has {} dimensions, the index has {dimensions}",
            vector.len()
        )));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(crate::Error::InvalidArgument(
            "vector has a NaN or infinite component".into(),
        ));
    }
    Ok(())
}
