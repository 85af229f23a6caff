//! Knowledge-graph actions, matching the MCP reference memory server, via registry JSON.

mod common;

use common::{call, registry};
use mcp_core::{Error, Registry};
use serde_json::{json, Value};

async fn seed(registry: &Registry) {
    let created = call(
        registry,
        "create_entities",
        json!({"entities": [
            {"name": "Alice", "entity_type": "person", "observations": ["likes tea", "works remotely"]},
            {"name": "Acme", "entity_type": "company", "observations": ["makes anvils"]},
            {"name": "Bob", "entityType": "person", "observations": []}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(created["created"].as_array().unwrap().len(), 3);
    let relations = call(
        registry,
        "create_relations",
        json!({"relations": [
            {"from": "Alice", "to": "Acme", "relation_type": "works_at"},
            {"from": "Bob", "to": "Alice", "relationType": "knows"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(relations["created"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn create_skips_existing_entities_and_duplicate_relations() {
    let registry = registry();
    seed(&registry).await;
    let again = call(
        &registry,
        "create_entities",
        json!({"entities": [
            {"name": "Alice", "entity_type": "robot", "observations": ["x"]},
            {"name": "Carol", "entity_type": "person", "observations": ["new"]}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        again["created"],
        json!([{"name": "Carol", "entity_type": "person", "observations": ["new"]}])
    );
    let dup = call(
        &registry,
        "create_relations",
        json!({"relations": [
            {"from": "Alice", "to": "Acme", "relation_type": "works_at"},
            {"from": "Carol", "to": "Acme", "relation_type": "works_at"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        dup["created"],
        json!([{"from": "Carol", "to": "Acme", "relation_type": "works_at"}])
    );
    let missing = call(
        &registry,
        "create_relations",
        json!({"relations": [{"from": "Alice", "to": "Nobody", "relation_type": "knows"}]}),
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    let alice = call(&registry, "open_nodes", json!({"names": ["Alice"]}))
        .await
        .unwrap();
    assert_eq!(alice["entities"][0]["entity_type"], "person");
}

#[tokio::test]
async fn observations_are_added_and_deleted() {
    let registry = registry();
    seed(&registry).await;
    let added = call(
        &registry,
        "add_observations",
        json!({"observations": [{"entity_name": "Alice", "contents": ["likes tea", "speaks French"]}]}),
    )
    .await
    .unwrap();
    assert_eq!(
        added["added"],
        json!([{"entity_name": "Alice", "added_observations": ["speaks French"]}])
    );
    let missing = call(
        &registry,
        "add_observations",
        json!({"observations": [
            {"entity_name": "Bob", "contents": ["early riser"]},
            {"entityName": "Nobody", "contents": ["x"]}
        ]}),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&missing, Error::NotFound(m) if m.contains("Nobody")),
        "{missing:?}"
    );
    let bob = call(&registry, "open_nodes", json!({"names": ["Bob"]}))
        .await
        .unwrap();
    assert_eq!(
        bob["entities"][0]["observations"],
        json!([]),
        "nothing added on error"
    );

    let deleted = call(
        &registry,
        "delete_observations",
        json!({"deletions": [
            {"entity_name": "Alice", "observations": ["likes tea", "never said"]},
            {"entity_name": "Nobody", "observations": ["x"]}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        deleted["deleted"],
        json!([{"entity_name": "Alice", "deleted_observations": ["likes tea"]}])
    );
    let alice = call(&registry, "open_nodes", json!({"names": ["Alice"]}))
        .await
        .unwrap();
    assert_eq!(
        alice["entities"][0]["observations"],
        json!(["works remotely", "speaks French"])
    );
}

#[tokio::test]
async fn delete_entities_removes_their_relations() {
    let registry = registry();
    seed(&registry).await;
    let deleted = call(
        &registry,
        "delete_entities",
        json!({"entity_names": ["Alice", "Nobody"]}),
    )
    .await
    .unwrap();
    assert_eq!(deleted["deleted"], json!(["Alice"]));
    let graph = call(&registry, "read_graph", json!({})).await.unwrap();
    let names: Vec<&Value> = graph["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names, [&json!("Acme"), &json!("Bob")]);
    assert_eq!(graph["relations"], json!([]));
    assert!(graph.get("next_cursor").is_none());
}

#[tokio::test]
async fn delete_relations_skips_missing_ones() {
    let registry = registry();
    seed(&registry).await;
    let deleted = call(
        &registry,
        "delete_relations",
        json!({"relations": [
            {"from": "Alice", "to": "Acme", "relation_type": "works_at"},
            {"from": "Alice", "to": "Acme", "relation_type": "owns"}
        ]}),
    )
    .await
    .unwrap();
    assert_eq!(
        deleted["deleted"],
        json!([{"from": "Alice", "to": "Acme", "relation_type": "works_at"}])
    );
    let graph = call(&registry, "read_graph", json!({})).await.unwrap();
    assert_eq!(
        graph["relations"],
        json!([{"from": "Bob", "to": "Alice", "relation_type": "knows"}])
    );
}

#[tokio::test]
async fn read_graph_pages_with_a_cursor() {
    let registry = registry();
    seed(&registry).await;
    // Documents are not entities.
    call(&registry, "add", json!({"text": "a document", "id": "Doc"}))
        .await
        .unwrap();
    let first = call(&registry, "read_graph", json!({"limit": 2}))
        .await
        .unwrap();
    let names: Vec<&Value> = first["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names, [&json!("Acme"), &json!("Alice")]);
    assert_eq!(
        first["relations"],
        json!([{"from": "Alice", "to": "Acme", "relation_type": "works_at"}])
    );
    let cursor = first["next_cursor"].clone();
    assert!(cursor.is_string());
    let second = call(
        &registry,
        "read_graph",
        json!({"limit": 2, "cursor": cursor}),
    )
    .await
    .unwrap();
    let names: Vec<&Value> = second["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names, [&json!("Bob")]);
    assert!(second.get("next_cursor").is_none());
}

#[tokio::test]
async fn search_and_open_nodes_return_relations_among_matches() {
    let registry = registry();
    seed(&registry).await;
    let people = call(&registry, "search_nodes", json!({"query": "PERSON"}))
        .await
        .unwrap();
    let names: Vec<&Value> = people["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["name"])
        .collect();
    assert_eq!(names, [&json!("Alice"), &json!("Bob")]);
    assert_eq!(
        people["relations"],
        json!([{"from": "Bob", "to": "Alice", "relation_type": "knows"}])
    );
    let anvils = call(&registry, "search_nodes", json!({"query": "anvil"}))
        .await
        .unwrap();
    assert_eq!(anvils["entities"][0]["name"], "Acme");
    assert_eq!(anvils["relations"], json!([]));
    let by_name = call(&registry, "search_nodes", json!({"query": "lic"}))
        .await
        .unwrap();
    assert_eq!(by_name["entities"][0]["name"], "Alice");

    let opened = call(
        &registry,
        "open_nodes",
        json!({"names": ["Acme", "Alice", "Ghost"]}),
    )
    .await
    .unwrap();
    assert_eq!(opened["entities"].as_array().unwrap().len(), 2);
    assert_eq!(
        opened["relations"],
        json!([{"from": "Alice", "to": "Acme", "relation_type": "works_at"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_observation_writers_lose_nothing() {
    let registry = registry();
    call(
        &registry,
        "create_entities",
        json!({"entities": [{"name": "hub", "entity_type": "topic", "observations": []}]}),
    )
    .await
    .unwrap();
    let writers: Vec<_> = (0..16)
        .map(|writer| {
            let registry = registry.clone();
            tokio::spawn(async move {
                for round in 0..10 {
                    let contents = vec![format!("w{writer} r{round}"), "shared".to_owned()];
                    call(
                        &registry,
                        "add_observations",
                        json!({"observations": [{"entity_name": "hub", "contents": contents}]}),
                    )
                    .await
                    .unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let hub = call(&registry, "open_nodes", json!({"names": ["hub"]}))
        .await
        .unwrap();
    let observations = hub["entities"][0]["observations"].as_array().unwrap();
    assert_eq!(observations.len(), 16 * 10 + 1);
    for writer in 0..16 {
        for round in 0..10 {
            assert!(observations.contains(&json!(format!("w{writer} r{round}"))));
        }
    }
}
