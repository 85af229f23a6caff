//! The shared driver of the fuzz targets (`*/tests/fuzz_*.rs`, included with `#[path]`).
//!
//! A target replays every seed of its checked-in corpus (`fuzz/corpus/<target>/`, one file
//! per seed, raw bytes) and then runs a generated phase under proptest: byte-level mutations
//! of the seeds (bit flips, inserted hostile tokens, deletions, duplications, splices of two
//! seeds) and, where a target has one, a structured generator. The generated phase runs
//! `MCP_FUZZ_CASES_<TARGET>` or `MCP_FUZZ_CASES` cases (by default a few dozen, so `cargo
//! test` stays quick) and stops early once
//! `MCP_FUZZ_SECONDS` (default 60) have passed, so a CI run is bounded in count and time.
//! A failing case is shrunk by proptest and printed escaped; add it to the corpus as a new
//! file so that it is replayed for ever after.

#![allow(dead_code)] // Each target uses the part of the harness it needs.

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};

/// Generated cases per phase of `target`: `MCP_FUZZ_CASES_<TARGET>` (e.g.
/// `MCP_FUZZ_CASES_GLOB`), else `MCP_FUZZ_CASES`, else the target's `default`.
pub fn cases(target: &str, default: u32) -> u32 {
    let specific = format!("MCP_FUZZ_CASES_{}", target.to_uppercase());
    env_number(&specific)
        .or_else(|| env_number("MCP_FUZZ_CASES"))
        .map_or(default, |n| n as u32)
}

/// Wall-clock budget of a generated phase: `MCP_FUZZ_SECONDS`, default 60.
pub fn budget() -> Duration {
    Duration::from_secs(env_number("MCP_FUZZ_SECONDS").unwrap_or(60))
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a whole number")),
    )
}

/// The corpus directory of `target`: `fuzz/corpus/<target>` in the workspace, found from the
/// crate that includes this harness.
pub fn corpus_dir(target: &str) -> PathBuf {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = crate_dir
        .ancestors()
        .find(|dir| dir.join("fuzz/corpus").is_dir())
        .unwrap_or(&crate_dir);
    workspace.join("fuzz/corpus").join(target)
}

/// Every seed of `target`'s corpus as `(file name, bytes)`, sorted by name; panics when the
/// corpus is missing or empty (a target without seeds tests nothing).
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("corpus {}: {err}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "corpus {} is empty", dir.display());
    seeds
}

/// Tokens the mutator inserts: path traversal, NUL, glob and JSON metacharacters, line ends,
/// multibyte and invalid UTF-8, extreme numbers.
const TOKENS: &[&[u8]] = &[
    b"..",
    b"/",
    b"../",
    b"\0",
    b"*",
    b"?",
    b"[",
    b"]",
    b"^",
    b"-",
    b"\\",
    b"\r\n",
    b"\n",
    b"\r",
    b" ",
    b"\t",
    b".",
    b"\"",
    b"{",
    b"}",
    b",",
    b":",
    b"null",
    b"-1",
    b"18446744073709551615",
    b"1e999",
    "é".as_bytes(),
    "日本".as_bytes(),
    "😀".as_bytes(),
    "\u{200b}".as_bytes(),
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
];

/// One edit the mutator applies to a seed.
#[derive(Clone, Debug)]
enum Mutation {
    FlipBit(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    InsertToken(prop::sample::Index, prop::sample::Index),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
    Splice(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<prop::sample::Index>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        3 => (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(at, token)| Mutation::InsertToken(at, token)),
        1 => (any::<prop::sample::Index>(), 1usize..16).prop_map(|(at, n)| Mutation::Delete(at, n)),
        1 => (any::<prop::sample::Index>(), 1usize..64).prop_map(|(at, n)| Mutation::Duplicate(at, n)),
        1 => (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(at, seed)| Mutation::Splice(at, seed)),
    ]
}

fn position(at: &prop::sample::Index, len: usize) -> usize {
    at.index(len + 1)
}

fn apply(mut bytes: Vec<u8>, mutation: &Mutation, seeds: &[Vec<u8>]) -> Vec<u8> {
    match mutation {
        Mutation::FlipBit(at, bit) => {
            if !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] ^= 1 << bit;
            }
        }
        Mutation::Insert(at, byte) => {
            let i = position(at, bytes.len());
            bytes.insert(i, *byte);
        }
        Mutation::InsertToken(at, token) => {
            let i = position(at, bytes.len());
            let token = token.get(TOKENS);
            bytes.splice(i..i, token.iter().copied());
        }
        Mutation::Delete(at, n) => {
            let i = position(at, bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Duplicate(at, n) => {
            let i = position(at, bytes.len());
            let end = (i + n).min(bytes.len());
            let copy = bytes[i..end].to_vec();
            bytes.splice(end..end, copy);
        }
        Mutation::Splice(at, seed) => {
            let other = seed.get(seeds);
            let i = position(at, bytes.len());
            let j = position(at, other.len());
            bytes.truncate(i);
            bytes.extend_from_slice(&other[j..]);
        }
    }
    // Keep inputs small enough that every case is cheap.
    bytes.truncate(64 * 1024);
    bytes
}

/// Mutated corpus seeds: a seed with up to eight mutations applied.
pub fn mutated(seeds: &[(String, Vec<u8>)]) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = seeds.iter().map(|(_, bytes)| bytes.clone()).collect();
    (
        any::<prop::sample::Index>(),
        prop::collection::vec(mutation(), 0..8),
    )
        .prop_map(move |(seed, mutations)| {
            let start = seed.get(&seeds).clone();
            mutations
                .iter()
                .fold(start, |bytes, m| apply(bytes, m, &seeds))
        })
}

/// Replays every seed of `target` through `check`, naming the failing seed.
pub fn replay(target: &str, check: impl Fn(&[u8])) -> usize {
    let seeds = corpus(target);
    for (name, bytes) in &seeds {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes)));
        if let Err(panic) = outcome {
            eprintln!(
                "{target}: corpus seed {name} failed: {:?}",
                String::from_utf8_lossy(bytes)
            );
            std::panic::resume_unwind(panic);
        }
    }
    seeds.len()
}

/// Runs the generated phase `phase` of `target`: `cases(target, default)` cases of
/// `strategy` through `check`, stopping early when `budget()` has passed. Prints how many
/// cases ran and how long they took; panics with the shrunk input when a case fails.
pub fn generate<S>(
    target: &str,
    default: u32,
    phase: &str,
    strategy: S,
    check: impl Fn(S::Value) -> TestCaseResult,
) where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: cases(target, default),
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    };
    let started = Instant::now();
    let budget = budget();
    let ran = Cell::new(0u64);
    let mut runner = TestRunner::new(config);
    let outcome = runner.run(&strategy, |input| {
        if started.elapsed() > budget {
            return Ok(());
        }
        ran.set(ran.get() + 1);
        check(input)
    });
    eprintln!(
        "{target}/{phase}: {} generated cases in {:.1} s",
        ran.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(failure) = outcome {
        panic!("{target}/{phase} failed (add the input to fuzz/corpus/{target}/): {failure}");
    }
}

/// A readable rendering of fuzz input bytes for failure messages.
pub fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}
