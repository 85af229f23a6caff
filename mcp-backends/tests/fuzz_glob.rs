//! Fuzz target `glob`: Redis glob matching (`mcp_backends::glob`) against a model written
//! from Redis's documented semantics, and, when `MCP_TEST_REDIS_URL` is set, against a real
//! Redis (`SCAN MATCH` over a one-key database). Also: every match starts with the pattern's
//! literal prefix (ordered backends narrow scans with it), and an escaped literal matches
//! exactly itself. Inputs are `pattern\ntext`; see `fuzz/harness.rs` for the phases.

#[path = "../../fuzz/harness.rs"]
mod harness;

use std::cell::RefCell;

use mcp_backends::glob;
use proptest::prelude::*;

/// Generated cases per phase in a plain `cargo test`.
const DEFAULT_CASES: u32 = 64;

const TARGET: &str = "glob";

/// `pattern\ntext` from fuzz bytes (invalid UTF-8 is replaced, as a `&str` API must).
fn decode(bytes: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(bytes);
    match text.split_once('\n') {
        Some((pattern, subject)) => (pattern.to_owned(), subject.to_owned()),
        None => (text.into_owned(), String::new()),
    }
}

/// The set of bytes a class matches, and the index after it; written independently of the
/// matcher: the class body is parsed once into a 256-entry table.
fn class_model(pattern: &[u8], open: usize) -> ([bool; 256], usize) {
    let mut set = [false; 256];
    let mut i = open + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    loop {
        match pattern.get(i) {
            None => break,
            Some(b'\\') if i + 1 < pattern.len() => {
                set[pattern[i + 1] as usize] = true;
                i += 2;
            }
            Some(b']') => {
                i += 1;
                break;
            }
            Some(&lo) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                // Bounds are signed C chars in Redis (x86-64).
                let (lo, hi) = (lo as i8, pattern[i + 2] as i8);
                for byte in lo.min(hi)..=lo.max(hi) {
                    set[byte as u8 as usize] = true;
                }
                i += 3;
            }
            Some(&byte) => {
                set[byte as usize] = true;
                i += 1;
            }
        }
    }
    if negate {
        set.iter_mut().for_each(|member| *member = !*member);
    }
    (set, i)
}

/// Redis's matching as a memoized recursion over (pattern position, text position).
struct Model<'a> {
    pattern: &'a [u8],
    text: &'a [u8],
    memo: Vec<Option<bool>>,
}

impl Model<'_> {
    fn matches(pattern: &[u8], text: &[u8]) -> bool {
        let mut model = Model {
            pattern,
            text,
            memo: vec![None; (pattern.len() + 1) * (text.len() + 1)],
        };
        model.at(0, 0)
    }

    fn at(&mut self, p: usize, t: usize) -> bool {
        let slot = p * (self.text.len() + 1) + t;
        if let Some(known) = self.memo[slot] {
            return known;
        }
        let (pattern, text) = (self.pattern, self.text);
        let result = if t == text.len() {
            pattern[p..].iter().all(|&c| c == b'*')
        } else if p == pattern.len() {
            false
        } else {
            match pattern[p] {
                b'*' => {
                    let next = p + pattern[p..].iter().take_while(|&&c| c == b'*').count();
                    next == pattern.len() || (t..text.len()).any(|k| self.at(next, k))
                }
                b'?' => self.at(p + 1, t + 1),
                b'[' => {
                    let (set, next) = class_model(pattern, p);
                    set[text[t] as usize] && self.at(next, t + 1)
                }
                b'\\' if p + 1 < pattern.len() => {
                    pattern[p + 1] == text[t] && self.at(p + 2, t + 1)
                }
                literal => literal == text[t] && self.at(p + 1, t + 1),
            }
        };
        self.memo[slot] = Some(result);
        result
    }
}

/// Checks one pattern/text pair; `redis` is a connection to a real Redis when configured.
fn check(pattern: &str, text: &str, redis: Option<&RefCell<Redis>>) {
    let got = glob::matches(pattern, text);
    // The model recurses once per consumed byte: keep it to inputs its stack can take.
    if pattern.len() + text.len() <= 4_000 {
        let expected = Model::matches(pattern.as_bytes(), text.as_bytes());
        assert_eq!(
            got, expected,
            "matches({pattern:?}, {text:?}) disagrees with the model"
        );
    }
    if got {
        let prefix = glob::literal_prefix(pattern);
        assert!(
            text.starts_with(&prefix),
            "{text:?} matches {pattern:?} but lacks its literal prefix {prefix:?}"
        );
    }
    let escaped = glob::escape(text);
    assert!(
        glob::matches(&escaped, text),
        "escape({text:?}) = {escaped:?}"
    );
    assert!(glob::matches(
        &format!("{escaped}*"),
        &format!("{text}tail")
    ));
    assert!(!glob::matches(&escaped, &format!("{text}x")));
    assert_eq!(glob::literal_prefix(&format!("{escaped}*")), text);
    // Redis refuses to match patterns nesting too many stars; stay well below that. An empty
    // key is left out: Redis's matcher matches it with the empty pattern only (SCAN special-
    // cases `*`), while here stars match the empty run; no backend key is ever empty.
    let stars = pattern.bytes().filter(|&c| c == b'*').count();
    let comparable = !text.is_empty() && text.len() <= 4096 && stars <= 200;
    if let Some(redis) = redis.filter(|_| comparable) {
        let by_redis = redis.borrow_mut().matches(pattern, text);
        assert_eq!(
            got, by_redis,
            "matches({pattern:?}, {text:?}) disagrees with Redis"
        );
    }
}

/// A real Redis deciding matches: one key in a database of its own, found or not by
/// `SCAN 0 MATCH pattern`.
#[cfg(all(feature = "redis", feature = "testing"))]
struct Redis {
    connection: redis::Connection,
}

/// Without the `redis` and `testing` features there is no real Redis to ask.
#[cfg(not(all(feature = "redis", feature = "testing")))]
enum Redis {}

#[cfg(not(all(feature = "redis", feature = "testing")))]
impl Redis {
    fn connect() -> Option<RefCell<Redis>> {
        None
    }

    fn matches(&mut self, _pattern: &str, _text: &str) -> bool {
        match *self {}
    }
}

/// The Redis database the differential check owns (no other test uses it).
#[cfg(all(feature = "redis", feature = "testing"))]
const REDIS_DB: i64 = 14;

#[cfg(all(feature = "redis", feature = "testing"))]
impl Redis {
    fn connect() -> Option<RefCell<Redis>> {
        let url = mcp_backends::testing::server_url("MCP_TEST_REDIS_URL")?;
        let client = redis::Client::open(url.as_str()).unwrap();
        let mut connection = client.get_connection().unwrap();
        redis::cmd("SELECT")
            .arg(REDIS_DB)
            .query::<()>(&mut connection)
            .unwrap();
        redis::cmd("FLUSHDB").query::<()>(&mut connection).unwrap();
        Some(RefCell::new(Redis { connection }))
    }

    fn matches(&mut self, pattern: &str, text: &str) -> bool {
        redis::cmd("SET")
            .arg(text)
            .arg(1)
            .query::<()>(&mut self.connection)
            .unwrap();
        let (_, keys): (String, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(0)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut self.connection)
            .unwrap();
        redis::cmd("DEL")
            .arg(text)
            .query::<()>(&mut self.connection)
            .unwrap();
        keys.iter().any(|key| key == text.as_bytes())
    }
}

fn structured() -> impl Strategy<Value = (String, String)> {
    let pattern = prop::collection::vec(
        prop::sample::select(vec!["a", "b", "*", "?", "[", "]", "^", "-", "\\", "é", "z"]),
        0..14,
    );
    let text = prop::collection::vec(
        prop::sample::select(vec!["a", "b", "-", "]", "[", "\\", "*", "é", "z", "^"]),
        0..10,
    );
    (pattern, text).prop_map(|(p, t)| (p.concat(), t.concat()))
}

#[test]
fn fuzz_glob() {
    let redis = Redis::connect();
    let seeds = harness::replay(TARGET, |bytes| {
        let (pattern, text) = decode(bytes);
        check(&pattern, &text, redis.as_ref());
    });
    eprintln!(
        "{TARGET}: {seeds} corpus seeds replayed (real Redis: {})",
        redis.is_some()
    );
    let corpus = harness::corpus(TARGET);
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "mutated",
        harness::mutated(&corpus),
        |bytes| {
            let (pattern, text) = decode(&bytes);
            check(&pattern, &text, redis.as_ref());
            Ok(())
        },
    );
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "structured",
        structured(),
        |(pattern, text)| {
            check(&pattern, &text, redis.as_ref());
            Ok(())
        },
    );
}

#[test]
fn hostile_patterns_finish() {
    // Star-heavy and long patterns over long texts: the matcher is iterative and linear in
    // practice, so these answer at once (a recursive matcher would exhaust its stack or time).
    for (pattern, text, expected) in [
        ("**********a".to_owned(), "b".repeat(20_000), false),
        ("*a".repeat(500) + "b", "a".repeat(20_000), false),
        // One unterminated class holding `[`, then text left over.
        ("[".repeat(10_000), "[".repeat(10_000), false),
        // 5,000 escaped backslashes and a trailing literal one: 5,001 needed.
        ("\\".repeat(10_001), "\\".repeat(5_000), false),
        // `?` is one byte: 30,000 of them match 15,000 two-byte characters.
        ("?".repeat(30_000), "é".repeat(15_000), true),
        ("*?".repeat(1_000), "x".repeat(1_000), true),
    ] {
        assert_eq!(
            glob::matches(&pattern, &text),
            expected,
            "{}",
            &pattern[..10]
        );
    }
}
