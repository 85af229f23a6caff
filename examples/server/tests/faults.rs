//! Backend faults through the whole server: one in-process server whose memory service lives on
//! Redis (key-value store, events, rate limit), whose files service keeps versions, leases and
//! the audit log in PostgreSQL and whose context service lives in Neo4j. Each backend in turn
//! is stopped for real (`scripts/services.sh down`): every call that needs it answers 503
//! `unavailable` well within the request deadline, every call that does not still succeeds,
//! `/health` names the stopped backend; after `scripts/services.sh up` the same server recovers
//! without a restart.
//!
//! These tests stop the shared servers, so they are ignored by default and run alone, last:
//! `cargo test -p mcp-server --test faults -- --ignored --test-threads=1` (`./test` does this).

mod common;

use std::time::{Duration, Instant};

use common::{rest, services, ServicesUp, TempRoot, TestServer};
use mcp_backends::testing::server_url;
use mcp_backends::{AuditLog, AuditQuery};
use mcp_server::config::ServerConfig;
use serde_json::{json, Value};

/// The request deadline of the server under test.
const DEADLINE: Duration = Duration::from_secs(8);

/// How much longer than the deadline a refused call may take (scheduling, HTTP).
const MARGIN: Duration = Duration::from_secs(1);

/// A call that does not need the stopped backend answers faster than the quickest way the
/// stopped backend is noticed by waiting (the 2 s PostgreSQL pool timeout): it did not wait.
const UNAFFECTED: Duration = Duration::from_millis(1500);

/// How long recovery after `services.sh up` may take (Neo4j needs the longest to start).
const RECOVERY: Duration = Duration::from_secs(90);

struct Urls {
    redis: String,
    postgres: String,
    neo4j: String,
}

fn urls() -> Option<Urls> {
    Some(Urls {
        redis: server_url("MCP_TEST_REDIS_URL")?,
        postgres: server_url("MCP_TEST_POSTGRES_URL")?,
        neo4j: server_url("MCP_TEST_NEO4J_URL")?,
    })
}

/// Memory on Redis, files on PostgreSQL, context on Neo4j.
fn config(urls: &Urls, root: &TempRoot) -> ServerConfig {
    let mut config = root.config();
    let b = &mut config.backends;
    b.kv = urls.redis.clone();
    b.events = urls.redis.clone();
    b.rate_limit = urls.redis.clone();
    b.locks = urls.postgres.clone();
    b.versions = urls.postgres.clone();
    b.audit = urls.postgres.clone();
    b.vectors = urls.neo4j.clone();
    b.graph = urls.neo4j.clone();
    config.limits.request_timeout_ms = DEADLINE.as_millis() as u64;
    config
}

/// One call and the backend it cannot do without.
struct Probe {
    needs: &'static str,
    service: &'static str,
    action: &'static str,
    body: Value,
}

/// Calls covering every service; `tag` makes the keys and names unique to one test.
fn probes(tag: &str) -> Vec<Probe> {
    let entity = format!("fault-{tag}");
    let probe = |needs, service, action, body| Probe {
        needs,
        service,
        action,
        body,
    };
    vec![
        probe(
            "redis",
            "memory",
            "store",
            json!({"key": format!("fault:{tag}"), "value": {"n": 1}}),
        ),
        probe(
            "redis",
            "memory",
            "retrieve",
            json!({"key": format!("fault:{tag}")}),
        ),
        probe(
            "postgres",
            "files",
            "write",
            json!({"path": "fault.txt", "content": format!("written {tag}")}),
        ),
        probe(
            "postgres",
            "files",
            "versions",
            json!({"path": "fault.txt"}),
        ),
        probe(
            "postgres",
            "files",
            "unlock",
            json!({"path": "lease.txt", "token": 1}),
        ),
        probe(
            "neo4j",
            "context",
            "create_entities",
            json!({"entities": [{"name": entity, "entity_type": "probe", "observations": []}]}),
        ),
        probe(
            "neo4j",
            "context",
            "open_nodes",
            json!({"names": [format!("fault-{tag}")]}),
        ),
    ]
}

async fn health(http: &reqwest::Client, server: &TestServer) -> (u16, Value) {
    let response = http.get(server.url("/health")).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Every backend entry of the health report, as `(service, role, backend, ok)`.
fn backends_of(report: &Value) -> Vec<(String, String, String, bool)> {
    let mut all = Vec::new();
    for (service, entries) in report["services"].as_object().unwrap() {
        for entry in entries.as_array().unwrap() {
            all.push((
                service.clone(),
                entry["role"].as_str().unwrap().to_owned(),
                entry["backend"].as_str().unwrap().to_owned(),
                entry["ok"].as_bool().unwrap(),
            ));
        }
    }
    all
}

/// Stops `backend`, checks what fails and what keeps working, restarts it, checks recovery.
async fn outage_of(backend: &'static str) {
    let Some(urls) = urls() else {
        return;
    };
    let _up = ServicesUp;
    let root = TempRoot::new();
    let server = TestServer::start(config(&urls, &root)).await;
    let http = common::http_client();
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let probes = probes(&tag);
    for probe in &probes {
        let (status, body, _) = rest(
            &http,
            &server,
            probe.service,
            probe.action,
            probe.body.clone(),
        )
        .await;
        assert_eq!(
            status, 200,
            "{}/{} before the outage: {body}",
            probe.service, probe.action
        );
    }
    assert_eq!(health(&http, &server).await.0, 200);

    services(&["down", backend]);
    let outage_started_ms = mcp_core::unix_millis_now();
    let mut slowest = Duration::ZERO;
    let mut served_during_outage = Vec::new();
    for (n, probe) in probes.iter().enumerate() {
        let request_id = format!("fault-{tag}-{n}");
        let started = Instant::now();
        let response = http
            .post(server.url(&format!("/api/mcp/{}/{}", probe.service, probe.action)))
            .header("x-request-id", &request_id)
            .json(&probe.body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let took = started.elapsed();
        let call = format!("{}/{}", probe.service, probe.action);
        if probe.needs == backend {
            assert_eq!(
                status, 503,
                "{call} with {backend} down: {body} after {took:?}"
            );
            assert_eq!(body["error"]["code"], "unavailable", "{call}: {body}");
            assert!(
                took < DEADLINE + MARGIN,
                "{call} took {took:?} to report {backend} down"
            );
            slowest = slowest.max(took);
            eprintln!("{backend} down: {call} -> 503 after {took:?}");
        } else {
            assert_eq!(
                status, 200,
                "{call} needs no {backend}, yet: {body} after {took:?}"
            );
            assert!(
                took < UNAFFECTED,
                "{call} took {took:?} with {backend} down: it waited for a backend it does not need"
            );
            served_during_outage.push((probe.service, request_id));
            eprintln!("{backend} down: {call} -> 200 after {took:?}");
        }
    }
    let started = Instant::now();
    let (status, report) = health(&http, &server).await;
    eprintln!(
        "{backend} down: /health -> {status} after {:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{report}");
    assert_eq!(report["ready"], false);
    let entries = backends_of(&report);
    let failed: Vec<_> = entries.iter().filter(|entry| !entry.3).collect();
    assert!(!failed.is_empty(), "{report}");
    for (service, role, name, ok) in &entries {
        assert_eq!(
            *ok,
            name != backend,
            "/health {service}/{role} on {name} with {backend} down: {report}"
        );
    }
    eprintln!("{backend} down: slowest refusal {slowest:?}");

    services(&["up", backend]);
    let started = Instant::now();
    loop {
        let (status, report) = health(&http, &server).await;
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < RECOVERY,
            "/health still {status} {:?} after {backend} came back: {report}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for probe in &probes {
        loop {
            let (status, body, _) = rest(
                &http,
                &server,
                probe.service,
                probe.action,
                probe.body.clone(),
            )
            .await;
            if status == 200 {
                break;
            }
            assert!(
                started.elapsed() < RECOVERY,
                "{}/{} after {backend} came back: {status} {body}",
                probe.service,
                probe.action
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    eprintln!("{backend}: recovered {:?} after up", started.elapsed());
    if backend == "postgres" {
        audit_caught_up(&urls.postgres, outage_started_ms, &served_during_outage).await;
    }
}

/// The calls served while PostgreSQL was down were audited into the queue; once it is back
/// their records reach the audit log (bounded wait).
async fn audit_caught_up(url: &str, since_ms: i64, served: &[(&str, String)]) {
    let log = mcp_backends::postgres::PostgresAuditLog::connect(url)
        .await
        .unwrap();
    let started = Instant::now();
    for (service, request_id) in served {
        loop {
            let records = log
                .query(&AuditQuery {
                    service: Some((*service).to_owned()),
                    since_ms: Some(since_ms),
                    limit: 10_000,
                    ..AuditQuery::default()
                })
                .await
                .unwrap();
            if records
                .iter()
                .any(|record| &record.request_id == request_id)
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the audit record of {service} call {request_id}, served while PostgreSQL was down, never reached it"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "postgres: {} calls served during the outage audited {:?} after recovery",
        served.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared servers; run alone by ./test"]
async fn redis_down_fails_memory_only_then_recovers() {
    outage_of("redis").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared servers; run alone by ./test"]
async fn postgres_down_fails_files_only_then_recovers() {
    outage_of("postgres").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "stops the shared servers; run alone by ./test"]
async fn neo4j_down_fails_context_only_then_recovers() {
    outage_of("neo4j").await;
}
