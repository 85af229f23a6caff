//! Races against a real Neo4j (`MCP_TEST_NEO4J_URL`) that the conformance suites, one call at
//! a time, cannot reach: readers running while other tasks delete and re-create what they
//! read, and calls cut off by a deadline halfway through their exchange with the server.
//!
//! Each test works in its own namespace or vector index and removes it at the end. The loops
//! are bounded by a count and by a time limit, so a slow shared machine makes a test weaker,
//! never longer than its limit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_backends::graph::{Edge, GraphStore, Node};
use mcp_backends::neo4j::{Neo4jGraphStore, Neo4jVectorIndex};
use mcp_backends::testing::{server_url, unique_prefix};
use mcp_backends::vector::{Metadata, VectorIndex, VectorRecord};
use mcp_backends::Error;
use serde_json::json;
use tokio::task::JoinSet;

/// More nodes or records than the driver fetches per `PULL` (200), so a full read streams in
/// several round trips and its auto-commit transaction stays open between them: a delete that
/// commits meanwhile is seen by the later rows as a node whose properties read as null.
const ITEMS: usize = 300;
/// Reading tasks and deleting/re-creating tasks.
const READERS: usize = 4;
const WRITERS: usize = 2;
/// Reads per reader at most, and the time limit of a stress run.
const READS_PER_READER: usize = 90;
const STRESS_FOR: Duration = Duration::from_secs(25);
/// Ids a writer deletes, then re-creates, per round.
const WRITE_BATCH: usize = 30;

/// A small pseudo-random generator (xorshift), so the tests need no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn object(value: serde_json::Value) -> Metadata {
    value.as_object().cloned().unwrap_or_default()
}

fn item_id(i: usize) -> String {
    format!("n{i:03}")
}

fn graph_node(i: usize, word: &str) -> Node {
    Node {
        id: item_id(i),
        label: "Thing".into(),
        properties: object(json!({
            "text": format!("{word} item {i}"),
            "tags": ["stress", format!("t{}", i % 7)],
        })),
    }
}

fn edge(from: &str, to: &str) -> Edge {
    Edge {
        from: from.into(),
        to: to.into(),
        rel_type: "links".into(),
        properties: object(json!({"weight": 1})),
    }
}

/// What a stress run saw: reads made, graph reads that found fewer items than were created
/// (so they ran while some were deleted), and deletes made.
#[derive(Default)]
struct Tally {
    reads: AtomicUsize,
    partial: AtomicUsize,
    deletes: AtomicUsize,
}

impl Tally {
    fn read(&self, seen: usize, whole: usize) {
        self.reads.fetch_add(1, Ordering::Relaxed);
        if seen < whole {
            self.partial.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A graph store on the test server in a namespace of its own.
async fn graph_in_fresh_namespace(url: &str) -> Neo4jGraphStore {
    Neo4jGraphStore::connect(url)
        .await
        .unwrap()
        .with_namespace(&unique_prefix())
        .unwrap()
}

/// Waits for the readers to finish, then stops the writers and waits for them; returns the
/// panics of either, by role.
async fn finish(
    mut readers: JoinSet<()>,
    mut writers: JoinSet<()>,
    stop: &AtomicBool,
) -> Vec<String> {
    let mut failures = Vec::new();
    while let Some(done) = readers.join_next().await {
        if let Err(err) = done {
            failures.push(format!("reader: {err}"));
        }
    }
    stop.store(true, Ordering::Relaxed);
    while let Some(done) = writers.join_next().await {
        if let Err(err) = done {
            failures.push(format!("writer: {err}"));
        }
    }
    failures
}

/// Creates the items, then links each to the hub and to the previous item, a few tasks at a
/// time.
async fn create_items(graph: &Neo4jGraphStore, word: &str) {
    let mut nodes = JoinSet::new();
    for part in 0..READERS {
        let (graph, word) = (graph.clone(), word.to_owned());
        nodes.spawn(async move {
            for i in (part..ITEMS).step_by(READERS) {
                assert!(graph.create_node(graph_node(i, &word)).await.unwrap());
            }
        });
    }
    while let Some(done) = nodes.join_next().await {
        done.unwrap();
    }
    let mut edges = JoinSet::new();
    for part in 0..READERS {
        let graph = graph.clone();
        edges.spawn(async move {
            for i in (part..ITEMS).step_by(READERS) {
                graph.upsert_edge(edge("hub", &item_id(i))).await.unwrap();
                if i > 0 {
                    graph
                        .upsert_edge(edge(&item_id(i - 1), &item_id(i)))
                        .await
                        .unwrap();
                }
            }
        });
    }
    while let Some(done) = edges.join_next().await {
        done.unwrap();
    }
}

/// Graph reads (node reads, listing, paged listing, full-text search, neighbourhood
/// expansion, edges) run while writers delete and re-create nodes and their edges: every read
/// answers, whatever it finds. Before 4c4942a a row of a node deleted between the match and
/// the property read (null at read-committed) failed the whole read with `column 'props'`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graph_reads_skip_nodes_deleted_while_they_run() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let graph = graph_in_fresh_namespace(&url).await;
    let word = format!("zr{}", unique_prefix().trim_end_matches(':'));
    // The hub is never deleted: it links to every item, so its neighbourhood spans the graph.
    let hub = Node {
        id: "hub".into(),
        label: "Hub".into(),
        properties: object(json!({"text": word.clone()})),
    };
    assert!(graph.create_node(hub).await.unwrap());
    create_items(&graph, &word).await;
    let mut all_ids: Vec<String> = (0..ITEMS).map(item_id).collect();
    all_ids.push("hub".into());

    let deadline = Instant::now() + STRESS_FOR;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let (graph, word, stop, tally) = (graph.clone(), word.clone(), stop.clone(), tally.clone());
        writers.spawn(async move {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (w as u64 + 1));
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let start = rng.below(ITEMS - WRITE_BATCH);
                let batch = start..start + WRITE_BATCH;
                for i in batch.clone() {
                    graph
                        .delete_node(&item_id(i))
                        .await
                        .unwrap_or_else(|err| panic!("delete {i}: {err}"));
                    tally.deletes.fetch_add(1, Ordering::Relaxed);
                }
                for i in batch {
                    // The other writer may have re-created it already (false), or may have
                    // deleted an end of an edge again (NotFound): both are its doing.
                    graph
                        .create_node(graph_node(i, &word))
                        .await
                        .unwrap_or_else(|err| panic!("re-create {i}: {err}"));
                    let mut edges = vec![edge("hub", &item_id(i))];
                    if i > 0 {
                        edges.push(edge(&item_id(i - 1), &item_id(i)));
                    }
                    for edge in edges {
                        match graph.upsert_edge(edge).await {
                            Ok(_) | Err(Error::NotFound(_)) => {}
                            Err(err) => panic!("re-link {i}: {err}"),
                        }
                    }
                }
            }
        });
    }

    let mut readers = JoinSet::new();
    for r in 0..READERS {
        let (graph, word, ids, tally) =
            (graph.clone(), word.clone(), all_ids.clone(), tally.clone());
        readers.spawn(async move {
            let whole = ITEMS + 1;
            for n in 0..READS_PER_READER {
                if Instant::now() >= deadline {
                    break;
                }
                match (n + r) % 6 {
                    0 => {
                        let nodes = graph.get_nodes(&ids).await.expect("get_nodes");
                        tally.read(nodes.len(), whole);
                    }
                    1 => {
                        let page = graph.list_nodes(None, None, 1000).await.expect("list");
                        tally.read(page.nodes.len(), whole);
                    }
                    2 => {
                        let (mut cursor, mut seen) = (None, 0);
                        loop {
                            let page = graph
                                .list_nodes(Some("Thing"), cursor.as_deref(), 70)
                                .await
                                .expect("paged list");
                            seen += page.nodes.len();
                            match page.next_cursor {
                                Some(next) => cursor = Some(next),
                                None => break,
                            }
                        }
                        tally.read(seen, ITEMS);
                    }
                    3 => {
                        let hits = graph.search_text(&word, None, 1000).await.expect("search");
                        tally.read(hits.len(), whole);
                    }
                    4 => {
                        let around = graph.neighbourhood("hub", 2, 1000).await.expect("expand");
                        tally.read(around.nodes.len(), whole);
                    }
                    _ => {
                        let edges = graph.edges_among(&ids).await.expect("edges");
                        tally.read(edges.len(), 2 * ITEMS - 1);
                    }
                }
            }
        });
    }
    let failures = finish(readers, writers, &stop).await;
    let (reads, partial, deletes) = (
        tally.reads.load(Ordering::Relaxed),
        tally.partial.load(Ordering::Relaxed),
        tally.deletes.load(Ordering::Relaxed),
    );
    eprintln!(
        "graph race: {reads} reads ({partial} found items missing) against {deletes} node deletes"
    );
    for id in &all_ids {
        graph.delete_node(id).await.unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        reads >= READERS * 6,
        "too few reads to mean anything: {reads}"
    );
    assert!(
        partial > 0,
        "no read overlapped a delete: the race was not run"
    );
}

fn unit_vector(rng: &mut Rng, dimensions: usize) -> Vec<f32> {
    (0..dimensions)
        .map(|_| (rng.next() % 2001) as f32 / 1000.0 - 1.0)
        .collect()
}

/// Vector searches (approximate, filtered and exact) run while writers delete and re-add
/// records: every search answers. Before e822cd9 a candidate deleted between the index lookup
/// and its property reads failed the search with `column 'metadata'`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vector_search_skips_records_deleted_while_it_runs() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    const DIMENSIONS: usize = 8;
    // Enough records that searches up to k = 150 stay on the approximate path (candidates
    // below half the index) and fetch more rows than one `PULL`.
    const RECORDS: usize = 1000;
    let name = format!("races_{}", unique_prefix().trim_end_matches(':'));
    let index = Neo4jVectorIndex::connect(&url, &name, DIMENSIONS)
        .await
        .unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let records: Vec<VectorRecord> = (0..RECORDS)
        .map(|i| VectorRecord {
            id: format!("r{i:04}"),
            vector: unit_vector(&mut rng, DIMENSIONS),
            metadata: object(json!({"parity": if i % 2 == 0 { "even" } else { "odd" }})),
        })
        .collect();
    for batch in records.chunks(250) {
        index.upsert(batch.to_vec()).await.unwrap();
    }
    let records = Arc::new(records);

    let deadline = Instant::now() + STRESS_FOR;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut writers = JoinSet::new();
    for w in 0..WRITERS {
        let (index, records, stop, tally) =
            (index.clone(), records.clone(), stop.clone(), tally.clone());
        writers.spawn(async move {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (w as u64 + 1));
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                let start = rng.below(RECORDS - 100);
                let batch = &records[start..start + 100];
                let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
                let deleted = index.delete(&ids).await.expect("delete");
                tally.deletes.fetch_add(deleted, Ordering::Relaxed);
                index.upsert(batch.to_vec()).await.expect("re-add");
            }
        });
    }
    let odd = object(json!({"parity": "odd"}));
    let mut readers = JoinSet::new();
    for r in 0..READERS {
        let (index, odd, tally) = (index.clone(), odd.clone(), tally.clone());
        readers.spawn(async move {
            let mut rng = Rng(0x853c_49e6_748f_ea9b ^ (r as u64 + 1));
            for n in 0..READS_PER_READER {
                if Instant::now() >= deadline {
                    break;
                }
                let query = unit_vector(&mut rng, DIMENSIONS);
                let (k, filter) = match (n + r) % 4 {
                    0 => (150, Metadata::new()),
                    1 => (10, Metadata::new()),
                    2 => (40, odd.clone()),
                    _ => (400, Metadata::new()),
                };
                index.search(&query, k, &filter).await.expect("search");
                tally.reads.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
    let failures = finish(readers, writers, &stop).await;
    let (reads, deletes) = (
        tally.reads.load(Ordering::Relaxed),
        tally.deletes.load(Ordering::Relaxed),
    );
    eprintln!("vector race: {reads} searches against {deletes} record deletes");
    index.drop_index().await.unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        reads >= READERS * 4,
        "too few searches to mean anything: {reads}"
    );
    assert!(deletes > 0, "no record was deleted: the race was not run");
}

/// Workers running concurrently on one graph store.
const CUT_WORKERS: usize = 4;
/// Rounds per worker at most (each: one call under a tiny deadline, then checked calls).
const CUT_ROUNDS: usize = 120;
/// Time limit of the deadline test.
const CUT_FOR: Duration = Duration::from_secs(30);
/// Longest deadline given to a call that is meant to be cut off, in microseconds.
const MAX_CUT_MICROS: u64 = 5000;

/// What the deadline test saw.
#[derive(Default)]
struct CutTally {
    cut: AtomicUsize,
    finished: AtomicUsize,
    checked: AtomicUsize,
}

/// Calls cut off by a deadline of 0–5 ms (list updates in a transaction, writes, full-text
/// search, listing, vector search) on one store, so on one connection pool, interleaved with
/// calls that run to their end and whose answers are checked: the right node, the write just
/// made, the one search hit. A cut-off call that left its connection mid-exchange would hand
/// its unread answers to the next user of that connection (`unexpected response for
/// ROLLBACK: Record`, wrong rows); here no checked call fails or reads another's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_cut_off_by_a_deadline_leave_the_connection_clean() {
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    const DIMENSIONS: usize = 8;
    let graph = graph_in_fresh_namespace(&url).await;
    let name = format!("cuts_{}", unique_prefix().trim_end_matches(':'));
    let index = Neo4jVectorIndex::connect(&url, &name, DIMENSIONS)
        .await
        .unwrap();
    let word = format!("zc{}", unique_prefix().trim_end_matches(':'));
    let deadline = Instant::now() + CUT_FOR;
    let tally = Arc::new(CutTally::default());

    let mut workers = JoinSet::new();
    for w in 0..CUT_WORKERS {
        let (graph, index, word, tally) =
            (graph.clone(), index.clone(), word.clone(), tally.clone());
        workers.spawn(async move {
            let mut rng = Rng(0xda94_2042_e4dd_58b5 ^ (w as u64 + 1));
            let busy = format!("w{w}-busy");
            let list = format!("w{w}-list");
            for id in [&busy, &list] {
                graph
                    .create_node(Node {
                        id: id.clone(),
                        label: "Worker".into(),
                        properties: Metadata::new(),
                    })
                    .await
                    .expect("create worker nodes");
            }
            let mut appended = Vec::new();
            for round in 0..CUT_ROUNDS {
                if Instant::now() >= deadline {
                    break;
                }
                // A call cut off at a random point of its exchange (or, rarely, finished).
                let limit = Duration::from_micros(rng.next() % MAX_CUT_MICROS);
                let query = unit_vector(&mut rng, DIMENSIONS);
                let outcome = match round % 5 {
                    0 => tokio::time::timeout(
                        limit,
                        graph.append_unique(&busy, "notes", &[format!("c{round}")]),
                    )
                    .await
                    .map(|result| result.map(drop)),
                    1 => {
                        tokio::time::timeout(
                            limit,
                            graph.upsert_node(Node {
                                id: format!("w{w}-scratch{}", round % 8),
                                label: "Scratch".into(),
                                properties: object(json!({"round": round})),
                            }),
                        )
                        .await
                    }
                    2 => tokio::time::timeout(limit, graph.search_text(&word, None, 50))
                        .await
                        .map(|result| result.map(drop)),
                    3 => tokio::time::timeout(limit, graph.list_nodes(None, None, 100))
                        .await
                        .map(|result| result.map(drop)),
                    _ => tokio::time::timeout(limit, index.search(&query, 5, &Metadata::new()))
                        .await
                        .map(|result| result.map(drop)),
                };
                match outcome {
                    Err(_) => tally.cut.fetch_add(1, Ordering::Relaxed),
                    Ok(Ok(())) => tally.finished.fetch_add(1, Ordering::Relaxed),
                    Ok(Err(err)) => {
                        panic!("round {round}: a call within its deadline failed: {err}")
                    }
                };

                // Calls run to their end: each answer must be this call's own.
                let id = format!("w{w}-n{round}");
                let tag = format!("{word}w{w}r{round}");
                let node = Node {
                    id: id.clone(),
                    label: "Checked".into(),
                    properties: object(json!({"text": format!("{word} {tag}"), "round": round})),
                };
                graph
                    .upsert_node(node.clone())
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: write: {err}"));
                let read = graph
                    .get_nodes(std::slice::from_ref(&id))
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: read: {err}"));
                assert_eq!(read, [node], "round {round}: read back another answer");
                let value = format!("u{round}");
                let added = graph
                    .append_unique(&list, "items", std::slice::from_ref(&value))
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: list update: {err}"));
                assert_eq!(
                    added,
                    std::slice::from_ref(&value),
                    "round {round}: list update answer"
                );
                appended.push(value);
                let hits = graph
                    .search_text(&tag, None, 10)
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: search: {err}"));
                let found: Vec<&str> = hits.iter().map(|hit| hit.node.id.as_str()).collect();
                assert_eq!(found, [id.as_str()], "round {round}: search answer");
                let record_id = format!("w{w}-v{round}");
                let mut vector = vec![0.0; DIMENSIONS];
                vector[round % DIMENSIONS] = 1.0;
                vector[(round + w + 1) % DIMENSIONS] += 0.5;
                let only = object(json!({"worker": w, "round": round}));
                index
                    .upsert(vec![VectorRecord {
                        id: record_id.clone(),
                        vector: vector.clone(),
                        metadata: only.clone(),
                    }])
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: vector write: {err}"));
                let hits = index
                    .search(&vector, 3, &only)
                    .await
                    .unwrap_or_else(|err| panic!("round {round}: vector search: {err}"));
                assert_eq!(hits.len(), 1, "round {round}: vector hits {hits:?}");
                assert_eq!(hits[0].id, record_id, "round {round}: vector search answer");
                assert!((hits[0].score - 1.0).abs() < 1e-4, "{}", hits[0].score);
                tally.checked.fetch_add(7, Ordering::Relaxed);
            }
            // Every checked list update is there, once, in order.
            let nodes = graph.get_nodes(&[list]).await.expect("read the list");
            let items = nodes
                .first()
                .and_then(|node| node.properties.get("items"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(items, json!(appended), "worker {w}: list items");
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = workers.join_next().await {
        if let Err(err) = done {
            failures.push(err.to_string());
        }
    }
    let (cut, finished, checked) = (
        tally.cut.load(Ordering::Relaxed),
        tally.finished.load(Ordering::Relaxed),
        tally.checked.load(Ordering::Relaxed),
    );
    eprintln!(
        "deadline cuts: {cut} calls cut off, {finished} finished within 0-5 ms, \
         {checked} checked calls correct"
    );
    // Cut-off calls finish in their own tasks; give them a moment, then clear the namespace.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let leftovers = graph.list_nodes(None, None, 100_000).await.unwrap();
    for node in leftovers.nodes {
        graph.delete_node(&node.id).await.unwrap();
    }
    index.drop_index().await.unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        cut >= CUT_WORKERS * 10,
        "only {cut} calls were cut off: the deadlines did not bite"
    );
}

/// Writers linking the same few nodes in opposite directions lock them in opposite orders,
/// which Neo4j breaks by refusing one transaction with `DeadlockDetected` (a transient error).
/// The store runs such a statement again, so every edge lands and no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_locking_nodes_in_opposite_orders_all_succeed() {
    const NODES: usize = 6;
    const TASKS: usize = 12;
    const EDGES_PER_TASK: usize = 60;
    let Some(url) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let graph = graph_in_fresh_namespace(&url).await;
    for i in 0..NODES {
        assert!(graph.create_node(graph_node(i, "lock")).await.unwrap());
    }
    let mut tasks = JoinSet::new();
    for task in 0..TASKS {
        let graph = graph.clone();
        tasks.spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (task as u64 + 1));
            let mut failures = Vec::new();
            for _ in 0..EDGES_PER_TASK {
                let (a, b) = (rng.below(NODES), rng.below(NODES));
                if a == b {
                    continue;
                }
                // Each edge with a property per writer, so writers update the same edges too.
                let mut link = edge(&item_id(a), &item_id(b));
                link.properties = object(json!({"writer": task}));
                if let Err(err) = graph.upsert_edge(link).await {
                    failures.push(err.to_string());
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        failures.extend(done.unwrap());
    }
    let ids: Vec<String> = (0..NODES).map(item_id).collect();
    let edges = graph.edges_among(&ids).await.unwrap();
    for id in &ids {
        graph.delete_node(id).await.unwrap();
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(
        edges.len() >= NODES,
        "only {} distinct edges among {NODES} nodes",
        edges.len()
    );
}
