//! Fuzz target `args`: hostile JSON arguments for every action of every service, through
//! `Registry::call` of the assembled server (files over a scratch root, memory, context, all
//! middleware). Every call must answer within its bound with `Ok` or a typed error that is a
//! refusal of the arguments or of the state (never `Internal`, never a timeout, never a
//! panic). Corpus seeds (`fuzz/corpus/args/`) are argument bodies, replayed against every
//! action; bytes that are not JSON are sent as a JSON string. The generated phases mutate the
//! seeds, and build objects from each action's own schema properties with wrong types, nulls,
//! huge and negative numbers, hostile strings, nesting and unknown fields.

mod common;
#[path = "../../../fuzz/harness.rs"]
mod harness;

use std::time::Duration;

use common::TempRoot;
use mcp_core::{Error, Registry, RequestContext};
use mcp_server::config::{Limits, ServerConfig};
use mcp_server::App;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Generated cases per phase in a plain `cargo test`.
const DEFAULT_CASES: u32 = 64;

const TARGET: &str = "args";

/// The longest one call may take before it counts as a hang.
const CALL_BOUND: Duration = Duration::from_secs(20);

/// Each argument property of an action with its JSON Schema.
type Properties = Vec<(String, Value)>;

struct Target {
    registry: Registry,
    /// Service, action and properties of every action.
    actions: Vec<(String, String, Properties)>,
    runtime: tokio::runtime::Runtime,
    _root: TempRoot,
}

impl Target {
    fn new() -> Target {
        let root = TempRoot::new();
        std::fs::write(root.0.join("a.txt"), "alpha\n").unwrap();
        std::fs::create_dir(root.0.join("dir")).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = ServerConfig {
            roots: vec![root.0.clone()],
            limits: Limits {
                rate_per_second: 1_000_000.0,
                rate_burst: 1_000_000,
                ..Limits::default()
            },
            ..ServerConfig::default()
        };
        let app = runtime.block_on(App::build(config)).unwrap();
        let actions = app
            .registry
            .actions()
            .into_iter()
            .map(|(service, spec)| {
                let properties = spec.params_schema["properties"]
                    .as_object()
                    .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                (service.to_owned(), spec.name.clone(), properties)
            })
            .collect();
        Target {
            registry: app.registry,
            actions,
            runtime,
            _root: root,
        }
    }

    fn call(&self, index: usize, params: Value) {
        let (service, action, _) = &self.actions[index];
        let shown: String = params.to_string().chars().take(300).collect();
        let outcome = self.runtime.block_on(async {
            let ctx = RequestContext::local().with_principal("fuzz");
            tokio::time::timeout(
                CALL_BOUND,
                self.registry.call(service, action, params, &ctx),
            )
            .await
        });
        match outcome {
            Err(_) => panic!("{service}/{action} {shown} did not answer within {CALL_BOUND:?}"),
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                assert!(
                    matches!(
                        err,
                        Error::InvalidArgument(_)
                            | Error::NotFound(_)
                            | Error::Conflict(_)
                            | Error::Locked(_)
                            | Error::PermissionDenied(_)
                            | Error::PayloadTooLarge(_)
                    ),
                    "{service}/{action} {shown}: {err:?}"
                );
                assert!(!err.to_string().is_empty());
            }
        }
    }
}

/// Argument bytes as the JSON the registry receives.
fn params_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            "a.txt",
            "dir",
            "dir/",
            ".",
            "..",
            "../..",
            "/",
            "/etc/passwd",
            "a\0b",
            "*",
            "**",
            "[",
            "\\",
            "é",
            "😀",
            "\u{202e}",
            " ",
            "\n",
            "-1",
            "null",
            "default",
            "ns:with:colons",
            "memory://x/y",
            "file:///etc/passwd",
            "AAAA",
            "YWJj",
        ])
        .prop_map(str::to_owned),
        "[a-z./*?\\[\\]\\\\-]{0,12}",
        (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(-1),
            json!(i64::MIN),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(u32::MAX as u64 + 1),
            json!(0.5),
            json!(-0.0),
            json!(1e308),
            json!(-1e308),
            json!(3_600_000),
            json!(315_532_800_000u64),
        ]),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
    ]
}

fn hostile_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        hostile_number(),
        hostile_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((hostile_string(), inner), 0..5)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// A value of the type the property's schema names (strings, integers, booleans, arrays of
/// strings), with hostile contents; anything at all when the schema names no plain type.
fn typed_value(schema: &Value) -> BoxedStrategy<Value> {
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"string") {
        hostile_string().prop_map(Value::String).boxed()
    } else if types.contains(&"integer") || types.contains(&"number") {
        hostile_number().boxed()
    } else if types.contains(&"boolean") {
        any::<bool>().prop_map(Value::Bool).boxed()
    } else if types.contains(&"array") && schema["items"]["type"] == "string" {
        prop::collection::vec(hostile_string().prop_map(Value::String), 0..4)
            .prop_map(Value::Array)
            .boxed()
    } else {
        hostile_value().boxed()
    }
}

/// An action index and an object built from that action's properties (each present or not,
/// mostly of its schema's type, else any hostile value), sometimes with an unknown field,
/// sometimes not an object at all.
fn schema_shaped(target: &Target) -> impl Strategy<Value = (usize, Value)> {
    let actions: Vec<Properties> = target.actions.iter().map(|(_, _, p)| p.clone()).collect();
    (0..actions.len()).prop_flat_map(move |index| {
        let properties = actions[index].clone();
        let values: Vec<_> = properties
            .iter()
            .map(|(_, schema)| {
                let value = prop_oneof![3 => typed_value(schema), 1 => hostile_value()];
                prop::option::weighted(0.7, value)
            })
            .collect();
        let names: Vec<String> = properties.into_iter().map(|(name, _)| name).collect();
        (
            Just(index),
            values,
            prop::option::weighted(0.15, (hostile_string(), hostile_value())),
            0u8..20,
        )
            .prop_map(move |(index, values, extra, shape)| {
                let mut object: Map<String, Value> = names
                    .iter()
                    .zip(values)
                    .filter_map(|(name, value)| Some((name.clone(), value?)))
                    .collect();
                if let Some((name, value)) = extra {
                    object.insert(name, value);
                }
                let params = match shape {
                    0 => Value::Array(object.into_values().collect()),
                    1 => Value::Null,
                    _ => Value::Object(object),
                };
                (index, params)
            })
    })
}

/// Arrays nested `depth` deep around `inner`.
fn nested(depth: usize, inner: Value) -> Value {
    (0..depth).fold(inner, |value, _| Value::Array(vec![value]))
}

#[test]
fn fuzz_args() {
    let target = Target::new();
    let count = target.actions.len();
    assert!(count >= 40, "only {count} actions registered");
    let seeds = harness::replay(TARGET, |bytes| {
        let params = params_of(bytes);
        for index in 0..count {
            target.call(index, params.clone());
        }
    });
    // Deep values the wire can carry (serde_json stops at 128 levels) as argument values.
    for index in 0..count {
        let (_, _, properties) = &target.actions[index];
        let deep: Map<String, Value> = properties
            .iter()
            .map(|(name, _)| (name.clone(), nested(100, json!("x"))))
            .collect();
        target.call(index, Value::Object(deep));
    }
    eprintln!("{TARGET}: {seeds} corpus seeds replayed against {count} actions");
    let corpus = harness::corpus(TARGET);
    let mutated = (harness::mutated(&corpus), 0..count);
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "mutated",
        mutated,
        |(bytes, index)| {
            target.call(index, params_of(&bytes));
            Ok(())
        },
    );
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "schema",
        schema_shaped(&target),
        |(index, params)| {
            target.call(index, params);
            Ok(())
        },
    );
}
