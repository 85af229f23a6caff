//! The conformance suites against a real Neo4j (`MCP_TEST_NEO4J_URL`), plus what only Neo4j
//! needs checking: the recall of its approximate vector search, schema guards, isolation by
//! namespace, and a dead server failing fast.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mcp_backends::graph::{GraphStore, Node};
use mcp_backends::neo4j::{Neo4jGraphStore, Neo4jVectorIndex};
use mcp_backends::testing::{self, server_url, unique_prefix};
use mcp_backends::vector::{cosine, Metadata, VectorIndex, VectorRecord};
use mcp_backends::Error;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The index every conformance run shares; the suite keeps runs apart by unique ids and a
/// `suite` metadata filter, and deletes what it wrote.
const CONFORMANCE_INDEX: &str = "mcp_conformance_vectors";

#[tokio::test(flavor = "multi_thread")]
async fn vector_index() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let index = Neo4jVectorIndex::connect(&url, CONFORMANCE_INDEX, testing::vector::DIMENSIONS)
        .await
        .unwrap();
    testing::vector::run_all(&index).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_store() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    testing::graph::run_all(&Neo4jGraphStore::connect(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_store_in_a_namespace() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let store = Neo4jGraphStore::connect(&url)
        .await
        .unwrap()
        .with_namespace(&unique_prefix())
        .unwrap();
    testing::graph::run_all(&store).await;
}

/// A pseudo-random vector (xorshift), so the test needs no extra crate.
fn random_vector(state: &mut u64, dimensions: usize) -> Vec<f32> {
    (0..dimensions)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            (*state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// The approximate path (index much larger than the candidates) against exact ground truth:
/// recall@10 over 20 queries on 1,000 random 16-dimensional vectors.
#[tokio::test(flavor = "multi_thread")]
async fn approximate_search_recall_and_filters() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    const DIMENSIONS: usize = 16;
    let name = format!("recall_{}", unique_prefix().trim_end_matches(':'));
    let index = Neo4jVectorIndex::connect(&url, &name, DIMENSIONS)
        .await
        .unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let records: Vec<VectorRecord> = (0..1000)
        .map(|i| {
            let mut metadata = Metadata::new();
            metadata.insert(
                "parity".into(),
                json!(if i % 2 == 0 { "even" } else { "odd" }),
            );
            VectorRecord {
                id: format!("v{i}"),
                vector: random_vector(&mut state, DIMENSIONS),
                metadata,
            }
        })
        .collect();
    for batch in records.chunks(250) {
        index.upsert(batch.to_vec()).await.unwrap();
    }
    assert_eq!(index.len().await.unwrap(), 1000);

    let odd: Metadata = json!({"parity": "odd"}).as_object().cloned().unwrap();
    let (mut found, mut wanted) = (0usize, 0usize);
    for _ in 0..20 {
        let query = random_vector(&mut state, DIMENSIONS);
        let mut exact: Vec<(f32, &str)> = records
            .iter()
            .map(|r| (cosine(&query, &r.vector), r.id.as_str()))
            .collect();
        exact.sort_by(|a, b| b.0.total_cmp(&a.0));
        let truth: HashSet<&str> = exact.iter().take(10).map(|(_, id)| *id).collect();
        let hits = index.search(&query, 10, &Metadata::new()).await.unwrap();
        assert_eq!(hits.len(), 10);
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
        for hit in &hits {
            let record = records.iter().find(|r| r.id == hit.id).unwrap();
            let exact = cosine(&query, &record.vector);
            assert!((hit.score - exact).abs() < 1e-3, "{} vs {exact}", hit.score);
        }
        found += hits
            .iter()
            .filter(|h| truth.contains(h.id.as_str()))
            .count();
        wanted += 10;

        // A filter that half the records pass: over-fetching still fills k.
        let filtered = index.search(&query, 10, &odd).await.unwrap();
        assert_eq!(filtered.len(), 10);
        assert!(filtered.iter().all(|h| h.metadata["parity"] == "odd"));
    }
    let recall = found as f64 / wanted as f64;
    eprintln!("neo4j vector index recall@10 = {recall:.3}");
    assert!(recall >= 0.9, "recall@10 {recall}");

    // A filter that only one record passes, far from the query: the search widens to it.
    let rare: Metadata = json!({"rare": true}).as_object().cloned().unwrap();
    let mut lonely = records[500].clone();
    lonely.metadata.insert("rare".into(), json!(true));
    index.upsert(vec![lonely]).await.unwrap();
    let query = random_vector(&mut state, DIMENSIONS);
    let hits = index.search(&query, 3, &rare).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id.as_str()).collect::<Vec<_>>(),
        ["v500"]
    );

    // Nearly collinear vectors: the exact order among them survives (no quantization, exact
    // re-scoring).
    let collinear: Vec<VectorRecord> = (1..=40)
        .map(|i| {
            let mut vector = vec![0.0; DIMENSIONS];
            vector[..4].copy_from_slice(&[i as f32, 1.0, 0.5, -1.0]);
            VectorRecord {
                id: format!("c{i}"),
                vector,
                metadata: Metadata::new(),
            }
        })
        .collect();
    index.upsert(collinear).await.unwrap();
    let mut axis = vec![0.0; DIMENSIONS];
    axis[0] = 1.0;
    let top: Vec<String> = index
        .search(&axis, 3, &Metadata::new())
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(top, ["c40", "c39", "c38"]);

    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    assert_eq!(index.delete(&ids).await.unwrap(), 1000);
    assert_eq!(index.len().await.unwrap(), 40);
    index.drop_index().await.unwrap();
}

/// Zero vectors have no direction: stored ones score 0, a zero query scores everything 0.
#[tokio::test(flavor = "multi_thread")]
async fn zero_vectors_score_zero() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let index = Neo4jVectorIndex::connect(&url, CONFORMANCE_INDEX, 8)
        .await
        .unwrap();
    let suite = unique_prefix();
    let only: Metadata = json!({ "suite": suite }).as_object().cloned().unwrap();
    let mut unit = vec![0.0; 8];
    unit[0] = 1.0;
    let records = vec![
        VectorRecord {
            id: format!("{suite}zero"),
            vector: vec![0.0; 8],
            metadata: only.clone(),
        },
        VectorRecord {
            id: format!("{suite}unit"),
            vector: unit.clone(),
            metadata: only.clone(),
        },
    ];
    index.upsert(records).await.unwrap();
    let hits = index.search(&unit, 10, &only).await.unwrap();
    let scored: Vec<(String, f32)> = hits
        .iter()
        .map(|h| (h.id.trim_start_matches(&suite).to_owned(), h.score))
        .collect();
    assert_eq!(scored.len(), 2);
    assert_eq!(scored[0].0, "unit");
    assert!((scored[0].1 - 1.0).abs() < 1e-6);
    assert_eq!(scored[1].0, "zero");
    assert!(scored[1].1.abs() < 1e-6);
    let hits = index.search(&[0.0; 8], 10, &only).await.unwrap();
    assert_eq!(hits.len(), 2);
    assert!(hits.iter().all(|h| h.score.abs() < 1e-6));
    let ids = [format!("{suite}zero"), format!("{suite}unit")];
    assert_eq!(index.delete(&ids).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn vector_index_names_and_dimensions_are_checked() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    for bad in ["x`) DETACH DELETE (n", "1index", ""] {
        assert!(matches!(
            Neo4jVectorIndex::connect(&url, bad, 8).await,
            Err(Error::InvalidArgument(_))
        ));
    }
    assert!(matches!(
        Neo4jVectorIndex::connect(&url, "zero_dimensions", 0).await,
        Err(Error::InvalidArgument(_))
    ));
    // The shared conformance index has 8 dimensions; asking it for 4 is refused.
    assert!(matches!(
        Neo4jVectorIndex::connect(&url, CONFORMANCE_INDEX, 4).await,
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn namespaces_do_not_see_each_other() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let base = Neo4jGraphStore::connect(&url).await.unwrap();
    let one = base.clone().with_namespace(&unique_prefix()).unwrap();
    let two = base.with_namespace(&unique_prefix()).unwrap();
    let word = format!("zq{}", unique_prefix().trim_end_matches(':'));
    let node = Node {
        id: "shared-id".into(),
        label: "Thing".into(),
        properties: json!({"text": word}).as_object().cloned().unwrap(),
    };
    assert!(one.create_node(node.clone()).await.unwrap());
    assert!(
        two.create_node(node.clone()).await.unwrap(),
        "same id, other namespace"
    );
    assert!(one.delete_node("shared-id").await.unwrap());
    assert_eq!(two.get_nodes(&["shared-id".into()]).await.unwrap(), [node]);
    assert!(one.search_text(&word, None, 10).await.unwrap().is_empty());
    assert_eq!(two.search_text(&word, None, 10).await.unwrap().len(), 1);
    assert!(one
        .list_nodes(None, None, 10)
        .await
        .unwrap()
        .nodes
        .is_empty());
    assert!(two.delete_node("shared-id").await.unwrap());
    assert!(matches!(
        two.clone().with_namespace("bad\u{1f}ns"),
        Err(Error::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_server_is_unavailable_quickly() {
    let started = Instant::now();
    let err = Neo4jGraphStore::connect("bolt://127.0.0.1:1")
        .await
        .expect_err("nothing listens on port 1");
    assert!(
        matches!(err, Error::Unavailable { .. } | Error::Timeout { .. }),
        "{err:?}"
    );
    let err = Neo4jVectorIndex::connect("bolt://127.0.0.1:1", "unreachable", 8)
        .await
        .expect_err("nothing listens on port 1");
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// A TCP relay to the real Neo4j that the test can cut and restore, to simulate an outage
/// without stopping the shared server.
struct Relay {
    port: u16,
    target: String,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(port: u16, target: String) -> Relay {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = target.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when the task is aborted) closes every relayed connection.
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { port, target, task }
    }

    fn url(&self) -> String {
        format!("bolt://127.0.0.1:{}", self.port)
    }

    /// Closes the listener and every relayed connection.
    async fn cut(self) -> (u16, String) {
        self.task.abort();
        let _ = self.task.await;
        (self.port, self.target)
    }
}

/// A server that goes away mid-life fails calls with `Unavailable` quickly (not after the
/// driver's minute of retries), and the same store works again once it is back.
#[tokio::test(flavor = "multi_thread")]
async fn outage_is_unavailable_quickly_and_recovers() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let target = url.trim_start_matches("bolt://").to_owned();
    let relay = Relay::start(0, target).await;
    let graph = Neo4jGraphStore::connect(&relay.url())
        .await
        .unwrap()
        .with_namespace(&unique_prefix())
        .unwrap();
    let vectors = Neo4jVectorIndex::connect(&relay.url(), CONFORMANCE_INDEX, 8)
        .await
        .unwrap();
    let node = Node {
        id: "survivor".into(),
        label: "Thing".into(),
        properties: Metadata::new(),
    };
    assert!(graph.create_node(node.clone()).await.unwrap());

    let (port, target) = relay.cut().await;
    for _ in 0..2 {
        let started = Instant::now();
        let err = graph.get_nodes(&["survivor".into()]).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        let err = vectors.len().await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        let err = graph
            .append_unique("survivor", "notes", &["lost?".into()])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    let relay = Relay::start(port, target).await;
    let mut back = None;
    for _ in 0..20 {
        if let Ok(nodes) = graph.get_nodes(&["survivor".into()]).await {
            back = Some(nodes);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back.expect("the store recovers"), [node]);
    vectors.ping().await.unwrap();
    assert!(graph.delete_node("survivor").await.unwrap());
    relay.cut().await;
}

/// Racing writers of one node id or one `(from, to, type)` edge: exactly one creates it.
#[tokio::test(flavor = "multi_thread")]
async fn racing_creators_make_one_node_and_one_edge() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let graph = Neo4jGraphStore::connect(&url)
        .await
        .unwrap()
        .with_namespace(&unique_prefix())
        .unwrap();
    let node = |id: &str| Node {
        id: id.into(),
        label: "Thing".into(),
        properties: Metadata::new(),
    };
    for _ in 0..3 {
        let racers: Vec<_> = (0..16)
            .map(|_| {
                let graph = graph.clone();
                let node = node("contested");
                tokio::spawn(async move { graph.create_node(node).await.unwrap() })
            })
            .collect();
        let mut created = 0;
        for racer in racers {
            created += usize::from(racer.await.unwrap());
        }
        assert_eq!(created, 1, "one creator wins");
        graph.create_node(node("other")).await.unwrap();

        let racers: Vec<_> = (0..16)
            .map(|_| {
                let graph = graph.clone();
                tokio::spawn(async move {
                    graph
                        .upsert_edge(mcp_backends::graph::Edge {
                            from: "contested".into(),
                            to: "other".into(),
                            rel_type: "knows".into(),
                            properties: Metadata::new(),
                        })
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut created = 0;
        for racer in racers {
            created += usize::from(racer.await.unwrap());
        }
        assert_eq!(created, 1, "one edge creator wins");
        let ids = ["contested".to_owned(), "other".to_owned()];
        assert_eq!(graph.edges_among(&ids).await.unwrap().len(), 1);
        for id in &ids {
            assert!(graph.delete_node(id).await.unwrap());
        }
    }
}

/// Limits far beyond the data (up to `usize::MAX`) mean "everything", never a failed query.
#[tokio::test(flavor = "multi_thread")]
async fn huge_limits_mean_everything() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let graph = Neo4jGraphStore::connect(&url)
        .await
        .unwrap()
        .with_namespace(&unique_prefix())
        .unwrap();
    let word = format!("zq{}", unique_prefix().trim_end_matches(':'));
    for id in ["a", "b"] {
        graph
            .create_node(Node {
                id: id.into(),
                label: "Thing".into(),
                properties: json!({"text": word}).as_object().cloned().unwrap(),
            })
            .await
            .unwrap();
    }
    graph
        .upsert_edge(mcp_backends::graph::Edge {
            from: "a".into(),
            to: "b".into(),
            rel_type: "next".into(),
            properties: Metadata::new(),
        })
        .await
        .unwrap();
    let page = graph.list_nodes(None, None, usize::MAX).await.unwrap();
    assert_eq!(page.nodes.len(), 2);
    assert!(page.next_cursor.is_none());
    assert_eq!(
        graph
            .search_text(&word, None, usize::MAX)
            .await
            .unwrap()
            .len(),
        2
    );
    let around = graph
        .neighbourhood("a", u32::MAX, usize::MAX)
        .await
        .unwrap();
    assert_eq!(around.nodes.len(), 2);
    assert_eq!(around.edges.len(), 1);
    for id in ["a", "b"] {
        graph.delete_node(id).await.unwrap();
    }
}
