//! Every context action through the registry's JSON interface, and argument errors.

mod common;

use common::{call, registry};
use mcp_core::{Error, RequestContext};
use serde_json::{json, Value};

#[tokio::test]
async fn lists_every_action_with_a_schema() {
    let registry = registry();
    let names: Vec<String> = registry
        .actions()
        .into_iter()
        .map(|(service, spec)| {
            assert_eq!(spec.params_schema["type"], "object", "{}", spec.name);
            format!("{service}_{}", spec.name)
        })
        .collect();
    for action in [
        "add",
        "add_many",
        "get",
        "delete",
        "search",
        "graph",
        "relate",
        "create_entities",
        "create_relations",
        "add_observations",
        "delete_entities",
        "delete_relations",
        "delete_observations",
        "read_graph",
        "search_nodes",
        "open_nodes",
    ] {
        assert!(names.contains(&format!("context_{action}")), "{action}");
    }
    let health = registry.health().await;
    assert!(health.ok);
}

#[tokio::test]
async fn add_get_search_delete_round_trip() {
    let registry = registry();
    let added = call(
        &registry,
        "add",
        json!({"text": "Tokio is an asynchronous runtime for Rust.", "metadata": {"lang": "rust"}, "id": "tokio"}),
    )
    .await
    .unwrap();
    assert_eq!(added["id"], "tokio");
    assert_eq!(added["chunks"], 1);
    assert_eq!(added["status"], "indexed");

    let generated = call(
        &registry,
        "add",
        json!({"text": "Python has a global interpreter lock."}),
    )
    .await
    .unwrap();
    let generated_id = generated["id"].as_str().unwrap().to_owned();
    assert!(!generated_id.is_empty());

    let doc = call(&registry, "get", json!({"id": "tokio"}))
        .await
        .unwrap();
    assert_eq!(doc["text"], "Tokio is an asynchronous runtime for Rust.");
    assert_eq!(doc["metadata"], json!({"lang": "rust"}));
    assert_eq!(doc["namespace"], "default");

    for mode in ["hybrid", "semantic", "keyword"] {
        let found = call(
            &registry,
            "search",
            json!({"query": "asynchronous runtime", "mode": mode, "limit": 1}),
        )
        .await
        .unwrap();
        let results = found["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{mode}");
        assert_eq!(results[0]["id"], "tokio", "{mode}");
        assert_eq!(results[0]["metadata"]["lang"], "rust");
        assert!(results[0]["text"].as_str().unwrap().contains("Tokio"));
        assert!(results[0].get("related").is_none());
    }
    let filtered = call(
        &registry,
        "search",
        json!({"query": "interpreter lock", "filter": {"lang": "rust"}}),
    )
    .await
    .unwrap();
    let ids: Vec<&Value> = filtered["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| &hit["id"])
        .collect();
    assert_eq!(ids, [&json!("tokio")]);

    let deleted = call(&registry, "delete", json!({"id": "tokio"}))
        .await
        .unwrap();
    assert_eq!(deleted["deleted"], true);
    let again = call(&registry, "delete", json!({"id": "tokio"}))
        .await
        .unwrap();
    assert_eq!(again["deleted"], false);
    let missing = call(&registry, "get", json!({"id": "tokio"}))
        .await
        .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    let found = call(
        &registry,
        "search",
        json!({"query": "asynchronous runtime tokio", "mode": "keyword"}),
    )
    .await
    .unwrap();
    assert!(found["results"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn re_adding_an_id_replaces_the_document() {
    let registry = registry();
    let long = "alpha beta gamma. ".repeat(200);
    let first = call(&registry, "add", json!({"text": long, "id": "doc"}))
        .await
        .unwrap();
    assert!(first["chunks"].as_u64().unwrap() > 1);
    call(
        &registry,
        "add",
        json!({"text": "completely different words", "id": "doc"}),
    )
    .await
    .unwrap();
    let doc = call(&registry, "get", json!({"id": "doc"})).await.unwrap();
    assert_eq!(doc["chunks"], 1);
    for mode in ["keyword", "semantic"] {
        let found = call(
            &registry,
            "search",
            json!({"query": "alpha beta gamma", "mode": mode}),
        )
        .await
        .unwrap();
        for hit in found["results"].as_array().unwrap() {
            assert!(
                !hit["text"].as_str().unwrap().contains("alpha"),
                "{mode}: {hit}"
            );
        }
    }
}

#[tokio::test]
async fn add_many_links_similar_and_related_documents() {
    let registry = registry();
    let added = call(
        &registry,
        "add_many",
        json!({"documents": [
            {"text": "The quick brown fox jumps over the lazy dog", "id": "a"},
            {"text": "The quick brown fox jumps over the lazy dog!", "id": "b"},
            {"text": "Interest rates rose again this quarter", "id": "c", "metadata": {"related": ["a"]}},
            {"text": "Unrelated text about gardening", "metadata": {"links": "a"}}
        ]}),
    )
    .await
    .unwrap();
    let ids = added["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 4);
    assert_eq!(&ids[..3], &[json!("a"), json!("b"), json!("c")]);

    let graph = call(&registry, "graph", json!({"id": "a", "depth": 1}))
        .await
        .unwrap();
    let edges = graph["edges"].as_array().unwrap();
    let has = |from: &str, to: &Value, kind: &str| {
        edges
            .iter()
            .any(|e| e["from"] == from && &e["to"] == to && e["type"] == kind)
    };
    assert!(has("b", &json!("a"), "SIMILAR_TO"), "{edges:?}");
    assert!(has("c", &json!("a"), "RELATED_TO"), "{edges:?}");
    assert!(has(ids[3].as_str().unwrap(), &json!("a"), "RELATED_TO"));
    assert!(!has("c", &json!("a"), "SIMILAR_TO"));
    assert_eq!(graph["nodes"][0]["id"], "a");

    let whole = call(&registry, "graph", json!({"limit": 2})).await.unwrap();
    assert_eq!(whole["nodes"].as_array().unwrap().len(), 2);

    let related = call(
        &registry,
        "search",
        json!({"query": "interest rates", "expand": 1, "limit": 1}),
    )
    .await
    .unwrap();
    let hit = &related["results"][0];
    assert_eq!(hit["id"], "c");
    let around: Vec<&Value> = hit["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["id"])
        .collect();
    assert_eq!(around, [&json!("a")]);
}

#[tokio::test]
async fn relate_creates_and_updates_edges() {
    let registry = registry();
    call(&registry, "add", json!({"text": "one", "id": "x"}))
        .await
        .unwrap();
    call(&registry, "add", json!({"text": "two", "id": "y"}))
        .await
        .unwrap();
    let edge = call(
        &registry,
        "relate",
        json!({"from": "x", "to": "y", "type": "CITES", "properties": {"page": 3}}),
    )
    .await
    .unwrap();
    assert_eq!(edge["created"], true);
    assert_eq!(edge["edge"]["type"], "CITES");
    let again = call(
        &registry,
        "relate",
        json!({"from": "x", "to": "y", "type": "CITES"}),
    )
    .await
    .unwrap();
    assert_eq!(again["created"], false);
    let missing = call(
        &registry,
        "relate",
        json!({"from": "x", "to": "nope", "type": "CITES"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
}

#[tokio::test]
async fn namespaces_partition_search() {
    let registry = registry();
    let ctx = RequestContext::local().with_namespace("team-a");
    registry
        .call(
            "context",
            "add",
            json!({"text": "shared words here", "id": "a1"}),
            &ctx,
        )
        .await
        .unwrap();
    call(
        &registry,
        "add",
        json!({"text": "shared words here", "id": "b1", "namespace": "team-b"}),
    )
    .await
    .unwrap();
    let found = registry
        .call("context", "search", json!({"query": "shared words"}), &ctx)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    let ids: Vec<&Value> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| &h["id"])
        .collect();
    assert_eq!(ids, [&json!("a1")]);
    let all = call(&registry, "search", json!({"query": "shared words"}))
        .await
        .unwrap();
    assert_eq!(all["results"].as_array().unwrap().len(), 2);
    // Similar documents are linked only within a namespace.
    let graph = call(&registry, "graph", json!({"id": "a1"})).await.unwrap();
    assert!(graph["edges"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn argument_errors_are_invalid_argument() {
    let registry = registry();
    let cases = [
        ("add", json!({}), "missing field `text`"),
        ("add", json!({"text": 5}), "invalid type"),
        (
            "add",
            json!({"text": "x", "colour": "red"}),
            "unknown field `colour`",
        ),
        ("add", json!({"text": "   "}), "empty"),
        ("add", json!({"text": "x", "metadata": [1]}), "invalid type"),
        ("add_many", json!({"documents": [{"text": ""}]}), "empty"),
        (
            "add_many",
            json!({"documents": [{"body": "x"}]}),
            "unknown field `body`",
        ),
        ("get", json!({}), "missing field `id`"),
        ("delete", json!({"id": 1}), "invalid type"),
        ("search", json!({}), "missing field `query`"),
        (
            "search",
            json!({"query": "x", "mode": "fuzzy"}),
            "unknown variant",
        ),
        ("search", json!({"query": "x", "limit": 0}), "limit"),
        (
            "search",
            json!({"query": "x", "limit": "ten"}),
            "invalid type",
        ),
        ("search", json!({"query": ""}), "empty"),
        ("graph", json!({"depth": 99}), "depth"),
        ("graph", json!({"limit": 0}), "limit"),
        (
            "relate",
            json!({"from": "a", "to": "b"}),
            "missing field `type`",
        ),
        (
            "create_entities",
            json!({"entities": [{"name": "a"}]}),
            "missing field `entity_type`",
        ),
        (
            "create_relations",
            json!({"relations": [{"from": "a", "to": "b"}]}),
            "missing field `relation_type`",
        ),
        (
            "add_observations",
            json!({"observations": [{"entity_name": "a"}]}),
            "missing field `contents`",
        ),
        (
            "delete_entities",
            json!({"names": ["a"]}),
            "unknown field `names`",
        ),
        (
            "delete_observations",
            json!({"deletions": [{"entity_name": "a", "observations": "x"}]}),
            "invalid type",
        ),
        ("read_graph", json!({"limit": -1}), "invalid value"),
        ("search_nodes", json!({}), "missing field `query`"),
        ("open_nodes", json!({"names": "a"}), "invalid type"),
        ("open_nodes", json!([1]), "JSON object"),
    ];
    for (action, params, needle) in cases {
        let err = call(&registry, action, params.clone()).await.unwrap_err();
        match &err {
            Error::InvalidArgument(message) => {
                assert!(message.contains(needle), "{action} {params}: {message}")
            }
            other => panic!("{action} {params}: expected InvalidArgument, got {other:?}"),
        }
    }
    let unknown = call(&registry, "frobnicate", json!({})).await.unwrap_err();
    assert!(matches!(unknown, Error::NotFound(_)));
}
