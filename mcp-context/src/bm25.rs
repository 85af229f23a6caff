//! Keyword search over chunks: a tantivy index in RAM ranked by Okapi BM25 (k1 = 1.2,
//! b = 0.75). Words are split on non-alphanumeric characters and lowercased, and common
//! English stopwords are ignored, so they neither match nor count towards a chunk's length.
//!
//! `insert` and `remove` only record the change; the next `search` applies pending changes to
//! tantivy in one commit, so adding a document costs no index commit of its own. The entries
//! kept here (text and metadata per chunk) are the source of truth: metadata filters are
//! checked against them, and should tantivy ever fail, the index is rebuilt from them.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use mcp_backends::vector::filter_matches;
use mcp_backends::Metadata;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value, STORED, STRING,
};
use tantivy::tokenizer::{
    LowerCaser, RemoveLongFilter, SimpleTokenizer, StopWordFilter, TextAnalyzer, TokenStream,
};
use tantivy::{doc, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

/// Words too common to carry meaning; they neither match nor count towards length.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "how",
    "i", "if", "in", "into", "is", "it", "its", "my", "no", "not", "of", "on", "or", "our", "s",
    "so", "some", "such", "than", "that", "the", "their", "them", "then", "there", "these", "they",
    "this", "to", "was", "we", "were", "what", "when", "where", "which", "while", "who", "why",
    "will", "with", "would", "you", "your",
];

/// Name under which the analyzer is registered with tantivy.
const ANALYZER: &str = "context_words";
/// Words longer than this many bytes are not indexed (tantivy bounds term length).
const LONGEST_WORD: usize = 255;
/// Memory budget of the single indexing thread (tantivy's minimum).
const WRITER_BUDGET: usize = 15_000_000;

/// Splits on non-alphanumeric characters, lowercases, drops stopwords and overlong words.
fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(LONGEST_WORD))
        .filter(LowerCaser)
        .filter(StopWordFilter::remove(
            STOPWORDS.iter().map(|word| (*word).to_owned()),
        ))
        .build()
}

struct Entry {
    text: String,
    metadata: Metadata,
}

/// Keyword index over entries (chunks) with filterable metadata.
#[derive(Default)]
pub(crate) struct Bm25Index {
    entries: HashMap<String, Entry>,
    engine: Mutex<Engine>,
}

/// The tantivy side: built on first search, then kept in step with `entries`.
#[derive(Default)]
struct Engine {
    tantivy: Option<Tantivy>,
    /// Ids inserted or removed since the last commit.
    pending: HashSet<String>,
}

struct Tantivy {
    id: Field,
    text: Field,
    writer: IndexWriter,
    reader: IndexReader,
    analyzer: TextAnalyzer,
}

impl Tantivy {
    /// An empty RAM index holding every entry.
    fn build(entries: &HashMap<String, Entry>) -> tantivy::Result<Self> {
        let mut schema = Schema::builder();
        let id = schema.add_text_field("id", STRING | STORED);
        let text = schema.add_text_field(
            "text",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(ANALYZER)
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        );
        let index = Index::create_in_ram(schema.build());
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer_with_num_threads(1, WRITER_BUDGET)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let mut tantivy = Tantivy {
            id,
            text,
            writer,
            reader,
            analyzer: analyzer(),
        };
        for (key, entry) in entries {
            tantivy.add(key, &entry.text)?;
        }
        tantivy.commit()?;
        Ok(tantivy)
    }

    fn add(&mut self, id: &str, text: &str) -> tantivy::Result<()> {
        self.writer
            .add_document(doc!(self.id => id, self.text => text))
            .map(drop)
    }

    fn commit(&mut self) -> tantivy::Result<()> {
        self.writer.commit()?;
        self.reader.reload()
    }

    /// Replays `pending` ids from `entries` (delete, then add back if still present).
    fn apply(
        &mut self,
        pending: &HashSet<String>,
        entries: &HashMap<String, Entry>,
    ) -> tantivy::Result<()> {
        for id in pending {
            self.writer.delete_term(Term::from_field_text(self.id, id));
            if let Some(entry) = entries.get(id) {
                self.add(id, &entry.text)?;
            }
        }
        self.commit()
    }

    /// Ids and scores of the best `limit` chunks sharing a term with `query`.
    fn top(&self, query: &str, limit: usize) -> tantivy::Result<Vec<(f32, String)>> {
        let mut terms = HashSet::new();
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(query);
        while stream.advance() {
            terms.insert(stream.token().text.clone());
        }
        if terms.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|term| {
                let query = TermQuery::new(
                    Term::from_field_text(self.text, &term),
                    IndexRecordOption::WithFreqs,
                );
                (Occur::Should, Box::new(query) as Box<dyn Query>)
            })
            .collect();
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        )?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let document: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = document.get_first(self.id).and_then(|value| value.as_str()) {
                hits.push((score, id.to_owned()));
            }
        }
        Ok(hits)
    }
}

impl Bm25Index {
    /// Adds or replaces entry `id`.
    pub(crate) fn insert(&mut self, id: &str, text: &str, metadata: Metadata) {
        self.entries.insert(
            id.to_owned(),
            Entry {
                text: text.to_owned(),
                metadata,
            },
        );
        self.pending_mut().insert(id.to_owned());
    }

    /// Removes entry `id` if present.
    pub(crate) fn remove(&mut self, id: &str) {
        if self.entries.remove(id).is_some() {
            self.pending_mut().insert(id.to_owned());
        }
    }

    fn pending_mut(&mut self) -> &mut HashSet<String> {
        &mut self
            .engine
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .pending
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
        if k == 0 || self.entries.is_empty() {
            return Vec::new();
        }
        let mut engine = self.engine.lock().unwrap_or_else(PoisonError::into_inner);
        match self.ranked(&mut engine, query, k, filter) {
            Ok(hits) => hits,
            Err(first) => {
                // Start again from the entries; a second failure is reported and yields no hits.
                tracing::warn!(error = %first, "keyword index failed; rebuilding it");
                engine.tantivy = None;
                self.ranked(&mut engine, query, k, filter)
                    .unwrap_or_else(|second| {
                        tracing::error!(error = %second, "keyword index unusable after a rebuild");
                        Vec::new()
                    })
            }
        }
    }

    /// Brings tantivy up to date, then widens the candidate list until `k` of them pass the
    /// filter or there are no more.
    fn ranked(
        &self,
        engine: &mut Engine,
        query: &str,
        k: usize,
        filter: &Metadata,
    ) -> tantivy::Result<Vec<(String, f32, Metadata)>> {
        let tantivy = match engine.tantivy.take() {
            Some(mut tantivy) => {
                if !engine.pending.is_empty() {
                    tantivy.apply(&engine.pending, &self.entries)?;
                }
                tantivy
            }
            None => Tantivy::build(&self.entries)?,
        };
        engine.pending.clear();
        let tantivy = engine.tantivy.insert(tantivy);

        let mut limit = k;
        loop {
            let candidates = tantivy.top(query, limit)?;
            let exhausted = candidates.len() < limit;
            let mut hits: Vec<(String, f32, Metadata)> = candidates
                .into_iter()
                .filter_map(|(score, id)| {
                    let entry = self.entries.get(&id)?;
                    filter_matches(filter, &entry.metadata)
                        .then(|| (id, score, entry.metadata.clone()))
                })
                .collect();
            if hits.len() >= k || exhausted || limit >= self.entries.len() {
                hits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                hits.truncate(k);
                return Ok(hits);
            }
            limit = limit.saturating_mul(4).min(self.entries.len());
        }
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

    /// The BM25 figures match the formula: with 3 entries, a term in 1 of them has
    /// idf ln(1 + 2.5/1.5); one occurrence in an entry of average length scores idf.
    #[test]
    fn scores_follow_okapi_bm25() {
        let mut index = Bm25Index::default();
        index.insert("a", "alpha beta", Metadata::new());
        index.insert("b", "gamma delta", Metadata::new());
        index.insert("c", "epsilon zeta", Metadata::new());
        let hits = index.search("alpha", 10, &Metadata::new());
        let idf = (1.0f32 + 2.5 / 1.5).ln();
        assert_eq!(hits.len(), 1);
        assert!((hits[0].1 - idf).abs() < 1e-3, "{} vs {idf}", hits[0].1);
    }

    /// A filter matching few entries still returns every match, beyond the first `k`
    /// candidates tantivy ranks.
    #[test]
    fn selective_filters_widen_the_candidate_list() {
        let mut index = Bm25Index::default();
        let mut rare = Metadata::new();
        rare.insert("kind".into(), "rare".into());
        for i in 0..100 {
            let metadata = if i % 25 == 0 {
                rare.clone()
            } else {
                Metadata::new()
            };
            let text = if i % 25 == 0 {
                "storage engine"
            } else {
                "storage engine storage engine"
            };
            index.insert(&format!("e{i:03}"), text, metadata);
        }
        let hits = index.search("storage", 3, &rare);
        let ids: Vec<&str> = hits.iter().map(|hit| hit.0.as_str()).collect();
        assert_eq!(ids, ["e000", "e025", "e050"]);
        index.remove("e025");
        let hits = index.search("engine", 10, &rare);
        assert_eq!(hits.len(), 3);
    }
}
