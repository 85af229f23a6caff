//! The REST clients: each loops over a weighted mix of memory, files and context actions on
//! `POST /api/mcp/{service}/{action}` until the stop flag or its request budget, recording
//! every request. Also seeds the shared data set before the clock starts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::pool::{self, Rng, NAMESPACE};
use crate::stats::{Outcome, Recorder};

/// The per-request client timeout; longer than the server's own 30 s deadline.
const TIMEOUT: Duration = Duration::from_secs(40);

/// A REST caller shared by the clients (one keep-alive pool).
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: String,
    recorder: Arc<Recorder>,
}

/// What a recorded call came back with.
pub enum Reply {
    /// 200 and its body.
    Ok(Value),
    /// An expected error status.
    Expected,
    /// Counted as unexpected.
    Failed,
}

impl Rest {
    /// A caller of the server at `base` (`http://127.0.0.1:PORT`).
    pub fn new(base: &str, recorder: Arc<Recorder>) -> Result<Rest, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        Ok(Rest {
            http,
            base: base.to_owned(),
            recorder,
        })
    }

    /// One unrecorded call: the status and the JSON body.
    pub async fn raw(
        &self,
        service: &str,
        action: &str,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let response = self
            .http
            .post(format!("{}/api/mcp/{service}/{action}", self.base))
            .json(body)
            .send()
            .await
            .map_err(|err| format!("{service}.{action}: transport: {err}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|err| format!("{service}.{action}: reading the body: {err}"))?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    /// One recorded call of `service.action` (`op`, optionally with a `+variant` suffix that
    /// only names it in the report): 200 is a success, a status in `expected` an expected
    /// error, anything else (and a transport error) unexpected.
    pub async fn call(&self, op: &'static str, body: Value, expected: &[u16]) -> Reply {
        let name = op.split('+').next().unwrap_or(op);
        let (service, action) = name.split_once('.').unwrap_or((name, ""));
        let started = Instant::now();
        let result = self.raw(service, action, &body).await;
        let latency = started.elapsed();
        let (outcome, reply) = match result {
            Ok((200, value)) => (Outcome::Ok, Reply::Ok(value)),
            Ok((status, _)) if expected.contains(&status) => {
                (Outcome::Expected(status), Reply::Expected)
            }
            Ok((status, value)) => (
                Outcome::Unexpected(format!("{op}: HTTP {status}: {}", snippet(&value))),
                Reply::Failed,
            ),
            Err(err) => (Outcome::Unexpected(err), Reply::Failed),
        };
        self.recorder.record(op, latency, outcome);
        reply
    }
}

/// At most 300 characters of a body, for error samples.
pub fn snippet(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Writes every shared file, adds every document and creates every entity, so that the loop's
/// reads, relations and observations find them. Any failure stops the soak before it starts.
pub async fn seed(rest: &Rest) -> Result<(), String> {
    let mut rng = Rng::new(usize::MAX);
    let must = |op: &str, (status, value): (u16, Value)| {
        if status == 200 {
            Ok(())
        } else {
            Err(format!("seeding, {op}: HTTP {status}: {}", snippet(&value)))
        }
    };
    for i in 0..pool::SHARED_FILES {
        let body = json!({"path": pool::shared_path(i), "content": rng.words(64)});
        must("files.write", rest.raw("files", "write", &body).await?)?;
    }
    for i in 0..pool::DOCS {
        let text = pool::doc_text(i % pool::TEXTS);
        let body = json!({"id": pool::doc_id(i), "text": text, "namespace": NAMESPACE});
        must("context.add", rest.raw("context", "add", &body).await?)?;
    }
    let entities: Vec<Value> = (0..pool::ENTITIES)
        .map(|i| json!({"name": pool::entity(i), "entity_type": "soak_topic", "observations": []}))
        .collect();
    let body = json!({"entities": entities});
    must(
        "context.create_entities",
        rest.raw("context", "create_entities", &body).await?,
    )
}

/// One file only this client writes: its version and the number on its `state` line.
struct OwnFile {
    path: String,
    version: u64,
    state: u64,
}

/// The mix: operation and relative weight.
const MIX: [(Op, u64); 17] = [
    (Op::MemoryStore, 12),
    (Op::MemoryRetrieve, 14),
    (Op::MemorySearch, 3),
    (Op::MemoryDelete, 4),
    (Op::FilesRead, 9),
    (Op::FilesWriteExpected, 7),
    (Op::FilesWriteOwn, 4),
    (Op::FilesEdit, 6),
    (Op::FilesLockCycle, 3),
    (Op::FilesVersions, 3),
    (Op::FilesList, 3),
    (Op::ContextAdd, 5),
    (Op::ContextSearch, 8),
    (Op::ContextRelate, 3),
    (Op::CreateEntities, 3),
    (Op::AddObservations, 4),
    (Op::SearchNodes, 2),
];

#[derive(Clone, Copy)]
enum Op {
    MemoryStore,
    MemoryRetrieve,
    MemorySearch,
    MemoryDelete,
    FilesRead,
    FilesWriteExpected,
    FilesWriteOwn,
    FilesEdit,
    FilesLockCycle,
    FilesVersions,
    FilesList,
    ContextAdd,
    ContextSearch,
    ContextRelate,
    CreateEntities,
    AddObservations,
    SearchNodes,
}

impl Op {
    fn service(self) -> &'static str {
        match self {
            Op::MemoryStore | Op::MemoryRetrieve | Op::MemorySearch | Op::MemoryDelete => "memory",
            Op::FilesRead
            | Op::FilesWriteExpected
            | Op::FilesWriteOwn
            | Op::FilesEdit
            | Op::FilesLockCycle
            | Op::FilesVersions
            | Op::FilesList => "files",
            Op::ContextAdd
            | Op::ContextSearch
            | Op::ContextRelate
            | Op::CreateEntities
            | Op::AddObservations
            | Op::SearchNodes => "context",
        }
    }
}

/// One REST client.
pub struct RestClient {
    rest: Rest,
    id: usize,
    rng: Rng,
    own: Vec<OwnFile>,
    sequence: u64,
}

impl RestClient {
    /// Client `id`; writes its own files (unconditionally, so leftovers of an earlier run do
    /// not matter) before the loop.
    pub async fn new(rest: Rest, id: usize) -> Result<RestClient, String> {
        let mut rng = Rng::new(id);
        let mut own = Vec::with_capacity(pool::OWN_FILES);
        for i in 0..pool::OWN_FILES {
            let path = format!("{}/f{i}.txt", pool::own_dir(id));
            let body = json!({"path": path, "content": pool::own_content(0, &mut rng)});
            let (status, value) = rest.raw("files", "write", &body).await?;
            let version = value["version"]
                .as_u64()
                .filter(|_| status == 200)
                .ok_or_else(|| {
                    format!(
                        "client {id}: writing {path}: HTTP {status}: {}",
                        snippet(&value)
                    )
                })?;
            own.push(OwnFile {
                path,
                version,
                state: 0,
            });
        }
        Ok(RestClient {
            rest,
            id,
            rng,
            own,
            sequence: 0,
        })
    }

    /// Loops over the operations of `services` (all when empty) until `stop` is set or
    /// `budget` operations ran.
    pub async fn run(mut self, services: &[String], stop: Arc<AtomicBool>, budget: u64) {
        let mix: Vec<(Op, u64)> = MIX
            .into_iter()
            .filter(|(op, _)| services.is_empty() || services.iter().any(|s| s == op.service()))
            .collect();
        let total: u64 = mix.iter().map(|(_, weight)| weight).sum();
        if total == 0 {
            return;
        }
        for _ in 0..budget {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let mut draw = self.rng.below(total);
            let mut chosen = mix[0].0;
            for &(op, weight) in &mix {
                if draw < weight {
                    chosen = op;
                    break;
                }
                draw -= weight;
            }
            self.step(chosen).await;
        }
    }

    async fn step(&mut self, op: Op) {
        self.sequence += 1;
        let rng = &mut self.rng;
        let rest = &self.rest;
        match op {
            Op::MemoryStore => {
                let ttl = *rng.pick(&[1u64, 5, 30, 300, 0]);
                let words = 4 + rng.below(120) as usize;
                let value =
                    json!({"client": self.id, "n": self.sequence, "text": rng.words(words)});
                let body = json!({"key": pool::memory_key(rng.below(pool::MEMORY_KEYS)), "value": value, "ttl": ttl, "namespace": NAMESPACE});
                rest.call("memory.store", body, &[]).await;
            }
            Op::MemoryRetrieve => {
                let body = json!({"key": pool::memory_key(rng.below(pool::MEMORY_KEYS)), "namespace": NAMESPACE});
                rest.call("memory.retrieve", body, &[404]).await;
            }
            Op::MemorySearch => {
                let body = json!({"pattern": format!("soak:k{}*", rng.below(3)), "namespace": NAMESPACE, "limit": 50, "with_values": rng.below(2) == 0});
                rest.call("memory.search", body, &[]).await;
            }
            Op::MemoryDelete => {
                let body = json!({"key": pool::memory_key(rng.below(pool::MEMORY_KEYS)), "namespace": NAMESPACE});
                rest.call("memory.delete", body, &[404]).await;
            }
            Op::FilesRead => {
                let body = json!({"path": pool::shared_path(rng.below(pool::SHARED_FILES))});
                rest.call("files.read", body, &[]).await;
            }
            Op::FilesWriteExpected => {
                let path = pool::shared_path(rng.below(pool::SHARED_FILES));
                let read = rest.call("files.read", json!({"path": path}), &[]).await;
                if let Reply::Ok(file) = read {
                    let words = 16 + rng.below(400) as usize;
                    let body = json!({"path": path, "content": rng.words(words), "expected_version": file["version"]});
                    rest.call("files.write+expected", body, &[409, 423]).await;
                }
            }
            Op::FilesWriteOwn => {
                let file = &mut self.own[rng.below(pool::OWN_FILES as u64) as usize];
                let body = json!({"path": file.path, "content": pool::own_content(file.state, rng), "expected_version": file.version});
                match rest.call("files.write+own", body, &[]).await {
                    Reply::Ok(written) => match written["version"].as_u64() {
                        Some(version) => file.version = version,
                        None => resync(rest, file).await,
                    },
                    _ => resync(rest, file).await,
                }
            }
            Op::FilesEdit => {
                let file = &mut self.own[rng.below(pool::OWN_FILES as u64) as usize];
                let edit = json!({"old_text": format!("state {}\n", file.state), "new_text": format!("state {}\n", file.state + 1)});
                let body =
                    json!({"path": file.path, "edits": [edit], "expected_version": file.version});
                match rest.call("files.edit", body, &[]).await {
                    Reply::Ok(edited) => match edited["version"].as_u64() {
                        Some(version) => {
                            file.version = version;
                            file.state += 1;
                        }
                        None => resync(rest, file).await,
                    },
                    _ => resync(rest, file).await,
                }
            }
            Op::FilesLockCycle => {
                let path = pool::shared_path(rng.below(pool::SHARED_FILES));
                let owner = format!("soak-c{:02}", self.id);
                let lock = json!({"path": path, "ttl_ms": 15_000, "owner": owner});
                if let Reply::Ok(lease) = rest.call("files.lock", lock, &[409, 423]).await {
                    let token = lease["token"].clone();
                    let write =
                        json!({"path": path, "content": rng.words(64), "lock_token": token});
                    rest.call("files.write+token", write, &[]).await;
                    rest.call("files.unlock", json!({"path": path, "token": token}), &[])
                        .await;
                }
            }
            Op::FilesVersions => {
                let body = json!({"path": pool::shared_path(rng.below(pool::SHARED_FILES))});
                rest.call("files.versions", body, &[]).await;
            }
            Op::FilesList => {
                let path = if rng.below(2) == 0 {
                    "shared".to_owned()
                } else {
                    pool::own_dir(self.id)
                };
                rest.call("files.list", json!({"path": path, "limit": 100}), &[])
                    .await;
            }
            Op::ContextAdd => {
                let text = pool::doc_text(rng.below(pool::TEXTS));
                let body = json!({"id": pool::doc_id(rng.below(pool::DOCS)), "text": text, "metadata": {"topic": rng.words(1), "client": self.id}, "namespace": NAMESPACE});
                rest.call("context.add", body, &[]).await;
            }
            Op::ContextSearch => {
                let mode = *rng.pick(&["hybrid", "semantic", "keyword"]);
                let query = pool::query(rng.below(pool::QUERIES));
                let body = json!({"query": query, "limit": 5, "mode": mode, "namespace": NAMESPACE, "expand": rng.below(2)});
                rest.call("context.search", body, &[]).await;
            }
            Op::ContextRelate => {
                // Each document relates to its next few only, so the edges saturate early.
                let from = rng.below(pool::DOCS);
                let to = (from + 1 + rng.below(pool::RELATED)) % pool::DOCS;
                let body = json!({"from": pool::doc_id(from), "to": pool::doc_id(to), "type": "SOAK_NEAR"});
                rest.call("context.relate", body, &[]).await;
            }
            Op::CreateEntities => {
                let entity = json!({"name": pool::entity(rng.below(pool::ENTITIES)), "entity_type": "soak_topic", "observations": [pool::observation(rng.below(pool::OBSERVATIONS))]});
                rest.call(
                    "context.create_entities",
                    json!({"entities": [entity]}),
                    &[],
                )
                .await;
            }
            Op::AddObservations => {
                let contents = [
                    pool::observation(rng.below(pool::OBSERVATIONS)),
                    pool::observation(rng.below(pool::OBSERVATIONS)),
                ];
                let body = json!({"observations": [{"entity_name": pool::entity(rng.below(pool::ENTITIES)), "contents": contents}]});
                rest.call("context.add_observations", body, &[]).await;
            }
            Op::SearchNodes => {
                let body = json!({"query": pool::entity(rng.below(pool::ENTITIES))});
                rest.call("context.search_nodes", body, &[]).await;
            }
        }
    }
}

/// After an unexpected answer on an own file, reads it back (unrecorded) to learn its version
/// and state again; the failure itself was already counted.
async fn resync(rest: &Rest, file: &mut OwnFile) {
    let Ok((200, value)) = rest.raw("files", "read", &json!({"path": file.path})).await else {
        return;
    };
    let state = value["content"]
        .as_str()
        .and_then(|text| text.lines().find_map(|line| line.strip_prefix("state ")))
        .and_then(|n| n.trim().parse().ok());
    if let (Some(version), Some(state)) = (value["version"].as_u64(), state) {
        file.version = version;
        file.state = state;
    }
}
