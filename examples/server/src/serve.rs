//! Running the server: HTTP on a bound listener until a shutdown signal, or MCP over
//! stdin/stdout until the client closes it or a signal arrives.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use rmcp::model::ProtocolVersion;
use rmcp::ServiceExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::router;
use crate::mcp::McpHandler;
use crate::stdio::plumb;
use crate::{App, Error};

/// How long a stdio session that has ended waits for the answers of calls still running.
const FINAL_ANSWERS: Duration = Duration::from_secs(5);

/// Serves the HTTP router on `listener` until `shutdown` completes, then drains open requests
/// and closes open MCP streams.
pub async fn serve_http(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let streams = CancellationToken::new();
    let routes = router(app, streams.clone());
    axum::serve(
        listener,
        routes.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        streams.cancel();
    })
    .await?;
    Ok(())
}

/// Serves MCP over stdin/stdout until the client closes stdin or `shutdown` completes.
pub async fn serve_stdio(
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let handler = McpHandler::new(&app);
    // Non-blocking pipes when stdin and stdout are FIFOs (how MCP clients spawn servers):
    // every read and write then runs on the IO reactor instead of a hand-off to the blocking
    // thread pool per message; terminals and files fall back to the blocking handles.
    let (stdin, stdout) = rmcp::transport::stdio_pipes();
    grow_stdout_pipe();
    // A line longer than the body limit is dropped unread, as an oversized HTTP body is
    // refused, instead of being buffered up to rmcp's 16 MiB default.
    let max_line = app.config.limits.max_body_bytes;
    let plumbing = plumb(stdin, stdout, handler.tool_calls(), max_line);
    let transport = rmcp::transport::async_rw::AsyncRwTransport::new_server(
        plumbing.to_rmcp,
        plumbing.from_rmcp,
    )
    .with_max_line_length(max_line);
    let running = handler
        .serve(transport)
        .await
        .map_err(|err| Error::Transport(format!("MCP initialization over stdio failed: {err}")))?;
    // Sessions that negotiated a revision before 2026-07-28 with `initialize` get plain
    // `tools/call` requests answered next to rmcp. (Later revisions have no `initialize`:
    // their requests carry their own metadata and results another shape, so rmcp answers
    // all of them.)
    let legacy_session = running.peer_info().is_some_and(|info| {
        info.protocol_version.as_str() < ProtocolVersion::V_2026_07_28.as_str()
    });
    if legacy_session {
        plumbing.initialized.store(true, Ordering::Release);
    }
    let token = running.cancellation_token();
    tokio::spawn(async move {
        shutdown.await;
        token.cancel();
    });
    let ended = running
        .waiting()
        .await
        .map_err(|err| Error::Transport(format!("the stdio session ended abnormally: {err}")));
    // Answers already queued still go out; calls still running get a moment to finish.
    plumbing.reader.abort();
    let _ = tokio::time::timeout(FINAL_ANSWERS, plumbing.writer).await;
    ended?;
    Ok(())
}

/// Asks for a 1 MiB stdout pipe (Linux's default limit for unprivileged processes) instead of
/// the default 64 KiB: with pipelined calls the writer then rarely waits for the client to
/// read, and the client reads many answers per wake-up (`BENCHMARKS.md`). Not a pipe, or not
/// Linux: nothing to do.
fn grow_stdout_pipe() {
    #[cfg(target_os = "linux")]
    {
        const STDOUT_PIPE: usize = 1 << 20;
        let stdout = std::io::stdout();
        match rustix::pipe::fcntl_setpipe_size(&stdout, STDOUT_PIPE) {
            Ok(size) => tracing::debug!(size, "stdout pipe size"),
            Err(err) => tracing::debug!(%err, "stdout pipe size left as it is"),
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(err) => {
                    tracing::warn!(%err, "cannot listen for SIGTERM; only SIGINT stops the server");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutdown signal received");
}
