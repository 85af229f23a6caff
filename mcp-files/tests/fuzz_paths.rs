//! Fuzz target `paths`: arbitrary caller paths through every files action that takes one,
//! over the escape fixture of `tests/corpus/path_escapes.json` (built afresh per case). Some
//! paths are legitimate, so success is allowed, but: nothing outside the root changes, no
//! answer carries a canary from outside, every refusal is a typed error that reveals no link
//! target, and a successful write lands inside the root. Inputs are raw path bytes (`{base}`
//! and `{root}` stand for the fixture's directories); see `fuzz/harness.rs`.

#[path = "../../fuzz/escapes.rs"]
mod escapes;
#[path = "../../fuzz/harness.rs"]
mod harness;

use escapes::{Attempt, Escapes};
use mcp_core::{Error, RequestContext, Service};
use mcp_files::{FilesConfig, FilesService};
use proptest::prelude::*;

/// Generated cases per phase in a plain `cargo test`.
const DEFAULT_CASES: u32 = 12;

const TARGET: &str = "paths";

fn check(raw: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let escapes = Escapes::build(&dir.path().canonicalize().unwrap());
    let path = String::from_utf8_lossy(raw)
        .replace("{base}", escapes.base.to_str().unwrap())
        .replace("{root}", escapes.root.to_str().unwrap());
    let mut config = FilesConfig::new([&escapes.root]);
    config.watch = false;
    let files = FilesService::in_memory(config).unwrap();
    let before = escapes.outside_state();
    let attempt = Attempt {
        path: path.clone(),
        why: "fuzzed".into(),
        link: false,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let ctx = RequestContext::local();
        for (action, args) in escapes::calls(&attempt) {
            match files
                .call(action, args.into(), &ctx)
                .await
                .and_then(|output| output.to_value())
            {
                Ok(result) => {
                    let text = result.to_string();
                    for secret in &escapes.secrets {
                        assert!(
                            !text.contains(secret.as_str()),
                            "{action} {path:?} leaked: {text}"
                        );
                    }
                    if action == "write" {
                        let written = escapes.root.join(result["path"].as_str().unwrap());
                        assert!(
                            std::fs::symlink_metadata(&written).is_ok(),
                            "write {path:?} reported {written:?}, which is not in the root"
                        );
                    }
                }
                Err(err) => {
                    assert!(
                        !matches!(err, Error::Internal(_) | Error::Timeout(_)),
                        "{action} {path:?}: {err:?}"
                    );
                    let message = err.to_string();
                    for hidden in &escapes.hidden {
                        if !path.contains(hidden.as_str()) {
                            assert!(
                                !message.contains(hidden.as_str()),
                                "{action} {path:?} revealed {hidden:?}: {message}"
                            );
                        }
                    }
                }
            }
        }
    });
    assert_eq!(
        escapes.outside_state(),
        before,
        "{path:?} changed something outside"
    );
}

fn structured() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        "..",
        ".",
        "",
        "a",
        "link_out",
        "abs_out",
        "chain1",
        "file_link",
        "dangling",
        "dangling_chain",
        "inner",
        "up_out",
        "evil_sibling",
        "root_link",
        "loop_a",
        "self_loop",
        "outside",
        "root",
        "root_evil",
        "canary.txt",
        "secret.txt",
        "dir",
        "etc",
        "passwd",
        "\0",
        "{base}",
        "{root}",
        "%2e%2e",
        "..\\..",
        "é",
    ]);
    (any::<bool>(), prop::collection::vec(piece, 1..7)).prop_map(|(absolute, parts)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
        .into_bytes()
    })
}

#[test]
fn fuzz_paths() {
    let seeds = harness::replay(TARGET, check);
    eprintln!("{TARGET}: {seeds} corpus seeds replayed");
    let corpus = harness::corpus(TARGET);
    harness::generate(
        TARGET,
        DEFAULT_CASES,
        "mutated",
        harness::mutated(&corpus),
        |bytes| {
            check(&bytes);
            Ok(())
        },
    );
    harness::generate(TARGET, DEFAULT_CASES, "structured", structured(), |bytes| {
        check(&bytes);
        Ok(())
    });
}
