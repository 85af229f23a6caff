//! In-memory `VectorIndex` on a Hierarchical Navigable Small World graph (Malkov & Yashunin,
//! 2016): approximate cosine k-nearest-neighbour search in roughly logarithmic time, for sets
//! too large for the exact scan of [`super::MemoryVectorIndex`].
//!
//! Rules that decide what a search returns:
//! - An index holding at most [`HnswConfig::exact_below`] records is scanned exactly, so small
//!   indexes always return the true top k.
//! - Otherwise the graph is searched with a candidate list of `max(ef_search, k)`. A metadata
//!   filter is applied to the records the search visits; when that yields fewer than `k`
//!   matches (the filter is selective), the search falls back to an exact scan of the matching
//!   records, so a filter never makes a result shorter than the true filtered top k.
//! - `delete` and replacing `upsert` leave tombstones that still route searches but are never
//!   returned; when tombstones outnumber live records the graph is rebuilt from the live ones.
//!
//! Searches share a read lock and run concurrently; writes take the write lock.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::RwLock;

use async_trait::async_trait;

use super::kv::poisoned;
use crate::vector::{
    filter_matches, validate_vector, Metadata, VectorHit, VectorIndex, VectorRecord,
};
use crate::{Error, Result};

/// Most slots (live records and tombstones) one graph addresses with `u32`.
const MAX_SLOTS: usize = u32::MAX as usize;
/// Highest layer a record can be drawn into; with `m >= 2` layers above ~20 are never reached.
const MAX_LEVEL: usize = 24;

/// Tuning of an [`HnswVectorIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswConfig {
    /// Links per record on the upper layers (twice as many on layer 0). More links: better
    /// recall, more memory and slower inserts.
    pub m: usize,
    /// Candidate-list size while inserting; larger builds a better graph, more slowly.
    pub ef_construction: usize,
    /// Candidate-list size while searching (raised to `k` when smaller); larger finds more of
    /// the true neighbours, more slowly.
    pub ef_search: usize,
    /// Indexes with at most this many records are searched by exact scan.
    pub exact_below: usize,
    /// Seed of the level generator, so a build is reproducible.
    pub seed: u64,
}

impl Default for HnswConfig {
    fn default() -> Self {
        HnswConfig {
            m: 16,
            ef_construction: 64,
            ef_search: 96,
            exact_below: 2_000,
            seed: 0x5eed_cafe_f00d_d00d,
        }
    }
}

impl HnswConfig {
    fn validate(&self) -> Result<()> {
        if self.m < 2 {
            return Err(Error::InvalidArgument("HNSW m must be at least 2".into()));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(Error::InvalidArgument(
                "HNSW ef_construction and ef_search must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Approximate cosine search over an HNSW graph in process memory (see the module docs for
/// which searches are exact).
#[derive(Debug)]
pub struct HnswVectorIndex {
    dimensions: usize,
    config: HnswConfig,
    graph: RwLock<Graph>,
}

impl HnswVectorIndex {
    /// An empty index of `dimensions` with the default [`HnswConfig`].
    pub fn new(dimensions: usize) -> Self {
        let config = HnswConfig::default();
        HnswVectorIndex {
            dimensions,
            config,
            graph: RwLock::new(Graph::new(dimensions, config)),
        }
    }

    /// An empty index of `dimensions` tuned by `config`; `m < 2` or a zero `ef` is
    /// [`Error::InvalidArgument`].
    pub fn with_config(dimensions: usize, config: HnswConfig) -> Result<Self> {
        config.validate()?;
        Ok(HnswVectorIndex {
            dimensions,
            config,
            graph: RwLock::new(Graph::new(dimensions, config)),
        })
    }

    /// The tuning this index was built with.
    pub fn config(&self) -> HnswConfig {
        self.config
    }
}

#[async_trait]
impl VectorIndex for HnswVectorIndex {
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
        let mut graph = self.graph.write().map_err(|_| poisoned())?;
        if graph.ids.len().saturating_add(records.len()) > MAX_SLOTS {
            return Err(Error::InvalidArgument(format!(
                "an HNSW index holds at most {MAX_SLOTS} records (tombstones included)"
            )));
        }
        for record in records {
            graph.remove(&record.id);
            let unit = normalised(&record.vector);
            graph.insert(record.id, unit, record.metadata);
        }
        graph.rebuild_if_sparse();
        Ok(())
    }

    async fn delete(&self, ids: &[String]) -> Result<usize> {
        let mut graph = self.graph.write().map_err(|_| poisoned())?;
        let removed = ids.iter().filter(|id| graph.remove(id)).count();
        graph.rebuild_if_sparse();
        Ok(removed)
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Metadata) -> Result<Vec<VectorHit>> {
        validate_vector(query, self.dimensions)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let query = normalised(query);
        let graph = self.graph.read().map_err(|_| poisoned())?;
        let slots = if graph.live.len() <= self.config.exact_below {
            graph.exact(&query, k, filter)
        } else {
            let found = graph.approximate(&query, k, filter);
            let complete = if filter.is_empty() {
                found.len() >= k.min(graph.live.len())
            } else {
                found.len() >= k
            };
            if !complete {
                graph.exact(&query, k, filter)
            } else {
                found
            }
        };
        Ok(slots
            .into_iter()
            .map(|scored| VectorHit {
                id: graph.ids[scored.slot as usize].clone(),
                score: scored.similarity,
                metadata: graph.metadata[scored.slot as usize].clone(),
            })
            .collect())
    }

    async fn len(&self) -> Result<usize> {
        Ok(self.graph.read().map_err(|_| poisoned())?.live.len())
    }

    async fn ping(&self) -> Result<()> {
        self.graph.read().map(|_| ()).map_err(|_| poisoned())
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

/// Dot product with sixteen independent accumulators, so the compiler can vectorise it and
/// the additions do not wait on each other. Compiled again for AVX2 (+FMA) and AVX, picked at
/// run time on the processor that has them: distances are nearly all of an insert's and a
/// search's work, and the portable build may only assume SSE2.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+avx"))]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut lanes = [0.0f32; LANES];
    let chunks_a = a.chunks_exact(LANES);
    let chunks_b = b.chunks_exact(LANES);
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for lane in 0..LANES {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// A record slot with its cosine to the current query; ordered by similarity, then by lower
/// slot, so heaps and sorts are deterministic.
#[derive(Clone, Copy, Debug)]
struct Scored {
    similarity: f32,
    slot: u32,
}

impl PartialEq for Scored {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> Ordering {
        self.similarity
            .total_cmp(&other.similarity)
            .then_with(|| other.slot.cmp(&self.slot))
    }
}

/// Which slots a search has already visited.
struct Visited(Vec<u64>);

impl Visited {
    fn new(slots: usize) -> Self {
        Visited(vec![0; slots.div_ceil(64)])
    }

    /// Marks `slot`; true when it was not marked before.
    fn insert(&mut self, slot: u32) -> bool {
        let (word, bit) = (slot as usize / 64, 1u64 << (slot % 64));
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// The graph and its records. A slot is a record position; replaced and deleted records stay
/// as tombstones (`ids[slot]` no longer maps to the slot in `live`) until the next rebuild.
#[derive(Debug)]
struct Graph {
    dimensions: usize,
    config: HnswConfig,
    /// Unit vectors, `dimensions` floats per slot.
    units: Vec<f32>,
    ids: Vec<String>,
    metadata: Vec<Metadata>,
    /// `links[slot][layer]`: neighbours of the slot on that layer.
    links: Vec<Vec<Vec<u32>>>,
    deleted: Vec<bool>,
    /// Live id → slot.
    live: HashMap<String, u32>,
    entry: Option<u32>,
    top_layer: usize,
    rng: u64,
}

impl Graph {
    fn new(dimensions: usize, config: HnswConfig) -> Self {
        Graph {
            dimensions,
            config,
            units: Vec::new(),
            ids: Vec::new(),
            metadata: Vec::new(),
            links: Vec::new(),
            deleted: Vec::new(),
            live: HashMap::new(),
            entry: None,
            top_layer: 0,
            rng: config.seed,
        }
    }

    fn unit(&self, slot: u32) -> &[f32] {
        let start = slot as usize * self.dimensions;
        &self.units[start..start + self.dimensions]
    }

    fn similarity(&self, query: &[f32], slot: u32) -> Scored {
        Scored {
            similarity: dot(query, self.unit(slot)),
            slot,
        }
    }

    fn max_links(&self, layer: usize) -> usize {
        if layer == 0 {
            self.config.m * 2
        } else {
            self.config.m
        }
    }

    /// Draws a layer from the geometric distribution with factor `1 / ln(m)` (splitmix64).
    fn random_layer(&mut self) -> usize {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Uniform in (0, 1]: never zero, so the logarithm is finite.
        let uniform = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        let layer = -uniform.ln() / (self.config.m as f64).ln();
        (layer as usize).min(MAX_LEVEL)
    }

    /// Tombstones the live record `id`; false when there is none.
    fn remove(&mut self, id: &str) -> bool {
        let Some(slot) = self.live.remove(id) else {
            return false;
        };
        self.deleted[slot as usize] = true;
        self.metadata[slot as usize] = Metadata::new();
        true
    }

    fn insert(&mut self, id: String, unit: Vec<f32>, metadata: Metadata) {
        // `upsert` keeps the slot count within `MAX_SLOTS`.
        let slot = self.ids.len() as u32;
        let layer = self.random_layer();
        self.units.extend_from_slice(&unit);
        self.ids.push(id.clone());
        self.metadata.push(metadata);
        self.links.push(vec![Vec::new(); layer + 1]);
        self.deleted.push(false);
        self.live.insert(id, slot);
        let Some(mut entry) = self.entry else {
            self.entry = Some(slot);
            self.top_layer = layer;
            return;
        };
        for upper in (layer + 1..=self.top_layer).rev() {
            entry = self.greedy(&unit, entry, upper);
        }
        for current in (0..=layer.min(self.top_layer)).rev() {
            let candidates = self.search_layer(&unit, entry, self.config.ef_construction, current);
            let chosen = self.select_neighbours(&candidates, self.max_links(current));
            for neighbour in &chosen {
                self.link(neighbour.slot, slot, current);
            }
            self.links[slot as usize][current] = chosen.iter().map(|s| s.slot).collect();
            if let Some(best) = candidates.first() {
                entry = best.slot;
            }
        }
        if layer > self.top_layer {
            self.entry = Some(slot);
            self.top_layer = layer;
        }
    }

    /// Adds the edge `from → to` on `layer`, pruning `from`'s links with the neighbour
    /// heuristic when they exceed the layer's maximum.
    fn link(&mut self, from: u32, to: u32, layer: usize) {
        let max = self.max_links(layer);
        let mut current = std::mem::take(&mut self.links[from as usize][layer]);
        current.push(to);
        if current.len() > max {
            let base = self.unit(from).to_vec();
            let mut scored: Vec<Scored> = current
                .iter()
                .map(|&slot| self.similarity(&base, slot))
                .collect();
            scored.sort_by(|a, b| b.cmp(a));
            current = self
                .select_neighbours(&scored, max)
                .into_iter()
                .map(|s| s.slot)
                .collect();
        }
        self.links[from as usize][layer] = current;
    }

    /// The neighbour-selection heuristic: walking `candidates` best first, keep one unless it
    /// is closer to an already kept neighbour than to the base point (that neighbour already
    /// leads there); then fill up to `max` with the best of the skipped ones.
    fn select_neighbours(&self, candidates: &[Scored], max: usize) -> Vec<Scored> {
        let mut kept: Vec<Scored> = Vec::with_capacity(max);
        let mut skipped: Vec<Scored> = Vec::new();
        for candidate in candidates {
            if kept.len() >= max {
                break;
            }
            let unit = self.unit(candidate.slot);
            let diverse = kept
                .iter()
                .all(|other| dot(unit, self.unit(other.slot)) < candidate.similarity);
            if diverse {
                kept.push(*candidate);
            } else {
                skipped.push(*candidate);
            }
        }
        for candidate in skipped {
            if kept.len() >= max {
                break;
            }
            kept.push(candidate);
        }
        kept
    }

    /// Walks `layer` greedily from `entry` towards `query`; returns the closest slot found.
    fn greedy(&self, query: &[f32], entry: u32, layer: usize) -> u32 {
        let mut best = self.similarity(query, entry);
        loop {
            let mut improved = false;
            for &neighbour in self.neighbours(best.slot, layer) {
                let candidate = self.similarity(query, neighbour);
                if candidate > best {
                    best = candidate;
                    improved = true;
                }
            }
            if !improved {
                return best.slot;
            }
        }
    }

    fn neighbours(&self, slot: u32, layer: usize) -> &[u32] {
        self.links[slot as usize]
            .get(layer)
            .map_or(&[][..], Vec::as_slice)
    }

    /// Beam search of `layer` from `entry` keeping the `ef` closest slots (tombstones
    /// included); returns them best first.
    fn search_layer(&self, query: &[f32], entry: u32, ef: usize, layer: usize) -> Vec<Scored> {
        self.beam(query, entry, ef, layer, |_| true).0
    }

    /// Beam search that also collects, best first and at most `ef`, the visited slots that
    /// `keep` accepts. Returns (closest slots, kept slots).
    fn beam(
        &self,
        query: &[f32],
        entry: u32,
        ef: usize,
        layer: usize,
        keep: impl Fn(u32) -> bool,
    ) -> (Vec<Scored>, Vec<Scored>) {
        let mut visited = Visited::new(self.ids.len());
        visited.insert(entry);
        let start = self.similarity(query, entry);
        let mut candidates: BinaryHeap<Scored> = BinaryHeap::from([start]);
        let mut nearest: BinaryHeap<Reverse<Scored>> = BinaryHeap::from([Reverse(start)]);
        let mut kept: BinaryHeap<Reverse<Scored>> = BinaryHeap::new();
        let offer = |kept: &mut BinaryHeap<Reverse<Scored>>, scored: Scored| {
            if keep(scored.slot) {
                kept.push(Reverse(scored));
                if kept.len() > ef {
                    kept.pop();
                }
            }
        };
        offer(&mut kept, start);
        while let Some(current) = candidates.pop() {
            let worst = nearest.peek().map_or(f32::NEG_INFINITY, |w| w.0.similarity);
            if current.similarity < worst && nearest.len() >= ef {
                break;
            }
            for &neighbour in self.neighbours(current.slot, layer) {
                if !visited.insert(neighbour) {
                    continue;
                }
                let scored = self.similarity(query, neighbour);
                let worst = nearest.peek().map_or(f32::NEG_INFINITY, |w| w.0.similarity);
                if nearest.len() < ef || scored.similarity > worst {
                    candidates.push(scored);
                    nearest.push(Reverse(scored));
                    if nearest.len() > ef {
                        nearest.pop();
                    }
                    offer(&mut kept, scored);
                }
            }
        }
        let mut nearest: Vec<Scored> = nearest.into_iter().map(|Reverse(s)| s).collect();
        nearest.sort_by(|a, b| b.cmp(a));
        let mut kept: Vec<Scored> = kept.into_iter().map(|Reverse(s)| s).collect();
        kept.sort_by(|a, b| b.cmp(a));
        (nearest, kept)
    }

    /// Whether `slot` is live and its metadata satisfies `filter`.
    fn eligible(&self, slot: u32, filter: &Metadata) -> bool {
        !self.deleted[slot as usize] && filter_matches(filter, &self.metadata[slot as usize])
    }

    /// Graph search: the best `k` eligible slots among those the search visits.
    fn approximate(&self, query: &[f32], k: usize, filter: &Metadata) -> Vec<Scored> {
        let Some(mut entry) = self.entry else {
            return Vec::new();
        };
        for layer in (1..=self.top_layer).rev() {
            entry = self.greedy(query, entry, layer);
        }
        let ef = self.config.ef_search.max(k);
        let (_, mut kept) = self.beam(query, entry, ef, 0, |slot| self.eligible(slot, filter));
        kept.truncate(k);
        self.ordered(kept)
    }

    /// Exact scan: the true best `k` eligible slots.
    fn exact(&self, query: &[f32], k: usize, filter: &Metadata) -> Vec<Scored> {
        let mut best: BinaryHeap<Reverse<Scored>> = BinaryHeap::with_capacity(k + 1);
        for &slot in self.live.values() {
            if !filter_matches(filter, &self.metadata[slot as usize]) {
                continue;
            }
            best.push(Reverse(self.similarity(query, slot)));
            if best.len() > k {
                best.pop();
            }
        }
        self.ordered(best.into_iter().map(|Reverse(s)| s).collect())
    }

    /// Best first; equal similarities by id, like the exact index.
    fn ordered(&self, mut hits: Vec<Scored>) -> Vec<Scored> {
        hits.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then_with(|| self.ids[a.slot as usize].cmp(&self.ids[b.slot as usize]))
        });
        hits
    }

    /// Rebuilds the graph from the live records once tombstones outnumber them.
    fn rebuild_if_sparse(&mut self) {
        let tombstones = self.ids.len() - self.live.len();
        if tombstones == 0 || tombstones <= self.live.len() {
            return;
        }
        let mut slots: Vec<u32> = self.live.values().copied().collect();
        slots.sort_unstable();
        let old = std::mem::replace(self, Graph::new(self.dimensions, self.config));
        self.rng = old.rng;
        for slot in slots {
            let index = slot as usize;
            self.insert(
                old.ids[index].clone(),
                old.unit(slot).to_vec(),
                old.metadata[index].clone(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-4);
    }

    #[test]
    fn layers_follow_the_geometric_distribution() {
        let mut graph = Graph::new(4, HnswConfig::default());
        let layers: Vec<usize> = (0..10_000).map(|_| graph.random_layer()).collect();
        let above_zero = layers.iter().filter(|&&l| l > 0).count() as f64 / 10_000.0;
        // P(layer > 0) = 1/m = 1/16.
        assert!((above_zero - 1.0 / 16.0).abs() < 0.015, "{above_zero}");
    }

    #[test]
    fn invalid_configurations_are_refused() {
        for config in [
            HnswConfig {
                m: 1,
                ..HnswConfig::default()
            },
            HnswConfig {
                ef_search: 0,
                ..HnswConfig::default()
            },
        ] {
            assert!(matches!(
                HnswVectorIndex::with_config(8, config),
                Err(Error::InvalidArgument(_))
            ));
        }
    }
}
