//! Conformance suite for [`VectorIndex`]. The index must have [`DIMENSIONS`] dimensions.

use serde_json::json;

use super::unique_prefix;
use crate::vector::{Metadata, VectorIndex, VectorRecord};
use crate::Error;

/// The dimension the suite's vectors have.
pub const DIMENSIONS: usize = 8;

fn unit(axis: usize, tilt: f32) -> Vec<f32> {
    let mut v = vec![0.0; DIMENSIONS];
    v[axis] = 1.0;
    v[(axis + 1) % DIMENSIONS] = tilt;
    v
}

fn meta(value: serde_json::Value) -> Metadata {
    value.as_object().cloned().unwrap_or_default()
}

/// Runs every VectorIndex check.
pub async fn run_all(index: &dyn VectorIndex) {
    assert_eq!(
        index.dimensions(),
        DIMENSIONS,
        "the suite needs an index of DIMENSIONS"
    );
    nearest_neighbours_and_filters(index).await;
    invalid_vectors(index).await;
}

/// Exact top-k order, cosine scores, replacement, deletion and metadata filters.
pub async fn nearest_neighbours_and_filters(index: &dyn VectorIndex) {
    let suite = unique_prefix();
    let only = meta(json!({ "suite": suite }));
    let records = vec![
        VectorRecord {
            id: format!("{suite}a"),
            vector: unit(0, 0.0),
            metadata: meta(json!({"suite": suite, "kind": "x", "tags": ["red", "blue"]})),
        },
        VectorRecord {
            id: format!("{suite}b"),
            vector: unit(0, 0.5),
            metadata: meta(json!({"suite": suite, "kind": "y", "tags": ["red"]})),
        },
        VectorRecord {
            id: format!("{suite}c"),
            vector: unit(0, 2.0),
            metadata: meta(json!({"suite": suite, "kind": "x"})),
        },
        VectorRecord {
            id: format!("{suite}d"),
            vector: unit(3, 0.0),
            metadata: meta(json!({"suite": suite, "kind": "y"})),
        },
    ];
    index.upsert(records).await.unwrap();
    let len_before = index.len().await.unwrap();
    assert!(len_before >= 4);

    let hits = index.search(&unit(0, 0.0), 3, &only).await.unwrap();
    let ids: Vec<String> = hits
        .iter()
        .map(|h| h.id.trim_start_matches(&suite).to_owned())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert!((hits[0].score - 1.0).abs() < 1e-3);
    assert!((hits[1].score - 1.0 / 1.25f32.sqrt()).abs() < 1e-3);
    assert_eq!(hits[0].metadata["kind"], "x");

    let all = index.search(&unit(0, 0.0), 100, &only).await.unwrap();
    assert_eq!(all.len(), 4, "k larger than the set returns the whole set");

    let kind_y = meta(json!({"suite": suite, "kind": "y"}));
    let ids: Vec<String> = index
        .search(&unit(3, 0.0), 10, &kind_y)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids, [format!("{suite}d"), format!("{suite}b")]);
    let red = meta(json!({"suite": suite, "tags": "red"}));
    assert_eq!(
        index.search(&unit(0, 0.0), 10, &red).await.unwrap().len(),
        2
    );

    // Upsert replaces vector and metadata.
    index
        .upsert(vec![VectorRecord {
            id: format!("{suite}a"),
            vector: unit(3, 0.0),
            metadata: meta(json!({"suite": suite, "kind": "z"})),
        }])
        .await
        .unwrap();
    assert_eq!(index.len().await.unwrap(), len_before);
    let top = index
        .search(
            &unit(3, 0.0),
            1,
            &meta(json!({"suite": suite, "kind": "z"})),
        )
        .await
        .unwrap();
    assert_eq!(top[0].id, format!("{suite}a"));
    assert!((top[0].score - 1.0).abs() < 1e-3);

    let ids: Vec<String> = ["a", "b", "c", "d", "never"]
        .iter()
        .map(|s| format!("{suite}{s}"))
        .collect();
    assert_eq!(index.delete(&ids).await.unwrap(), 4);
    assert!(index
        .search(&unit(0, 0.0), 10, &only)
        .await
        .unwrap()
        .is_empty());
    index.ping().await.unwrap();
}

/// Wrong dimensions and non-finite components are refused and store nothing.
pub async fn invalid_vectors(index: &dyn VectorIndex) {
    let suite = unique_prefix();
    let only = meta(json!({ "suite": suite }));
    let good = VectorRecord {
        id: format!("{suite}ok"),
        vector: unit(1, 0.0),
        metadata: only.clone(),
    };
    let short = VectorRecord {
        id: format!("{suite}short"),
        vector: vec![1.0; DIMENSIONS - 1],
        metadata: only.clone(),
    };
    let err = index.upsert(vec![good.clone(), short]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let mut nan = good.clone();
    nan.vector[2] = f32::NAN;
    assert!(matches!(
        index.upsert(vec![nan]).await,
        Err(Error::InvalidArgument(_))
    ));
    assert!(
        index
            .search(&unit(1, 0.0), 10, &only)
            .await
            .unwrap()
            .is_empty(),
        "nothing stored"
    );
    assert!(matches!(
        index.search(&[1.0, 0.0], 10, &only).await,
        Err(Error::InvalidArgument(_))
    ));
}
