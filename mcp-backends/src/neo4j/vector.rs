//! `VectorIndex` on a Neo4j vector index: one node label per index, nodes
//! `(:<label> {id, embedding, metadata})` with `metadata` a JSON string, a uniqueness
//! constraint on `id`, and `CREATE VECTOR INDEX` with cosine similarity on `embedding`.
//!
//! Search. Neo4j's vector index (HNSW) is approximate and knows nothing of our JSON metadata,
//! so filters are applied here: the index is asked for more candidates than `k`
//! (`db.index.vector.queryNodes`), the candidates are filtered, and the request widens
//! fourfold until `k` hits pass or the index is exhausted. Once the candidates would be half
//! the index or more, an exact Cypher scan (`vector.similarity.cosine` over every node of the
//! label) replaces the approximate query, which makes small indexes and very selective
//! filters exact (the conformance suite's exact top-k checks run on that path;
//! `tests/neo4j_conformance.rs` checks the recall of the approximate path separately: 1.0 at
//! k = 10 on 1,000 random 16-dimensional vectors). A very selective filter over a large index
//! thus costs a scan of the index.
//!
//! Scores. Neo4j 5.26 quantizes the vectors inside its index by default (scores off by up
//! to ~0.005, and a wrong order among close vectors), so indexes are created with
//! quantization off. Every candidate is also re-scored with the exact
//! `vector.similarity.cosine` over the stored vector, and an unfiltered search asks for twice
//! `k` candidates so the exact re-ranking can repair the order at the boundary. Neo4j reports
//! cosine similarity as `(1 + cos) / 2`; scores are converted back to cosine in `[-1, 1]`.
//!
//! Zero vectors. Cosine is undefined for them: Neo4j neither indexes a zero vector nor
//! accepts one in its similarity function. Such records are flagged (`zero`) and score 0 in
//! the exact scan, like [`crate::vector::cosine`]; a zero query scores every record 0 and is
//! always answered by the exact scan.

use async_trait::async_trait;

use super::{column, count_param, parse_object, validate_identifier, Client, BACKEND};
use crate::vector::{filter_matches, validate_vector, Metadata, VectorHit, VectorIndex};
use crate::{Error, Result, VectorRecord};

/// Candidates asked of the approximate index for an unfiltered search, per wanted hit.
const RERANK: usize = 2;
/// Candidates asked of the approximate index for a filtered search, per wanted hit.
const OVERFETCH: usize = 4;
/// Fewest candidates asked for a filtered search.
const MIN_CANDIDATES: usize = 16;
/// Neo4j vector indexes accept at most this many dimensions.
const MAX_DIMENSIONS: usize = 4096;

/// A [`VectorIndex`] stored in Neo4j (see the module docs for the search strategy).
#[derive(Clone)]
pub struct Neo4jVectorIndex {
    client: Client,
    /// Index name; also the node label of its records.
    name: String,
    dimensions: usize,
}

impl std::fmt::Debug for Neo4jVectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jVectorIndex")
            .field("name", &self.name)
            .field("dimensions", &self.dimensions)
            .finish_non_exhaustive()
    }
}

impl Neo4jVectorIndex {
    /// Connects to `url` and opens the index `name` (also the label of its nodes), creating
    /// it with `dimensions` and cosine similarity if needed and waiting until it is online.
    /// An existing index of another dimension is [`Error::InvalidArgument`].
    pub async fn connect(url: &str, name: &str, dimensions: usize) -> Result<Self> {
        validate_identifier("vector index name", name)?;
        if dimensions == 0 || dimensions > MAX_DIMENSIONS {
            return Err(Error::InvalidArgument(format!(
                "a Neo4j vector index has 1 to {MAX_DIMENSIONS} dimensions, not {dimensions}"
            )));
        }
        let client = Client::connect(url).await?;
        client
            .create_schema(&format!(
                "CREATE CONSTRAINT {name}_id IF NOT EXISTS FOR (n:`{name}`) REQUIRE n.id IS UNIQUE"
            ))
            .await?;
        client
            .create_schema(&format!(
                "CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (n:`{name}`) ON (n.embedding) \
                 OPTIONS {{indexConfig: {{`vector.dimensions`: {dimensions}, \
                 `vector.similarity_function`: 'cosine', `vector.quantization.enabled`: false}}}}"
            ))
            .await?;
        client.await_index(name).await?;
        let index = Neo4jVectorIndex {
            client,
            name: name.to_owned(),
            dimensions,
        };
        index.check_existing_dimensions().await?;
        Ok(index)
    }

    /// The index name (and node label).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes every record, the index and its constraint (e.g. a temporary index of a test
    /// or benchmark).
    pub async fn drop_index(self) -> Result<()> {
        self.client
            .run(neo4rs::query(&format!(
                "MATCH (n:`{}`) CALL {{ WITH n DETACH DELETE n }} IN TRANSACTIONS OF 10000 ROWS",
                self.name
            )))
            .await?;
        self.client
            .run(neo4rs::query(&format!(
                "DROP INDEX {} IF EXISTS",
                self.name
            )))
            .await?;
        self.client
            .run(neo4rs::query(&format!(
                "DROP CONSTRAINT {}_id IF EXISTS",
                self.name
            )))
            .await
    }

    async fn check_existing_dimensions(&self) -> Result<()> {
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "SHOW VECTOR INDEXES YIELD name, options \
                     WHERE name = $name \
                     RETURN options.indexConfig.`vector.dimensions` AS dimensions, \
                            options.indexConfig.`vector.similarity_function` AS similarity",
                )
                .param("name", self.name.as_str()),
            )
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::NotFound(format!("vector index {}", self.name)))?;
        let dimensions: i64 = column(row, "dimensions")?;
        let similarity: String = column(row, "similarity")?;
        if dimensions != self.dimensions as i64 || !similarity.eq_ignore_ascii_case("cosine") {
            return Err(Error::InvalidArgument(format!(
                "vector index {} exists with {dimensions} dimensions and {similarity} similarity, \
                 not {} and cosine",
                self.name, self.dimensions
            )));
        }
        Ok(())
    }

    /// Turns `(id, metadata, score)` rows into hits that pass `filter`, at most `k`.
    ///
    /// A row whose columns are null is a node another transaction deleted between the index
    /// lookup and the property reads (Neo4j reads at read-committed isolation; re-adding a
    /// document deletes its chunk nodes first): it is no longer a hit and is skipped.
    fn hits(rows: &[neo4rs::Row], filter: &Metadata, k: usize) -> Result<Vec<VectorHit>> {
        let mut hits = Vec::new();
        for row in rows {
            let (Some(id), Some(metadata), Some(normalized)) = (
                column::<Option<String>>(row, "id")?,
                column::<Option<String>>(row, "metadata")?,
                column::<Option<f64>>(row, "score")?,
            ) else {
                continue;
            };
            let metadata = parse_object(&metadata)?;
            if !filter_matches(filter, &metadata) {
                continue;
            }
            hits.push(VectorHit {
                id,
                score: (2.0 * normalized - 1.0) as f32,
                metadata,
            });
            if hits.len() == k {
                break;
            }
        }
        Ok(hits)
    }

    /// The approximate index's `candidates` nearest nodes, re-scored exactly, best first.
    async fn approximate(&self, query: &[f64], candidates: usize) -> Result<Vec<neo4rs::Row>> {
        self.client
            .rows(
                neo4rs::query(
                    "CALL db.index.vector.queryNodes($index, $candidates, $query) \
                     YIELD node \
                     RETURN node.id AS id, node.metadata AS metadata, \
                            vector.similarity.cosine(node.embedding, $query) AS score \
                     ORDER BY score DESC, id",
                )
                .param("index", self.name.as_str())
                .param("candidates", count_param(candidates))
                .param("query", query.to_vec()),
            )
            .await
    }

    /// Every node, exactly scored (zero vectors, stored or asked, score cosine 0), best first.
    async fn exact(&self, query: &[f64], zero_query: bool) -> Result<Vec<neo4rs::Row>> {
        self.client
            .rows(
                neo4rs::query(&format!(
                    "MATCH (n:`{}`) \
                     RETURN n.id AS id, n.metadata AS metadata, \
                            CASE WHEN $zero_query OR n.zero THEN 0.5 \
                                 ELSE vector.similarity.cosine(n.embedding, $query) END AS score \
                     ORDER BY score DESC, id",
                    self.name
                ))
                .param("query", query.to_vec())
                .param("zero_query", zero_query),
            )
            .await
    }
}

#[async_trait]
impl VectorIndex for Neo4jVectorIndex {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn upsert(&self, records: Vec<VectorRecord>) -> Result<()> {
        for record in &records {
            validate_vector(&record.vector, self.dimensions)?;
        }
        if records.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(records.len());
        let mut embeddings = Vec::with_capacity(records.len());
        let mut metadata = Vec::with_capacity(records.len());
        let mut zero = Vec::with_capacity(records.len());
        for record in records {
            ids.push(record.id);
            zero.push(record.vector.iter().all(|&x| x == 0.0));
            embeddings.push(
                record
                    .vector
                    .iter()
                    .map(|&x| f64::from(x))
                    .collect::<Vec<f64>>(),
            );
            metadata.push(serde_json::Value::Object(record.metadata).to_string());
        }
        // One statement: every record is written, or none is.
        self.client
            .run(
                neo4rs::query(&format!(
                    "UNWIND range(0, size($ids) - 1) AS i \
                     MERGE (n:`{}` {{id: $ids[i]}}) \
                     SET n.embedding = $embeddings[i], n.metadata = $metadata[i], n.zero = $zero[i]",
                    self.name
                ))
                .param("ids", ids)
                .param("zero", zero)
                .param("embeddings", embeddings)
                .param("metadata", metadata),
            )
            .await
    }

    async fn delete(&self, ids: &[String]) -> Result<usize> {
        let rows = self
            .client
            .rows(
                neo4rs::query(&format!(
                    "OPTIONAL MATCH (n:`{}`) WHERE n.id IN $ids \
                     WITH collect(n) AS doomed \
                     FOREACH (n IN doomed | DELETE n) \
                     RETURN size(doomed) AS deleted",
                    self.name
                ))
                .param("ids", ids.to_vec()),
            )
            .await?;
        let deleted: i64 = rows.first().map_or(Ok(0), |row| column(row, "deleted"))?;
        Ok(deleted as usize)
    }

    async fn search(&self, query: &[f32], k: usize, filter: &Metadata) -> Result<Vec<VectorHit>> {
        validate_vector(query, self.dimensions)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let zero_query = query.iter().all(|&x| x == 0.0);
        let query: Vec<f64> = query.iter().map(|&x| f64::from(x)).collect();
        let total = self.len().await?;
        let mut candidates = if filter.is_empty() {
            k.saturating_mul(RERANK)
        } else {
            (k * OVERFETCH).max(MIN_CANDIDATES)
        };
        loop {
            if zero_query || candidates.saturating_mul(2) >= total {
                return Self::hits(&self.exact(&query, zero_query).await?, filter, k);
            }
            let rows = self.approximate(&query, candidates).await?;
            let hits = Self::hits(&rows, filter, k)?;
            if hits.len() == k || rows.len() < candidates {
                return Ok(hits);
            }
            candidates = candidates.saturating_mul(OVERFETCH);
        }
    }

    async fn len(&self) -> Result<usize> {
        let rows = self
            .client
            .rows(neo4rs::query(&format!(
                "MATCH (n:`{}`) RETURN count(n) AS records",
                self.name
            )))
            .await?;
        let records: i64 = rows.first().map_or(Ok(0), |row| column(row, "records"))?;
        Ok(records as usize)
    }

    async fn ping(&self) -> Result<()> {
        self.client.ping().await
    }
}
