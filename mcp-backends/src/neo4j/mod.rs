//! Neo4j backends (feature `neo4j`): [`Neo4jVectorIndex`] on a native vector index and
//! [`Neo4jGraphStore`] on labelled nodes, one relationship type and a full-text index.
//!
//! Every call goes through [`Client`], which bounds it by a timeout and maps driver errors, so
//! a dead server yields `Error::Unavailable` (or `Error::Timeout`) quickly instead of a hang;
//! the connection pool reconnects by itself when the server returns. Every value reaches Cypher
//! as a query parameter; the only names spliced into statements (index names and labels) are
//! checked by [`validate_identifier`] first.

mod graph;
mod vector;

use std::future::Future;
use std::time::Duration;

use neo4rs::{ConfigBuilder, Graph, Query, Row};

pub use graph::Neo4jGraphStore;
pub use vector::Neo4jVectorIndex;

use crate::{Error, Result};

const BACKEND: &str = "neo4j";

/// How long connecting or one call may take before it fails with `Unavailable`/`Timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a running call checks that the server can still be reached.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long connecting waits for a newly created index to come online.
const INDEX_ONLINE_TIMEOUT: Duration = Duration::from_secs(60);

/// Neo4j status code of a uniqueness-constraint violation.
const CONSTRAINT_VIOLATION: &str = "Neo.ClientError.Schema.ConstraintValidationFailed";

/// Maps a driver error: I/O and connection failures mean the server is unavailable.
fn map_err(err: neo4rs::Error) -> Error {
    match err {
        neo4rs::Error::IOError { .. } | neo4rs::Error::ConnectionError => Error::Unavailable {
            backend: BACKEND,
            message: err.to_string(),
        },
        neo4rs::Error::UrlParseError(_)
        | neo4rs::Error::UnsupportedScheme(_)
        | neo4rs::Error::InvalidDnsName(_)
        | neo4rs::Error::InvalidConfig => Error::InvalidArgument(format!("bad Neo4j URL: {err}")),
        other => Error::Backend {
            backend: BACKEND,
            message: other.to_string(),
        },
    }
}

fn corrupt(what: impl std::fmt::Display) -> Error {
    Error::Backend {
        backend: BACKEND,
        message: format!("unexpected stored data: {what}"),
    }
}

/// Checks a name that is spliced into Cypher (index names, labels): an ASCII letter, then
/// letters, digits or `_`, at most 64 characters. Nothing else can reach a statement's text.
pub fn validate_identifier(kind: &str, name: &str) -> Result<()> {
    let mut chars = name.chars();
    let valid = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{kind} `{name}` must be an ASCII letter followed by letters, digits or `_` (at most 64)"
        )))
    }
}

/// Splits `bolt://user:password@host:port` into the address the driver wants and the
/// credentials (any credentials work when authentication is off).
fn split_credentials(url: &str) -> (String, String, String) {
    let (scheme, rest) = url.split_once("://").unwrap_or(("bolt", url));
    match rest.split_once('@') {
        Some((user_info, host)) => {
            let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
            (
                format!("{scheme}://{host}"),
                user.to_owned(),
                password.to_owned(),
            )
        }
        None => (
            format!("{scheme}://{rest}"),
            "neo4j".to_owned(),
            String::new(),
        ),
    }
}

/// A pooled Neo4j connection whose every call is bounded by a timeout.
#[derive(Clone)]
pub(crate) struct Client {
    graph: Graph,
    timeout: Duration,
}

impl Client {
    /// Connects to `url` (`bolt://[user:password@]host:port`) and checks that the server answers.
    pub(crate) async fn connect(url: &str) -> Result<Self> {
        let (address, user, password) = split_credentials(url);
        let config = ConfigBuilder::default()
            .uri(address)
            .user(user)
            .password(password)
            .max_connections(16)
            .build()
            .map_err(map_err)?;
        let client = Client {
            graph: Graph::connect(config).await.map_err(map_err)?,
            timeout: DEFAULT_TIMEOUT,
        };
        client.reach().await?;
        client.ping().await?;
        Ok(client)
    }

    /// Opens a transaction and rolls it back, without the driver's retries: a refused or
    /// broken connection is `Unavailable` at once, a server that does not answer is `Timeout`.
    async fn reach(&self) -> Result<()> {
        let (graph, timeout) = (self.graph.clone(), self.timeout);
        detached(async move {
            match tokio::time::timeout(timeout, graph.start_txn()).await {
                Ok(Ok(txn)) => txn.rollback().await.map_err(map_err),
                Ok(Err(err)) => Err(map_err(err)),
                Err(_) => Err(Error::Timeout { backend: BACKEND }),
            }
        })
        .await
    }

    /// Runs `work` under the call timeout. The driver silently retries connections that fail,
    /// so an outage would look like a slow call: while `work` runs, a watchdog checks every
    /// [`PROBE_EVERY`] whether the server can be reached at all and fails the call with
    /// `Unavailable` as soon as it cannot.
    pub(crate) async fn bounded<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        let watchdog = async {
            loop {
                tokio::time::sleep(PROBE_EVERY).await;
                if let Err(err @ Error::Unavailable { .. }) = self.reach().await {
                    return err;
                }
            }
        };
        tokio::select! {
            result = tokio::time::timeout(self.timeout, work) => match result {
                Ok(result) => result,
                Err(_) => Err(self.reach().await.err().unwrap_or(Error::Timeout { backend: BACKEND })),
            },
            err = watchdog => Err(err),
        }
    }

    /// Runs a statement and collects every row.
    pub(crate) async fn rows(&self, query: Query) -> Result<Vec<Row>> {
        let graph = self.graph.clone();
        self.bounded(detached(retry_transient(move || {
            let (graph, query) = (graph.clone(), query.clone());
            async move {
                let mut stream = graph.execute(query).await?;
                let mut rows = Vec::new();
                while let Some(row) = stream.next().await? {
                    rows.push(row);
                }
                Ok(rows)
            }
        })))
        .await
    }

    /// Runs a statement, discarding its rows.
    pub(crate) async fn run(&self, query: Query) -> Result<()> {
        let graph = self.graph.clone();
        self.bounded(detached(retry_transient(move || {
            let (graph, query) = (graph.clone(), query.clone());
            async move { graph.run(query).await }
        })))
        .await
    }

    /// Runs a schema statement (`CREATE ... IF NOT EXISTS`); a concurrent creator that won the
    /// race is not an error.
    pub(crate) async fn create_schema(&self, statement: &str) -> Result<()> {
        self.bounded(async {
            match self.graph.run(neo4rs::query(statement)).await {
                Err(neo4rs::Error::Neo4j(neo)) if neo.code().contains("AlreadyExists") => Ok(()),
                other => other.map_err(map_err),
            }
        })
        .await
    }

    /// Waits until the index `name` is online.
    pub(crate) async fn await_index(&self, name: &str) -> Result<()> {
        let seconds = INDEX_ONLINE_TIMEOUT.as_secs() as i64;
        tokio::time::timeout(
            INDEX_ONLINE_TIMEOUT + self.timeout,
            self.graph.run(
                neo4rs::query("CALL db.awaitIndex($name, $seconds)")
                    .param("name", name)
                    .param("seconds", seconds),
            ),
        )
        .await
        .map_err(|_| Error::Timeout { backend: BACKEND })?
        .map_err(map_err)
    }

    /// Starts an explicit transaction (for read-modify-write under a node lock).
    pub(crate) async fn start_txn(&self) -> Result<neo4rs::Txn> {
        self.graph.start_txn().await.map_err(map_err)
    }

    /// Checks that the server answers a trivial query.
    pub(crate) async fn ping(&self) -> Result<()> {
        let rows = self.rows(neo4rs::query("RETURN 1 AS one")).await?;
        match rows.first().map(|row| row.get::<i64>("one")) {
            Some(Ok(1)) => Ok(()),
            _ => Err(corrupt("RETURN 1 did not answer 1")),
        }
    }
}

/// How many times a statement refused with a transient error is run in all.
const TRANSIENT_ATTEMPTS: u32 = 6;

/// The pause before the second run of such a statement; it grows with every further run.
const TRANSIENT_PAUSE: Duration = Duration::from_millis(5);

/// Whether Neo4j refused a statement with a transient error: a deadlock between concurrent
/// writers (two `relate` calls locking the same nodes in opposite orders), a lock wait cut
/// off. Neo4j rolled the statement's transaction back, so running it again is safe. (The
/// driver reports a failure while streaming rows as an unexpected message carrying the code.)
fn is_transient(err: &neo4rs::Error) -> bool {
    const TRANSIENT: &str = "Neo.TransientError.";
    match err {
        neo4rs::Error::Neo4j(neo) => neo.code().starts_with(TRANSIENT),
        neo4rs::Error::UnexpectedMessage(message) => message.contains(TRANSIENT),
        _ => false,
    }
}

/// Runs one auto-commit statement through `attempt`, again while Neo4j refuses it with a
/// transient error (at most [`TRANSIENT_ATTEMPTS`] runs, pausing a little longer, with a
/// little jitter so deadlocked writers do not collide again in step), and maps the outcome.
async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, neo4rs::Error>>,
{
    let mut runs = 1;
    loop {
        match attempt().await {
            Err(err) if runs < TRANSIENT_ATTEMPTS && is_transient(&err) => {
                tracing::debug!(%err, runs, "neo4j refused a statement for now; running it again");
                let jitter = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |now| now.subsec_nanos() % 5_000_000);
                tokio::time::sleep(TRANSIENT_PAUSE * runs + Duration::from_nanos(jitter.into()))
                    .await;
                runs += 1;
            }
            other => return other.map_err(map_err),
        }
    }
}

/// Longest a detached driver call may run before it is given up.
pub(crate) const DETACHED_LIMIT: Duration = Duration::from_secs(60);

/// Runs one driver exchange in its own task, to its end, and waits for it. The driver returns a
/// connection to its pool when the future using it is dropped, even halfway through a request:
/// the next user of that connection then reads the answers meant for the cut-off request
/// (`unexpected response for ROLLBACK: Record`, `BEGIN … cannot be handled`). Callers stop
/// waiting (a deadline, the watchdog) by dropping the returned future, which leaves the task
/// to finish the exchange and hand back a clean connection.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let task = tokio::spawn(async move {
        tokio::time::timeout(DETACHED_LIMIT, work)
            .await
            .unwrap_or(Err(Error::Timeout { backend: BACKEND }))
    });
    task.await.unwrap_or_else(|err| {
        Err(Error::Backend {
            backend: BACKEND,
            message: format!("the driver task failed: {err}"),
        })
    })
}

/// Reads column `key` of `row` as `T`.
pub(crate) fn column<'row, T: serde::Deserialize<'row>>(row: &'row Row, key: &str) -> Result<T> {
    row.get::<T>(key)
        .map_err(|err| corrupt(format!("column `{key}`: {err}")))
}

/// A count or limit as a Cypher integer (limits beyond `i64::MAX` mean "all").
pub(crate) fn count_param(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Parses a JSON object stored as a string property.
pub(crate) fn parse_object(json: &str) -> Result<crate::Metadata> {
    serde_json::from_str(json).map_err(|err| corrupt(format!("JSON property: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked() {
        assert!(validate_identifier("index", "chunks_384").is_ok());
        for bad in ["", "1abc", "a-b", "a b", "a`b", "x) DETACH DELETE (n", "é"] {
            assert!(
                matches!(
                    validate_identifier("index", bad),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad}"
            );
        }
        assert!(validate_identifier("index", &"a".repeat(65)).is_err());
    }

    #[test]
    fn credentials_are_split_from_the_url() {
        assert_eq!(
            split_credentials("bolt://127.0.0.1:7687"),
            (
                "bolt://127.0.0.1:7687".into(),
                "neo4j".into(),
                String::new()
            )
        );
        assert_eq!(
            split_credentials("bolt://me:secret@db:7687"),
            ("bolt://db:7687".into(), "me".into(), "secret".into())
        );
    }
}
