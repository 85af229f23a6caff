//! Chunking properties: chunks cover the text, overlap as configured, are never empty or too
//! long, and never split a character.

use mcp_context::ChunkConfig;
use proptest::prelude::*;

fn check(config: ChunkConfig, text: &str) {
    let chunks = config.split(text).unwrap();
    assert_eq!(chunks[0].start, 0);
    assert_eq!(chunks.last().unwrap().end, text.len());
    for (position, chunk) in chunks.iter().enumerate() {
        assert_eq!(chunk.index, position);
        assert!(!chunk.text.is_empty());
        assert_eq!(chunk.text, &text[chunk.start..chunk.end]);
        assert!(chunk.text.chars().count() <= config.size);
    }
    for pair in chunks.windows(2) {
        let shared = &text[pair[1].start..pair[0].end];
        assert!(pair[1].start > pair[0].start);
        assert_eq!(shared.chars().count(), config.overlap, "{pair:?}");
    }
}

proptest! {
    #[test]
    fn chunks_cover_and_overlap(
        text in "[a-zé日 .!?\n]{1,400}",
        size in 1usize..80,
        overlap_fraction in 0.0f64..1.0,
    ) {
        prop_assume!(!text.trim().is_empty());
        let overlap = ((size as f64) * overlap_fraction) as usize;
        check(ChunkConfig { size, overlap: overlap.min(size - 1) }, &text);
    }

    #[test]
    fn arbitrary_unicode_never_panics(text in "\\PC{0,300}", size in 1usize..50) {
        let config = ChunkConfig { size, overlap: size / 3 };
        if text.trim().is_empty() {
            prop_assert!(config.split(&text).is_err());
        } else {
            check(config, &text);
        }
    }
}

#[test]
fn prose_chunks_end_on_sentence_or_word_boundaries() {
    let text = "Rust is fast. It has no garbage collector. Memory safety comes from ownership \
                and borrowing. The compiler checks lifetimes. Fearless concurrency follows.";
    let config = ChunkConfig {
        size: 60,
        overlap: 10,
    };
    let chunks = config.split(text).unwrap();
    assert!(chunks.len() > 2);
    for chunk in &chunks[..chunks.len() - 1] {
        let last = chunk.text.chars().last().unwrap();
        assert!(last == '.' || last.is_whitespace(), "{:?}", chunk.text);
    }
    check(config, text);
}
