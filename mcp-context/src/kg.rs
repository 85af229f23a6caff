//! Knowledge-graph actions with the behaviour of the MCP reference "memory" server: entities
//! are `Entity` nodes (id = name, properties `entity_type` and `observations`), relations are
//! edges whose type is the relation type.

use std::collections::HashSet;

use mcp_backends::{Edge, Metadata, Node};
use mcp_core::{Error, Result};
use serde_json::Value;

use crate::service::{bounded_limit, ContextService};
use crate::types::*;

/// Graph label of knowledge-graph entities.
pub const ENTITY_LABEL: &str = "Entity";
/// Entities listed per backend page while scanning for `search_nodes`.
const SCAN_PAGE: usize = 500;

impl ContextService {
    /// Creates the entities whose names do not exist yet (also skipping repeats within the
    /// call); returns the ones created.
    pub async fn create_entities(&self, entities: Vec<Entity>) -> Result<CreatedEntities> {
        for entity in &entities {
            if entity.name.trim().is_empty() {
                return Err(Error::InvalidArgument("entity name is empty".into()));
            }
        }
        let mut created = Vec::new();
        for entity in entities {
            if self.graph.create_node(entity_node(&entity)).await? {
                created.push(entity);
            }
        }
        Ok(CreatedEntities { created })
    }

    /// Creates relations between existing entities, skipping ones that exist; a missing
    /// endpoint is [`Error::NotFound`] and then nothing is created.
    pub async fn create_relations(&self, relations: Vec<Relation>) -> Result<CreatedRelations> {
        let names: Vec<String> = relations
            .iter()
            .flat_map(|relation| [relation.from.clone(), relation.to.clone()])
            .collect();
        let existing = self.entity_names(&names).await?;
        if let Some(missing) = names.iter().find(|name| !existing.contains(*name)) {
            return Err(Error::NotFound(format!("entity `{missing}`")));
        }
        for relation in &relations {
            if relation.relation_type.trim().is_empty() {
                return Err(Error::InvalidArgument("relation_type is empty".into()));
            }
        }
        let mut created = Vec::new();
        for relation in relations {
            let edge = Edge {
                from: relation.from.clone(),
                to: relation.to.clone(),
                rel_type: relation.relation_type.clone(),
                properties: Metadata::new(),
            };
            if self.graph.upsert_edge(edge).await? {
                created.push(relation);
            }
        }
        Ok(CreatedRelations { created })
    }

    /// Adds observations to existing entities atomically (concurrent writers never lose
    /// each other's additions); a missing entity is [`Error::NotFound`] and then nothing is
    /// added. Returns, per input, the observations that were new.
    pub async fn add_observations(
        &self,
        observations: Vec<ObservationInput>,
    ) -> Result<AddObservationsResult> {
        let names: Vec<String> = observations
            .iter()
            .map(|input| input.entity_name.clone())
            .collect();
        let existing = self.entity_names(&names).await?;
        if let Some(missing) = names.iter().find(|name| !existing.contains(*name)) {
            return Err(Error::NotFound(format!(
                "Entity with name {missing} not found"
            )));
        }
        let mut added = Vec::with_capacity(observations.len());
        for input in observations {
            let new = self
                .graph
                .append_unique(&input.entity_name, "observations", &input.contents)
                .await?;
            added.push(AddedObservations {
                entity_name: input.entity_name,
                added_observations: new,
            });
        }
        Ok(AddObservationsResult { added })
    }

    /// Deletes entities and their relations; names that do not exist are skipped.
    pub async fn delete_entities(&self, names: Vec<String>) -> Result<DeletedEntities> {
        let existing = self.entity_names(&names).await?;
        let mut deleted = Vec::new();
        for name in names {
            if existing.contains(&name) && self.graph.delete_node(&name).await? {
                deleted.push(name);
            }
        }
        Ok(DeletedEntities { deleted })
    }

    /// Deletes relations; ones that do not exist are skipped.
    pub async fn delete_relations(&self, relations: Vec<Relation>) -> Result<DeletedRelations> {
        let mut deleted = Vec::new();
        for relation in relations {
            if self
                .graph
                .delete_edge(&relation.from, &relation.to, &relation.relation_type)
                .await?
            {
                deleted.push(relation);
            }
        }
        Ok(DeletedRelations { deleted })
    }

    /// Removes observations from entities; missing entities are skipped.
    pub async fn delete_observations(
        &self,
        deletions: Vec<ObservationDeletion>,
    ) -> Result<DeleteObservationsResult> {
        let names: Vec<String> = deletions
            .iter()
            .map(|deletion| deletion.entity_name.clone())
            .collect();
        let existing = self.entity_names(&names).await?;
        let mut deleted = Vec::new();
        for deletion in deletions {
            if !existing.contains(&deletion.entity_name) {
                continue;
            }
            let removed = match self
                .graph
                .remove_values(
                    &deletion.entity_name,
                    "observations",
                    &deletion.observations,
                )
                .await
            {
                Ok(removed) => removed,
                Err(mcp_backends::Error::NotFound(_)) => continue,
                Err(err) => return Err(err.into()),
            };
            deleted.push(DeletedObservations {
                entity_name: deletion.entity_name,
                deleted_observations: removed,
            });
        }
        Ok(DeleteObservationsResult { deleted })
    }

    /// One page of entities ordered by name, with the relations among them.
    pub async fn read_graph(
        &self,
        cursor: Option<&str>,
        limit: Option<usize>,
    ) -> Result<KnowledgeGraph> {
        let limit = bounded_limit(limit, 100)?;
        let page = self
            .graph
            .list_nodes(Some(ENTITY_LABEL), cursor, limit)
            .await?;
        let mut graph = self.with_relations(page.nodes).await?;
        graph.next_cursor = page.next_cursor;
        Ok(graph)
    }

    /// Entities whose name, type or any observation contains `query` (case-insensitive), with
    /// the relations among them.
    pub async fn search_nodes(&self, query: &str) -> Result<KnowledgeGraph> {
        let needle = query.to_lowercase();
        let mut matches = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .graph
                .list_nodes(Some(ENTITY_LABEL), cursor.as_deref(), SCAN_PAGE)
                .await?;
            matches.extend(
                page.nodes
                    .into_iter()
                    .filter(|node| entity_matches(&node_entity(node), &needle)),
            );
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        self.with_relations(matches).await
    }

    /// The named entities (missing ones skipped), with the relations among them.
    pub async fn open_nodes(&self, names: Vec<String>) -> Result<KnowledgeGraph> {
        let nodes = self
            .graph
            .get_nodes(&names)
            .await?
            .into_iter()
            .filter(|node| node.label == ENTITY_LABEL)
            .collect();
        self.with_relations(nodes).await
    }

    /// Which of `names` are entities.
    async fn entity_names(&self, names: &[String]) -> Result<HashSet<String>> {
        let mut unique: Vec<String> = names.to_vec();
        unique.sort();
        unique.dedup();
        Ok(self
            .graph
            .get_nodes(&unique)
            .await?
            .into_iter()
            .filter(|node| node.label == ENTITY_LABEL)
            .map(|node| node.id)
            .collect())
    }

    async fn with_relations(&self, mut nodes: Vec<Node>) -> Result<KnowledgeGraph> {
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        nodes.dedup_by(|a, b| a.id == b.id);
        let ids: Vec<String> = nodes.iter().map(|node| node.id.clone()).collect();
        let relations = self
            .graph
            .edges_among(&ids)
            .await?
            .into_iter()
            .map(|edge| Relation {
                from: edge.from,
                to: edge.to,
                relation_type: edge.rel_type,
            })
            .collect();
        Ok(KnowledgeGraph {
            entities: nodes.iter().map(node_entity).collect(),
            relations,
            next_cursor: None,
        })
    }
}

fn entity_node(entity: &Entity) -> Node {
    let mut properties = Metadata::new();
    properties.insert(
        "entity_type".into(),
        Value::from(entity.entity_type.clone()),
    );
    let mut observations: Vec<&String> = Vec::new();
    for observation in &entity.observations {
        if !observations.contains(&observation) {
            observations.push(observation);
        }
    }
    properties.insert(
        "observations".into(),
        Value::Array(
            observations
                .into_iter()
                .map(|o| Value::from(o.clone()))
                .collect(),
        ),
    );
    Node {
        id: entity.name.clone(),
        label: ENTITY_LABEL.into(),
        properties,
    }
}

fn node_entity(node: &Node) -> Entity {
    Entity {
        name: node.id.clone(),
        entity_type: node
            .properties
            .get("entity_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        observations: node
            .properties
            .get("observations")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn entity_matches(entity: &Entity, needle: &str) -> bool {
    entity.name.to_lowercase().contains(needle)
        || entity.entity_type.to_lowercase().contains(needle)
        || entity
            .observations
            .iter()
            .any(|observation| observation.to_lowercase().contains(needle))
}
