//! Search modes on a small hand-made corpus.

use mcp_context::{AddRequest, ContextService, SearchMode, SearchRequest};

const CORPUS: &[(&str, &str)] = &[
    ("rust", "Rust guarantees memory safety through ownership and borrowing without a garbage collector."),
    ("python", "Python is a dynamically typed language popular for data science and scripting."),
    ("bread", "Sourdough bread rises slowly because wild yeast ferments the dough overnight."),
    ("tides", "Ocean tides are caused by the gravitational pull of the moon and the sun."),
    ("chess", "In chess the knight moves in an L shape and can jump over other pieces."),
    ("coffee", "Espresso is brewed by forcing hot water through finely ground coffee beans."),
];

async fn corpus() -> ContextService {
    let service = ContextService::in_memory();
    for (id, text) in CORPUS {
        service
            .add(AddRequest {
                text: (*text).into(),
                id: Some((*id).into()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    service
}

async fn top(service: &ContextService, query: &str, mode: SearchMode) -> Vec<String> {
    service
        .search(SearchRequest {
            query: query.into(),
            mode: Some(mode),
            limit: Some(3),
            ..Default::default()
        })
        .await
        .unwrap()
        .results
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}

#[tokio::test]
async fn every_mode_finds_the_right_document() {
    let service = corpus().await;
    let queries = [
        ("garbage collector ownership", "rust"),
        ("wild yeast dough", "bread"),
        ("moon gravitational pull", "tides"),
        ("knight jump", "chess"),
        ("ground coffee beans espresso", "coffee"),
        ("data science language", "python"),
    ];
    for (query, expected) in queries {
        for mode in [
            SearchMode::Keyword,
            SearchMode::Semantic,
            SearchMode::Hybrid,
        ] {
            let ids = top(&service, query, mode).await;
            assert_eq!(
                ids.first().map(String::as_str),
                Some(expected),
                "{mode:?} {query}"
            );
            let unique: std::collections::HashSet<&String> = ids.iter().collect();
            assert_eq!(unique.len(), ids.len(), "one result per document");
        }
    }
}

#[tokio::test]
async fn keyword_mode_ignores_documents_without_query_terms() {
    let service = corpus().await;
    let ids = top(&service, "knight", SearchMode::Keyword).await;
    assert_eq!(ids, ["chess"]);
    assert!(top(&service, "zeppelin", SearchMode::Keyword)
        .await
        .is_empty());
}

#[tokio::test]
async fn long_documents_are_deduplicated_per_document() {
    let service = ContextService::in_memory();
    let long = "Volcanoes erupt molten lava. ".repeat(120);
    let added = service
        .add(AddRequest {
            text: long,
            id: Some("volcano".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(added.chunks > 2);
    for mode in [
        SearchMode::Keyword,
        SearchMode::Semantic,
        SearchMode::Hybrid,
    ] {
        let ids = top(&service, "molten lava", mode).await;
        assert_eq!(ids, ["volcano"], "{mode:?}");
    }
}

#[tokio::test]
async fn keyword_index_is_rebuilt_from_the_graph() {
    let service = corpus().await;
    assert_eq!(service.rebuild_keyword_index().await.unwrap(), CORPUS.len());
    assert_eq!(
        top(&service, "espresso", SearchMode::Keyword).await,
        ["coffee"]
    );
}

#[tokio::test]
async fn configuration_is_validated_and_applied() {
    use std::sync::Arc;

    use mcp_backends::memory::{MemoryGraphStore, MemoryVectorIndex};
    use mcp_context::{ChunkConfig, ContextConfig, HashEmbedder};

    let mismatch = ContextService::new(
        Arc::new(HashEmbedder::new(8).unwrap()),
        Arc::new(MemoryVectorIndex::new(16)),
        Arc::new(MemoryGraphStore::new()),
    );
    assert!(mismatch.is_err());
    let bad = ContextService::in_memory().with_config(ContextConfig {
        chunking: ChunkConfig {
            size: 10,
            overlap: 10,
        },
        ..Default::default()
    });
    assert!(bad.is_err());
    let small = ContextService::new(
        Arc::new(HashEmbedder::new(16).unwrap()),
        Arc::new(MemoryVectorIndex::new(16)),
        Arc::new(MemoryGraphStore::new()),
    )
    .unwrap()
    .with_config(ContextConfig {
        chunking: ChunkConfig {
            size: 20,
            overlap: 5,
        },
        similarity_threshold: 2.0,
        max_similar: 0,
    })
    .unwrap();
    let added = small
        .add(AddRequest {
            text: "one two three four five six seven eight nine ten".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(added.chunks >= 3);
    assert!(added.linked.is_empty());
}
