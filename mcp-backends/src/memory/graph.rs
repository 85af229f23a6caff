//! In-memory `GraphStore`: nodes by id, edges keyed by `(from, to, type)` with adjacency in
//! both directions, breadth-first neighbourhoods and word-match full-text search.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;
use serde_json::Value;

use super::kv::poisoned;
use crate::graph::{searchable_text, Edge, GraphStore, Node, NodeHit, NodePage, Subgraph};
use crate::vector::Metadata;
use crate::{Error, Result};

type EdgeKey = (String, String, String);

#[derive(Debug, Default)]
struct State {
    nodes: BTreeMap<String, Node>,
    edges: BTreeMap<EdgeKey, Metadata>,
    /// Node id -> keys of every edge touching it.
    adjacency: HashMap<String, BTreeSet<EdgeKey>>,
}

impl State {
    fn edge(key: &EdgeKey, properties: &Metadata) -> Edge {
        Edge {
            from: key.0.clone(),
            to: key.1.clone(),
            rel_type: key.2.clone(),
            properties: properties.clone(),
        }
    }

    fn edges_among(&self, ids: &HashSet<&str>) -> Vec<Edge> {
        let mut keys: BTreeSet<&EdgeKey> = BTreeSet::new();
        for id in ids {
            if let Some(adjacent) = self.adjacency.get(*id) {
                keys.extend(
                    adjacent
                        .iter()
                        .filter(|key| ids.contains(key.0.as_str()) && ids.contains(key.1.as_str())),
                );
            }
        }
        keys.into_iter()
            .filter_map(|key| self.edges.get(key).map(|props| Self::edge(key, props)))
            .collect()
    }

    fn string_list(&self, id: &str, property: &str) -> Result<Vec<String>> {
        let node = self
            .nodes
            .get(id)
            .ok_or_else(|| Error::NotFound(format!("node {id}")))?;
        match node.properties.get(property) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        Error::InvalidArgument(format!("{id}.{property} is not a list of strings"))
                    })
                })
                .collect(),
            Some(_) => Err(Error::InvalidArgument(format!(
                "{id}.{property} is not a list of strings"
            ))),
        }
    }

    fn set_list(&mut self, id: &str, property: &str, values: Vec<String>) {
        if let Some(node) = self.nodes.get_mut(id) {
            node.properties.insert(
                property.to_owned(),
                Value::Array(values.into_iter().map(Value::String).collect()),
            );
        }
    }
}

/// Lowercase words of `text` (runs of alphanumeric characters).
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
}

/// A property graph in process memory.
#[derive(Debug, Default)]
pub struct MemoryGraphStore {
    state: RwLock<State>,
}

impl MemoryGraphStore {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> Result<std::sync::RwLockReadGuard<'_, State>> {
        self.state.read().map_err(|_| poisoned())
    }

    fn write(&self) -> Result<std::sync::RwLockWriteGuard<'_, State>> {
        self.state.write().map_err(|_| poisoned())
    }
}

#[async_trait]
impl GraphStore for MemoryGraphStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn create_node(&self, node: Node) -> Result<bool> {
        let mut state = self.write()?;
        if state.nodes.contains_key(&node.id) {
            return Ok(false);
        }
        state.nodes.insert(node.id.clone(), node);
        Ok(true)
    }

    async fn upsert_node(&self, node: Node) -> Result<()> {
        self.write()?.nodes.insert(node.id.clone(), node);
        Ok(())
    }

    async fn get_nodes(&self, ids: &[String]) -> Result<Vec<Node>> {
        let state = self.read()?;
        Ok(ids
            .iter()
            .filter_map(|id| state.nodes.get(id).cloned())
            .collect())
    }

    async fn delete_node(&self, id: &str) -> Result<bool> {
        let mut state = self.write()?;
        if state.nodes.remove(id).is_none() {
            return Ok(false);
        }
        for key in state.adjacency.remove(id).unwrap_or_default() {
            state.edges.remove(&key);
            let other = if key.0 == id { &key.1 } else { &key.0 };
            if let Some(adjacent) = state.adjacency.get_mut(other) {
                adjacent.remove(&key);
            }
        }
        Ok(true)
    }

    async fn append_unique(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>> {
        let mut state = self.write()?;
        let mut list = state.string_list(id, property)?;
        let mut added = Vec::new();
        for value in values {
            if !list.contains(value) {
                list.push(value.clone());
                added.push(value.clone());
            }
        }
        state.set_list(id, property, list);
        Ok(added)
    }

    async fn remove_values(
        &self,
        id: &str,
        property: &str,
        values: &[String],
    ) -> Result<Vec<String>> {
        let mut state = self.write()?;
        let list = state.string_list(id, property)?;
        let (removed, kept): (Vec<String>, Vec<String>) =
            list.into_iter().partition(|value| values.contains(value));
        state.set_list(id, property, kept);
        Ok(removed)
    }

    async fn upsert_edge(&self, edge: Edge) -> Result<bool> {
        let mut state = self.write()?;
        for end in [&edge.from, &edge.to] {
            if !state.nodes.contains_key(end) {
                return Err(Error::NotFound(format!("node {end}")));
            }
        }
        let key = (edge.from.clone(), edge.to.clone(), edge.rel_type.clone());
        let created = state.edges.insert(key.clone(), edge.properties).is_none();
        state
            .adjacency
            .entry(edge.from)
            .or_default()
            .insert(key.clone());
        state.adjacency.entry(edge.to).or_default().insert(key);
        Ok(created)
    }

    async fn delete_edge(&self, from: &str, to: &str, rel_type: &str) -> Result<bool> {
        let mut state = self.write()?;
        let key = (from.to_owned(), to.to_owned(), rel_type.to_owned());
        if state.edges.remove(&key).is_none() {
            return Ok(false);
        }
        for end in [from, to] {
            if let Some(adjacent) = state.adjacency.get_mut(end) {
                adjacent.remove(&key);
            }
        }
        Ok(true)
    }

    async fn edges_among(&self, ids: &[String]) -> Result<Vec<Edge>> {
        let state = self.read()?;
        let ids: HashSet<&str> = ids.iter().map(String::as_str).collect();
        Ok(state.edges_among(&ids))
    }

    async fn neighbourhood(&self, start: &str, depth: u32, limit: usize) -> Result<Subgraph> {
        let state = self.read()?;
        if !state.nodes.contains_key(start) {
            return Err(Error::NotFound(format!("node {start}")));
        }
        let mut seen: HashSet<&str> = HashSet::from([start]);
        let mut order: Vec<&str> = vec![start];
        let mut frontier: VecDeque<&str> = VecDeque::from([start]);
        let mut level = 0;
        while level < depth && !frontier.is_empty() && order.len() < limit {
            let mut next: BTreeSet<&str> = BTreeSet::new();
            for id in frontier.drain(..) {
                for key in state.adjacency.get(id).into_iter().flatten() {
                    let other = if key.0 == id {
                        key.1.as_str()
                    } else {
                        key.0.as_str()
                    };
                    if !seen.contains(other) {
                        next.insert(other);
                    }
                }
            }
            for id in next {
                if order.len() >= limit {
                    break;
                }
                seen.insert(id);
                order.push(id);
                frontier.push_back(id);
            }
            level += 1;
        }
        order.truncate(limit.max(1));
        let ids: HashSet<&str> = order.iter().copied().collect();
        Ok(Subgraph {
            nodes: order
                .iter()
                .filter_map(|id| state.nodes.get(*id).cloned())
                .collect(),
            edges: state.edges_among(&ids),
        })
    }

    async fn list_nodes(
        &self,
        label: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<NodePage> {
        let state = self.read()?;
        let start = cursor.map_or(Bound::Unbounded, |c| Bound::Excluded(c.to_owned()));
        let mut matching = state
            .nodes
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(_, node)| node)
            .filter(|node| label.is_none_or(|label| node.label == label));
        let nodes: Vec<Node> = matching.by_ref().take(limit).cloned().collect();
        let next_cursor = if matching.next().is_some() {
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
        let terms: Vec<String> = words(query).collect();
        if terms.is_empty() {
            return Err(Error::InvalidArgument(
                "full-text query has no words".into(),
            ));
        }
        let state = self.read()?;
        let mut hits: Vec<NodeHit> = state
            .nodes
            .values()
            .filter(|node| label.is_none_or(|label| node.label == label))
            .filter_map(|node| {
                let mut counts: HashMap<String, usize> = HashMap::new();
                for word in searchable_text(&node.properties).flat_map(words) {
                    *counts.entry(word).or_default() += 1;
                }
                let mut score = 0usize;
                for term in &terms {
                    score += *counts.get(term)?;
                }
                Some(NodeHit {
                    node: node.clone(),
                    score: score as f32,
                })
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.node.id.cmp(&b.node.id))
        });
        hits.truncate(limit);
        Ok(hits)
    }

    async fn ping(&self) -> Result<()> {
        self.read().map(|_| ())
    }
}
