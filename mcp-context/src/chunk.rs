//! Splits text into overlapping chunks of at most `size` characters that end on sentence or
//! whitespace boundaries where possible.

use mcp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Chunk size and overlap, both counted in characters (Unicode scalar values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkConfig {
    /// Maximum characters per chunk (> 0).
    pub size: usize,
    /// Characters each chunk shares with the previous one (< `size`).
    pub overlap: usize,
}

impl Default for ChunkConfig {
    fn default() -> Self {
        ChunkConfig {
            size: 1000,
            overlap: 200,
        }
    }
}

/// One chunk of a text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Position of the chunk in the text, from 0.
    pub index: usize,
    /// Byte offset of the first character in the text.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// The chunk's text, `text[start..end]`.
    pub text: String,
}

impl ChunkConfig {
    /// Checks `size > 0` and `overlap < size`.
    pub fn validate(&self) -> Result<()> {
        if self.size == 0 {
            return Err(Error::InvalidArgument("chunk size must be positive".into()));
        }
        if self.overlap >= self.size {
            return Err(Error::InvalidArgument(format!(
                "chunk overlap {} must be smaller than the chunk size {}",
                self.overlap, self.size
            )));
        }
        Ok(())
    }

    /// Splits `text` into chunks that together cover it. Every chunk has between 1 and `size`
    /// characters; consecutive chunks share exactly `overlap` characters. A chunk ends after a
    /// sentence end (`.`, `!`, `?` or a newline followed by whitespace) if one lies in its second
    /// half, else after whitespace, else at `size` characters. Empty or whitespace-only text is
    /// [`Error::InvalidArgument`].
    pub fn split(&self, text: &str) -> Result<Vec<Chunk>> {
        self.validate()?;
        if text.trim().is_empty() {
            return Err(Error::InvalidArgument("text is empty".into()));
        }
        // Byte offset of every character, plus the end of the text.
        let offsets: Vec<usize> = text
            .char_indices()
            .map(|(offset, _)| offset)
            .chain(std::iter::once(text.len()))
            .collect();
        let chars: Vec<char> = text.chars().collect();
        let total = chars.len();
        let mut chunks = Vec::new();
        let mut start = 0usize;
        loop {
            let hard_end = start + self.size;
            let end = if hard_end >= total {
                total
            } else {
                let lowest = start + (self.size / 2).max(self.overlap + 1);
                break_point(&chars, lowest, hard_end)
            };
            chunks.push(Chunk {
                index: chunks.len(),
                start: offsets[start],
                end: offsets[end],
                text: text[offsets[start]..offsets[end]].to_owned(),
            });
            if end == total {
                return Ok(chunks);
            }
            start = end - self.overlap;
        }
    }
}

/// The best chunk end in `lowest..=hard_end` (character positions; the chunk ends before the
/// character at the returned position): after a sentence end, else after whitespace, else
/// `hard_end`.
fn break_point(chars: &[char], lowest: usize, hard_end: usize) -> usize {
    let sentence = (lowest..=hard_end).rev().find(|&end| {
        let before = chars[end - 1];
        before == '\n'
            || (matches!(before, '.' | '!' | '?')
                && chars.get(end).is_some_and(|c| c.is_whitespace()))
    });
    sentence
        .or_else(|| {
            (lowest..=hard_end)
                .rev()
                .find(|&end| chars[end - 1].is_whitespace())
        })
        .unwrap_or(hard_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        let chunks = ChunkConfig::default().split("Hello world.").unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].text, "Hello world.");
    }

    #[test]
    fn breaks_after_sentences() {
        let config = ChunkConfig {
            size: 30,
            overlap: 5,
        };
        let chunks = config
            .split("One two three four. Five six seven eight nine ten eleven.")
            .unwrap();
        assert_eq!(chunks[0].text, "One two three four.");
        assert!(chunks[1].text.starts_with("four."));
    }

    #[test]
    fn rejects_empty_and_bad_config() {
        assert!(ChunkConfig::default().split("  \n").is_err());
        let bad = ChunkConfig {
            size: 10,
            overlap: 10,
        };
        assert!(bad.split("text").is_err());
    }
}
