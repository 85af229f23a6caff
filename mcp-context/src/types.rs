//! Arguments and results of every context action. Field names are the JSON names; the
//! knowledge-graph types also accept the camelCase names of the MCP reference memory server
//! (`entityType`, `relationType`, `entityName`, `entityNames`).

use mcp_backends::{Edge, Metadata, Node};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Arguments of `add`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddRequest {
    /// The document text (not empty).
    pub text: String,
    /// Filterable metadata; ids listed under `related` or `links` become `RELATED_TO` edges.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Document id; generated when absent. Re-adding an id replaces that document.
    #[serde(default)]
    pub id: Option<String>,
    /// Namespace (default: the caller's namespace, else `default`).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Result of `add`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AddResult {
    /// The document id.
    pub id: String,
    /// How many chunks were indexed.
    pub chunks: usize,
    /// Always `indexed`.
    pub status: String,
    /// Documents the new one was linked to (`SIMILAR_TO` or `RELATED_TO`).
    pub linked: Vec<String>,
}

/// One document of `add_many`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentInput {
    /// The document text.
    pub text: String,
    /// Filterable metadata.
    #[serde(default)]
    pub metadata: Option<Metadata>,
    /// Document id; generated when absent.
    #[serde(default)]
    pub id: Option<String>,
}

/// Arguments of `add_many`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddManyRequest {
    /// The documents, added in order.
    pub documents: Vec<DocumentInput>,
    /// Namespace of every document.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Result of `add_many`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AddManyResult {
    /// Ids of the documents, in input order.
    pub ids: Vec<String>,
}

/// Arguments of `get` and `delete`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdRequest {
    /// The document id.
    pub id: String,
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct Document {
    /// The document id.
    pub id: String,
    /// The full text.
    pub text: String,
    /// Its metadata.
    pub metadata: Metadata,
    /// Its namespace.
    pub namespace: String,
    /// Number of chunks.
    pub chunks: usize,
}

/// Result of `delete`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DeleteResult {
    /// The document id.
    pub id: String,
    /// Whether the document existed.
    pub deleted: bool,
}

/// How `search` ranks documents.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Reciprocal-rank fusion (k = 60) of the semantic and keyword rankings.
    #[default]
    Hybrid,
    /// Cosine similarity of embeddings.
    Semantic,
    /// BM25 over chunk words.
    Keyword,
}

/// Arguments of `search`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// What to look for.
    pub query: String,
    /// Maximum number of documents (default 10, at most 100).
    #[serde(default)]
    pub limit: Option<usize>,
    /// Metadata every result must match (values equal, or contained in an array value).
    #[serde(default)]
    pub filter: Option<Metadata>,
    /// `hybrid` (default), `semantic` or `keyword`.
    #[serde(default)]
    pub mode: Option<SearchMode>,
    /// Graph hops around each result to return as `related` (default 0: none).
    #[serde(default)]
    pub expand: Option<u32>,
    /// Only documents of this namespace (default: the caller's namespace, else all).
    #[serde(default)]
    pub namespace: Option<String>,
}

/// One document found by `search`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SearchHit {
    /// The document id.
    pub id: String,
    /// Text of the document's best-matching chunk.
    pub text: String,
    /// Index of that chunk.
    pub chunk: usize,
    /// Score: cosine (semantic), BM25 (keyword) or fused reciprocal rank (hybrid).
    pub score: f32,
    /// The document's metadata.
    pub metadata: Metadata,
    /// Graph nodes within `expand` hops, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub related: Option<Vec<GraphNode>>,
}

/// Result of `search`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct SearchResult {
    /// Documents, best first, one entry per document.
    pub results: Vec<SearchHit>,
}

/// Arguments of `graph`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphRequest {
    /// Start node; without it, the first nodes by id.
    #[serde(default)]
    pub id: Option<String>,
    /// Hops from the start node (default 2, at most 5).
    #[serde(default)]
    pub depth: Option<u32>,
    /// Maximum number of nodes (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A graph node.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GraphNode {
    /// Node id.
    pub id: String,
    /// `Document`, `Entity`, ...
    pub label: String,
    /// Its properties.
    pub properties: Metadata,
}

impl From<Node> for GraphNode {
    fn from(node: Node) -> Self {
        GraphNode {
            id: node.id,
            label: node.label,
            properties: node.properties,
        }
    }
}

/// A graph edge.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GraphEdge {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Relation type.
    #[serde(rename = "type")]
    pub rel_type: String,
    /// Edge properties.
    pub properties: Metadata,
}

impl From<Edge> for GraphEdge {
    fn from(edge: Edge) -> Self {
        GraphEdge {
            from: edge.from,
            to: edge.to,
            rel_type: edge.rel_type,
            properties: edge.properties,
        }
    }
}

/// Result of `graph`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct GraphResult {
    /// The nodes.
    pub nodes: Vec<GraphNode>,
    /// Edges among them.
    pub edges: Vec<GraphEdge>,
}

/// Arguments of `relate`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelateRequest {
    /// Source node id.
    pub from: String,
    /// Target node id.
    pub to: String,
    /// Relation type (not empty).
    #[serde(rename = "type")]
    pub rel_type: String,
    /// Edge properties.
    #[serde(default)]
    pub properties: Option<Metadata>,
}

/// Result of `relate`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct RelateResult {
    /// The edge as stored.
    pub edge: GraphEdge,
    /// Whether it is new (an existing edge gets the new properties).
    pub created: bool,
}

/// A knowledge-graph entity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Unique name.
    pub name: String,
    /// Kind of entity (`person`, `project`, ...).
    #[serde(alias = "entityType")]
    pub entity_type: String,
    /// Facts about it.
    #[serde(default)]
    pub observations: Vec<String>,
}

/// A directed knowledge-graph relation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    /// Source entity name.
    pub from: String,
    /// Target entity name.
    pub to: String,
    /// Relation in active voice (`works_at`).
    #[serde(alias = "relationType")]
    pub relation_type: String,
}

/// Arguments of `create_entities`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEntitiesRequest {
    /// Entities to create; names that exist are skipped.
    pub entities: Vec<Entity>,
}

/// Result of `create_entities`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct CreatedEntities {
    /// The entities actually created.
    pub created: Vec<Entity>,
}

/// Arguments of `create_relations` and `delete_relations`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationsRequest {
    /// The relations.
    pub relations: Vec<Relation>,
}

/// Result of `create_relations`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct CreatedRelations {
    /// The relations actually created (duplicates skipped).
    pub created: Vec<Relation>,
}

/// Result of `delete_relations`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DeletedRelations {
    /// The relations that existed and were removed.
    pub deleted: Vec<Relation>,
}

/// Observations to add to one entity.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationInput {
    /// The entity.
    #[serde(alias = "entityName")]
    pub entity_name: String,
    /// New observations; ones already present are skipped.
    pub contents: Vec<String>,
}

/// Arguments of `add_observations`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddObservationsRequest {
    /// Observations per entity.
    pub observations: Vec<ObservationInput>,
}

/// Observations added to one entity.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AddedObservations {
    /// The entity.
    pub entity_name: String,
    /// The observations that were new.
    pub added_observations: Vec<String>,
}

/// Result of `add_observations`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct AddObservationsResult {
    /// Per entity, in input order.
    pub added: Vec<AddedObservations>,
}

/// Arguments of `delete_entities`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteEntitiesRequest {
    /// Names of the entities to delete, with their relations.
    #[serde(alias = "entityNames")]
    pub entity_names: Vec<String>,
}

/// Result of `delete_entities`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DeletedEntities {
    /// Names that existed and were removed.
    pub deleted: Vec<String>,
}

/// Observations to remove from one entity.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationDeletion {
    /// The entity (missing entities are skipped).
    #[serde(alias = "entityName")]
    pub entity_name: String,
    /// Observations to remove.
    pub observations: Vec<String>,
}

/// Arguments of `delete_observations`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteObservationsRequest {
    /// Observations per entity.
    pub deletions: Vec<ObservationDeletion>,
}

/// Observations removed from one entity.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DeletedObservations {
    /// The entity.
    pub entity_name: String,
    /// The observations that were present and removed.
    pub deleted_observations: Vec<String>,
}

/// Result of `delete_observations`.
#[derive(Clone, Debug, PartialEq, Serialize, JsonSchema)]
pub struct DeleteObservationsResult {
    /// Per existing entity, in input order.
    pub deleted: Vec<DeletedObservations>,
}

/// Arguments of `read_graph`.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadGraphRequest {
    /// Cursor from a previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Entities per page (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Arguments of `search_nodes`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchNodesRequest {
    /// Case-insensitive text matched against names, types and observations.
    pub query: String,
}

/// Arguments of `open_nodes`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenNodesRequest {
    /// Entity names; missing ones are skipped.
    pub names: Vec<String>,
}

/// Entities and the relations among them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, JsonSchema)]
pub struct KnowledgeGraph {
    /// The entities, ordered by name.
    pub entities: Vec<Entity>,
    /// Relations whose both ends are among `entities`.
    pub relations: Vec<Relation>,
    /// Cursor of the next page (`read_graph` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
