//! `GraphStore` on Neo4j. Every node is `(:McpNode {key, ns, id, label, props, text})`:
//! `key` (namespace and id) carries a uniqueness constraint, `props` is the JSON of the
//! properties, `text` their searchable strings (covered by the full-text index
//! `mcp_node_text`). Edges are `[:MCP_EDGE {type, props}]`, so relation types are plain
//! parameters and never spliced into Cypher; `MERGE` between two bound nodes keeps
//! `(from, to, type)` unique, even for concurrent writers (Neo4j locks both ends).
//!
//! `append_unique` / `remove_values` run in one transaction that first takes the node's write
//! lock (`SET n._lock`), then reads, changes and writes the list: concurrent writers of one
//! node queue on that lock, so no update is lost.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::{column, count_param, map_err, parse_object, Client, BACKEND, CONSTRAINT_VIOLATION};
use crate::graph::{searchable_text, Edge, GraphStore, Node, NodeHit, NodePage, Subgraph};
use crate::vector::Metadata;
use crate::{Error, Result};

/// Separates the namespace from the id in the unique `key` property.
const KEY_SEPARATOR: char = '\u{1f}';
/// Name of the full-text index over node text.
const TEXT_INDEX: &str = "mcp_node_text";
/// Most query terms a full-text search accepts.
const MAX_TERMS: usize = 64;

/// A [`GraphStore`] in Neo4j, optionally confined to a namespace (so several graphs, or
/// test runs, share one database without seeing each other).
#[derive(Clone)]
pub struct Neo4jGraphStore {
    client: Client,
    namespace: String,
}

impl std::fmt::Debug for Neo4jGraphStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jGraphStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Lowercase words of `text` (runs of alphanumeric characters), as the in-memory store cuts
/// them; a query reduced to such words carries no Lucene syntax.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// A Lucene query requiring every word of `query`, each as a quoted term.
fn all_terms_query(query: &str) -> Result<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in words(query) {
        if !terms.contains(&word) {
            terms.push(word);
        }
    }
    if terms.is_empty() {
        return Err(Error::InvalidArgument(
            "full-text query has no words".into(),
        ));
    }
    if terms.len() > MAX_TERMS {
        return Err(Error::InvalidArgument(format!(
            "full-text query has more than {MAX_TERMS} words"
        )));
    }
    Ok(terms
        .iter()
        .map(|term| format!("+\"{term}\""))
        .collect::<Vec<_>>()
        .join(" "))
}

/// The strings full-text search covers, one per line.
fn text_of(properties: &Metadata) -> String {
    searchable_text(properties).collect::<Vec<_>>().join("\n")
}

/// The string list in property `property` of `node` (absent or null is empty).
fn string_list(id: &str, property: &str, properties: &Metadata) -> Result<Vec<String>> {
    let not_a_list = || Error::InvalidArgument(format!("{id}.{property} is not a list of strings"));
    match properties.get(property) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(not_a_list))
            .collect(),
        Some(_) => Err(not_a_list()),
    }
}

impl Neo4jGraphStore {
    /// Connects to `url` and creates the constraint and indexes it needs (once per database).
    pub async fn connect(url: &str) -> Result<Self> {
        let client = Client::connect(url).await?;
        client
            .create_schema(
                "CREATE CONSTRAINT mcp_node_key IF NOT EXISTS \
                 FOR (n:McpNode) REQUIRE n.key IS UNIQUE",
            )
            .await?;
        client
            .create_schema(
                "CREATE INDEX mcp_node_ns_id IF NOT EXISTS FOR (n:McpNode) ON (n.ns, n.id)",
            )
            .await?;
        client
            .create_schema(&format!(
                "CREATE FULLTEXT INDEX {TEXT_INDEX} IF NOT EXISTS FOR (n:McpNode) ON EACH [n.text] \
                 OPTIONS {{indexConfig: {{`fulltext.analyzer`: 'standard-no-stop-words', \
                 `fulltext.eventually_consistent`: false}}}}"
            ))
            .await?;
        for index in ["mcp_node_key", "mcp_node_ns_id", TEXT_INDEX] {
            client.await_index(index).await?;
        }
        Ok(Neo4jGraphStore {
            client,
            namespace: String::new(),
        })
    }

    /// The same database seen through `namespace`: nodes, edges and searches of other
    /// namespaces are invisible. A namespace with control characters is refused.
    pub fn with_namespace(mut self, namespace: &str) -> Result<Self> {
        if namespace.chars().any(char::is_control) {
            return Err(Error::InvalidArgument(
                "a graph namespace must not contain control characters".into(),
            ));
        }
        namespace.clone_into(&mut self.namespace);
        Ok(self)
    }

    /// This store's namespace (empty by default).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn key(&self, id: &str) -> String {
        format!("{}{KEY_SEPARATOR}{id}", self.namespace)
    }

    fn keys(&self, ids: &[String]) -> Vec<String> {
        ids.iter().map(|id| self.key(id)).collect()
    }

    /// The node of a row, or `None` when a concurrent writer deleted it between the match and
    /// the property read (at read-committed its properties then read as null): such a node is
    /// gone, as if the read had come a moment later.
    fn node_from_row(row: &neo4rs::Row) -> Result<Option<Node>> {
        let (Some(id), Some(label), Some(props)) = (
            column::<Option<String>>(row, "id")?,
            column::<Option<String>>(row, "label")?,
            column::<Option<String>>(row, "props")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Node {
            id,
            label,
            properties: parse_object(&props)?,
        }))
    }

    /// The edge of a row, or `None` when a concurrent writer deleted it (or an end) between
    /// the match and the property read, as for [`Self::node_from_row`].
    fn edge_from_row(row: &neo4rs::Row) -> Result<Option<Edge>> {
        let (Some(from), Some(to), Some(rel_type), Some(props)) = (
            column::<Option<String>>(row, "from")?,
            column::<Option<String>>(row, "to")?,
            column::<Option<String>>(row, "type")?,
            column::<Option<String>>(row, "props")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Edge {
            from,
            to,
            rel_type,
            properties: parse_object(&props)?,
        }))
    }

    /// Reads, changes and writes the string list `property` of node `id` under the node's
    /// write lock; `change` gets the current list and returns the new list and its result.
    ///
    /// The transaction runs in its own task, to its end, even when the caller stops waiting
    /// (its deadline passed): a transaction dropped halfway would go back to the pool still
    /// holding the node's write lock, and every other writer of that node would wait for it
    /// until the connection happened to be reused.
    async fn update_list(
        &self,
        id: &str,
        property: &str,
        change: impl FnOnce(Vec<String>) -> (Vec<String>, Vec<String>) + Send + 'static,
    ) -> Result<Vec<String>> {
        let client = self.client.clone();
        let (key, id, property) = (self.key(id), id.to_owned(), property.to_owned());
        self.client
            .bounded(super::detached(async move {
                update_list_txn(&client, &key, &id, &property, change).await
            }))
            .await
    }
}

/// The transaction of [`Neo4jGraphStore::update_list`]: committed when the change is written,
/// rolled back on every failure, so the connection never goes back to the pool inside an open
/// transaction.
async fn update_list_txn(
    client: &Client,
    key: &str,
    id: &str,
    property: &str,
    change: impl FnOnce(Vec<String>) -> (Vec<String>, Vec<String>),
) -> Result<Vec<String>> {
    let mut txn = client.start_txn().await?;
    match change_list(&mut txn, key, id, property, change).await {
        Ok(result) => {
            txn.commit().await.map_err(map_err)?;
            Ok(result)
        }
        Err(err) => {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(%rollback, "neo4j rollback after a failed list update");
            }
            Err(err)
        }
    }
}

/// Reads the list under the node's write lock and writes the changed list, inside `txn`.
async fn change_list(
    txn: &mut neo4rs::Txn,
    key: &str,
    id: &str,
    property: &str,
    change: impl FnOnce(Vec<String>) -> (Vec<String>, Vec<String>),
) -> Result<Vec<String>> {
    let mut rows = txn
        .execute(
            neo4rs::query(
                "MATCH (n:McpNode {key: $key}) SET n._lock = true RETURN n.props AS props",
            )
            .param("key", key),
        )
        .await
        .map_err(map_err)?;
    let row = rows.next(txn.handle()).await.map_err(map_err)?;
    // Drain the stream so the connection is ready for the next statement.
    while rows.next(txn.handle()).await.map_err(map_err)?.is_some() {}
    let row = row.ok_or_else(|| Error::NotFound(format!("node {id}")))?;
    let mut properties = parse_object(&column::<String>(&row, "props")?)?;
    let current = string_list(id, property, &properties)?;
    let (list, result) = change(current);
    properties.insert(
        property.to_owned(),
        Value::Array(list.into_iter().map(Value::String).collect()),
    );
    txn.run(
        neo4rs::query(
            "MATCH (n:McpNode {key: $key}) SET n.props = $props, n.text = $text \
                 REMOVE n._lock",
        )
        .param("key", key)
        .param("text", text_of(&properties))
        .param("props", Value::Object(properties).to_string()),
    )
    .await
    .map_err(map_err)?;
    Ok(result)
}

#[async_trait]
impl GraphStore for Neo4jGraphStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    async fn create_node(&self, node: Node) -> Result<bool> {
        let text = text_of(&node.properties);
        let created = self
            .client
            .run(
                neo4rs::query(
                    "CREATE (:McpNode {key: $key, ns: $ns, id: $id, label: $label, \
                     props: $props, text: $text})",
                )
                .param("key", self.key(&node.id))
                .param("ns", self.namespace.as_str())
                .param("id", node.id.as_str())
                .param("label", node.label.as_str())
                .param("props", Value::Object(node.properties).to_string())
                .param("text", text),
            )
            .await;
        match created {
            Ok(()) => Ok(true),
            Err(Error::Backend { message, .. }) if message.contains(CONSTRAINT_VIOLATION) => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    async fn upsert_node(&self, node: Node) -> Result<()> {
        let text = text_of(&node.properties);
        self.client
            .run(
                neo4rs::query(
                    "MERGE (n:McpNode {key: $key}) \
                     ON CREATE SET n.ns = $ns, n.id = $id \
                     SET n.label = $label, n.props = $props, n.text = $text",
                )
                .param("key", self.key(&node.id))
                .param("ns", self.namespace.as_str())
                .param("id", node.id.as_str())
                .param("label", node.label.as_str())
                .param("props", Value::Object(node.properties).to_string())
                .param("text", text),
            )
            .await
    }

    async fn get_nodes(&self, ids: &[String]) -> Result<Vec<Node>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "MATCH (n:McpNode) WHERE n.key IN $keys \
                     RETURN n.id AS id, n.label AS label, n.props AS props",
                )
                .param("keys", self.keys(ids)),
            )
            .await?;
        let mut found = HashMap::with_capacity(rows.len());
        for row in &rows {
            if let Some(node) = Self::node_from_row(row)? {
                found.insert(node.id.clone(), node);
            }
        }
        Ok(ids.iter().filter_map(|id| found.get(id).cloned()).collect())
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "OPTIONAL MATCH (n:McpNode {key: $key}) \
                     WITH n, n IS NOT NULL AS existed \
                     DETACH DELETE n \
                     RETURN existed",
                )
                .param("key", self.key(id)),
            )
            .await?;
        rows.first().map_or(Ok(false), |row| column(row, "existed"))
    }

    async fn append_unique(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>> {
        let values = values.to_vec();
        self.update_list(id, property, move |mut list| {
            let mut added = Vec::new();
            for value in values {
                if !list.contains(&value) {
                    list.push(value.clone());
                    added.push(value);
                }
            }
            (list, added)
        })
        .await
    }

    async fn remove_values(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>> {
        let values = values.to_vec();
        self.update_list(id, property, move |list| {
            let (removed, kept): (Vec<String>, Vec<String>) =
                list.into_iter().partition(|value| values.contains(value));
            (kept, removed)
        })
        .await
    }

    async fn upsert_edge(&self, edge: Edge) -> Result<bool> {
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "MATCH (a:McpNode {key: $from}), (b:McpNode {key: $to}) \
                     MERGE (a)-[r:MCP_EDGE {type: $type}]->(b) \
                     ON CREATE SET r._created = true \
                     SET r.props = $props \
                     WITH r, coalesce(r._created, false) AS created \
                     REMOVE r._created \
                     RETURN created",
                )
                .param("from", self.key(&edge.from))
                .param("to", self.key(&edge.to))
                .param("type", edge.rel_type.as_str())
                .param("props", Value::Object(edge.properties).to_string()),
            )
            .await?;
        match rows.first() {
            Some(row) => column(row, "created"),
            None => {
                let ends = [edge.from.clone(), edge.to.clone()];
                let present = self.get_nodes(&ends).await?;
                let missing = ends
                    .iter()
                    .find(|end| !present.iter().any(|node| &node.id == *end))
                    .unwrap_or(&edge.from);
                Err(Error::NotFound(format!("node {missing}")))
            }
        }
    }

    async fn delete_edge(&self, from: &str, to: &str, rel_type: &str) -> Result<bool> {
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "OPTIONAL MATCH (:McpNode {key: $from})-[r:MCP_EDGE {type: $type}]->\
                     (:McpNode {key: $to}) \
                     WITH collect(r) AS doomed \
                     FOREACH (r IN doomed | DELETE r) \
                     RETURN size(doomed) > 0 AS existed",
                )
                .param("from", self.key(from))
                .param("to", self.key(to))
                .param("type", rel_type),
            )
            .await?;
        rows.first().map_or(Ok(false), |row| column(row, "existed"))
    }

    async fn edges_among(&self, ids: &[String]) -> Result<Vec<Edge>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "MATCH (a:McpNode)-[r:MCP_EDGE]->(b:McpNode) \
                     WHERE a.key IN $keys AND b.key IN $keys \
                     RETURN a.id AS from, b.id AS to, r.type AS type, r.props AS props \
                     ORDER BY from, to, type",
                )
                .param("keys", self.keys(ids)),
            )
            .await?;
        rows.iter()
            .filter_map(|row| Self::edge_from_row(row).transpose())
            .collect()
    }

    async fn neighbourhood(&self, start: &str, depth: u32, limit: usize) -> Result<Subgraph> {
        let start_key = self.key(start);
        let mut order: Vec<String> = vec![start.to_owned()];
        let mut seen: Vec<String> = vec![start_key.clone()];
        let mut frontier: Vec<String> = vec![start_key];
        if self
            .get_nodes(std::slice::from_ref(&order[0]))
            .await?
            .is_empty()
        {
            return Err(Error::NotFound(format!("node {start}")));
        }
        let mut level = 0;
        while level < depth && !frontier.is_empty() && order.len() < limit {
            // The next ring: unseen neighbours in either direction, nearest level first,
            // by id within a level, no more than the limit leaves room for.
            let rows = self
                .client
                .rows(
                    neo4rs::query(
                        "MATCH (a:McpNode)-[:MCP_EDGE]-(b:McpNode) \
                         WHERE a.key IN $frontier AND NOT b.key IN $seen \
                         RETURN DISTINCT b.id AS id, b.key AS key \
                         ORDER BY id LIMIT $room",
                    )
                    .param("frontier", std::mem::take(&mut frontier))
                    .param("seen", seen.clone())
                    .param("room", count_param(limit - order.len())),
                )
                .await?;
            for row in &rows {
                // A neighbour deleted while this ran reads as nulls: it is gone, skip it.
                let (Some(key), Some(id)) = (
                    column::<Option<String>>(row, "key")?,
                    column::<Option<String>>(row, "id")?,
                ) else {
                    continue;
                };
                order.push(id);
                seen.push(key.clone());
                frontier.push(key);
            }
            level += 1;
        }
        order.truncate(limit.max(1));
        let nodes = self.get_nodes(&order).await?;
        let edges = self.edges_among(&order).await?;
        Ok(Subgraph { nodes, edges })
    }

    async fn list_nodes(
        &self,
        label: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NodePage> {
        if limit == 0 {
            return Ok(NodePage::default());
        }
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "MATCH (n:McpNode) \
                     WHERE n.ns = $ns AND ($cursor IS NULL OR n.id > $cursor) \
                       AND ($label IS NULL OR n.label = $label) \
                     RETURN n.id AS id, n.label AS label, n.props AS props \
                     ORDER BY n.id LIMIT $fetch",
                )
                .param("ns", self.namespace.as_str())
                .param("cursor", cursor.map(str::to_owned))
                .param("label", label.map(str::to_owned))
                .param("fetch", count_param(limit.saturating_add(1))),
            )
            .await?;
        let mut nodes = rows
            .iter()
            .filter_map(|row| Self::node_from_row(row).transpose())
            .collect::<Result<Vec<_>>>()?;
        let next_cursor = if nodes.len() > limit {
            nodes.truncate(limit);
            nodes.last().map(|node| node.id.clone())
        } else {
            None
        };
        Ok(NodePage { nodes, next_cursor })
    }

    async fn search_text(
        &self,
        query: &str,
        label: Option<&str>,
        limit: usize,
    ) -> Result<Vec<NodeHit>> {
        let lucene = all_terms_query(query)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows = self
            .client
            .rows(
                neo4rs::query(
                    "CALL db.index.fulltext.queryNodes($index, $query) YIELD node, score \
                     WHERE node.ns = $ns AND ($label IS NULL OR node.label = $label) \
                     RETURN node.id AS id, node.label AS label, node.props AS props, score \
                     ORDER BY score DESC, id LIMIT $limit",
                )
                .param("index", TEXT_INDEX)
                .param("query", lucene)
                .param("ns", self.namespace.as_str())
                .param("label", label.map(str::to_owned))
                .param("limit", count_param(limit)),
            )
            .await?;
        rows.iter()
            .filter_map(|row| {
                let hit = Self::node_from_row(row).transpose()?.and_then(|node| {
                    Ok(NodeHit {
                        node,
                        score: column::<f64>(row, "score")? as f32,
                    })
                });
                Some(hit)
            })
            .collect()
    }

    async fn ping(&self) -> Result<()> {
        self.client.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexed_text_leaves_out_bookkeeping() {
        let properties = parse_object(
            r#"{"text": "green tea", "observations": ["steeped", "hot"],
                "namespace": "teams", "id": "doc7", "doc_id": "doc8", "chunks": 2}"#,
        )
        .unwrap();
        let text = text_of(&properties);
        let mut lines: Vec<&str> = text.lines().collect();
        lines.sort_unstable();
        assert_eq!(lines, ["green tea", "hot", "steeped"]);
    }

    #[test]
    fn queries_keep_only_words_and_require_each() {
        assert_eq!(
            all_terms_query("Rust  compiler RUST").unwrap(),
            "+\"rust\" +\"compiler\""
        );
        // Lucene syntax in user input is cut away, never interpreted.
        assert_eq!(
            all_terms_query("a:b* OR \"c\" ~d \\ (e)").unwrap(),
            "+\"a\" +\"b\" +\"or\" +\"c\" +\"d\" +\"e\""
        );
        assert!(matches!(
            all_terms_query(" *:* "),
            Err(Error::InvalidArgument(_))
        ));
    }
}
