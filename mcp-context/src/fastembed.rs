//! [`FastEmbedder`]: all-MiniLM-L6-v2 sentence embeddings (384 dimensions, mean pooling,
//! L2-normalised, truncated at 256 tokens) through fastembed and ONNX Runtime, from local
//! files only (feature `fastembed`). `scripts/fetch-model.sh` downloads the files.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use fastembed::{
    InitOptionsUserDefined, Pooling, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel,
};
use mcp_core::{Error, Result};

use crate::embed::Embedder;

/// Token limit of all-MiniLM-L6-v2 in sentence-transformers; longer texts are truncated.
pub const MAX_LENGTH: usize = 256;

/// Texts per inference batch.
const BATCH_SIZE: usize = 64;

/// The one ONNX Runtime environment of the process (ONNX Runtime allows one library and one
/// environment per process; later embedders reuse it).
static ENVIRONMENT: Mutex<Option<ort::environment::Environment>> = Mutex::new(None);

/// all-MiniLM-L6-v2 through ONNX Runtime. Inference runs on tokio's blocking pool; one model
/// instance serves one batch at a time.
pub struct FastEmbedder {
    model: Arc<Mutex<TextEmbedding>>,
    dimensions: usize,
}

impl FastEmbedder {
    /// Loads ONNX Runtime from `library` (e.g. `libonnxruntime.so.1.32.0`) and the model from
    /// `model_dir` (`model.onnx`, `tokenizer.json`, `config.json`, `special_tokens_map.json`,
    /// `tokenizer_config.json`). A missing or unusable library or file is
    /// [`Error::Unavailable`] naming it, never a panic.
    pub fn new(library: impl AsRef<Path>, model_dir: impl AsRef<Path>) -> Result<Self> {
        let environment = environment(library.as_ref())?;
        let dir = model_dir.as_ref();
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|err| {
                Error::Unavailable(format!(
                    "cannot read model file `{}`: {err} (run scripts/fetch-model.sh)",
                    path.display()
                ))
            })
        };
        let config = read("config.json")?;
        let dimensions = serde_json::from_slice::<serde_json::Value>(&config)
            .ok()
            .and_then(|config| config.get("hidden_size").and_then(|size| size.as_u64()))
            .map(|size| size as usize)
            .ok_or_else(|| {
                Error::Unavailable(format!(
                    "`{}` has no hidden_size",
                    dir.join("config.json").display()
                ))
            })?;
        let tokenizer = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: config,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let model = UserDefinedEmbeddingModel::new(read("model.onnx")?, tokenizer)
            .with_pooling(Pooling::Mean);
        let options = InitOptionsUserDefined::new()
            .with_max_length(MAX_LENGTH)
            .with_environment(environment);
        let model = TextEmbedding::try_new_from_user_defined(model, options).map_err(|err| {
            Error::Unavailable(format!(
                "cannot load the model from `{}`: {err}",
                dir.display()
            ))
        })?;
        Ok(FastEmbedder {
            model: Arc::new(Mutex::new(model)),
            dimensions,
        })
    }

    /// [`FastEmbedder::new`] with the library from `ORT_DYLIB_PATH` and the model directory
    /// from `MINILM_DIR`, as printed by `scripts/fetch-model.sh`.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| {
            std::env::var_os(name).map(PathBuf::from).ok_or_else(|| {
                Error::Unavailable(format!(
                    "{name} is not set (run `eval \"$(scripts/fetch-model.sh)\"`)"
                ))
            })
        };
        FastEmbedder::new(var("ORT_DYLIB_PATH")?, var("MINILM_DIR")?)
    }
}

/// Loads the ONNX Runtime library once per process and returns the shared environment.
fn environment(library: &Path) -> Result<ort::environment::Environment> {
    let library = std::fs::canonicalize(library).map_err(|err| {
        Error::Unavailable(format!(
            "ONNX Runtime library `{}` not found: {err} (run scripts/fetch-model.sh)",
            library.display()
        ))
    })?;
    let mut shared = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(environment) = shared.as_ref() {
        return Ok(environment.clone());
    }
    let unavailable = |err: &dyn std::fmt::Display| {
        Error::Unavailable(format!(
            "cannot load ONNX Runtime from `{}`: {err}",
            library.display()
        ))
    };
    let environment = ort::init_from(&library)
        .map_err(|err| unavailable(&err))?
        .with_name("mcp-context")
        .build()
        .map_err(|err| unavailable(&err))?;
    *shared = Some(environment.clone());
    Ok(environment)
}

#[async_trait]
impl Embedder for FastEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let model = self.model.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut model = model.lock().unwrap_or_else(PoisonError::into_inner);
            model
                .embed(&texts, Some(BATCH_SIZE))
                .map_err(|err| Error::Internal(format!("embedding failed: {err}")))
        })
        .await
        .map_err(|err| Error::Internal(format!("embedding task failed: {err}")))?
    }
}
