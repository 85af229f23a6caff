//! The `mcp-server` binary: parses the command line, merges it over the TOML file and the
//! environment, builds the services and serves MCP over stdio or HTTP. Logs go to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mcp_server::config::{hash_key, parse_listen, ServerConfig};
use mcp_server::serve::{serve_http, serve_stdio, shutdown_signal};
use mcp_server::{App, Error};
use tracing_subscriber::EnvFilter;

/// How often histogram samples are folded into the Prometheus buckets.
const METRICS_UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Files, memory and context services for AI agents over MCP, REST and WebSocket.
#[derive(Debug, Parser)]
#[command(name = "mcp-server", version)]
struct Cli {
    /// Serve MCP over stdin/stdout (for desktop agents).
    #[arg(long, conflicts_with = "listen")]
    stdio: bool,
    /// Serve HTTP on this address (default 127.0.0.1:8787).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// A files root (repeatable; default the current directory).
    #[arg(long = "root", value_name = "DIR")]
    roots: Vec<PathBuf>,
    /// TOML configuration file (environment variables MCP_SERVER_* override it).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Memory key-value store: memory://, redis://..., postgres://...
    #[arg(long, value_name = "URL")]
    kv_url: Option<String>,
    /// Event bus: memory://, redis://...
    #[arg(long, value_name = "URL")]
    events_url: Option<String>,
    /// Files leases: memory://, redis://..., postgres://...
    #[arg(long, value_name = "URL")]
    locks_url: Option<String>,
    /// Files versions: memory://, postgres://...
    #[arg(long, value_name = "URL")]
    versions_url: Option<String>,
    /// Audit log: memory://, postgres://...
    #[arg(long, value_name = "URL")]
    audit_url: Option<String>,
    /// Context vectors and graph: memory://, bolt://...
    #[arg(long, value_name = "URL")]
    context_url: Option<String>,
    /// Rate limiter: memory://, redis://... (shared budget across instances)
    #[arg(long, value_name = "URL")]
    rate_limit_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the SHA-256 hash of an API key, for `[[keys]] hash = "..."` in the config.
    HashKey {
        /// The bearer token.
        token: String,
    },
}

/// Every request allocates many small, short-lived buffers (JSON values, strings, futures);
/// mimalloc's per-thread free lists serve them with far less work than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::HashKey { token }) = &cli.command {
        println!("{}", hash_key(token));
        return ExitCode::SUCCESS;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mcp-server: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("mcp-server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Error> {
    let config = configure(&cli)?;
    let app = App::build(config).await?;
    if cli.stdio {
        tracing::info!(
            actions = app.registry.actions().len(),
            "serving MCP over stdio"
        );
        return serve_stdio(app, shutdown_signal()).await;
    }
    let listen = app.config.listen;
    if app.config.keys.is_empty() {
        tracing::warn!(
            "no API keys configured: only loopback clients are accepted, as principal `local` with every scope"
        );
    }
    // Histogram samples wait in the recorder until /metrics renders them; without a scraper
    // they would pile up for ever, so they are drained into the buckets every few seconds.
    let metrics = mcp_server::http::metrics_handle();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tick.tick().await;
            metrics.run_upkeep();
        }
    });
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(address = %listener.local_addr()?, "serving HTTP: /mcp /api/mcp/{{service}}/{{action}} /ws/mcp /health /metrics");
    serve_http(app, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// File, then environment, then command line.
fn configure(cli: &Cli) -> Result<ServerConfig, Error> {
    let mut config = match &cli.config {
        Some(path) => ServerConfig::from_file(path)?,
        None => ServerConfig::default(),
    };
    config.apply_env(|name| std::env::var(name).ok())?;
    if let Some(listen) = &cli.listen {
        config.listen = parse_listen(listen)?;
    }
    if !cli.roots.is_empty() {
        config.roots = cli.roots.clone();
    }
    let backends = &mut config.backends;
    let overrides = [
        (&cli.kv_url, &mut backends.kv),
        (&cli.events_url, &mut backends.events),
        (&cli.locks_url, &mut backends.locks),
        (&cli.versions_url, &mut backends.versions),
        (&cli.audit_url, &mut backends.audit),
        (&cli.rate_limit_url, &mut backends.rate_limit),
    ];
    for (given, slot) in overrides {
        if let Some(url) = given {
            slot.clone_from(url);
        }
    }
    if let Some(url) = &cli.context_url {
        backends.vectors.clone_from(url);
        backends.graph.clone_from(url);
    }
    Ok(config)
}
