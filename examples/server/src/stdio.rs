//! MCP over stdin/stdout with `tools/call` answered next to rmcp's session loop.
//!
//! rmcp runs the session: `initialize`, every other method, notifications, subscriptions and
//! the responses they produce. A reader task sits in front of it: every line of stdin goes to
//! rmcp (through an in-process pipe), except, once rmcp has answered `initialize`, the plain
//! `tools/call` requests — no `_meta`, no task, nothing but `name` and `arguments` — which the
//! reader answers itself through the very [`ToolCalls`] the rmcp handler uses, so the result
//! is the same either way. A call that does not finish when first polled goes on in a task of
//! its own, so a slow call never holds up the ones behind it.
//!
//! This skips rmcp's per-request machinery (a task, two channel hops, a cancellation token, a
//! tracing span, a lock and a write system call per message), which was most of the CPU of a
//! small call (`BENCHMARKS.md`). Every answer, rmcp's included, goes through one writer task
//! that writes whatever has queued up in a single `write`.
//!
//! A `notifications/cancelled` for a call answered here reaches rmcp, which knows nothing of
//! it; the call runs to its end or its deadline, as it would under rmcp (the handler does not
//! watch cancellation either).

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use mcp_core::{ActionOutput, Params};
use rmcp::model::{
    CallToolResponse, JsonRpcVersion2_0, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

use crate::mcp::{ToolCalls, ToolOutcome};

/// Answers waiting for the writer; the reader stops reading stdin while it is full.
const OUTPUT_QUEUE: usize = 1024;
/// The reader hands what it answered to the writer when its input runs dry, or at this many.
const MAX_HELD: usize = 128;
/// The writer stops gathering queued answers into one `write` at this size.
const MAX_WRITE: usize = 256 * 1024;
/// The in-process pipe between the reader and rmcp.
const PIPE_CAPACITY: usize = 64 * 1024;
/// A UTF-8 byte order mark, which JSON parsers may ignore (RFC 8259 §8.1).
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the writer task writes.
enum Answer {
    /// A message rmcp wrote, newline included.
    Written(Vec<u8>),
    /// Outcomes of calls answered next to rmcp, serialized by the writer: the reader parses
    /// and runs calls while the writer turns outcomes into JSON, on the other core. The
    /// reader gathers those done at once while more input is waiting (one hand-off and one
    /// wake-up of the writer for all of them); a call that took longer comes alone.
    Calls(Vec<(RequestId, CallOutcome)>),
}

type CallOutcome = Result<ToolOutcome, rmcp::ErrorData>;

/// The pieces of a stdio session around rmcp: what rmcp reads from and writes to, and the
/// tasks that feed and drain them.
pub struct StdioPlumbing {
    /// What rmcp reads: every line of stdin that the reader does not answer itself.
    pub to_rmcp: tokio::io::DuplexStream,
    /// What rmcp writes: each flushed message becomes one queued answer.
    pub from_rmcp: QueuedWriter,
    /// Set once rmcp has answered `initialize` with a revision before 2026-07-28; until then,
    /// or if never, every line goes to rmcp.
    pub initialized: Arc<AtomicBool>,
    /// Reads stdin; ends at its end of file (closing rmcp's side) or when the writer is gone.
    pub reader: JoinHandle<()>,
    /// Writes every answer to stdout; ends when everything that queues answers is gone.
    pub writer: JoinHandle<()>,
}

/// Starts the reader and writer tasks over `input` and `output`. Lines longer than
/// `max_line_length` are dropped unread, as rmcp drops them.
pub fn plumb<R, W>(input: R, output: W, calls: ToolCalls, max_line_length: usize) -> StdioPlumbing
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (answers, queued) = mpsc::channel(OUTPUT_QUEUE);
    // The writer gets a thread of its own: as a task, the reader's wake-ups kept it on the
    // reader's worker (tokio runs a task woken by another next on the same worker), so one
    // core did all the parsing, calling and serializing while the other idled.
    let runtime = tokio::runtime::Handle::current();
    let writer =
        tokio::task::spawn_blocking(move || runtime.block_on(write_answers(queued, output)));
    let (to_rmcp, pipe) = tokio::io::duplex(PIPE_CAPACITY);
    let initialized = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(
        Reader {
            input: BufReader::new(input),
            line: Vec::new(),
            max_line_length,
            pipe,
            answers: answers.clone(),
            held: Vec::new(),
            calls,
            initialized: initialized.clone(),
        }
        .run(),
    );
    StdioPlumbing {
        to_rmcp,
        from_rmcp: QueuedWriter {
            buffer: Vec::new(),
            answers: PollSender::new(answers),
        },
        initialized,
        reader,
        writer,
    }
}

/// Writes queued answers to `output`, as many as have queued up (to [`MAX_WRITE`]) per
/// `write`, until every sender is gone or `output` fails.
async fn write_answers<W: AsyncWrite + Unpin>(mut queued: mpsc::Receiver<Answer>, mut output: W) {
    let mut batch = Vec::with_capacity(MAX_WRITE);
    while let Some(answer) = queued.recv().await {
        append(&mut batch, answer);
        while batch.len() < MAX_WRITE {
            match queued.try_recv() {
                Ok(answer) => append(&mut batch, answer),
                Err(_) => break,
            }
        }
        if let Err(err) = write_out(&mut output, &batch).await {
            tracing::error!(%err, "cannot write to stdout; the stdio session ends");
            return;
        }
        batch.clear();
    }
    let _ = output.shutdown().await;
}

fn append(batch: &mut Vec<u8>, answer: Answer) {
    match answer {
        Answer::Written(bytes) => batch.extend_from_slice(&bytes),
        Answer::Calls(outcomes) => {
            for (id, outcome) in outcomes {
                append_answer(batch, id, outcome);
            }
        }
    }
}

async fn write_out<W: AsyncWrite + Unpin>(output: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    output.write_all(bytes).await?;
    output.flush().await
}

/// A plain `tools/call` request: anything more (`_meta`, a task, other fields) makes it
/// rmcp's to answer.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainToolCall<'a> {
    /// Checked by parsing: it must be "2.0".
    #[serde(rename = "jsonrpc")]
    _jsonrpc: JsonRpcVersion2_0,
    id: RequestId,
    #[serde(borrow)]
    method: Cow<'a, str>,
    params: PlainToolCallParams,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainToolCallParams {
    name: String,
    #[serde(default)]
    /// Kept as JSON text and parsed once, straight into the action's parameters.
    arguments: Option<Box<RawValue>>,
}

impl PlainToolCall<'_> {
    fn parse(line: &[u8]) -> Option<PlainToolCall<'_>> {
        // Arguments that are not an object are rmcp's to refuse.
        serde_json::from_slice::<PlainToolCall>(line)
            .ok()
            .filter(|call| call.method == "tools/call")
            .filter(|call| {
                (call.params.arguments.as_ref()).is_none_or(|args| args.get().starts_with('{'))
            })
    }
}

/// Appends the JSON-RPC line answering request `id` to `batch`.
fn append_answer(batch: &mut Vec<u8>, id: RequestId, outcome: CallOutcome) {
    let start = batch.len();
    let written = match outcome {
        Ok(ToolOutcome::Structured(output)) => write_structured(batch, &id, &output),
        outcome => {
            let message = match outcome.map(CallToolResponse::from) {
                Ok(response) => {
                    // The shape rmcp's handler gives results for sessions before
                    // 2026-07-28, the only ones answered here.
                    let mut result = ServerResult::from(response);
                    result.strip_result_type_for_legacy_peer();
                    result.strip_non_object_output_for_legacy_peer();
                    ServerJsonRpcMessage::response(result, id)
                }
                Err(error) => ServerJsonRpcMessage::error(error, Some(id)),
            };
            serde_json::to_writer(&mut *batch, &message)
        }
    };
    if let Err(err) = written {
        // Serializing an id, a JSON value or rmcp's own message types does not fail; say so
        // if it ever does.
        tracing::error!(%err, "cannot serialize an answer");
        batch.truncate(start);
        batch.extend_from_slice(br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"cannot serialize the answer"},"id":null}"#);
    }
    batch.push(b'\n');
}

/// Writes the answer rmcp would write for a structured success, copying the JSON the service
/// wrote instead of parsing and serializing it again. `plain_calls_get_the_answers_rmcp_gives`
/// holds the two answers equal.
///
/// The answer is `{"content": [TEXT...], "structuredContent": RESULT, "isError": false}`; see
/// [`ToolOutcome::Structured`] for the text content. The text of a result made in pieces is
/// already a JSON string, so it is copied as it is.
fn write_structured(
    line: &mut Vec<u8>,
    id: &RequestId,
    output: &ActionOutput,
) -> serde_json::Result<()> {
    line.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    serde_json::to_writer(&mut *line, id)?;
    line.extend_from_slice(br#","result":{"content":[{"type":"text","text":"#);
    match output.text_pieces() {
        None => serde_json::to_writer(&mut *line, output.json())?,
        Some(pieces) => {
            serde_json::to_writer(&mut *line, pieces.rest.get())?;
            line.extend_from_slice(br#"},{"type":"text","text":"#);
            line.extend_from_slice(pieces.text.get().as_bytes());
        }
    }
    line.extend_from_slice(br#"}],"structuredContent":"#);
    output.write_json(line);
    line.extend_from_slice(br#","isError":false}}"#);
    Ok(())
}

/// What became of one line of stdin.
enum LineRead {
    /// A whole line (its `\n` included) is in `line`.
    Line,
    /// The line was longer than the limit and has been dropped unread.
    TooLong,
    /// End of input.
    End,
}

struct Reader<R> {
    input: BufReader<R>,
    line: Vec<u8>,
    max_line_length: usize,
    pipe: tokio::io::DuplexStream,
    answers: mpsc::Sender<Answer>,
    /// Calls answered at once, not handed to the writer yet.
    held: Vec<(RequestId, CallOutcome)>,
    calls: ToolCalls,
    initialized: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin + Send> Reader<R> {
    async fn run(mut self) {
        if let Err(err) = self.serve().await {
            tracing::debug!(%err, "the stdio reader stopped");
        }
        let _ = self.hand_over_held().await;
        // Dropping the pipe is rmcp's end of input.
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        loop {
            let more_input_waiting = self.input.buffer().contains(&b'\n');
            if (!more_input_waiting || self.held.len() >= MAX_HELD)
                && self.hand_over_held().await.is_err()
            {
                // Nothing can be answered any more; stop reading, which ends rmcp's input.
                tracing::debug!("stdout is gone; the stdio reader stops");
                return Ok(());
            }
            match self.read_line().await? {
                LineRead::End => {
                    let _ = self.hand_over_held().await;
                    // A last line without `\n` is rmcp's to judge.
                    self.pipe.write_all(&self.line).await?;
                    return Ok(());
                }
                LineRead::TooLong => tracing::error!(
                    max_line_length = self.max_line_length,
                    "an incoming message exceeded the maximum line length; it was dropped"
                ),
                LineRead::Line => {
                    if !self.answer_here().await {
                        self.pipe.write_all(&self.line).await?;
                    }
                    self.line.clear();
                }
            }
        }
    }

    /// Reads up to and including the next `\n` into `line`. A line longer than
    /// `max_line_length` (its `\n` included, as rmcp counts) is dropped as it arrives,
    /// never held in memory whole.
    async fn read_line(&mut self) -> std::io::Result<LineRead> {
        let mut too_long = false;
        loop {
            let available = self.input.fill_buf().await?;
            if available.is_empty() {
                return Ok(if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::End
                });
            }
            let newline = available.iter().position(|&byte| byte == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            if !too_long && self.line.len() + take <= self.max_line_length {
                self.line.extend_from_slice(&available[..take]);
            } else {
                too_long = true;
                self.line.clear();
            }
            Pin::new(&mut self.input).consume(take);
            if newline.is_some() {
                return Ok(if too_long {
                    LineRead::TooLong
                } else {
                    LineRead::Line
                });
            }
        }
    }

    /// Hands the answers held so far to the writer; fails if the writer has stopped (stdout
    /// is gone).
    async fn hand_over_held(&mut self) -> Result<(), WriterGone> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        self.answers
            .send(Answer::Calls(held))
            .await
            .map_err(|_| WriterGone)
    }

    /// Answers the line in `line` if it is a plain `tools/call` of an initialized session;
    /// false if it is rmcp's.
    async fn answer_here(&mut self) -> bool {
        if !self.initialized.load(Ordering::Acquire) {
            return false;
        }
        let text = self.line.strip_suffix(b"\n").unwrap_or(&self.line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let text = text.strip_prefix(UTF8_BOM).unwrap_or(text);
        let Some(call) = PlainToolCall::parse(text) else {
            return false;
        };
        let (id, name) = (call.id, call.params.name);
        let arguments = match call.params.arguments {
            Some(json) => Params::Json(json),
            None => Params::Value(serde_json::Value::Null),
        };
        let calls = self.calls.clone();
        let caller = calls.local_caller();
        let mut running = Box::pin(async move { calls.call(&name, arguments, &caller).await });
        // Most calls finish at once; the others go on in a task of their own.
        let first_poll = std::future::poll_fn(|cx| Poll::Ready(running.as_mut().poll(cx))).await;
        match first_poll {
            Poll::Ready(result) => self.held.push((id, result)),
            Poll::Pending => {
                let answers = self.answers.clone();
                tokio::spawn(async move {
                    let result = running.await;
                    let _ = answers.send(Answer::Calls(vec![(id, result)])).await;
                });
            }
        }
        true
    }
}

/// The writer task has stopped: stdout cannot be written any more.
struct WriterGone;

/// rmcp's output: bytes written are gathered and each flush queues them as one answer.
pub struct QueuedWriter {
    buffer: Vec<u8>,
    answers: PollSender<Answer>,
}

fn writer_gone() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the stdout writer has stopped",
    )
}

impl AsyncWrite for QueuedWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.get_mut().buffer.extend_from_slice(bytes);
        Poll::Ready(Ok(bytes.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.buffer.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(this.answers.poll_reserve(cx)).map_err(|_| writer_gone())?;
        let written = std::mem::take(&mut this.buffer);
        this.answers
            .send_item(Answer::Written(written))
            .map_err(|_| writer_gone())?;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut *this).poll_flush(cx))?;
        this.answers.close();
        Poll::Ready(Ok(()))
    }
}
