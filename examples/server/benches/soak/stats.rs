//! What the soak's clients saw: every request's latency and outcome, counted per interval
//! (requests, expected and unexpected errors, latencies) and per operation over the whole run.
//! Expected errors are the ones the workload provokes on purpose (a 409 from racing
//! `expected_version` writers, a 423 from a lock another client holds, a 404 for a key another
//! client deleted); anything else that is not a success is unexpected.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

/// How one request ended.
pub enum Outcome {
    /// The success status (200, or 202 for an MCP notification).
    Ok,
    /// An error status the operation provokes on purpose.
    Expected(u16),
    /// A transport error, a 5xx or a status the operation should never get.
    Unexpected(String),
}

/// Requests of one interval (or several merged), latencies sorted by [`Window::sorted`].
#[derive(Default)]
pub struct Window {
    /// Requests that got an answer or failed.
    pub requests: u64,
    /// Of which expected errors.
    pub expected: u64,
    /// Of which unexpected errors.
    pub unexpected: u64,
    latencies_us: Vec<u32>,
}

impl Window {
    /// Adds `other`'s requests to this window.
    pub fn merge(&mut self, other: &Window) {
        self.requests += other.requests;
        self.expected += other.expected;
        self.unexpected += other.unexpected;
        self.latencies_us.extend_from_slice(&other.latencies_us);
    }

    /// Sorts the latencies so that [`Window::percentile_ms`] can read them.
    pub fn sorted(mut self) -> Window {
        self.latencies_us.sort_unstable();
        self
    }

    /// The nearest-rank `q` quantile in milliseconds (0 without requests); needs
    /// [`Window::sorted`] first.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = (q * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    fn add(&mut self, latency: Duration, outcome: &Outcome) {
        self.requests += 1;
        match outcome {
            Outcome::Ok => {}
            Outcome::Expected(_) => self.expected += 1,
            Outcome::Unexpected(_) => self.unexpected += 1,
        }
        let micros = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies_us.push(micros);
    }
}

/// One operation's totals over the run.
#[derive(Serialize)]
pub struct OpSummary {
    /// `service.action` (or a transport step such as `ws.connect`).
    pub op: &'static str,
    /// Requests sent.
    pub requests: u64,
    /// Expected error counts by status.
    pub expected: BTreeMap<u16, u64>,
    /// Unexpected errors.
    pub unexpected: u64,
    /// Median latency.
    pub p50_ms: f64,
    /// 99th percentile latency.
    pub p99_ms: f64,
}

#[derive(Default)]
struct OpTotals {
    window: Window,
    expected: BTreeMap<u16, u64>,
}

/// The first unexpected errors are kept verbatim for the report.
const SAMPLES: usize = 25;

#[derive(Default)]
struct Inner {
    window: Window,
    ops: BTreeMap<&'static str, OpTotals>,
    samples: Vec<String>,
}

/// Shared by every client task; the sampler takes the current window each interval.
#[derive(Default)]
pub struct Recorder {
    inner: Mutex<Inner>,
}

impl Recorder {
    /// Counts one request.
    pub fn record(&self, op: &'static str, latency: Duration, outcome: Outcome) {
        let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        inner.window.add(latency, &outcome);
        let totals = inner.ops.entry(op).or_default();
        totals.window.add(latency, &outcome);
        match outcome {
            Outcome::Ok => {}
            Outcome::Expected(status) => *totals.expected.entry(status).or_default() += 1,
            Outcome::Unexpected(message) => {
                if inner.samples.len() < SAMPLES {
                    inner.samples.push(message);
                }
            }
        }
    }

    /// The requests since the previous call, sorted.
    pub fn take_window(&self) -> Window {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut inner.window).sorted()
    }

    /// Per-operation totals and the first unexpected errors.
    pub fn summary(&self) -> (Vec<OpSummary>, Vec<String>) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let ops = std::mem::take(&mut inner.ops)
            .into_iter()
            .map(|(op, totals)| {
                let window = totals.window.sorted();
                OpSummary {
                    op,
                    requests: window.requests,
                    expected: totals.expected,
                    unexpected: window.unexpected,
                    p50_ms: window.percentile_ms(0.50),
                    p99_ms: window.percentile_ms(0.99),
                }
            })
            .collect();
        (ops, inner.samples.clone())
    }
}
