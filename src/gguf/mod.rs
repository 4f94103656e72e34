//! Import of a GGUF Llama (llama.cpp's format) into a Hugging Face checkpoint directory:
//! model.safetensors, config.json, generation_config.json, tokenizer.json, tokenizer_config.json.

pub mod config;
pub mod header;
pub mod metadata;
mod output;
pub mod tensors;
pub mod tokenizer;

use std::collections::HashMap;
use std::io::{BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::Serialize;

use crate::arch::LlamaConfig;
use crate::progress::{Progress, Unit};
pub use config::OutputDtype;
use metadata::Metadata;
use output::StagingDir;
use tensors::TensorPlan;

/// Everything that can go wrong while importing a GGUF file.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The GGUF header or metadata could not be parsed.
    #[error("{path} is not a readable GGUF file: {source}")]
    Read {
        /// The GGUF file.
        path: PathBuf,
        /// candle-core's parse error.
        source: candle_core::Error,
    },
    /// A required metadata key is absent.
    /// The header repeats a metadata key or tensor name, has an unusable alignment, or is
    /// cut short (checked before candle reads it).
    #[error("{path} is not a valid GGUF file: {source}")]
    Header {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong with its header.
        source: header::HeaderError,
    },
    #[error("GGUF metadata key `{key}` is missing")]
    MissingKey {
        /// The key.
        key: String,
    },
    /// A metadata key holds a value of the wrong type.
    #[error("GGUF metadata key `{key}`: expected {expected}, found {found}")]
    WrongKeyType {
        /// The key.
        key: String,
        /// What the importer needs.
        expected: String,
        /// What the file holds.
        found: String,
    },
    /// The config.json derived from the metadata is not a valid Llama-family config.
    #[error("the config.json derived from the GGUF metadata: {0}")]
    Config(#[from] crate::arch::ArchError),
    /// A metadata value is present and typed right but inconsistent.
    #[error("GGUF metadata key `{key}`: {reason}")]
    InvalidMetadata {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `general.architecture` is not a Llama.
    #[error("GGUF metadata key `general.architecture` is {found:?}; only \"llama\" is supported")]
    UnsupportedArchitecture {
        /// The architecture in the file.
        found: String,
    },
    /// `tokenizer.ggml.model` is not byte-level BPE.
    #[error("GGUF metadata key `tokenizer.ggml.model` is {found:?}; only \"gpt2\" (byte-level BPE) is supported")]
    UnsupportedTokenizer {
        /// The tokenizer model in the file.
        found: String,
    },
    /// A tensor every Llama has is absent.
    #[error("GGUF tensor `{name}` is missing")]
    MissingTensor {
        /// The GGUF tensor name.
        name: String,
    },
    /// A tensor cannot be imported.
    #[error("GGUF tensor `{name}` is not supported: {reason}")]
    UnsupportedTensor {
        /// The GGUF tensor name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A q/k projection cannot be un-permuted from llama.cpp's row order.
    #[error("GGUF tensor `{name}` is not supported: {source}")]
    Unpermute {
        /// The GGUF tensor name.
        name: String,
        /// Why its rows cannot be un-permuted.
        source: tensors::UnpermuteError,
    },
    /// A tensor's shape disagrees with the metadata.
    #[error("GGUF tensor `{name}`: expected shape {expected:?} from the metadata, found {found:?}")]
    ShapeMismatch {
        /// The GGUF tensor name.
        name: String,
        /// Shape implied by the metadata.
        expected: Vec<usize>,
        /// Shape in the file.
        found: Vec<usize>,
    },
    /// Reading or dequantizing a tensor failed.
    #[error("GGUF tensor `{name}` could not be dequantized: {source}")]
    Dequantize {
        /// The GGUF tensor name.
        name: String,
        /// candle-core's error.
        source: candle_core::Error,
    },
    /// The output directory already exists.
    #[error("output {path} already exists; choose a new directory")]
    OutputExists {
        /// The requested output directory.
        path: PathBuf,
    },
    /// A JSON file could not be serialized.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// model.safetensors could not be written.
    #[error("{path}: {source}")]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// The safetensors crate's error.
        source: safetensors::SafeTensorError,
    },
}

/// What an import wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ImportSummary {
    /// The checkpoint directory.
    pub out: PathBuf,
    /// Tensors in model.safetensors.
    pub tensors: usize,
    /// Parameters in model.safetensors.
    pub parameters: u64,
    /// Storage dtype (`float32` or `bfloat16`).
    pub dtype: String,
    /// Decoder layers.
    pub layers: usize,
    /// Whether lm_head is tied to the embedding.
    pub tied_embeddings: bool,
}

/// Imports `gguf` into a new checkpoint directory `out`, which must not exist yet.
pub fn import_gguf(
    gguf: &Path,
    out: &Path,
    dtype: OutputDtype,
    progress: &dyn Progress,
) -> Result<ImportSummary, GgufError> {
    let file = crate::fsutil::open_regular(gguf, crate::fsutil::Links::Follow)
        .map_err(|source| GgufError::Io { path: gguf.to_path_buf(), source })?;
    let mut reader = BufReader::new(file);
    header::check_header(&mut reader).map_err(|source| GgufError::Header { path: gguf.to_path_buf(), source })?;
    reader.seek(SeekFrom::Start(0)).map_err(|source| GgufError::Io { path: gguf.to_path_buf(), source })?;
    let content = Content::read(&mut reader).map_err(|source| GgufError::Read { path: gguf.to_path_buf(), source })?;
    let meta = Metadata::new(&content.metadata);
    let arch = config::architecture(&meta)?;
    let vocab = tokenizer::read_vocab(&meta)?;
    let facts = config::TensorFacts {
        embedding_rows: embedding_rows(&content)?,
        has_output: content.tensor_infos.contains_key("output.weight"),
    };
    let llama = config::llama_config(&meta, &arch, &facts, dtype)?;
    check_vocab_matches_embedding(vocab.tokens.len(), facts.embedding_rows)?;
    let kv_heads = llama.num_key_value_heads.unwrap_or(llama.num_attention_heads);
    let plans = tensors::plan(&content, llama.num_hidden_layers, llama.num_attention_heads, kv_heads)?;
    check_shapes(&content, &plans, &llama)?;

    let staging = StagingDir::create(out)?;
    let parameters = write_safetensors(&staging, &content, &mut reader, &plans, dtype, progress)?;
    staging.write_json("config.json", &llama)?;
    staging.write_json("generation_config.json", &config::generation_config(&llama))?;
    staging.write_json("tokenizer.json", &vocab.tokenizer_json())?;
    let chat_template = meta.opt_string("tokenizer.chat_template")?;
    staging
        .write_json("tokenizer_config.json", &vocab.tokenizer_config(chat_template, llama.max_position_embeddings))?;
    let out = staging.commit()?;
    Ok(ImportSummary {
        out,
        tensors: plans.len(),
        parameters,
        dtype: dtype.torch_name().to_string(),
        layers: llama.num_hidden_layers,
        tied_embeddings: llama.tie_word_embeddings,
    })
}

fn embedding_rows(content: &Content) -> Result<usize, GgufError> {
    let info = content
        .tensor_infos
        .get("token_embd.weight")
        .ok_or_else(|| GgufError::MissingTensor { name: "token_embd.weight".to_string() })?;
    Ok(info.shape.dims().first().copied().unwrap_or(0))
}

fn check_vocab_matches_embedding(tokens: usize, rows: usize) -> Result<(), GgufError> {
    if tokens == rows {
        Ok(())
    } else {
        Err(GgufError::InvalidMetadata {
            key: "tokenizer.ggml.tokens".to_string(),
            reason: format!("has {tokens} tokens but token_embd.weight has {rows} rows"),
        })
    }
}

fn check_shapes(content: &Content, plans: &[TensorPlan], llama: &LlamaConfig) -> Result<(), GgufError> {
    let value = serde_json::to_value(llama)
        .map_err(|e| GgufError::InvalidMetadata { key: "config.json".to_string(), reason: e.to_string() })?;
    let arch = crate::arch::Architecture::from_config(&value)?;
    for plan in plans {
        let found = content.tensor_infos[&plan.gguf_name].shape.dims().to_vec();
        let expected = tensors::expected_shape(&plan.hf_name, &arch);
        if found != expected {
            return Err(GgufError::ShapeMismatch { name: plan.gguf_name.clone(), expected, found });
        }
    }
    Ok(())
}

/// Dequantizes every planned tensor and writes model.safetensors; returns the parameter count.
fn write_safetensors<R: std::io::Read + std::io::Seek>(
    staging: &StagingDir,
    content: &Content,
    reader: &mut R,
    plans: &[TensorPlan],
    dtype: OutputDtype,
    progress: &dyn Progress,
) -> Result<u64, GgufError> {
    progress.start("dequantizing tensors", plans.len() as u64, Unit::Items);
    let mut dense = Vec::with_capacity(plans.len());
    for plan in plans {
        let tensor = tensors::load_dense(content, reader, plan)?;
        dense.push((plan.hf_name.clone(), tensor.shape, tensors::encode(&tensor.values, dtype)));
        progress.advance(1);
    }
    progress.finish();
    let st_dtype = match dtype {
        OutputDtype::F32 => Dtype::F32,
        OutputDtype::Bf16 => Dtype::BF16,
    };
    let path = staging.path("model.safetensors");
    let views = dense
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(st_dtype, shape.clone(), bytes)
                .map(|view| (name.clone(), view))
                .map_err(|source| GgufError::Safetensors { path: path.clone(), source })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let format = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(format), &path)
        .map_err(|source| GgufError::Safetensors { path: path.clone(), source })?;
    staging.adopt_file("model.safetensors")?;
    Ok(dense.iter().map(|(_, shape, _)| shape.iter().product::<usize>() as u64).sum())
}
