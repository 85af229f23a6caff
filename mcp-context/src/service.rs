//! [`ContextService`]: documents split into embedded chunks, semantic/keyword/hybrid search,
//! and a property graph linking documents and knowledge-graph entities.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use mcp_backends::memory::{HnswVectorIndex, MemoryGraphStore};
use mcp_backends::vector::filter_matches;
use mcp_backends::{Edge, GraphStore, Metadata, Node, VectorIndex, VectorRecord};
use mcp_core::{
    parse_params, to_result, ActionOutput, ActionSpec, BackendHealth, Error, Params,
    RequestContext, Result, Service,
};
use serde_json::Value;

use crate::bm25::Bm25Index;
use crate::chunk::{Chunk, ChunkConfig};
use crate::embed::{normalize, words, CachedEmbedder, Embedder, HashEmbedder};
use crate::types::*;

/// Graph label of document nodes.
pub const DOCUMENT_LABEL: &str = "Document";
/// Edge type linking documents whose embeddings are close.
pub const SIMILAR_TO: &str = "SIMILAR_TO";
/// Edge type linking a document to the ids in its `related` / `links` metadata.
pub const RELATED_TO: &str = "RELATED_TO";
/// Namespace of documents added without one.
pub const DEFAULT_NAMESPACE: &str = "default";
/// Most neighbours of a re-added document whose derived links are cleaned up.
const MAX_NEIGHBOURS: usize = 10_000;
/// Most chunk texts per embedder call: a long document or a large `add_many` is embedded in
/// calls of this size, so one call never holds a shared model (and the searches queued
/// behind it) for long.
const EMBED_BATCH: usize = 256;
/// Reciprocal-rank-fusion constant.
const RRF_K: f32 = 60.0;
/// Most distinct query words a graph full-text keyword search looks up.
const MAX_KEYWORD_TERMS: usize = 16;
/// Hits asked of the graph per query word, per wanted document (room for the ones that
/// metadata filters or other namespaces remove).
const KEYWORD_OVERFETCH: usize = 4;

/// Where keyword search looks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeywordSearch {
    /// BM25 over chunks in an in-process index: fast, but per process and rebuilt from the
    /// graph after a restart ([`ContextService::rebuild_keyword_index`]). The default.
    #[default]
    InProcess,
    /// The graph's full-text index over `Document` nodes ([`GraphStore::search_text`], e.g.
    /// Neo4j's Lucene index, BM25-ranked): persistent and shared by every instance over the
    /// same graph. Each query word is looked up on its own and a document scores the sum of
    /// its per-word scores (Lucene's scoring of an any-word query); the result's chunk is the
    /// one of the document holding the most query words.
    GraphFullText,
}

/// Tuning of a [`ContextService`].
#[derive(Clone, Debug, PartialEq)]
pub struct ContextConfig {
    /// How documents are split into chunks.
    pub chunking: ChunkConfig,
    /// Documents whose embeddings have at least this cosine get a `SIMILAR_TO` edge.
    pub similarity_threshold: f32,
    /// At most this many `SIMILAR_TO` edges per added document.
    pub max_similar: usize,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            chunking: ChunkConfig::default(),
            similarity_threshold: 0.8,
            max_similar: 5,
        }
    }
}

/// The `context` service. Documents are `Document` graph nodes (text, metadata, namespace,
/// chunk count); their chunks are vectors with id `{doc}#{index}` whose metadata holds the
/// document's metadata plus `doc_id`, `namespace`, `chunk` and `text`. Keyword search uses
/// an in-process BM25 index over the chunks (rebuilt from the graph with
/// [`ContextService::rebuild_keyword_index`]), or the graph's full-text index
/// ([`KeywordSearch::GraphFullText`], the mode for Neo4j).
pub struct ContextService {
    embedder: Arc<dyn Embedder>,
    vectors: Arc<dyn VectorIndex>,
    pub(crate) graph: Arc<dyn GraphStore>,
    config: ContextConfig,
    keyword_search: KeywordSearch,
    keywords: RwLock<Bm25Index>,
    writes: tokio::sync::Mutex<()>,
    actions: Vec<ActionSpec>,
}

/// A document checked and split by [`ContextService::add`] / [`ContextService::add_many`],
/// waiting for its chunk vectors.
struct PreparedDocument {
    id: String,
    namespace: String,
    metadata: Metadata,
    text: String,
    chunks: Vec<Chunk>,
}

/// The best chunk of one document in one ranking.
#[derive(Clone, Debug)]
struct DocHit {
    doc_id: String,
    chunk: usize,
    text: String,
    score: f32,
}

impl ContextService {
    /// A service over the given embedder and backends, with the default configuration. The
    /// embedder and the index must agree on the dimension.
    pub fn new(
        embedder: Arc<dyn Embedder>,
        vectors: Arc<dyn VectorIndex>,
        graph: Arc<dyn GraphStore>,
    ) -> Result<Self> {
        if embedder.dimensions() != vectors.dimensions() {
            return Err(Error::InvalidArgument(format!(
                "the embedder makes {}-dimensional vectors but the index holds {}",
                embedder.dimensions(),
                vectors.dimensions()
            )));
        }
        Ok(ContextService::assemble(embedder, vectors, graph))
    }

    /// The zero-setup service: cached [`HashEmbedder`] (384 dimensions) and in-memory backends
    /// (an HNSW vector index, exact below 2,000 chunks and for selective filters).
    pub fn in_memory() -> Self {
        let embedder = HashEmbedder::default();
        let dimensions = embedder.dimensions();
        ContextService::assemble(
            Arc::new(CachedEmbedder::new(Arc::new(embedder), 10_000)),
            Arc::new(HnswVectorIndex::new(dimensions)),
            Arc::new(MemoryGraphStore::new()),
        )
    }

    fn assemble(
        embedder: Arc<dyn Embedder>,
        vectors: Arc<dyn VectorIndex>,
        graph: Arc<dyn GraphStore>,
    ) -> Self {
        ContextService {
            embedder,
            vectors,
            graph,
            config: ContextConfig::default(),
            keyword_search: KeywordSearch::default(),
            keywords: RwLock::new(Bm25Index::default()),
            writes: tokio::sync::Mutex::new(()),
            actions: action_specs(),
        }
    }

    /// The service on Neo4j at `url`: the vector index `index_name` (created with the
    /// embedder's dimension if needed), the graph confined to `graph_namespace` (empty for the
    /// whole database), and keyword search on the graph's full-text index, so documents,
    /// keyword search and the knowledge graph all persist in Neo4j. Chunk ids derive from
    /// document ids, so give every graph namespace its own `index_name`.
    #[cfg(feature = "neo4j")]
    pub async fn connect_neo4j(
        url: &str,
        index_name: &str,
        graph_namespace: &str,
        embedder: Arc<dyn Embedder>,
    ) -> Result<Self> {
        use mcp_backends::neo4j::{Neo4jGraphStore, Neo4jVectorIndex};
        let vectors = Neo4jVectorIndex::connect(url, index_name, embedder.dimensions()).await?;
        let graph = Neo4jGraphStore::connect(url)
            .await?
            .with_namespace(graph_namespace)?;
        Ok(
            ContextService::new(embedder, Arc::new(vectors), Arc::new(graph))?
                .with_keyword_search(KeywordSearch::GraphFullText),
        )
    }

    /// Chooses where keyword search looks (see [`KeywordSearch`]).
    pub fn with_keyword_search(mut self, keyword_search: KeywordSearch) -> Self {
        self.keyword_search = keyword_search;
        self
    }

    /// Replaces the configuration; an invalid chunking is [`Error::InvalidArgument`].
    pub fn with_config(mut self, config: ContextConfig) -> Result<Self> {
        config.chunking.validate()?;
        self.config = config;
        Ok(self)
    }

    /// Adds (or replaces) one document: chunks, embeds and indexes it, and links it to
    /// similar documents and to the ids in its `related` / `links` metadata.
    pub async fn add(&self, request: AddRequest) -> Result<AddResult> {
        let document = self.prepare(request)?;
        let vectors = self.embed_texts(&chunk_texts(&document.chunks)).await?;
        self.store(document, vectors).await
    }

    /// Adds several documents in order, as [`ContextService::add`] does one by one (a later
    /// document with the same id replaces an earlier one, and later documents link to earlier
    /// ones), but embeds the chunks of all of them together. Every document is checked before
    /// any is added.
    pub async fn add_many(&self, request: AddManyRequest) -> Result<AddManyResult> {
        let mut documents = Vec::with_capacity(request.documents.len());
        for (position, document) in request.documents.into_iter().enumerate() {
            let prepared = self
                .prepare(AddRequest {
                    text: document.text,
                    metadata: document.metadata,
                    id: document.id,
                    namespace: request.namespace.clone(),
                })
                .map_err(|err| match err {
                    Error::InvalidArgument(message) => {
                        Error::InvalidArgument(format!("documents[{position}]: {message}"))
                    }
                    other => other,
                })?;
            documents.push(prepared);
        }
        let texts: Vec<String> = documents
            .iter()
            .flat_map(|document| chunk_texts(&document.chunks))
            .collect();
        let mut vectors = self.embed_texts(&texts).await?.into_iter();
        let mut ids = Vec::with_capacity(documents.len());
        for document in documents {
            let own: Vec<Vec<f32>> = vectors.by_ref().take(document.chunks.len()).collect();
            ids.push(self.store(document, own).await?.id);
        }
        Ok(AddManyResult { ids })
    }

    /// Checks a document, splits it into chunks and settles its id and namespace.
    fn prepare(&self, request: AddRequest) -> Result<PreparedDocument> {
        let chunks = self.config.chunking.split(&request.text)?;
        let id = match request.id {
            Some(id) if id.trim().is_empty() => {
                return Err(Error::InvalidArgument("id must not be empty".into()))
            }
            Some(id) => id,
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        Ok(PreparedDocument {
            id,
            namespace: request
                .namespace
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            metadata: request.metadata.unwrap_or_default(),
            text: request.text,
            chunks,
        })
    }

    /// One vector per text, in order, [`EMBED_BATCH`] texts per embedder call.
    async fn embed_texts(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(EMBED_BATCH) {
            let embedded = self.embedder.embed(batch).await?;
            if embedded.len() != batch.len() {
                return Err(Error::Internal(format!(
                    "embedder returned {} vectors for {} texts",
                    embedded.len(),
                    batch.len()
                )));
            }
            vectors.extend(embedded);
        }
        Ok(vectors)
    }

    /// Stores a prepared document with the vectors of its chunks: replaces an existing
    /// document of that id (its chunks and derived links go), writes the node and the chunks
    /// and links the document to similar documents and to the ids in its metadata.
    async fn store(&self, document: PreparedDocument, vectors: Vec<Vec<f32>>) -> Result<AddResult> {
        let PreparedDocument {
            id,
            namespace,
            metadata,
            text,
            chunks,
        } = document;
        let _guard = self.writes.lock().await;
        if let Some(old) = self.graph.get_nodes(std::slice::from_ref(&id)).await?.pop() {
            if old.label != DOCUMENT_LABEL {
                return Err(Error::Conflict(format!(
                    "`{id}` is a {} node, not a document",
                    old.label
                )));
            }
            self.remove_chunks(&id, chunk_count(&old)).await?;
            let edges = self
                .graph
                .neighbourhood(&id, 1, MAX_NEIGHBOURS)
                .await?
                .edges;
            // Links derived from the old version go; edges made with `relate` stay.
            let derived = edges.iter().filter(|edge| {
                edge.rel_type == SIMILAR_TO || (edge.rel_type == RELATED_TO && edge.from == id)
            });
            for edge in derived {
                self.graph
                    .delete_edge(&edge.from, &edge.to, &edge.rel_type)
                    .await?;
            }
        }

        let similar = self.similar_documents(&id, &namespace, &vectors).await?;
        let records: Vec<VectorRecord> = chunks
            .iter()
            .zip(vectors)
            .map(|(chunk, vector)| VectorRecord {
                id: chunk_id(&id, chunk.index),
                vector,
                metadata: chunk_metadata(&metadata, &id, &namespace, chunk.index, &chunk.text),
            })
            .collect();
        self.graph
            .upsert_node(document_node(
                &id,
                &text,
                &metadata,
                &namespace,
                chunks.len(),
            ))
            .await?;
        self.vectors.upsert(records.clone()).await?;
        if self.keyword_search == KeywordSearch::InProcess {
            let mut keywords = self
                .keywords
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            for record in &records {
                let text = record.metadata.get("text").and_then(Value::as_str);
                keywords.insert(
                    &record.id,
                    text.unwrap_or_default(),
                    record.metadata.clone(),
                );
            }
        }

        let mut linked = Vec::new();
        for (other, score) in similar {
            let mut properties = Metadata::new();
            properties.insert("score".into(), Value::from(score));
            self.graph
                .upsert_edge(Edge {
                    from: id.clone(),
                    to: other.clone(),
                    rel_type: SIMILAR_TO.into(),
                    properties,
                })
                .await?;
            linked.push(other);
        }
        let targets: Vec<String> = linked_ids(&metadata)
            .into_iter()
            .filter(|target| *target != id)
            .collect();
        for node in self.graph.get_nodes(&targets).await? {
            self.graph
                .upsert_edge(Edge {
                    from: id.clone(),
                    to: node.id.clone(),
                    rel_type: RELATED_TO.into(),
                    properties: Metadata::new(),
                })
                .await?;
            if !linked.contains(&node.id) {
                linked.push(node.id);
            }
        }
        Ok(AddResult {
            id,
            chunks: chunks.len(),
            status: "indexed".into(),
            linked,
        })
    }

    /// A document by id; a missing one is [`Error::NotFound`].
    pub async fn get(&self, id: &str) -> Result<Document> {
        let node = self.document_node(id).await?;
        Ok(Document {
            id: node.id.clone(),
            text: str_property(&node, "text"),
            metadata: node
                .properties
                .get("metadata")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            namespace: str_property(&node, "namespace"),
            chunks: chunk_count(&node),
        })
    }

    /// Deletes a document, its chunks and its edges; `deleted` says whether it existed.
    pub async fn delete(&self, id: &str) -> Result<DeleteResult> {
        let _guard = self.writes.lock().await;
        let node = match self.document_node(id).await {
            Ok(node) => node,
            Err(Error::NotFound(_)) => {
                return Ok(DeleteResult {
                    id: id.to_owned(),
                    deleted: false,
                })
            }
            Err(err) => return Err(err),
        };
        self.remove_chunks(id, chunk_count(&node)).await?;
        let deleted = self.graph.delete_node(id).await?;
        Ok(DeleteResult {
            id: id.to_owned(),
            deleted,
        })
    }

    /// Finds documents for `query`, one result per document, best first.
    pub async fn search(&self, request: SearchRequest) -> Result<SearchResult> {
        if request.query.trim().is_empty() {
            return Err(Error::InvalidArgument("query is empty".into()));
        }
        let limit = request.limit.unwrap_or(10);
        if limit == 0 || limit > 100 {
            return Err(Error::InvalidArgument(
                "limit must be between 1 and 100".into(),
            ));
        }
        let mut filter = request.filter.unwrap_or_default();
        if let Some(namespace) = request.namespace {
            filter.insert("namespace".into(), Value::String(namespace));
        }
        let fetch = (limit * 5).max(50);
        let ranked = match request.mode.unwrap_or_default() {
            SearchMode::Semantic => self.semantic(&request.query, fetch, &filter).await?,
            SearchMode::Keyword => self.keyword(&request.query, fetch, &filter).await?,
            SearchMode::Hybrid => {
                let semantic = self.semantic(&request.query, fetch, &filter).await?;
                let keyword = self.keyword(&request.query, fetch, &filter).await?;
                fuse(&[semantic, keyword])
            }
        };
        let ranked: Vec<DocHit> = ranked.into_iter().take(limit).collect();
        let ids: Vec<String> = ranked.iter().map(|hit| hit.doc_id.clone()).collect();
        let nodes: HashMap<String, Node> = self
            .graph
            .get_nodes(&ids)
            .await?
            .into_iter()
            .map(|node| (node.id.clone(), node))
            .collect();
        let mut results = Vec::with_capacity(ranked.len());
        for hit in ranked {
            let Some(node) = nodes.get(&hit.doc_id) else {
                continue;
            };
            let related = match request.expand {
                Some(hops) if hops > 0 => {
                    let around = self.graph.neighbourhood(&hit.doc_id, hops, 21).await?;
                    Some(
                        around
                            .nodes
                            .into_iter()
                            .filter(|other| other.id != hit.doc_id)
                            .map(GraphNode::from)
                            .collect(),
                    )
                }
                _ => None,
            };
            results.push(SearchHit {
                id: hit.doc_id,
                text: hit.text,
                chunk: hit.chunk,
                score: hit.score,
                metadata: node
                    .properties
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
                related,
            });
        }
        Ok(SearchResult { results })
    }

    /// Nodes and edges around `id` (or the first nodes by id), bounded by depth and limit.
    pub async fn graph(&self, request: GraphRequest) -> Result<GraphResult> {
        let depth = request.depth.unwrap_or(2);
        if depth > 5 {
            return Err(Error::InvalidArgument("depth must be at most 5".into()));
        }
        let limit = bounded_limit(request.limit, 100)?;
        let subgraph = match request.id {
            Some(id) => self.graph.neighbourhood(&id, depth, limit).await?,
            None => {
                let page = self.graph.list_nodes(None, None, limit).await?;
                let ids: Vec<String> = page.nodes.iter().map(|node| node.id.clone()).collect();
                mcp_backends::Subgraph {
                    edges: self.graph.edges_among(&ids).await?,
                    nodes: page.nodes,
                }
            }
        };
        Ok(GraphResult {
            nodes: subgraph.nodes.into_iter().map(GraphNode::from).collect(),
            edges: subgraph.edges.into_iter().map(GraphEdge::from).collect(),
        })
    }

    /// Creates or updates a typed edge between two existing nodes.
    pub async fn relate(&self, request: RelateRequest) -> Result<RelateResult> {
        if request.rel_type.trim().is_empty() {
            return Err(Error::InvalidArgument("type must not be empty".into()));
        }
        let edge = Edge {
            from: request.from,
            to: request.to,
            rel_type: request.rel_type,
            properties: request.properties.unwrap_or_default(),
        };
        let created = self.graph.upsert_edge(edge.clone()).await?;
        Ok(RelateResult {
            edge: edge.into(),
            created,
        })
    }

    /// Rebuilds the in-process keyword index from the `Document` nodes of the graph, e.g. after
    /// a restart over persistent backends. Returns the number of documents indexed (none with
    /// [`KeywordSearch::GraphFullText`], whose index lives in the graph).
    pub async fn rebuild_keyword_index(&self) -> Result<usize> {
        if self.keyword_search == KeywordSearch::GraphFullText {
            return Ok(0);
        }
        let mut index = Bm25Index::default();
        let mut cursor: Option<String> = None;
        let mut documents = 0;
        loop {
            let page = self
                .graph
                .list_nodes(Some(DOCUMENT_LABEL), cursor.as_deref(), 500)
                .await?;
            for node in &page.nodes {
                let text = str_property(node, "text");
                let Ok(chunks) = self.config.chunking.split(&text) else {
                    continue;
                };
                let metadata = node
                    .properties
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let namespace = str_property(node, "namespace");
                for chunk in chunks {
                    let meta =
                        chunk_metadata(&metadata, &node.id, &namespace, chunk.index, &chunk.text);
                    index.insert(&chunk_id(&node.id, chunk.index), &chunk.text, meta);
                }
                documents += 1;
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        *self
            .keywords
            .write()
            .unwrap_or_else(PoisonError::into_inner) = index;
        Ok(documents)
    }

    async fn document_node(&self, id: &str) -> Result<Node> {
        self.graph
            .get_nodes(&[id.to_owned()])
            .await?
            .pop()
            .filter(|node| node.label == DOCUMENT_LABEL)
            .ok_or_else(|| Error::NotFound(format!("document `{id}`")))
    }

    async fn remove_chunks(&self, id: &str, count: usize) -> Result<()> {
        let ids: Vec<String> = (0..count).map(|index| chunk_id(id, index)).collect();
        self.vectors.delete(&ids).await?;
        if self.keyword_search == KeywordSearch::InProcess {
            let mut keywords = self
                .keywords
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            ids.iter().for_each(|chunk| keywords.remove(chunk));
        }
        Ok(())
    }

    /// Other documents of `namespace` whose best chunk is at least the threshold close to the
    /// mean of `vectors`, best first.
    async fn similar_documents(
        &self,
        id: &str,
        namespace: &str,
        vectors: &[Vec<f32>],
    ) -> Result<Vec<(String, f32)>> {
        if self.config.max_similar == 0 || vectors.is_empty() {
            return Ok(Vec::new());
        }
        let mut mean = vec![0.0f32; self.vectors.dimensions()];
        for vector in vectors {
            mean.iter_mut().zip(vector).for_each(|(m, v)| *m += v);
        }
        normalize(&mut mean);
        let mut filter = Metadata::new();
        filter.insert("namespace".into(), Value::String(namespace.to_owned()));
        let hits = self
            .vectors
            .search(&mean, self.config.max_similar * 4 + 10, &filter)
            .await?;
        let mut similar: Vec<(String, f32)> = Vec::new();
        for hit in hits {
            if hit.score < self.config.similarity_threshold {
                break;
            }
            let Some(doc) = hit.metadata.get("doc_id").and_then(Value::as_str) else {
                continue;
            };
            if doc != id && !similar.iter().any(|(seen, _)| seen == doc) {
                similar.push((doc.to_owned(), hit.score));
            }
        }
        similar.truncate(self.config.max_similar);
        Ok(similar)
    }

    async fn semantic(&self, query: &str, fetch: usize, filter: &Metadata) -> Result<Vec<DocHit>> {
        let vector = self
            .embedder
            .embed(&[query.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| Error::Internal("embedder returned no vector".into()))?;
        let hits = self.vectors.search(&vector, fetch, filter).await?;
        Ok(per_document(
            hits.into_iter().map(|hit| (hit.score, hit.metadata)),
        ))
    }

    async fn keyword(&self, query: &str, fetch: usize, filter: &Metadata) -> Result<Vec<DocHit>> {
        match self.keyword_search {
            KeywordSearch::InProcess => {
                let keywords = self.keywords.read().unwrap_or_else(PoisonError::into_inner);
                Ok(per_document(
                    keywords
                        .search(query, fetch, filter)
                        .into_iter()
                        .map(|(_, score, metadata)| (score, metadata)),
                ))
            }
            KeywordSearch::GraphFullText => self.graph_keyword(query, fetch, filter).await,
        }
    }

    /// Keyword search on the graph's full-text index (see [`KeywordSearch::GraphFullText`]).
    async fn graph_keyword(
        &self,
        query: &str,
        fetch: usize,
        filter: &Metadata,
    ) -> Result<Vec<DocHit>> {
        let mut terms: Vec<String> = Vec::new();
        for word in words(query) {
            if !terms.contains(&word) && terms.len() < MAX_KEYWORD_TERMS {
                terms.push(word);
            }
        }
        let mut scored: HashMap<String, (f32, Node)> = HashMap::new();
        for term in &terms {
            let hits = self
                .graph
                .search_text(
                    term,
                    Some(DOCUMENT_LABEL),
                    fetch.saturating_mul(KEYWORD_OVERFETCH),
                )
                .await?;
            for hit in hits {
                scored
                    .entry(hit.node.id.clone())
                    .or_insert_with(|| (0.0, hit.node))
                    .0 += hit.score;
            }
        }
        let mut out: Vec<DocHit> = scored
            .into_values()
            .filter_map(|(score, node)| {
                let text = str_property(&node, "text");
                let (chunk, chunk_text) = self.best_chunk(&text, &terms);
                let metadata = node
                    .properties
                    .get("metadata")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let namespace = str_property(&node, "namespace");
                let as_chunk = chunk_metadata(&metadata, &node.id, &namespace, chunk, &chunk_text);
                filter_matches(filter, &as_chunk).then_some(DocHit {
                    doc_id: node.id,
                    chunk,
                    text: chunk_text,
                    score,
                })
            })
            .collect();
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.doc_id.cmp(&b.doc_id))
        });
        out.truncate(fetch);
        Ok(out)
    }

    /// The chunk of `text` holding the most occurrences of `terms` (the first on a tie).
    fn best_chunk(&self, text: &str, terms: &[String]) -> (usize, String) {
        let Ok(chunks) = self.config.chunking.split(text) else {
            return (0, text.to_owned());
        };
        let mut best: Option<(usize, &crate::chunk::Chunk)> = None;
        for chunk in &chunks {
            let count = words(&chunk.text)
                .iter()
                .filter(|word| terms.contains(word))
                .count();
            if best.is_none_or(|(most, _)| count > most) {
                best = Some((count, chunk));
            }
        }
        best.map_or_else(
            || (0, text.to_owned()),
            |(_, chunk)| (chunk.index, chunk.text.clone()),
        )
    }
}

/// Keeps the first (best) chunk of every document from chunk hits ordered best first.
fn per_document(hits: impl Iterator<Item = (f32, Metadata)>) -> Vec<DocHit> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (score, metadata) in hits {
        let Some(doc_id) = metadata.get("doc_id").and_then(Value::as_str) else {
            continue;
        };
        if seen.insert(doc_id.to_owned()) {
            out.push(DocHit {
                doc_id: doc_id.to_owned(),
                chunk: metadata
                    .get("chunk")
                    .and_then(Value::as_u64)
                    .map_or(0, |c| c as usize),
                text: metadata
                    .get("text")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                score,
            });
        }
    }
    out
}

/// Reciprocal-rank fusion: each document scores the sum of `1 / (60 + rank)` over the
/// rankings it appears in (rank from 1); it keeps the chunk of its best-placed appearance.
fn fuse(rankings: &[Vec<DocHit>]) -> Vec<DocHit> {
    let mut fused: HashMap<String, (DocHit, usize)> = HashMap::new();
    for ranking in rankings {
        for (position, hit) in ranking.iter().enumerate() {
            let contribution = 1.0 / (RRF_K + position as f32 + 1.0);
            match fused.get_mut(&hit.doc_id) {
                Some((existing, best)) => {
                    existing.score += contribution;
                    if position < *best {
                        existing.chunk = hit.chunk;
                        existing.text.clone_from(&hit.text);
                        *best = position;
                    }
                }
                None => {
                    let mut hit = hit.clone();
                    hit.score = contribution;
                    fused.insert(hit.doc_id.clone(), (hit, position));
                }
            }
        }
    }
    let mut out: Vec<DocHit> = fused.into_values().map(|(hit, _)| hit).collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.doc_id.cmp(&b.doc_id))
    });
    out
}

pub(crate) fn bounded_limit(limit: Option<usize>, default: usize) -> Result<usize> {
    match limit.unwrap_or(default) {
        0 => Err(Error::InvalidArgument("limit must be positive".into())),
        limit => Ok(limit.min(1000)),
    }
}

fn chunk_texts(chunks: &[Chunk]) -> Vec<String> {
    chunks.iter().map(|chunk| chunk.text.clone()).collect()
}

fn chunk_id(doc_id: &str, index: usize) -> String {
    format!("{doc_id}#{index}")
}

fn chunk_metadata(
    metadata: &Metadata,
    doc_id: &str,
    namespace: &str,
    index: usize,
    text: &str,
) -> Metadata {
    let mut out = metadata.clone();
    out.insert("doc_id".into(), Value::from(doc_id));
    out.insert("namespace".into(), Value::from(namespace));
    out.insert("chunk".into(), Value::from(index));
    out.insert("text".into(), Value::from(text));
    out
}

fn document_node(
    id: &str,
    text: &str,
    metadata: &Metadata,
    namespace: &str,
    chunks: usize,
) -> Node {
    let mut properties = Metadata::new();
    properties.insert("text".into(), Value::from(text));
    properties.insert("metadata".into(), Value::Object(metadata.clone()));
    properties.insert("namespace".into(), Value::from(namespace));
    properties.insert("chunks".into(), Value::from(chunks));
    Node {
        id: id.to_owned(),
        label: DOCUMENT_LABEL.into(),
        properties,
    }
}

fn chunk_count(node: &Node) -> usize {
    node.properties
        .get("chunks")
        .and_then(Value::as_u64)
        .map_or(0, |count| count as usize)
}

fn str_property(node: &Node, key: &str) -> String {
    node.properties
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Ids listed in metadata `related` / `links` (a string or an array of strings).
fn linked_ids(metadata: &Metadata) -> Vec<String> {
    let mut ids = Vec::new();
    for key in ["related", "links"] {
        match metadata.get(key) {
            Some(Value::String(id)) => ids.push(id.clone()),
            Some(Value::Array(items)) => {
                ids.extend(items.iter().filter_map(Value::as_str).map(str::to_owned))
            }
            _ => {}
        }
    }
    ids.dedup();
    ids
}

fn action_specs() -> Vec<ActionSpec> {
    vec![
        ActionSpec::new::<AddRequest, AddResult>(
            "add",
            "Add a document: it is chunked, embedded, indexed and linked to similar documents. Re-adding an id replaces it.",
        ),
        ActionSpec::new::<AddManyRequest, AddManyResult>(
            "add_many",
            "Add several documents in order, embedded together; each is added as by `add`.",
        ),
        ActionSpec::new::<IdRequest, Document>("get", "Get a document by id.").read_only(),
        ActionSpec::new::<IdRequest, DeleteResult>(
            "delete",
            "Delete a document, its chunks and its graph edges.",
        )
        .destructive()
        .idempotent(),
        ActionSpec::new::<SearchRequest, SearchResult>(
            "search",
            "Search documents by meaning and keywords (mode hybrid, semantic or keyword), optionally with graph neighbours.",
        )
        .read_only(),
        ActionSpec::new::<GraphRequest, GraphResult>(
            "graph",
            "Nodes and edges around a node, bounded by depth and limit.",
        )
        .read_only(),
        ActionSpec::new::<RelateRequest, RelateResult>(
            "relate",
            "Create or update a typed edge between two nodes.",
        )
        .idempotent(),
        ActionSpec::new::<CreateEntitiesRequest, CreatedEntities>(
            "create_entities",
            "Create knowledge-graph entities; existing names are skipped.",
        )
        .idempotent(),
        ActionSpec::new::<RelationsRequest, CreatedRelations>(
            "create_relations",
            "Create relations between existing entities; duplicates are skipped.",
        )
        .idempotent(),
        ActionSpec::new::<AddObservationsRequest, AddObservationsResult>(
            "add_observations",
            "Add observations to existing entities; returns the ones that were new.",
        )
        .idempotent(),
        ActionSpec::new::<DeleteEntitiesRequest, DeletedEntities>(
            "delete_entities",
            "Delete entities and their relations.",
        )
        .destructive()
        .idempotent(),
        ActionSpec::new::<RelationsRequest, DeletedRelations>(
            "delete_relations",
            "Delete relations.",
        )
        .destructive()
        .idempotent(),
        ActionSpec::new::<DeleteObservationsRequest, DeleteObservationsResult>(
            "delete_observations",
            "Delete observations from entities.",
        )
        .destructive()
        .idempotent(),
        ActionSpec::new::<ReadGraphRequest, KnowledgeGraph>(
            "read_graph",
            "Read the knowledge graph a page of entities at a time, with the relations among them.",
        )
        .read_only(),
        ActionSpec::new::<SearchNodesRequest, KnowledgeGraph>(
            "search_nodes",
            "Entities whose name, type or observations contain the query (case-insensitive), with the relations among them.",
        )
        .read_only(),
        ActionSpec::new::<OpenNodesRequest, KnowledgeGraph>(
            "open_nodes",
            "Entities by name, with the relations among them.",
        )
        .read_only(),
    ]
}

#[async_trait]
impl Service for ContextService {
    fn name(&self) -> &str {
        "context"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.actions
    }

    async fn call(
        &self,
        action: &str,
        params: Params,
        ctx: &RequestContext,
    ) -> Result<ActionOutput> {
        let namespace = || ctx.namespace().map(str::to_owned);
        match action {
            "add" => {
                let mut request: AddRequest = parse_params(action, params)?;
                request.namespace = request.namespace.or_else(namespace);
                to_result(&self.add(request).await?)
            }
            "add_many" => {
                let mut request: AddManyRequest = parse_params(action, params)?;
                request.namespace = request.namespace.or_else(namespace);
                to_result(&self.add_many(request).await?)
            }
            "get" => {
                let request: IdRequest = parse_params(action, params)?;
                to_result(&self.get(&request.id).await?)
            }
            "delete" => {
                let request: IdRequest = parse_params(action, params)?;
                to_result(&self.delete(&request.id).await?)
            }
            "search" => {
                let mut request: SearchRequest = parse_params(action, params)?;
                request.namespace = request.namespace.or_else(namespace);
                to_result(&self.search(request).await?)
            }
            "graph" => to_result(&self.graph(parse_params(action, params)?).await?),
            "relate" => to_result(&self.relate(parse_params(action, params)?).await?),
            "create_entities" => {
                let request: CreateEntitiesRequest = parse_params(action, params)?;
                to_result(&self.create_entities(request.entities).await?)
            }
            "create_relations" => {
                let request: RelationsRequest = parse_params(action, params)?;
                to_result(&self.create_relations(request.relations).await?)
            }
            "add_observations" => {
                let request: AddObservationsRequest = parse_params(action, params)?;
                to_result(&self.add_observations(request.observations).await?)
            }
            "delete_entities" => {
                let request: DeleteEntitiesRequest = parse_params(action, params)?;
                to_result(&self.delete_entities(request.entity_names).await?)
            }
            "delete_relations" => {
                let request: RelationsRequest = parse_params(action, params)?;
                to_result(&self.delete_relations(request.relations).await?)
            }
            "delete_observations" => {
                let request: DeleteObservationsRequest = parse_params(action, params)?;
                to_result(&self.delete_observations(request.deletions).await?)
            }
            "read_graph" => {
                let request: ReadGraphRequest = parse_params(action, params)?;
                to_result(
                    &self
                        .read_graph(request.cursor.as_deref(), request.limit)
                        .await?,
                )
            }
            "search_nodes" => {
                let request: SearchNodesRequest = parse_params(action, params)?;
                to_result(&self.search_nodes(&request.query).await?)
            }
            "open_nodes" => {
                let request: OpenNodesRequest = parse_params(action, params)?;
                to_result(&self.open_nodes(request.names).await?)
            }
            other => Err(Error::NotFound(format!("unknown action `context/{other}`"))),
        }
    }

    fn cache_stats(&self) -> Option<mcp_core::CacheStats> {
        self.embedder.cache_stats()
    }

    async fn health(&self) -> Vec<BackendHealth> {
        vec![
            BackendHealth::from_ping(
                "vectors",
                self.vectors.backend(),
                self.vectors.ping().await.map_err(Error::from),
            ),
            BackendHealth::from_ping(
                "graph",
                self.graph.backend(),
                self.graph.ping().await.map_err(Error::from),
            ),
        ]
    }
}
