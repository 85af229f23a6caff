//! The server under soak: the real `mcp-server` binary cargo built next to this bench, started
//! on a free loopback port with a config file that puts every role on a real backend, watched
//! through `/proc/<pid>/status` (VmRSS) and stopped with SIGTERM at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The real servers' URLs.
pub struct Backends {
    /// `MCP_TEST_REDIS_URL`: memory kv, events and files locks.
    pub redis: String,
    /// `MCP_TEST_POSTGRES_URL`: files versions and the audit log.
    pub postgres: String,
    /// `MCP_TEST_NEO4J_URL`: context vectors and knowledge graph.
    pub neo4j: String,
}

/// A running `mcp-server`.
pub struct Server {
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its stderr.
    pub log: PathBuf,
}

/// How long the server may take to answer `/health` after the spawn.
const STARTUP: Duration = Duration::from_secs(90);

impl Server {
    /// Writes `dir/soak.toml` and starts the server on it with `root` as its files root.
    pub async fn start(
        binary: &Path,
        backends: &Backends,
        root: &Path,
        dir: &Path,
    ) -> Result<Server, String> {
        let port = free_port()?;
        let config = format!(
            "listen = \"127.0.0.1:{port}\"\n\
             roots = [{root:?}]\n\
             [backends]\n\
             kv = {redis:?}\nevents = {redis:?}\nlocks = {redis:?}\n\
             versions = {postgres:?}\naudit = {postgres:?}\n\
             vectors = {neo4j:?}\ngraph = {neo4j:?}\n\
             rate_limit = \"memory://\"\n\
             [limits]\n\
             # The soak measures the server, not the per-key budget: never refuse.\n\
             rate_per_second = 100000000\nrate_burst = 100000000\n",
            root = root.display().to_string(),
            redis = backends.redis,
            postgres = backends.postgres,
            neo4j = backends.neo4j,
        );
        let config_path = dir.join("soak.toml");
        std::fs::write(&config_path, config)
            .map_err(|err| format!("writing {}: {err}", config_path.display()))?;
        let log = dir.join("server.log");
        let stderr = std::fs::File::create(&log)
            .map_err(|err| format!("creating {}: {err}", log.display()))?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(&config_path)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| format!("spawning {}: {err}", binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| "the server exited at once".to_owned())?;
        let mut server = Server {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::new();
        let started = Instant::now();
        let mut last = String::from("no answer");
        while started.elapsed() < STARTUP {
            if let Some(status) = self.exited() {
                return Err(format!(
                    "the server {status} before it served (see {})",
                    self.log.display()
                ));
            }
            match http.get(format!("{}/health", self.base)).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => last = format!("HTTP {}", response.status()),
                Err(err) => last = err.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!(
            "the server did not answer /health within {} s ({last}; see {})",
            STARTUP.as_secs(),
            self.log.display()
        ))
    }

    /// Resident set size in KiB (`VmRSS`), `None` once the process is gone.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// How the server ended, if it did.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status})")),
            Ok(None) => None,
            Err(err) => Some(format!("cannot be waited for ({err})")),
        }
    }

    /// SIGTERM, then up to 15 s for a graceful exit (SIGKILL after that). Returns how it ended.
    pub async fn stop(mut self) -> String {
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .is_ok_and(|status| status.success());
        if signalled {
            if let Ok(Ok(status)) =
                tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await
            {
                return format!("stopped on SIGTERM ({status})");
            }
        }
        let _ = self.child.kill().await;
        "killed: no graceful exit within 15 s of SIGTERM".to_owned()
    }
}

/// A loopback port nobody listens on right now.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|err| format!("binding a port: {err}"))?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|err| format!("reading the port: {err}"))
}

/// The 1-minute load average from `/proc/loadavg`.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(f64::NAN)
}
