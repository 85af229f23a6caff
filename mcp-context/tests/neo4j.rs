//! `ContextService` on a real Neo4j (`MCP_TEST_NEO4J_URL`): documents, chunk vectors, keyword
//! search on the full-text index and the knowledge graph all live in Neo4j, survive a new
//! service over the same database, and concurrent knowledge-graph writers lose nothing.
//! Every test works in its own graph namespace and document namespace.

#![cfg(feature = "neo4j")]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_backends::neo4j::Neo4jVectorIndex;
use mcp_backends::testing::{server_url, unique_prefix};
use mcp_backends::VectorIndex;
use mcp_context::{
    AddManyRequest, AddRequest, ContextService, DocumentInput, Entity, GraphEdge, GraphRequest,
    HashEmbedder, ObservationInput, RelateRequest, Relation, SearchMode, SearchRequest,
    DEFAULT_DIMENSIONS, RELATED_TO, SIMILAR_TO,
};
use mcp_core::{Error, Registry, RequestContext};
use serde_json::json;

/// The chunk index of one test: chunk ids derive from document ids, so tests (like graph
/// namespaces) never share an index.
fn index_name(namespace: &str) -> String {
    format!("ctx_{}", namespace.trim_end_matches(':'))
}

async fn service(url: &str, namespace: &str) -> ContextService {
    ContextService::connect_neo4j(
        url,
        &index_name(namespace),
        namespace,
        Arc::new(HashEmbedder::default()),
    )
    .await
    .unwrap()
}

/// Every chunk of `namespace` is gone (the documents were deleted); then its index is dropped.
async fn all_chunks_gone_then_drop_index(url: &str, namespace: &str) {
    assert_eq!(chunk_count(url, namespace).await, 0);
    drop_chunk_index(url, namespace).await;
}

/// Removes the test's chunk index (its graph namespace is emptied by the test itself).
async fn drop_chunk_index(url: &str, namespace: &str) {
    Neo4jVectorIndex::connect(url, &index_name(namespace), DEFAULT_DIMENSIONS)
        .await
        .unwrap()
        .drop_index()
        .await
        .unwrap();
}

/// The number of chunk vectors in the test's chunk index.
async fn chunk_count(url: &str, namespace: &str) -> usize {
    Neo4jVectorIndex::connect(url, &index_name(namespace), DEFAULT_DIMENSIONS)
        .await
        .unwrap()
        .len()
        .await
        .unwrap()
}

fn search(query: &str, namespace: &str, mode: SearchMode) -> SearchRequest {
    SearchRequest {
        query: query.into(),
        mode: Some(mode),
        namespace: Some(namespace.into()),
        ..Default::default()
    }
}

async fn top_ids(context: &ContextService, request: SearchRequest) -> Vec<String> {
    context
        .search(request)
        .await
        .unwrap()
        .results
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

const DOCUMENTS: [(&str, &str, &str); 3] = [
    (
        "rust",
        "lang",
        "Rust guarantees memory safety without a garbage collector through ownership and borrowing.",
    ),
    (
        "tea",
        "food",
        "Green tea is steeped briefly in water below boiling so the leaves do not turn bitter.",
    ),
    (
        "neo4j",
        "db",
        "Neo4j stores nodes and relationships and answers Cypher queries over the property graph.",
    ),
];

#[tokio::test(flavor = "multi_thread")]
async fn documents_search_and_persistence() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let context = service(&url, &namespace).await;
    for (id, kind, text) in DOCUMENTS {
        let added = context
            .add(AddRequest {
                text: text.into(),
                metadata: json!({"kind": kind}).as_object().cloned(),
                id: Some(id.into()),
                namespace: Some(namespace.clone()),
            })
            .await
            .unwrap();
        assert_eq!(added.status, "indexed");
    }
    let got = context.get("tea").await.unwrap();
    assert_eq!(got.text, DOCUMENTS[1].2);
    assert_eq!(got.metadata["kind"], "food");
    assert_eq!(got.namespace, namespace);

    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let ids = top_ids(
            &context,
            search("garbage collector ownership", &namespace, mode),
        )
        .await;
        assert_eq!(
            ids.first().map(String::as_str),
            Some("rust"),
            "{mode:?}: {ids:?}"
        );
        let ids = top_ids(&context, search("Cypher property graph", &namespace, mode)).await;
        assert_eq!(
            ids.first().map(String::as_str),
            Some("neo4j"),
            "{mode:?}: {ids:?}"
        );
    }
    // Keyword search runs on Neo4j's full-text index: any query word matches, ranked.
    let ids = top_ids(
        &context,
        search(
            "bitter leaves or borrowing",
            &namespace,
            SearchMode::Keyword,
        ),
    )
    .await;
    assert_eq!(
        ids.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["rust".to_owned(), "tea".to_owned()])
    );
    assert_eq!(ids[0], "tea", "two matching words beat one");
    let hit = &context
        .search(search("boiling water", &namespace, SearchMode::Keyword))
        .await
        .unwrap()
        .results[0];
    assert_eq!((hit.id.as_str(), hit.chunk), ("tea", 0));
    assert!(hit.text.contains("boiling"));
    // Metadata filters and namespaces apply to keyword hits.
    let mut only_db = search("nodes tea garbage", &namespace, SearchMode::Keyword);
    only_db.filter = json!({"kind": "db"}).as_object().cloned();
    assert_eq!(top_ids(&context, only_db).await, ["neo4j"]);
    let elsewhere = search("tea", &unique_prefix(), SearchMode::Hybrid);
    assert!(top_ids(&context, elsewhere).await.is_empty());
    // Only what documents say is searched: the name of their namespace matches none.
    let by_namespace = search(&namespace, &namespace, SearchMode::Keyword);
    assert!(top_ids(&context, by_namespace).await.is_empty());

    assert!(context.delete("neo4j").await.unwrap().deleted);
    assert!(matches!(
        context.get("neo4j").await,
        Err(Error::NotFound(_))
    ));
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let ids = top_ids(&context, search("Cypher property graph", &namespace, mode)).await;
        assert!(!ids.contains(&"neo4j".to_owned()), "{mode:?}: {ids:?}");
    }

    // A new service over the same database sees the same documents and indexes, with no
    // rebuild.
    drop(context);
    let reopened = service(&url, &namespace).await;
    assert_eq!(reopened.get("rust").await.unwrap().text, DOCUMENTS[0].2);
    assert_eq!(reopened.rebuild_keyword_index().await.unwrap(), 0);
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let ids = top_ids(&reopened, search("steeped green tea", &namespace, mode)).await;
        assert_eq!(
            ids.first().map(String::as_str),
            Some("tea"),
            "{mode:?}: {ids:?}"
        );
    }
    for (id, _, _) in DOCUMENTS {
        reopened.delete(id).await.unwrap();
    }
    assert!(
        top_ids(&reopened, search("tea", &namespace, SearchMode::Hybrid))
            .await
            .is_empty()
    );
    drop_chunk_index(&url, &namespace).await;
}

fn add_request(id: &str, text: &str, namespace: &str) -> AddRequest {
    AddRequest {
        text: text.into(),
        metadata: None,
        id: Some(id.into()),
        namespace: Some(namespace.into()),
    }
}

/// Edges within `depth` hops of `id`, as `(from, to, type)`, sorted.
async fn edges_around(context: &ContextService, id: &str, depth: u32) -> Vec<GraphEdge> {
    let mut edges = context
        .graph(GraphRequest {
            id: Some(id.into()),
            depth: Some(depth),
            limit: None,
        })
        .await
        .unwrap()
        .edges;
    edges.sort_by(|a, b| (&a.from, &a.to, &a.rel_type).cmp(&(&b.from, &b.to, &b.rel_type)));
    edges
}

fn edge_keys(edges: &[GraphEdge]) -> Vec<(&str, &str, &str)> {
    edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.rel_type.as_str()))
        .collect()
}

const FOX: &str = "The quick brown fox jumps over the lazy dog";

#[tokio::test(flavor = "multi_thread")]
async fn add_links_relate_and_expand_on_neo4j() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let elsewhere = format!("{namespace}other");
    let context = service(&url, &namespace).await;

    let a = context
        .add(add_request("a", FOX, &namespace))
        .await
        .unwrap();
    assert!(a.linked.is_empty(), "{a:?}");
    // Same words: cosine 1 with the hash embedder, above the 0.8 threshold.
    let b = context
        .add(add_request("b", &format!("{FOX}!"), &namespace))
        .await
        .unwrap();
    assert_eq!(b.linked, ["a"]);
    // Linked by metadata: existing ids only, and no similarity link to an unrelated text.
    let c = context
        .add(AddRequest {
            metadata: json!({"related": ["a", "nobody"], "links": "c"})
                .as_object()
                .cloned(),
            ..add_request("c", "Interest rates rose again this quarter", &namespace)
        })
        .await
        .unwrap();
    assert_eq!(c.linked, ["a"]);
    // Similar documents are linked only within their document namespace.
    let d = context
        .add(add_request("d", FOX, &elsewhere))
        .await
        .unwrap();
    assert!(d.linked.is_empty(), "{d:?}");

    let edges = edges_around(&context, "a", 1).await;
    assert_eq!(
        edge_keys(&edges),
        [("b", "a", SIMILAR_TO), ("c", "a", RELATED_TO)]
    );
    let score = edges[0].properties["score"].as_f64().unwrap();
    assert!((score - 1.0).abs() < 1e-3, "{score}");
    assert!(edges_around(&context, "d", 1).await.is_empty());

    // relate: a new edge, then the same edge with new properties, then errors.
    let relate = |from: &str, to: &str, rel_type: &str, properties: serde_json::Value| {
        context.relate(RelateRequest {
            from: from.into(),
            to: to.into(),
            rel_type: rel_type.into(),
            properties: properties.as_object().cloned(),
        })
    };
    let created = relate("c", "d", "CITES", json!({"page": 3})).await.unwrap();
    assert!(created.created);
    assert_eq!(created.edge.rel_type, "CITES");
    let updated = relate("c", "d", "CITES", json!({"page": 4})).await.unwrap();
    assert!(!updated.created);
    let cites: Vec<GraphEdge> = edges_around(&context, "d", 1)
        .await
        .into_iter()
        .filter(|e| e.rel_type == "CITES")
        .collect();
    assert_eq!(edge_keys(&cites), [("c", "d", "CITES")]);
    assert_eq!(cites[0].properties["page"], 4, "one edge, new properties");
    let missing = relate("c", "nobody", "CITES", json!({})).await.unwrap_err();
    assert!(matches!(missing, Error::NotFound(_)), "{missing:?}");
    let untyped = relate("c", "d", " ", json!({})).await.unwrap_err();
    assert!(matches!(untyped, Error::InvalidArgument(_)), "{untyped:?}");

    // expand: the graph neighbours of every hit, itself excluded, across namespaces.
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let mut request = search("interest rates quarter", &namespace, mode);
        request.limit = Some(1);
        let plain = context.search(request.clone()).await.unwrap();
        assert_eq!(plain.results[0].id, "c", "{mode:?}");
        assert!(plain.results[0].related.is_none());
        request.expand = Some(1);
        let hit = &context.search(request.clone()).await.unwrap().results[0];
        assert_eq!(hit.id, "c", "{mode:?}");
        let mut around: Vec<&str> = hit
            .related
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.id.as_str())
            .collect();
        around.sort_unstable();
        assert_eq!(around, ["a", "d"], "{mode:?}");
        request.expand = Some(2);
        let hit = &context.search(request).await.unwrap().results[0];
        let mut around: Vec<&str> = hit
            .related
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.id.as_str())
            .collect();
        around.sort_unstable();
        assert_eq!(around, ["a", "b", "d"], "{mode:?}: b is two hops away");
        assert!(hit
            .related
            .as_ref()
            .unwrap()
            .iter()
            .all(|n| n.label == "Document"));
    }

    // Re-adding a document drops the links derived from its old version (its similarity
    // links, its metadata links) and keeps the ones `relate` made and the ones others hold.
    context
        .add(add_request("c", "Interest rates fell", &namespace))
        .await
        .unwrap();
    assert_eq!(
        edge_keys(&edges_around(&context, "c", 1).await),
        [("c", "d", "CITES")]
    );
    context
        .add(add_request("a", "Gardening in spring", &namespace))
        .await
        .unwrap();
    assert!(edges_around(&context, "a", 1).await.is_empty());
    assert!(edges_around(&context, "b", 1).await.is_empty());

    for id in ["a", "b", "c", "d"] {
        assert!(context.delete(id).await.unwrap().deleted, "{id}");
    }
    all_chunks_gone_then_drop_index(&url, &namespace).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn re_adding_an_id_replaces_the_document_on_neo4j() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let context = service(&url, &namespace).await;
    let long = "alpha beta gamma. ".repeat(200);
    let first = context
        .add(add_request("doc", &long, &namespace))
        .await
        .unwrap();
    assert!(first.chunks > 1, "{first:?}");
    assert_eq!(chunk_count(&url, &namespace).await, first.chunks);
    let hit = &context
        .search(search("alpha gamma", &namespace, SearchMode::Hybrid))
        .await
        .unwrap()
        .results[0];
    assert_eq!(hit.id, "doc");

    let second = context
        .add(add_request("doc", "completely different words", &namespace))
        .await
        .unwrap();
    assert_eq!(second.chunks, 1);
    assert_eq!(context.get("doc").await.unwrap().chunks, 1);
    assert_eq!(
        context.get("doc").await.unwrap().text,
        "completely different words"
    );
    // The old chunks are gone from the vector index and from every search mode.
    assert_eq!(chunk_count(&url, &namespace).await, 1);
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let found = context
            .search(search("alpha beta gamma", &namespace, mode))
            .await
            .unwrap();
        for hit in &found.results {
            assert!(!hit.text.contains("alpha"), "{mode:?}: {hit:?}");
        }
        let ids = top_ids(&context, search("different words", &namespace, mode)).await;
        assert_eq!(ids, ["doc"], "{mode:?}");
    }
    let found = top_ids(
        &context,
        search("alpha beta gamma", &namespace, SearchMode::Keyword),
    )
    .await;
    assert!(found.is_empty(), "{found:?}");

    assert!(context.delete("doc").await.unwrap().deleted);
    all_chunks_gone_then_drop_index(&url, &namespace).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn add_many_on_neo4j() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let context = service(&url, &namespace).await;
    let document = |id: Option<&str>, text: &str, metadata: serde_json::Value| DocumentInput {
        text: text.into(),
        metadata: metadata.as_object().cloned(),
        id: id.map(str::to_owned),
    };
    let long = "alpha beta gamma. ".repeat(200);
    let added = context
        .add_many(AddManyRequest {
            documents: vec![
                document(Some("a"), FOX, json!({})),
                document(Some("b"), &format!("{FOX}!"), json!({"kind": "copy"})),
                document(
                    Some("c"),
                    "Interest rates rose again this quarter",
                    json!({"related": ["a"]}),
                ),
                document(
                    None,
                    "Unrelated text about gardening",
                    json!({"links": "a"}),
                ),
                document(Some("long"), &long, json!({})),
                // A later document with the same id replaces the earlier one.
                document(Some("long"), "short after all", json!({})),
            ],
            namespace: Some(namespace.clone()),
        })
        .await
        .unwrap();
    assert_eq!(added.ids.len(), 6);
    assert_eq!(&added.ids[..3], ["a", "b", "c"]);
    assert_eq!(&added.ids[4..], ["long", "long"]);
    let generated = added.ids[3].clone();
    assert!(!generated.is_empty());

    assert_eq!(context.get("b").await.unwrap().metadata["kind"], "copy");
    assert_eq!(context.get("c").await.unwrap().namespace, namespace);
    let long_doc = context.get("long").await.unwrap();
    assert_eq!(
        (long_doc.text.as_str(), long_doc.chunks),
        ("short after all", 1)
    );
    // a, b, c, the generated one and one chunk of "long".
    assert_eq!(chunk_count(&url, &namespace).await, 5);

    let mut expected = vec![
        ("b", "a", SIMILAR_TO),
        ("c", "a", RELATED_TO),
        (generated.as_str(), "a", RELATED_TO),
    ];
    expected.sort_unstable();
    assert_eq!(edge_keys(&edges_around(&context, "a", 1).await), expected);
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let ids = top_ids(&context, search("gardening", &namespace, mode)).await;
        assert_eq!(ids.first(), Some(&generated), "{mode:?}: {ids:?}");
        let found = context
            .search(search("alpha beta gamma", &namespace, mode))
            .await
            .unwrap();
        for hit in &found.results {
            assert!(!hit.text.contains("alpha"), "{mode:?}: {hit:?}");
        }
    }

    for id in &added.ids[..5] {
        assert!(context.delete(id).await.unwrap().deleted, "{id}");
    }
    all_chunks_gone_then_drop_index(&url, &namespace).await;
}

fn entity(name: &str, observations: &[&str]) -> Entity {
    Entity {
        name: name.into(),
        entity_type: "agent".into(),
        observations: observations.iter().map(|o| o.to_string()).collect(),
    }
}

fn relation(from: &str, to: &str, relation_type: &str) -> Relation {
    Relation {
        from: from.into(),
        to: to.into(),
        relation_type: relation_type.into(),
    }
}

/// Every entity of the knowledge graph, page by page, checking the paging contract.
async fn read_all(context: &ContextService, page_size: usize) -> (Vec<Entity>, Vec<Relation>) {
    let (mut entities, mut relations) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    loop {
        let page = context
            .read_graph(cursor.as_deref(), Some(page_size))
            .await
            .unwrap();
        assert!(page.entities.len() <= page_size);
        entities.extend(page.entities);
        relations.extend(page.relations);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(
        entities.windows(2).all(|w| w[0].name < w[1].name),
        "pages are ordered by name, every entity once"
    );
    (entities, relations)
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_knowledge_graph_writers_lose_nothing() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    const WRITERS: usize = 16;
    let namespace = unique_prefix();
    let context = Arc::new(service(&url, &namespace).await);
    context
        .create_entities(vec![entity("hub", &["the shared entity"])])
        .await
        .unwrap();

    let writers = (0..WRITERS).map(|w| {
        let context = Arc::clone(&context);
        tokio::spawn(async move {
            let (a, b) = (format!("w{w:02}-a"), format!("w{w:02}-b"));
            // Every writer also tries to create the hub: only the first one ever did.
            let created = context
                .create_entities(vec![
                    entity(&a, &["first"]),
                    entity(&b, &[]),
                    entity("hub", &["overwritten?"]),
                ])
                .await
                .unwrap();
            assert_eq!(created.created.len(), 2);
            for i in 0..3 {
                context
                    .add_observations(vec![
                        ObservationInput {
                            entity_name: "hub".into(),
                            contents: vec![format!("seen by {w}-{i}")],
                        },
                        ObservationInput {
                            entity_name: a.clone(),
                            contents: vec![format!("note {i}"), "first".into()],
                        },
                    ])
                    .await
                    .unwrap();
            }
            context
                .create_relations(vec![
                    relation(&a, "hub", "reports_to"),
                    relation(&a, &b, "knows"),
                    relation(&a, &b, "knows"),
                ])
                .await
                .unwrap();
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }

    // Read back through a new service over the same database: everything persisted.
    drop(context);
    let context = service(&url, &namespace).await;
    let (entities, relations) = read_all(&context, 7).await;
    assert_eq!(entities.len(), 1 + 2 * WRITERS, "every entity survives");
    let hub = entities.iter().find(|e| e.name == "hub").unwrap();
    assert_eq!(
        hub.observations.len(),
        1 + 3 * WRITERS,
        "no lost observation"
    );
    assert_eq!(hub.observations[0], "the shared entity");
    for w in 0..WRITERS {
        let a = entities
            .iter()
            .find(|e| e.name == format!("w{w:02}-a"))
            .unwrap();
        assert_eq!(a.observations, ["first", "note 0", "note 1", "note 2"]);
        assert!(entities.iter().any(|e| e.name == format!("w{w:02}-b")));
    }
    // A page carries the relations among its own entities; the whole graph carries all.
    assert!(relations.len() <= 2 * WRITERS);
    let whole = context.read_graph(None, Some(1000)).await.unwrap();
    let mut expected: Vec<Relation> = (0..WRITERS)
        .flat_map(|w| {
            let (a, b) = (format!("w{w:02}-a"), format!("w{w:02}-b"));
            [relation(&a, "hub", "reports_to"), relation(&a, &b, "knows")]
        })
        .collect();
    let mut got = whole.relations.clone();
    let key = |r: &Relation| (r.from.clone(), r.to.clone(), r.relation_type.clone());
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected, "no lost or duplicated relation");
    assert!(whole.next_cursor.is_none());

    let found = context.search_nodes("seen by 7-2").await.unwrap();
    assert_eq!(found.entities.len(), 1);
    assert_eq!(found.entities[0].name, "hub");

    let names: Vec<String> = entities.into_iter().map(|e| e.name).collect();
    assert_eq!(
        context.delete_entities(names).await.unwrap().deleted.len(),
        1 + 2 * WRITERS
    );
    assert!(read_all(&context, 7).await.0.is_empty());
    drop_chunk_index(&url, &namespace).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn knowledge_graph_through_the_registry() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let registry = Registry::builder()
        .service(Arc::new(service(&url, &namespace).await))
        .build()
        .unwrap();
    let ctx = RequestContext::local();
    let created = registry
        .call(
            "context",
            "create_entities",
            json!({"entities": [
                {"name": "Alice", "entityType": "person", "observations": ["likes tea"]},
                {"name": "Acme", "entity_type": "company", "observations": []}
            ]}),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(created["created"].as_array().unwrap().len(), 2);
    registry
        .call(
            "context",
            "create_relations",
            json!({"relations": [{"from": "Alice", "to": "Acme", "relationType": "works_at"}]}),
            &ctx,
        )
        .await
        .unwrap();
    let err = registry
        .call(
            "context",
            "create_relations",
            json!({"relations": [{"from": "Alice", "to": "Nobody", "relation_type": "knows"}]}),
            &ctx,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err:?}");
    let opened = registry
        .call(
            "context",
            "open_nodes",
            json!({"names": ["Alice", "Acme"]}),
            &ctx,
        )
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(
        opened["relations"],
        json!([{"from": "Alice", "to": "Acme", "relation_type": "works_at"}])
    );
    let health = registry.health().await;
    assert!(health.ok, "{health:?}");
    assert!(health.services["context"]
        .iter()
        .all(|backend| backend.backend == "neo4j"));
    registry
        .call(
            "context",
            "delete_entities",
            json!({"entity_names": ["Alice", "Acme"]}),
            &ctx,
        )
        .await
        .unwrap();
    drop_chunk_index(&url, &namespace).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_neo4j_is_unavailable_quickly() {
    let started = Instant::now();
    let err = ContextService::connect_neo4j(
        "bolt://127.0.0.1:1",
        "unreachable",
        "",
        Arc::new(HashEmbedder::default()),
    )
    .await
    .map(|_| ())
    .expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[derive(serde::Deserialize)]
struct CorpusDocument {
    id: String,
    topic: String,
    text: String,
}

#[derive(serde::Deserialize)]
struct CorpusQuery {
    query: String,
    relevant: Vec<String>,
    kind: String,
}

/// Mean recall@5 of `mode` over the corpus queries of `kind`, in `namespace`.
async fn recall_at_5(
    context: &ContextService,
    namespace: &str,
    mode: SearchMode,
    kind: &str,
) -> f64 {
    let queries: Vec<CorpusQuery> =
        serde_json::from_str(include_str!("corpus/queries.json")).unwrap();
    let queries: Vec<CorpusQuery> = queries.into_iter().filter(|q| q.kind == kind).collect();
    let mut total = 0.0;
    for query in &queries {
        let mut request = search(&query.query, namespace, mode);
        request.limit = Some(5);
        let found = top_ids(context, request)
            .await
            .into_iter()
            .filter(|id| query.relevant.contains(id))
            .count();
        total += found as f64 / query.relevant.len() as f64;
    }
    total / queries.len() as f64
}

/// The labelled corpus of `tests/retrieval.rs` on Neo4j (full-text keyword search, Neo4j
/// vector index) against the in-memory service in the same run (BM25, exact vectors), with
/// the hash embedder: `cargo test -p mcp-context --features neo4j --test neo4j -- --nocapture`
/// prints the table.
#[tokio::test(flavor = "multi_thread")]
async fn corpus_retrieval_matches_in_memory() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let namespace = unique_prefix();
    let on_neo4j = service(&url, &namespace).await;
    let in_memory = ContextService::in_memory();
    let documents: Vec<CorpusDocument> =
        serde_json::from_str(include_str!("corpus/documents.json")).unwrap();
    for context in [&on_neo4j, &in_memory] {
        for document in &documents {
            context
                .add(AddRequest {
                    text: document.text.clone(),
                    metadata: json!({"topic": document.topic}).as_object().cloned(),
                    id: Some(document.id.clone()),
                    namespace: Some(namespace.clone()),
                })
                .await
                .unwrap();
        }
    }
    println!("\nrecall@5 on tests/corpus, hash embedder (keyword queries / paraphrases)");
    println!("| mode | in-memory | Neo4j |");
    println!("|---|---|---|");
    for (name, mode) in [
        ("keyword", SearchMode::Keyword),
        ("semantic", SearchMode::Semantic),
        ("hybrid", SearchMode::Hybrid),
    ] {
        let mut row = Vec::new();
        for context in [&in_memory, &on_neo4j] {
            row.push([
                recall_at_5(context, &namespace, mode, "keyword").await,
                recall_at_5(context, &namespace, mode, "paraphrase").await,
            ]);
        }
        println!(
            "| {name} | {:.2} / {:.2} | {:.2} / {:.2} |",
            row[0][0], row[0][1], row[1][0], row[1][1]
        );
        // Neo4j's Lucene BM25 (no stopword list; idf does that work) is within a few points
        // of the in-process BM25; the vectors are the same, so semantic search is too.
        assert!(row[1][0] >= row[0][0] - 0.05, "{name}: {row:?}");
        assert!(row[1][0] >= 0.9, "{name}: {row:?}");
    }
    for document in &documents {
        on_neo4j.delete(&document.id).await.unwrap();
    }
    drop_chunk_index(&url, &namespace).await;
}
