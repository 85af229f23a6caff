//! A small in-memory inverted index with Okapi BM25 ranking, used for keyword search over
//! chunks. Words are lowercased and common English stopwords are ignored.

use std::collections::{HashMap, HashSet};

use mcp_backends::vector::filter_matches;
use mcp_backends::Metadata;

use crate::embed::words;

/// Words too common to carry meaning; they neither match nor count towards length.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "my", "no", "not", "of", "on", "or", "our", "s",
    "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why",
    "will", "with", "would", "you", "your",
];

/// The indexable terms of `text`.
fn terms(text: &str) -> Vec<String> {
    words(text)
        .into_iter()
        .filter(|word| !STOPWORDS.contains(&word.as_str()))
        .collect()
}

/// BM25 term-frequency saturation.
const K1: f32 = 1.2;
/// BM25 length normalisation.
const B: f32 = 0.75;

struct Entry {
    terms: HashMap<String, u32>,
    length: u32,
    metadata: Metadata,
}

/// Inverted index over entries (chunks) with filterable metadata.
#[derive(Default)]
pub(crate) struct Bm25Index {
    entries: HashMap<String, Entry>,
    postings: HashMap<String, HashSet<String>>,
    total_length: u64,
}

impl Bm25Index {
    /// Adds or replaces entry `id`.
    pub(crate) fn insert(&mut self, id: &str, text: &str, metadata: Metadata) {
        self.remove(id);
        let tokens = terms(text);
        let mut terms: HashMap<String, u32> = HashMap::new();
        for token in &tokens {
            *terms.entry(token.clone()).or_default() += 1;
        }
        for term in terms.keys() {
            self.postings
                .entry(term.clone())
                .or_default()
                .insert(id.to_owned());
        }
        let length = u32::try_from(tokens.len()).unwrap_or(u32::MAX);
        self.total_length += u64::from(length);
        self.entries.insert(
            id.to_owned(),
            Entry {
                terms,
                length,
                metadata,
            },
        );
    }

    /// Removes entry `id` if present.
    pub(crate) fn remove(&mut self, id: &str) {
        let Some(entry) = self.entries.remove(id) else {
            return;
        };
        self.total_length -= u64::from(entry.length);
        for term in entry.terms.keys() {
            if let Some(ids) = self.postings.get_mut(term) {
                ids.remove(id);
                if ids.is_empty() {
                    self.postings.remove(term);
                }
            }
        }
    }

    /// The `k` best entries for `query` among those whose metadata satisfies `filter`, with
    /// their BM25 scores and metadata, best first (ties by id). Entries sharing no term with
    /// the query are left out.
    pub(crate) fn search(
        &self,
        query: &str,
        k: usize,
        filter: &Metadata,
    ) -> Vec<(String, f32, Metadata)> {
        let count = self.entries.len() as f32;
        if count == 0.0 {
            return Vec::new();
        }
        let average = self.total_length as f32 / count;
        let query_terms: HashSet<String> = terms(query).into_iter().collect();
        let mut scores: HashMap<&str, f32> = HashMap::new();
        for term in &query_terms {
            let Some(ids) = self.postings.get(term) else {
                continue;
            };
            let df = ids.len() as f32;
            let idf = (1.0 + (count - df + 0.5) / (df + 0.5)).ln();
            for id in ids {
                let Some(entry) = self.entries.get(id) else {
                    continue;
                };
                let tf = entry.terms.get(term).copied().unwrap_or(0) as f32;
                let norm = K1 * (1.0 - B + B * entry.length as f32 / average.max(1.0));
                *scores.entry(id.as_str()).or_default() += idf * tf * (K1 + 1.0) / (tf + norm);
            }
        }
        let mut ranked: Vec<(&str, f32, &Entry)> = scores
            .into_iter()
            .filter_map(|(id, score)| {
                let entry = self.entries.get(id)?;
                filter_matches(filter, &entry.metadata).then_some((id, score, entry))
            })
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked
            .into_iter()
            .take(k)
            .map(|(id, score, entry)| (id.to_owned(), score, entry.metadata.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_rare_terms_higher_and_filters() {
        let mut index = Bm25Index::default();
        let mut tagged = Metadata::new();
        tagged.insert("topic".into(), "pets".into());
        index.insert("a", "the cat sat on the mat", tagged.clone());
        index.insert("b", "the dog sat on the log", Metadata::new());
        index.insert("c", "the the the", Metadata::new());
        assert!(index.search("the", 10, &Metadata::new()).is_empty());
        let hits = index.search("cat on the mat", 10, &Metadata::new());
        assert_eq!(hits[0].0, "a");
        let hits = index.search("sat", 10, &tagged);
        assert_eq!(hits.len(), 1);
        index.remove("a");
        assert!(index.search("cat", 10, &Metadata::new()).is_empty());
        index.insert("b", "replaced text", Metadata::new());
        assert!(index.search("dog", 10, &Metadata::new()).is_empty());
    }
}
