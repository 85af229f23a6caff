//! `GraphStore`: labelled nodes with JSON properties, typed directed edges, bounded
//! neighbourhood traversal, full-text search over node text, and atomic list updates (for
//! knowledge-graph observations written by concurrent agents).

use async_trait::async_trait;
use serde_json::Value;

use crate::vector::Metadata;
use crate::Result;

/// A node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Unique id (for knowledge-graph entities, the entity name).
    pub id: String,
    /// One label, e.g. `Document`, `Chunk`, `Entity`.
    pub label: String,
    /// Properties; string and string-array values are full-text searchable.
    pub properties: Metadata,
}

/// A directed, typed edge; `(from, to, rel_type)` is unique.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Relation type, e.g. `SIMILAR_TO`, `works_at`.
    pub rel_type: String,
    /// Edge properties.
    pub properties: Metadata,
}

/// Nodes and the edges among them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subgraph {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Edges whose both ends are in `nodes`.
    pub edges: Vec<Edge>,
}

/// A page of nodes ordered by id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodePage {
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Cursor for the next page; `None` when done.
    pub next_cursor: Option<String>,
}

/// A full-text hit.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeHit {
    /// The matching node.
    pub node: Node,
    /// Relevance, higher is better (backend-specific scale).
    pub score: f32,
}

/// Bookkeeping properties full-text search skips: they say where a node lives or what it
/// belongs to, not what it says (a query naming a namespace would otherwise match every node
/// in it).
pub const UNSEARCHED_PROPERTIES: [&str; 3] = ["namespace", "id", "doc_id"];

/// Strings of `properties` that full-text search covers: every string value and every string
/// inside an array value, except those of [`UNSEARCHED_PROPERTIES`].
pub fn searchable_text(properties: &Metadata) -> impl Iterator<Item = &str> {
    properties
        .iter()
        .filter(|(name, _)| !UNSEARCHED_PROPERTIES.contains(&name.as_str()))
        .flat_map(|(_, value)| match value {
            Value::String(s) => vec![s.as_str()],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
}

/// A property graph.
///
/// Semantics every backend must share (checked by the conformance suite):
/// - `create_node` never overwrites: it returns `false` when the id exists.
/// - `delete_node` removes the node's edges too.
/// - `upsert_edge` needs both endpoints ([`crate::Error::NotFound`] otherwise) and returns
///   whether the edge is new; an existing edge gets the new properties.
/// - `append_unique` / `remove_values` are atomic per node: concurrent appends all survive.
/// - `neighbourhood` walks edges in both directions up to `depth` hops from `start`,
///   returning at most `limit` nodes (`start` first, nearer nodes before farther ones) and the
///   edges among them; a missing start is [`crate::Error::NotFound`].
/// - `search_text` matches nodes whose searchable text ([`searchable_text`]: string
///   properties other than the bookkeeping ones) contains every query term
///   (case-insensitive words), best first.
#[async_trait]
pub trait GraphStore: Send + Sync {
    /// Backend name.
    fn backend(&self) -> &'static str;

    /// Creates `node` unless its id exists; returns whether it was created.
    async fn create_node(&self, node: Node) -> Result<bool>;

    /// Creates or replaces `node` (label and properties), keeping its edges.
    async fn upsert_node(&self, node: Node) -> Result<()>;

    /// Nodes by id, in the order asked, skipping missing ones.
    async fn get_nodes(&self, ids: &[String]) -> Result<Vec<Node>>;

    /// Removes a node and its edges; returns whether it existed.
    async fn delete_node(&self, id: &str) -> Result<bool>;

    /// Adds the `values` missing from the string-array property `property` of node `id`,
    /// keeping order; returns the values actually added.
    async fn append_unique(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>>;

    /// Removes `values` from the string-array property; returns the values removed.
    async fn remove_values(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>>;

    /// Creates or updates an edge; returns whether it was created.
    async fn upsert_edge(&self, edge: Edge) -> Result<bool>;

    /// Removes an edge; returns whether it existed.
    async fn delete_edge(&self, from: &str, to: &str, rel_type: &str) -> Result<bool>;

    /// Edges with both ends among `ids`.
    async fn edges_among(&self, ids: &[String]) -> Result<Vec<Edge>>;

    /// Nodes within `depth` hops of `start`, at most `limit`, with the edges among them.
    async fn neighbourhood(&self, start: &str, depth: u32, limit: usize) -> Result<Subgraph>;

    /// Nodes (optionally of one label) ordered by id, after `cursor`.
    async fn list_nodes(
        &self,
        label: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NodePage>;

    /// Full-text search over node text (optionally of one label).
    async fn search_text(
        &self,
        query: &str,
        label: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NodeHit>>;

    /// Checks that the backend answers.
    async fn ping(&self) -> Result<()>;
}
