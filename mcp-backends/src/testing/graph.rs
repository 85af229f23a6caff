//! Conformance suite for [`GraphStore`].

use futures::future::join_all;
use serde_json::json;

use super::unique_prefix;
use crate::graph::{Edge, GraphStore, Node};
use crate::vector::Metadata;
use crate::Error;

fn props(value: serde_json::Value) -> Metadata {
    value.as_object().cloned().unwrap_or_default()
}

fn node(id: &str, label: &str, value: serde_json::Value) -> Node {
    Node {
        id: id.to_owned(),
        label: label.to_owned(),
        properties: props(value),
    }
}

fn edge(from: &str, to: &str, rel_type: &str) -> Edge {
    Edge {
        from: from.to_owned(),
        to: to.to_owned(),
        rel_type: rel_type.to_owned(),
        properties: Metadata::new(),
    }
}

/// An alphanumeric label unique to this run (Neo4j labels must be identifiers).
fn suite_label(prefix: &str) -> String {
    format!("Suite{}", prefix.trim_end_matches(':'))
}

/// Runs every GraphStore check.
pub async fn run_all(graph: &dyn GraphStore) {
    nodes_and_edges(graph).await;
    neighbourhood_and_listing(graph).await;
    text_search(graph).await;
    bookkeeping_is_not_searched(graph).await;
    list_properties(graph).await;
}

/// Create never overwrites, upsert keeps edges, deleting a node removes its edges.
pub async fn nodes_and_edges(graph: &dyn GraphStore) {
    let p = unique_prefix();
    let label = suite_label(&p);
    let (a, b, c) = (format!("{p}a"), format!("{p}b"), format!("{p}c"));
    assert!(graph
        .create_node(node(&a, &label, json!({"v": 1})))
        .await
        .unwrap());
    assert!(!graph
        .create_node(node(&a, &label, json!({"v": 2})))
        .await
        .unwrap());
    assert!(graph
        .create_node(node(&b, &label, json!({})))
        .await
        .unwrap());
    let got = graph
        .get_nodes(&[b.clone(), format!("{p}missing"), a.clone()])
        .await
        .unwrap();
    assert_eq!(
        got.iter().map(|n| n.id.clone()).collect::<Vec<_>>(),
        [b.clone(), a.clone()]
    );
    assert_eq!(got[1].properties["v"], 1);

    assert!(matches!(
        graph.upsert_edge(edge(&a, &c, "knows")).await,
        Err(Error::NotFound(_))
    ));
    assert!(graph.upsert_edge(edge(&a, &b, "knows")).await.unwrap());
    let mut weighted = edge(&a, &b, "knows");
    weighted.properties = props(json!({"w": 2}));
    assert!(!graph.upsert_edge(weighted).await.unwrap());
    graph
        .upsert_node(node(&a, &label, json!({"v": 3})))
        .await
        .unwrap();
    let edges = graph.edges_among(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(edges.len(), 1, "upsert_node keeps edges");
    assert_eq!(edges[0].properties["w"], 2);
    assert!(graph
        .edges_among(std::slice::from_ref(&a))
        .await
        .unwrap()
        .is_empty());

    graph
        .upsert_node(node(&c, &label, json!({})))
        .await
        .unwrap();
    graph.upsert_edge(edge(&c, &a, "likes")).await.unwrap();
    assert!(graph.delete_edge(&c, &a, "likes").await.unwrap());
    assert!(!graph.delete_edge(&c, &a, "likes").await.unwrap());
    graph.upsert_edge(edge(&c, &a, "likes")).await.unwrap();
    assert!(graph.delete_node(&a).await.unwrap());
    assert!(!graph.delete_node(&a).await.unwrap());
    assert!(graph
        .edges_among(&[a.clone(), b.clone(), c.clone()])
        .await
        .unwrap()
        .is_empty());
    for id in [&b, &c] {
        graph.delete_node(id).await.unwrap();
    }
    graph.ping().await.unwrap();
}

/// Bounded neighbourhoods by depth and limit; cursor paging over one label.
pub async fn neighbourhood_and_listing(graph: &dyn GraphStore) {
    let p = unique_prefix();
    let label = suite_label(&p);
    // A chain n0 - n1 - n2 - n3, plus n1 <- n4 (direction is ignored when walking).
    let ids: Vec<String> = (0..5).map(|i| format!("{p}n{i}")).collect();
    for id in &ids {
        graph
            .create_node(node(id, &label, json!({})))
            .await
            .unwrap();
    }
    for (from, to) in [(0, 1), (1, 2), (2, 3), (4, 1)] {
        graph
            .upsert_edge(edge(&ids[from], &ids[to], "next"))
            .await
            .unwrap();
    }
    let names = |sub: &crate::graph::Subgraph| -> Vec<String> {
        sub.nodes
            .iter()
            .map(|n| n.id.trim_start_matches(&p).to_owned())
            .collect()
    };
    let zero = graph.neighbourhood(&ids[0], 0, 10).await.unwrap();
    assert_eq!(names(&zero), ["n0"]);
    let one = graph.neighbourhood(&ids[1], 1, 10).await.unwrap();
    assert_eq!(one.nodes[0].id, ids[1]);
    let mut around: Vec<String> = names(&one)[1..].to_vec();
    around.sort();
    assert_eq!(around, ["n0", "n2", "n4"]);
    assert_eq!(one.edges.len(), 3);
    let two = graph.neighbourhood(&ids[0], 2, 10).await.unwrap();
    let mut reach: Vec<String> = names(&two);
    reach.sort();
    assert_eq!(reach, ["n0", "n1", "n2", "n4"]);
    let limited = graph.neighbourhood(&ids[0], 3, 2).await.unwrap();
    assert_eq!(names(&limited), ["n0", "n1"]);
    assert_eq!(limited.edges.len(), 1);
    assert!(matches!(
        graph.neighbourhood(&format!("{p}none"), 1, 10).await,
        Err(Error::NotFound(_))
    ));

    let mut listed = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = graph
            .list_nodes(Some(&label), cursor.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.nodes.len() <= 2);
        listed.extend(page.nodes.into_iter().map(|n| n.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(listed, ids, "ordered by id, every node once");
    for id in &ids {
        graph.delete_node(id).await.unwrap();
    }
}

/// Every query term must match, case-insensitively, strings and string arrays alike.
pub async fn text_search(graph: &dyn GraphStore) {
    let p = unique_prefix();
    let label = suite_label(&p);
    let other = format!("{label}Other");
    let word = format!("zq{}", p.trim_end_matches(':'));
    let nodes = [
        node(
            &format!("{p}1"),
            &label,
            json!({"text": format!("The {word} Rust compiler")}),
        ),
        node(
            &format!("{p}2"),
            &label,
            json!({"observations": [format!("likes {word}"), "rust and RUST"]}),
        ),
        node(
            &format!("{p}3"),
            &label,
            json!({"text": format!("{word} in Python")}),
        ),
        node(
            &format!("{p}4"),
            &other,
            json!({"text": format!("{word} rust")}),
        ),
    ];
    for n in &nodes {
        graph.create_node(n.clone()).await.unwrap();
    }
    let hits = graph
        .search_text(&format!("{} RUST", word.to_uppercase()), Some(&label), 10)
        .await
        .unwrap();
    let mut ids: Vec<String> = hits.iter().map(|h| h.node.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, [format!("{p}1"), format!("{p}2")]);
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    let any_label = graph.search_text(&word, None, 10).await.unwrap();
    assert_eq!(any_label.len(), 4);
    assert_eq!(graph.search_text(&word, None, 2).await.unwrap().len(), 2);
    assert!(matches!(
        graph.search_text("  ", None, 10).await,
        Err(Error::InvalidArgument(_))
    ));
    for n in &nodes {
        graph.delete_node(&n.id).await.unwrap();
    }
}

/// The bookkeeping properties (`namespace`, `id`, `doc_id`) are not searched; the others
/// are, and are kept as they were.
pub async fn bookkeeping_is_not_searched(graph: &dyn GraphStore) {
    let p = unique_prefix();
    let label = suite_label(&p);
    let word = format!("zq{}", p.trim_end_matches(':'));
    let [content, namespace, id, doc_id] =
        ["content", "space", "ident", "docident"].map(|part| format!("{word}{part}"));
    let properties = json!({
        "text": format!("plain {content}"),
        "namespace": namespace,
        "id": id,
        "doc_id": doc_id,
    });
    let stored = node(&format!("{p}1"), &label, properties);
    graph.create_node(stored.clone()).await.unwrap();
    let hits = graph.search_text(&content, None, 10).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].node, stored,
        "bookkeeping properties are still stored"
    );
    for bookkeeping in [&namespace, &id, &doc_id] {
        let hits = graph.search_text(bookkeeping, None, 10).await.unwrap();
        assert!(hits.is_empty(), "{bookkeeping}: {hits:?}");
    }
    // The same rule after an upsert.
    graph.upsert_node(stored.clone()).await.unwrap();
    assert!(graph
        .search_text(&namespace, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        graph.search_text(&content, None, 10).await.unwrap().len(),
        1
    );
    graph.delete_node(&stored.id).await.unwrap();
}

/// `append_unique` / `remove_values` semantics, and no lost updates under concurrency.
pub async fn list_properties(graph: &dyn GraphStore) {
    let p = unique_prefix();
    let label = suite_label(&p);
    let id = format!("{p}entity");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(matches!(
        graph.append_unique(&id, "obs", &s(&["x"])).await,
        Err(Error::NotFound(_))
    ));
    graph
        .create_node(node(&id, &label, json!({"scalar": 3})))
        .await
        .unwrap();
    assert_eq!(
        graph
            .append_unique(&id, "obs", &s(&["a", "b"]))
            .await
            .unwrap(),
        s(&["a", "b"])
    );
    assert_eq!(
        graph
            .append_unique(&id, "obs", &s(&["b", "c"]))
            .await
            .unwrap(),
        s(&["c"])
    );
    assert_eq!(
        graph
            .remove_values(&id, "obs", &s(&["a", "zz"]))
            .await
            .unwrap(),
        s(&["a"])
    );
    let stored = graph.get_nodes(std::slice::from_ref(&id)).await.unwrap();
    assert_eq!(stored[0].properties["obs"], json!(["b", "c"]));
    assert!(matches!(
        graph.append_unique(&id, "scalar", &s(&["x"])).await,
        Err(Error::InvalidArgument(_))
    ));

    let writers = (0..16).map(|w| {
        let id = id.clone();
        async move {
            for i in 0..5 {
                graph
                    .append_unique(&id, "obs", &[format!("w{w}-{i}")])
                    .await
                    .unwrap();
            }
        }
    });
    join_all(writers).await;
    let stored = graph.get_nodes(std::slice::from_ref(&id)).await.unwrap();
    let obs = stored[0].properties["obs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(obs.len(), 2 + 16 * 5, "no appended value lost");
    graph.delete_node(&id).await.unwrap();
}
