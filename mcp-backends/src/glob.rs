//! Redis-compatible glob patterns, so every `KvStore` backend matches keys exactly as Redis's
//! `SCAN ... MATCH` does: `*` (any run), `?` (one byte), `[abc]`, `[a-z]`, `[^a]` and `\`
//! escapes. Like Redis, matching works on bytes: `?` and a class match one byte, so `?` does
//! not match a multibyte character (`??` matches `é`), and range bounds compare as signed C
//! `char`s, as Redis does on x86-64 (`[a-é]` spans the bytes up to `a` and those from 0xC3 up,
//! so not `b`). In a class, `x-y` is a range whenever two characters follow `x`, even when the last is `]`
//! (`[a-]` is the range `]`..`a`); an unterminated class runs to the end of the pattern, and a
//! trailing `\` is a literal backslash. `fuzz/` checks this against a model and a real Redis.

/// Whether `text` matches the glob `pattern`.
pub fn matches(pattern: &str, text: &str) -> bool {
    matches_from(pattern.as_bytes(), text.as_bytes())
}

/// Escapes every glob metacharacter of `literal`, so that `escape(s) + "*"` matches exactly the
/// strings starting with `s`.
pub fn escape(literal: &str) -> String {
    let mut escaped = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The literal prefix of `pattern` before its first unescaped metacharacter; ordered backends
/// use it to narrow a scan to a key range.
pub fn literal_prefix(pattern: &str) -> String {
    let mut prefix = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' => break,
            '\\' => match chars.next() {
                Some(next) => prefix.push(next),
                None => break,
            },
            _ => prefix.push(c),
        }
    }
    prefix
}

fn matches_from(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative matcher with single-star backtracking: every token but `*` consumes exactly
    // one byte, so resuming after the last star is enough; linear in practice, and no
    // recursion depth to exhaust on hostile patterns.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    if p == pattern.len() {
                        return true;
                    }
                    star = Some((p, t));
                    continue;
                }
                b'?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                b'[' => {
                    let (matched, next) = match_class(pattern, p, text[t]);
                    if matched {
                        p = next;
                        t += 1;
                        continue;
                    }
                }
                b'\\' if p + 1 < pattern.len() && pattern[p + 1] == text[t] => {
                    p += 2;
                    t += 1;
                    continue;
                }
                // An escape that does not match must not fall through to a literal `\`.
                b'\\' if p + 1 < pattern.len() => {}
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Matches byte `c` against the class starting at `pattern[open] == '['`. Returns whether it
/// matched and the index after the class. An unterminated class runs to the end of the
/// pattern, as in Redis.
fn match_class(pattern: &[u8], open: usize, c: u8) -> (bool, usize) {
    let mut i = open + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            i += 1;
            matched |= pattern[i] == c;
            i += 1;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' {
            // Redis compares range bounds as C `char`, signed on x86-64 and most servers.
            let (a, b, c) = (pattern[i] as i8, pattern[i + 2] as i8, c as i8);
            matched |= a.min(b) <= c && c <= a.max(b);
            i += 3;
        } else {
            matched |= pattern[i] == c;
            i += 1;
        }
    }
    (matched != negate, (i + 1).min(pattern.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_glob_semantics() {
        let cases = [
            ("*", "", true),
            ("*", "anything", true),
            ("user:*", "user:1", true),
            ("user:*", "users:1", false),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-c]llo", "hbllo", true),
            ("h[a-c]llo", "hdllo", false),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c*", "xxaxxcxxbxx", false),
            ("ключ:*", "ключ:значение", true),
            ("a*", "b", false),
            // Bytes, as in Redis: `?` is one byte, `[a-]` the range `]`..`a`.
            ("?", "é", false),
            ("??", "é", true),
            ("[a-]", "]", true),
            ("[a-]", "b", false),
            ("[a-é]x", "bx", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(matches(pattern, text), expected, "{pattern:?} vs {text:?}");
        }
    }

    #[test]
    fn escape_makes_literals_safe() {
        for literal in ["plain", "we*ird?", "[x]", "back\\slash", "ns:"] {
            let pattern = format!("{}*", escape(literal));
            assert!(matches(&pattern, &format!("{literal}tail")));
            assert!(matches(&pattern, literal));
            assert!(!matches(&pattern, &format!("x{literal}")));
            assert_eq!(literal_prefix(&pattern), literal);
        }
    }

    #[test]
    fn hostile_patterns_finish_quickly() {
        let pattern = "*a".repeat(50) + "b";
        let text = "a".repeat(5000);
        assert!(!matches(&pattern, &text));
    }
}
