//! In-memory `VectorIndex`: exact k-nearest-neighbour search over normalised vectors with a
//! bounded top-k heap.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;

use super::kv::poisoned;
use crate::vector::{
    filter_matches, validate_vector, Metadata, VectorHit, VectorIndex, VectorRecord,
};
use crate::Result;

#[derive(Debug)]
struct Stored {
    unit: Vec<f32>,
    metadata: Metadata,
}

/// Exact cosine search in process memory (every query scans every record).
#[derive(Debug)]
pub struct MemoryVectorIndex {
    dimensions: usize,
    records: RwLock<HashMap<String, Stored>>,
}

impl MemoryVectorIndex {
    /// An empty index of `dimensions`.
    pub fn new(dimensions: usize) -> Self {
        MemoryVectorIndex {
            dimensions,
            records: RwLock::new(HashMap::new()),
        }
    }
}

fn normalised(vector: &[f32]) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm == 0.0 {
        vector.to_vec()
    } else {
        vector.iter().map(|x| x / norm).collect()
    }
}

/// A candidate ordered by score, then by id so ties are deterministic.
struct Candidate<'a> {
    score: f32,
    id: &'a str,
}

impl PartialEq for Candidate<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate<'_> {}
impl PartialOrd for Candidate<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.id.cmp(self.id))
    }
}

#[async_trait]
impl VectorIndex for MemoryVectorIndex {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn upsert(&self, records: Vec<VectorRecord>) -> Result<()> {
        for record in &records {
            validate_vector(&record.vector, self.dimensions)?;
        }
        let mut stored = self.records.write().map_err(|_| poisoned())?;
        for record in records {
            stored.insert(
                record.id,
                Stored {
                    unit: normalised(&record.vector),
                    metadata: record.metadata,
                },
            );
        }
        Ok(())
    }

    async fn delete(&self, ids: &[String]) -> Result<usize> {
        let mut stored = self.records.write().map_err(|_| poisoned())?;
        Ok(ids.iter().filter(|id| stored.remove(*id).is_some()).count())
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Metadata) -> Result<Vec<VectorHit>> {
        validate_vector(query, self.dimensions)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let query = normalised(query);
        let stored = self.records.read().map_err(|_| poisoned())?;
        let mut best: BinaryHeap<Reverse<Candidate<'_>>> = BinaryHeap::with_capacity(k + 1);
        for (id, record) in stored.iter() {
            if !filter_matches(filter, &record.metadata) {
                continue;
            }
            let score: f32 = query.iter().zip(&record.unit).map(|(a, b)| a * b).sum();
            best.push(Reverse(Candidate { score, id }));
            if best.len() > k {
                best.pop();
            }
        }
        let mut hits: Vec<Candidate<'_>> = best.into_iter().map(|Reverse(c)| c).collect();
        hits.sort_by(|a, b| b.cmp(a));
        Ok(hits
            .into_iter()
            .map(|candidate| VectorHit {
                id: candidate.id.to_owned(),
                score: candidate.score,
                metadata: stored
                    .get(candidate.id)
                    .map(|record| record.metadata.clone())
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.records.read().map_err(|_| poisoned())?.len())
    }

    async fn ping(&self) -> Result<()> {
        self.records.read().map(|_| ()).map_err(|_| poisoned())
    }
}
