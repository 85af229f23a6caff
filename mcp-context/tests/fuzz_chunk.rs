//! Fuzz target `chunk`: [`ChunkConfig::split`] on hostile text and sizes. A bad config or
//! blank text is `InvalidArgument`; otherwise the chunks cover the text from its first to its
//! last byte in order, each is `text[start..end]` on character boundaries with 1 to `size`
//! characters, consecutive chunks share exactly `overlap` characters, and every chunk ends
//! further than the previous one. Inputs are `size overlap\ntext` (a first line that is not
//! two numbers is text too, split with size 16 and overlap 4); see `fuzz/harness.rs`.

#[path = "../../fuzz/harness.rs"]
mod harness;

use mcp_context::ChunkConfig;
use mcp_core::Error;
use proptest::prelude::*;

/// Generated cases per phase in a plain `cargo test`.
const DEFAULT_CASES: u32 = 64;

const TARGET: &str = "chunk";

fn decode(bytes: &[u8]) -> (ChunkConfig, String) {
    let text = String::from_utf8_lossy(bytes).into_owned();
    if let Some((header, rest)) = text.split_once('\n') {
        let numbers: Vec<usize> = header.split(' ').filter_map(|n| n.parse().ok()).collect();
        if let [size, overlap] = numbers[..] {
            return (ChunkConfig { size, overlap }, rest.to_owned());
        }
    }
    (
        ChunkConfig {
            size: 16,
            overlap: 4,
        },
        text,
    )
}

fn check(config: ChunkConfig, text: &str) {
    let outcome = config.split(text);
    let valid = config.size > 0 && config.overlap < config.size;
    let chunks = match outcome {
        Err(Error::InvalidArgument(_)) if !valid || text.trim().is_empty() => return,
        Err(err) => panic!("{config:?} on {text:?}: unexpected {err:?}"),
        Ok(_) if !valid => panic!("{config:?} was accepted"),
        Ok(_) if text.trim().is_empty() => panic!("blank text {text:?} was accepted"),
        Ok(chunks) => chunks,
    };
    assert!(!chunks.is_empty());
    assert_eq!(chunks[0].start, 0, "the first chunk starts the text");
    assert_eq!(
        chunks.last().unwrap().end,
        text.len(),
        "the last chunk ends it"
    );
    for (i, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index, i);
        assert!(chunk.start < chunk.end, "chunk {i} is empty");
        assert!(text.is_char_boundary(chunk.start) && text.is_char_boundary(chunk.end));
        assert_eq!(chunk.text, text[chunk.start..chunk.end]);
        let chars = chunk.text.chars().count();
        assert!(
            (1..=config.size).contains(&chars),
            "chunk {i} has {chars} characters, size is {}",
            config.size
        );
        if i > 0 {
            let previous = &chunks[i - 1];
            assert!(chunk.end > previous.end, "chunk {i} makes no progress");
            assert!(chunk.start <= previous.end, "a gap before chunk {i}");
            let shared = text[chunk.start..previous.end].chars().count();
            assert_eq!(
                shared,
                config.overlap,
                "chunks {} and {i} share {shared}",
                i - 1
            );
        }
    }
}

fn structured() -> impl Strategy<Value = (ChunkConfig, String)> {
    let text = prop::collection::vec(
        prop::sample::select(vec![
            "a", "word", " ", ".", "!", "?", "\n", "\r\n", "\t", "é", "日本", "😀", "\u{200b}",
            "\u{0301}",
        ]),
        0..300,
    );
    (1usize..80, 0usize..90, text)
        .prop_map(|(size, overlap, parts)| (ChunkConfig { size, overlap }, parts.concat()))
}

#[test]
fn fuzz_chunk() {
    let seeds = harness::replay(TARGET, |bytes| {
        let (config, text) = decode(bytes);
        check(config, &text);
    });
    eprintln!("{TARGET}: {seeds} corpus seeds replayed");
    let corpus = harness::corpus(TARGET);
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "mutated",
        harness::mutated(&corpus),
        |bytes| {
            let (config, text) = decode(&bytes);
            check(config, &text);
            Ok(())
        },
    );
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "structured",
        structured(),
        |(config, text)| {
            check(config, &text);
            Ok(())
        },
    );
}
