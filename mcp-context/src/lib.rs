//! The `context` service of mcp-services: documents split into overlapping chunks, embedded
//! and indexed for semantic, keyword (BM25) and hybrid (reciprocal-rank fusion) search; a
//! property graph linking similar and related documents; and knowledge-graph actions that
//! behave like the MCP reference "memory" server.
//!
//! | feature | what it adds |
//! |---|---|
//! | (none) | [`HashEmbedder`] (feature hashing, zero setup), [`CachedEmbedder`], in-memory backends |
//! | `fastembed` | `FastEmbedder`: all-MiniLM-L6-v2 via ONNX Runtime loaded from a path (`scripts/fetch-model.sh`) |
//! | `neo4j` | `ContextService::connect_neo4j`: Neo4j vector index, graph and full-text keyword search ([`KeywordSearch::GraphFullText`]) |
//!
//! Storage: documents are `Document` nodes of a [`mcp_backends::GraphStore`], their chunks are
//! vectors of a [`mcp_backends::VectorIndex`] (chunk text in the vector metadata), entities
//! are `Entity` nodes and relations are edges. Keyword search uses an in-process BM25 index
//! ([`ContextService::rebuild_keyword_index`] restores it from the graph after a restart).
//!
//! Retrieval on the labelled corpus in `tests/corpus` (recall@5, 50 queries / the 15
//! paraphrase queries that share no keyword with their answer):
//!
//! | mode | hash embedder | all-MiniLM-L6-v2 (`fastembed`) |
//! |---|---|---|
//! | keyword | 0.70 / 0.00 | 0.70 / 0.00 |
//! | semantic | 0.72 / 0.07 | 1.00 / 1.00 |
//! | hybrid | 0.72 / 0.07 | 0.98 / 0.93 |
//!
//! ```
//! use mcp_context::{AddRequest, ContextService, SearchRequest};
//!
//! # async fn demo() -> mcp_core::Result<()> {
//! let context = ContextService::in_memory();
//! let added = context
//!     .add(AddRequest { text: "Rust has no garbage collector.".into(), ..Default::default() })
//!     .await?;
//! let found = context
//!     .search(SearchRequest { query: "garbage collector".into(), ..Default::default() })
//!     .await?;
//! assert_eq!(found.results[0].id, added.id);
//! # Ok(()) }
//! ```

mod bm25;
mod chunk;
mod embed;
#[cfg(feature = "fastembed")]
mod fastembed;
mod kg;
mod service;
mod types;

pub use chunk::{Chunk, ChunkConfig};
pub use embed::{CachedEmbedder, Embedder, HashEmbedder, DEFAULT_DIMENSIONS};
#[cfg(feature = "fastembed")]
pub use fastembed::{FastEmbedder, MAX_LENGTH};
pub use kg::ENTITY_LABEL;
pub use service::{
    ContextConfig, ContextService, KeywordSearch, DEFAULT_NAMESPACE, DOCUMENT_LABEL, RELATED_TO,
    SIMILAR_TO,
};
pub use types::*;
