//! Concurrency through the whole server: 256 REST writers racing on one file with
//! `expected_version` (one winner per version, 409 for the rest, never a torn file, a gap-free
//! history); lease fencing across two instances sharing Redis locks; 16 knowledge-graph writers
//! over two instances sharing Neo4j losing nothing.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{rest, TempRoot, TestServer};
use mcp_backends::testing::server_url;
use mcp_server::config::ServerConfig;
use serde_json::{json, Value};

/// Writers racing for each version.
const WRITERS: usize = 256;

/// Versions they race for.
const ROUNDS: usize = 4;

/// Body bytes of each write: large enough that a torn write would show.
const BODY: usize = 16 * 1024;

/// The content writer `writer` tries to write in `round`: a header naming both, then `BODY`
/// bytes of one letter chosen by the writer.
fn content_of(round: usize, writer: usize) -> String {
    let letter = char::from(b'a' + (writer % 26) as u8);
    format!(
        "round {round} writer {writer}\n{}",
        letter.to_string().repeat(BODY)
    )
}

/// Whether `text` is one complete write (the seed, or some writer's whole content).
fn is_whole(text: &str) -> bool {
    if text == "seed" {
        return true;
    }
    let Some((header, _)) = text.split_once('\n') else {
        return false;
    };
    let mut words = header.split(' ');
    let (Some("round"), Some(round), Some("writer"), Some(writer), None) = (
        words.next(),
        words.next().and_then(|w| w.parse().ok()),
        words.next(),
        words.next().and_then(|w| w.parse().ok()),
        words.next(),
    ) else {
        return false;
    };
    text == content_of(round, writer)
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_writers_one_winner_per_version_no_torn_file_no_gaps() {
    let root = TempRoot::new();
    let mut config = root.config();
    // Versions in PostgreSQL when it runs, otherwise in memory.
    if let Some(postgres) = server_url("MCP_TEST_POSTGRES_URL") {
        config.backends.versions = postgres;
    }
    config.limits.rate_burst = 1_000_000;
    config.limits.rate_per_second = 1_000_000.0;
    let server = Arc::new(TestServer::start(config).await);
    let http = common::http_client();
    let (status, seeded, _) = rest(
        &http,
        &server,
        "files",
        "write",
        json!({"path": "race.txt", "content": "seed"}),
    )
    .await;
    assert_eq!(status, 200, "{seeded}");
    assert_eq!(seeded["version"], 1);

    // Readers through the server and straight from the disk, for as long as writers run.
    let writing = Arc::new(AtomicBool::new(true));
    let reads = Arc::new(AtomicUsize::new(0));
    let mut readers = Vec::new();
    for through_server in [true, true, false, false] {
        let (http, server, writing, reads) =
            (http.clone(), server.clone(), writing.clone(), reads.clone());
        let on_disk = root.0.join("race.txt");
        readers.push(tokio::spawn(async move {
            while writing.load(Ordering::Acquire) {
                let text = if through_server {
                    let (status, body, _) =
                        rest(&http, &server, "files", "read", json!({"path": "race.txt"})).await;
                    assert_eq!(status, 200, "{body}");
                    body["content"].as_str().unwrap().to_owned()
                } else {
                    let text = std::fs::read_to_string(&on_disk).unwrap();
                    tokio::task::yield_now().await;
                    text
                };
                assert!(
                    is_whole(&text),
                    "a reader saw a torn file: {:?}...",
                    &text[..text.len().min(80)]
                );
                reads.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        let expected = round as u64 + 1;
        let mut racers = Vec::new();
        for writer in 0..WRITERS {
            let (http, server) = (http.clone(), server.clone());
            racers.push(tokio::spawn(async move {
                let (status, body, _) = rest(
                    &http,
                    &server,
                    "files",
                    "write",
                    json!({"path": "race.txt", "content": content_of(round, writer), "expected_version": expected}),
                )
                .await;
                (writer, status, body)
            }));
        }
        let mut won = Vec::new();
        for racer in racers {
            let (writer, status, body) = racer.await.unwrap();
            match status {
                200 => {
                    assert_eq!(body["version"], expected + 1, "{body}");
                    won.push(writer);
                }
                409 => assert_eq!(body["error"]["code"], "conflict", "{body}"),
                other => panic!("writer {writer} in round {round}: {other} {body}"),
            }
        }
        assert_eq!(won.len(), 1, "round {round}: winners {won:?}");
        winners.push(won[0]);
    }
    writing.store(false, Ordering::Release);
    for reader in readers {
        reader.await.unwrap();
    }
    assert!(reads.load(Ordering::Relaxed) > 0);

    let (_, listed, _) = rest(
        &http,
        &server,
        "files",
        "versions",
        json!({"path": "race.txt"}),
    )
    .await;
    let mut versions: Vec<u64> = listed["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["version"].as_u64().unwrap())
        .collect();
    versions.sort_unstable();
    assert_eq!(
        versions,
        (1..=ROUNDS as u64 + 1).collect::<Vec<_>>(),
        "{listed}"
    );
    for (round, writer) in winners.iter().enumerate() {
        let (status, version, _) = rest(
            &http,
            &server,
            "files",
            "version",
            json!({"path": "race.txt", "version": round + 2}),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(version["content"], json!(content_of(round, *writer)));
    }
    let last = winners.len() - 1;
    assert_eq!(
        std::fs::read_to_string(root.0.join("race.txt")).unwrap(),
        content_of(last, winners[last])
    );
}

async fn call(
    http: &reqwest::Client,
    server: &TestServer,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let (status, body, _) = rest(http, server, "files", action, body).await;
    (status, body)
}

#[tokio::test(flavor = "multi_thread")]
async fn lease_fencing_holds_across_two_instances_on_redis() {
    let Some(redis) = server_url("MCP_TEST_REDIS_URL") else {
        return;
    };
    let root = TempRoot::new();
    let mut config = root.config();
    config.backends.locks = redis.clone();
    config.backends.events = redis;
    let a = TestServer::start(config.clone()).await;
    let b = TestServer::start(config).await;
    let http = common::http_client();
    let path = "fenced.txt";
    let lease = json!({"path": path, "owner": "a", "ttl_ms": 800});

    let (status, held) = call(&http, &a, "lock", lease.clone()).await;
    assert_eq!(status, 200, "{held}");
    let first = held["token"].as_u64().unwrap();
    // B sees A's lease: no write without the token, no second lease.
    let (status, body) = call(&http, &b, "write", json!({"path": path, "content": "b"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (423, Some("locked")),
        "{body}"
    );
    let (status, body) = call(&http, &b, "lock", json!({"path": path, "owner": "b"})).await;
    assert_eq!(status, 423, "{body}");
    let (status, body) = call(
        &http,
        &a,
        "write",
        json!({"path": path, "content": "a1", "lock_token": first}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The lease expires by itself; then B gets it, with a higher token.
    let started = Instant::now();
    let second = loop {
        let (status, body) = call(
            &http,
            &b,
            "lock",
            json!({"path": path, "owner": "b", "ttl_ms": 60_000}),
        )
        .await;
        if status == 200 {
            break body["token"].as_u64().unwrap();
        }
        assert_eq!(status, 423, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the lease never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(second > first, "token {second} after {first}");
    // A's stale token is refused on either instance; nothing is written.
    for server in [&a, &b] {
        let (status, body) = call(
            &http,
            server,
            "write",
            json!({"path": path, "content": "stale", "lock_token": first}),
        )
        .await;
        assert_eq!(status, 423, "{body}");
    }
    assert_eq!(std::fs::read_to_string(root.0.join(path)).unwrap(), "a1");
    let (status, body) = call(
        &http,
        &a,
        "write",
        json!({"path": path, "content": "b1", "lock_token": second}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(&http, &b, "unlock", json!({"path": path, "token": second})).await;
    assert_eq!(status, 200, "{body}");

    // Tokens keep rising whichever instance grants them.
    let mut last = second;
    for round in 0..6 {
        let server = if round % 2 == 0 { &a } else { &b };
        let (status, body) = call(&http, server, "lock", json!({"path": path, "owner": "x"})).await;
        assert_eq!(status, 200, "{body}");
        let token = body["token"].as_u64().unwrap();
        assert!(token > last, "token {token} after {last}");
        let (status, body) = call(
            &http,
            server,
            "unlock",
            json!({"path": path, "token": token}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        last = token;
    }
}

/// One context call on `server`.
async fn post_to(
    http: &reqwest::Client,
    server: &TestServer,
    action: &str,
    body: Value,
) -> (u16, Value) {
    let response = http
        .post(server.url(&format!("/api/mcp/context/{action}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Knowledge-graph writers spread over the two instances.
const GRAPH_WRITERS: usize = 16;

/// Observations each writer adds.
const GRAPH_ROUNDS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn sixteen_graph_writers_on_two_instances_over_neo4j_lose_nothing() {
    let Some(neo4j) = server_url("MCP_TEST_NEO4J_URL") else {
        return;
    };
    let mut config = ServerConfig::default();
    config.backends.vectors = neo4j.clone();
    config.backends.graph = neo4j;
    let servers = Arc::new([
        TestServer::start(config.clone()).await,
        TestServer::start(config).await,
    ]);
    let http = common::http_client();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let hub = format!("hub-{tag}");
    let (status, body) = post_to(
        &http,
        &servers[0],
        "create_entities",
        json!({"entities": [{"name": hub, "entity_type": "topic", "observations": ["seed"]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let mut writers = Vec::new();
    for writer in 0..GRAPH_WRITERS {
        let (servers, http, hub, tag) = (servers.clone(), http.clone(), hub.clone(), tag.clone());
        writers.push(tokio::spawn(async move {
            // Every call here is idempotent, so a writer whose call ran out of time (a loaded
            // machine, a hot node) retries it, as a client would; a few tries at most.
            let post = |action: &'static str, body: Value| {
                let (http, servers) = (http.clone(), servers.clone());
                async move {
                    for _ in 0..4 {
                        let (status, answer) =
                            post_to(&http, &servers[writer % 2], action, body.clone()).await;
                        if status != 503 && status != 504 {
                            return (status, answer);
                        }
                        eprintln!("{action}: {status} {answer}; retrying");
                    }
                    panic!("{action} kept timing out");
                }
            };
            let own = format!("w{writer}-{tag}");
            let (status, body) = post(
                "create_entities",
                json!({"entities": [{"name": own, "entity_type": "writer", "observations": []}]}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = post(
                "create_relations",
                json!({"relations": [{"from": own, "to": hub, "relation_type": "writes_to"}]}),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            for round in 0..GRAPH_ROUNDS {
                let (status, body) = post(
                    "add_observations",
                    json!({"observations": [{"entity_name": hub, "contents": [format!("w{writer} r{round}")]}]}),
                )
                .await;
                if status != 200 {
                    // Say what each instance sees of the hub now, to tell a lost node from a
                    // failed call.
                    let mut seen = Vec::new();
                    for other in servers.iter() {
                        let (status, graph) = post_to(&http, other, "open_nodes", json!({"names": [hub]})).await;
                        seen.push(format!("{status} {graph}"));
                    }
                    panic!("w{writer} r{round}: {status} {body}; the hub now: {seen:?}");
                }
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }

    let mut names = vec![hub.clone()];
    names.extend((0..GRAPH_WRITERS).map(|writer| format!("w{writer}-{tag}")));
    for server in servers.iter() {
        let (status, graph) = post_to(&http, server, "open_nodes", json!({"names": names})).await;
        assert_eq!(status, 200, "{graph}");
        let entities = graph["entities"].as_array().unwrap();
        assert_eq!(entities.len(), GRAPH_WRITERS + 1, "{graph}");
        let hub_entity = entities.iter().find(|e| e["name"] == json!(hub)).unwrap();
        let observations = hub_entity["observations"].as_array().unwrap();
        assert_eq!(observations.len(), GRAPH_WRITERS * GRAPH_ROUNDS + 1);
        for writer in 0..GRAPH_WRITERS {
            for round in 0..GRAPH_ROUNDS {
                assert!(observations.contains(&json!(format!("w{writer} r{round}"))));
            }
        }
        let relations = graph["relations"].as_array().unwrap();
        assert_eq!(relations.len(), GRAPH_WRITERS, "{graph}");
    }
    let (status, body) = post_to(
        &http,
        &servers[0],
        "delete_entities",
        json!({"entity_names": names}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
