//! `add_many` embeds the chunks of all its documents in one embedder call (256 texts per
//! call at most) and stores exactly what `add` one by one would.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use mcp_backends::memory::{MemoryGraphStore, MemoryVectorIndex};
use mcp_context::{
    AddManyRequest, AddRequest, ChunkConfig, ContextConfig, ContextService, DocumentInput,
    Embedder, GraphRequest, HashEmbedder, SearchMode, SearchRequest,
};

/// The hash embedder, counting the calls and texts that reach it.
#[derive(Default)]
struct Counting {
    inner: HashEmbedder,
    calls: AtomicUsize,
    texts: AtomicUsize,
}

#[async_trait]
impl Embedder for Counting {
    fn dimensions(&self) -> usize {
        self.inner.dimensions()
    }
    async fn embed(&self, texts: &[String]) -> mcp_core::Result<Vec<Vec<f32>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

impl Counting {
    fn counts(&self) -> (usize, usize) {
        (
            self.calls.load(Ordering::SeqCst),
            self.texts.load(Ordering::SeqCst),
        )
    }
}

/// A service over in-memory backends (exact vector search) and a counting hash embedder.
fn service(config: ContextConfig) -> (ContextService, Arc<Counting>) {
    let embedder = Arc::new(Counting::default());
    let service = ContextService::new(
        embedder.clone(),
        Arc::new(MemoryVectorIndex::new(embedder.dimensions())),
        Arc::new(MemoryGraphStore::new()),
    )
    .unwrap()
    .with_config(config)
    .unwrap();
    (service, embedder)
}

fn documents() -> Vec<DocumentInput> {
    let document = |id: &str, text: String, related: Option<&str>| DocumentInput {
        text,
        metadata: related.and_then(|id| serde_json::json!({ "related": id }).as_object().cloned()),
        id: Some(id.into()),
    };
    vec![
        document(
            "fox",
            "The quick brown fox jumps over the lazy dog".into(),
            None,
        ),
        document(
            "fox2",
            "The quick brown fox jumps over the lazy dog!".into(),
            None,
        ),
        document(
            "long",
            "Alpha beta gamma delta. Epsilon zeta eta theta. ".repeat(60),
            Some("fox"),
        ),
        document(
            "rates",
            "Interest rates rose again this quarter".into(),
            None,
        ),
        document(
            "garden",
            "Tomatoes need sun and regular watering".into(),
            None,
        ),
        // Replaces the first "garden", as a second `add` would.
        document("garden", "Roses are pruned in early spring".into(), None),
    ]
}

/// `(id, chunk, score)` of the semantic hits for `query`.
async fn semantic(context: &ContextService, query: &str) -> Vec<(String, usize, f32)> {
    context
        .search(SearchRequest {
            query: query.into(),
            mode: Some(SearchMode::Semantic),
            limit: Some(100),
            ..Default::default()
        })
        .await
        .unwrap()
        .results
        .into_iter()
        .map(|hit| (hit.id, hit.chunk, hit.score))
        .collect()
}

#[tokio::test]
async fn add_many_embeds_all_documents_in_one_call() {
    let (one_by_one, each) = service(ContextConfig::default());
    let mut texts = 0;
    for document in documents() {
        let added = one_by_one
            .add(AddRequest {
                text: document.text,
                metadata: document.metadata,
                id: document.id,
                namespace: None,
            })
            .await
            .unwrap();
        texts += added.chunks;
    }
    assert_eq!(each.counts(), (documents().len(), texts));

    let (batched, together) = service(ContextConfig::default());
    let added = batched
        .add_many(AddManyRequest {
            documents: documents(),
            namespace: None,
        })
        .await
        .unwrap();
    assert_eq!(
        added.ids,
        ["fox", "fox2", "long", "rates", "garden", "garden"]
    );
    assert!(
        texts > documents().len(),
        "the long document has several chunks"
    );
    assert_eq!(together.counts(), (1, texts), "one call with every chunk");

    // Each chunk got its own vector: the same hits, chunks and scores as one by one.
    for query in [
        "lazy dog",
        "epsilon zeta",
        "interest rates",
        "pruned roses",
        "tomatoes",
    ] {
        let expected = semantic(&one_by_one, query).await;
        assert!(!expected.is_empty());
        assert_eq!(semantic(&batched, query).await, expected, "{query}");
    }
    assert_eq!(
        batched.get("garden").await.unwrap().text,
        "Roses are pruned in early spring"
    );
    // The links are those of one-by-one adds: fox2 is similar to fox, long names fox.
    for context in [&one_by_one, &batched] {
        let graph = context
            .graph(GraphRequest {
                id: Some("fox".into()),
                depth: Some(1),
                limit: None,
            })
            .await
            .unwrap();
        let mut edges: Vec<(String, String, String)> = graph
            .edges
            .into_iter()
            .map(|e| (e.from, e.to, e.rel_type))
            .collect();
        edges.sort();
        assert_eq!(
            edges,
            [
                ("fox2".into(), "fox".into(), "SIMILAR_TO".into()),
                ("long".into(), "fox".into(), "RELATED_TO".into()),
            ]
        );
    }
}

#[tokio::test]
async fn add_many_checks_every_document_before_embedding() {
    let (context, embedder) = service(ContextConfig::default());
    let mut documents = documents();
    documents[3].id = Some("  ".into());
    let err = context
        .add_many(AddManyRequest {
            documents,
            namespace: None,
        })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, mcp_core::Error::InvalidArgument(m) if m.starts_with("documents[3]: ")),
        "{err:?}"
    );
    assert_eq!(embedder.counts(), (0, 0));
    assert!(context.get("fox").await.is_err(), "nothing was added");
}

#[tokio::test]
async fn large_batches_are_embedded_256_texts_per_call() {
    // Chunks of at most 20 characters: 600 chunks over 30 documents.
    let config = ContextConfig {
        chunking: ChunkConfig {
            size: 20,
            overlap: 0,
        },
        ..ContextConfig::default()
    };
    let (context, embedder) = service(config);
    let documents: Vec<DocumentInput> = (0..30)
        .map(|d| DocumentInput {
            text: (0..20)
                .map(|c| format!("doc{d:02} chunk{c:02}. "))
                .collect(),
            metadata: None,
            id: Some(format!("d{d:02}")),
        })
        .collect();
    let added = context
        .add_many(AddManyRequest {
            documents,
            namespace: None,
        })
        .await
        .unwrap();
    assert_eq!(added.ids.len(), 30);
    assert_eq!(embedder.counts(), (3, 600), "256 + 256 + 88 texts");
    for d in [0, 12, 29] {
        assert_eq!(context.get(&format!("d{d:02}")).await.unwrap().chunks, 20);
        let hits = semantic(&context, &format!("doc{d:02} chunk07")).await;
        assert_eq!(
            (hits[0].0.as_str(), hits[0].1),
            (format!("d{d:02}").as_str(), 7)
        );
    }
}
