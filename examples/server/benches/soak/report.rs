//! The soak's results: one row per interval (and per minute on long runs), per-operation
//! totals and the verdict, printed as a table and written as JSON and markdown.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::stats::{OpSummary, Window};

/// One interval (or minute) of the run.
#[derive(Clone, Serialize)]
pub struct Row {
    /// Seconds since the clock started, at the end of the row.
    pub end_s: u64,
    /// Requests answered in the row.
    pub requests: u64,
    /// Requests per second.
    pub per_second: f64,
    /// Expected errors (409, 423, 404 the workload provokes).
    pub expected: u64,
    /// Unexpected errors.
    pub unexpected: u64,
    /// Unexpected errors per request.
    pub unexpected_rate: f64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
    /// Server RSS at the end of the row.
    pub rss_kib: u64,
    /// 1-minute load average at the end of the row.
    pub load1: f64,
}

impl Row {
    /// The row of `window` (sorted), `seconds` long, ending at `end_s`.
    pub fn new(window: &Window, seconds: u64, end_s: u64, rss_kib: u64, load1: f64) -> Row {
        Row {
            end_s,
            requests: window.requests,
            per_second: window.requests as f64 / seconds.max(1) as f64,
            expected: window.expected,
            unexpected: window.unexpected,
            unexpected_rate: rate(window.unexpected, window.requests),
            p50_ms: window.percentile_ms(0.50),
            p99_ms: window.percentile_ms(0.99),
            rss_kib,
            load1,
        }
    }
}

/// `part / whole`, 0 for an empty whole.
pub fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Everything the run produced.
#[derive(Serialize)]
pub struct Report {
    /// The command line to reproduce it.
    pub command: String,
    /// Settings.
    pub seconds: u64,
    /// Concurrent clients: REST, WebSocket, MCP.
    pub clients: ClientCounts,
    /// Interval length.
    pub interval_s: u64,
    /// Warm-up: RSS growth is measured against the RSS at its end.
    pub warmup_s: u64,
    /// Server binary.
    pub binary: String,
    /// Rows per interval.
    pub intervals: Vec<Row>,
    /// Rows per minute (runs of two minutes or more).
    pub minutes: Vec<Row>,
    /// Per-operation totals.
    pub ops: Vec<OpSummary>,
    /// The first unexpected errors, verbatim.
    pub unexpected_samples: Vec<String>,
    /// Totals.
    pub requests: u64,
    /// Expected errors.
    pub expected: u64,
    /// Unexpected errors.
    pub unexpected: u64,
    /// Unexpected errors per request.
    pub unexpected_rate: f64,
    /// RSS after the warm-up.
    pub rss_warm_kib: u64,
    /// RSS of the last interval.
    pub rss_last_kib: u64,
    /// Largest RSS seen.
    pub rss_max_kib: u64,
    /// `rss_last / rss_warm - 1`.
    pub rss_growth: f64,
    /// Memory change events pushed to the subscribed WebSocket client.
    pub pushes: u64,
    /// 1-minute load average before the server started and at the end.
    pub load_before: f64,
    /// At the end.
    pub load_after: f64,
    /// How the server ended.
    pub server_exit: String,
    /// Why the run failed; empty when it passed.
    pub failures: Vec<String>,
}

/// Client counts.
#[derive(Serialize)]
pub struct ClientCounts {
    /// REST clients.
    pub rest: usize,
    /// WebSocket clients.
    pub ws: usize,
    /// MCP Streamable HTTP clients.
    pub mcp: usize,
}

/// The header of the interval table.
pub fn header() -> String {
    format!(
        "{:>6} {:>9} {:>8} {:>8} {:>6} {:>9} {:>8} {:>8} {:>9} {:>5}",
        "t(s)",
        "requests",
        "req/s",
        "expected",
        "unexp",
        "unexp%",
        "p50 ms",
        "p99 ms",
        "RSS MiB",
        "load"
    )
}

/// One row of the interval table.
pub fn line(row: &Row) -> String {
    format!(
        "{:>6} {:>9} {:>8.0} {:>8} {:>6} {:>8.3}% {:>8.2} {:>8.2} {:>9.1} {:>5.2}",
        row.end_s,
        row.requests,
        row.per_second,
        row.expected,
        row.unexpected,
        row.unexpected_rate * 100.0,
        row.p50_ms,
        row.p99_ms,
        row.rss_kib as f64 / 1024.0,
        row.load1
    )
}

fn markdown_rows(out: &mut String, rows: &[Row]) {
    out.push_str("| t (s) | req/s | expected errors | unexpected errors | p50 ms | p99 ms | RSS MiB | load |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {:.2} | {:.2} | {:.1} | {:.2} |",
            row.end_s,
            row.per_second,
            row.expected,
            row.unexpected,
            row.p50_ms,
            row.p99_ms,
            row.rss_kib as f64 / 1024.0,
            row.load1
        );
    }
}

impl Report {
    /// The report as markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "Command: `{}`\n", self.command);
        let _ = writeln!(
            out,
            "{} s, {} REST + {} WebSocket + {} MCP clients, warm-up {} s, load average {:.2} before / {:.2} after.\n",
            self.seconds, self.clients.rest, self.clients.ws, self.clients.mcp, self.warmup_s, self.load_before, self.load_after
        );
        let _ = writeln!(
            out,
            "Totals: {} requests, {} expected errors, {} unexpected ({:.4}%); RSS {:.1} MiB after warm-up, {:.1} MiB at the end ({:+.1}%), max {:.1} MiB; server {}.\n",
            self.requests,
            self.expected,
            self.unexpected,
            self.unexpected_rate * 100.0,
            self.rss_warm_kib as f64 / 1024.0,
            self.rss_last_kib as f64 / 1024.0,
            self.rss_growth * 100.0,
            self.rss_max_kib as f64 / 1024.0,
            self.server_exit
        );
        if !self.minutes.is_empty() {
            out.push_str("Per minute:\n\n");
            markdown_rows(&mut out, &self.minutes);
            out.push('\n');
        }
        let _ = writeln!(out, "Per {} s interval:\n", self.interval_s);
        markdown_rows(&mut out, &self.intervals);
        out.push_str("\nPer operation:\n\n| op | requests | expected errors | unexpected | p50 ms | p99 ms |\n|---|---:|---|---:|---:|---:|\n");
        for op in &self.ops {
            let expected: Vec<String> = op
                .expected
                .iter()
                .map(|(status, count)| format!("{status}: {count}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {:.2} | {:.2} |",
                op.op,
                op.requests,
                expected.join(", "),
                op.unexpected,
                op.p50_ms,
                op.p99_ms
            );
        }
        if !self.unexpected_samples.is_empty() {
            out.push_str("\nFirst unexpected errors:\n\n");
            for sample in &self.unexpected_samples {
                let _ = writeln!(out, "- `{}`", sample.replace('`', "'"));
            }
        }
        let verdict = if self.failures.is_empty() {
            "PASS".to_owned()
        } else {
            format!("FAIL: {}", self.failures.join("; "))
        };
        let _ = writeln!(out, "\nVerdict: {verdict}");
        out
    }

    /// Writes `soak-<seconds>s.json` and `.md` into `dir`; returns the markdown path.
    pub fn write(&self, dir: &Path) -> Result<String, String> {
        let stem = dir.join(format!("soak-{}s", self.seconds));
        let json = serde_json::to_string_pretty(self)
            .map_err(|err| format!("encoding the report: {err}"))?;
        let json_path = stem.with_extension("json");
        std::fs::write(&json_path, json)
            .map_err(|err| format!("writing {}: {err}", json_path.display()))?;
        let md_path = stem.with_extension("md");
        std::fs::write(&md_path, self.markdown())
            .map_err(|err| format!("writing {}: {err}", md_path.display()))?;
        Ok(md_path.display().to_string())
    }
}
