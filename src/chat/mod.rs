//! Chat templates: tokenizer_config.json's Jinja `chat_template` rendered with minijinja
//! under Hugging Face's semantics, and the tokens that end an assistant turn.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use minijinja::{Environment, Error as JinjaError, ErrorKind, Value};
use serde::{Deserialize, Serialize};

use crate::tokenizer::{Tokenizer, TokenizerError};

mod tojson;

/// Name under which the template is stored in the minijinja environment.
const TEMPLATE_NAME: &str = "chat_template";

/// Tokens that close a turn in common templates; one counts when the template text uses it.
const END_OF_TURN_TOKENS: &[&str] =
    &["<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|end_of_turn|>", "</s>"];

/// Failures loading or rendering a chat template.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A checkpoint file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A checkpoint JSON file is malformed.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// tokenizer_config.json has no `chat_template` string.
    #[error("{path} has no string `chat_template`; this checkpoint has no chat template")]
    MissingTemplate {
        /// The tokenizer_config.json path.
        path: PathBuf,
    },
    /// The template does not compile.
    #[error("chat template does not compile: {0:#}")]
    Compile(JinjaError),
    /// Rendering failed (including the template's own `raise_exception`).
    #[error("chat template failed to render: {0:#}")]
    Render(JinjaError),
    /// The checkpoint's tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// One chat message, as Hugging Face templates expect (`message['role']`, `message['content']`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text of the message.
    pub content: String,
}

impl Message {
    /// A message with the given role.
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.to_string(), content: content.to_string() }
    }

    /// A `user` message.
    pub fn user(content: &str) -> Self {
        Self::new("user", content)
    }

    /// A `system` message.
    pub fn system(content: &str) -> Self {
        Self::new("system", content)
    }

    /// An `assistant` message.
    pub fn assistant(content: &str) -> Self {
        Self::new("assistant", content)
    }
}

/// Special token strings a template may refer to (`bos_token`, `eos_token`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpecialTokens {
    /// Token strings by variable name; absent names are undefined in the template.
    pub by_name: BTreeMap<String, String>,
}

/// A compiled chat template with its special tokens and end-of-turn token ids.
pub struct ChatTemplate {
    env: Environment<'static>,
    special: SpecialTokens,
    end_of_turn_ids: Vec<u32>,
}

impl ChatTemplate {
    /// Compiles `source` with Hugging Face's Jinja settings: trim_blocks, lstrip_blocks, loop
    /// controls, Python string methods, `raise_exception` and Python's `tojson`. No
    /// `strftime_now` is defined, so templates fall back to their fixed date and rendering
    /// stays deterministic.
    pub fn new(source: &str, special: SpecialTokens, end_of_turn_ids: Vec<u32>) -> Result<Self, ChatError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_filter("tojson", tojson::tojson);
        env.add_template_owned(TEMPLATE_NAME, source.to_string()).map_err(ChatError::Compile)?;
        Ok(Self { env, special, end_of_turn_ids })
    }

    /// Loads the template and special tokens from tokenizer_config.json, and resolves the
    /// end-of-turn ids with tokenizer.json (and generation_config.json's eos ids, if present).
    pub fn from_checkpoint_dir(dir: &Path) -> Result<Self, ChatError> {
        let config_path = dir.join("tokenizer_config.json");
        let config = read_json(&config_path)?;
        let source = config
            .get("chat_template")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ChatError::MissingTemplate { path: config_path.clone() })?;
        let special = special_tokens(&config);
        let tokenizer = Tokenizer::from_checkpoint_dir(dir)?;
        let generation_eos = generation_eos_ids(dir)?;
        let end_of_turn_ids = end_of_turn_ids(source, &special, &tokenizer, &generation_eos);
        Self::new(source, special, end_of_turn_ids)
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// answer begins.
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool) -> Result<String, ChatError> {
        let mut ctx: BTreeMap<String, Value> =
            self.special.by_name.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str()))).collect();
        ctx.insert("messages".to_string(), Value::from_serialize(messages));
        ctx.insert("add_generation_prompt".to_string(), Value::from(add_generation_prompt));
        let template = self.env.get_template(TEMPLATE_NAME).map_err(ChatError::Render)?;
        template.render(ctx).map_err(ChatError::Render)
    }

    /// Token ids that end an answer: eos plus the template's end-of-turn tokens, sorted.
    pub fn end_of_turn_token_ids(&self) -> &[u32] {
        &self.end_of_turn_ids
    }

    /// The special token strings the template sees.
    pub fn special_tokens(&self) -> &SpecialTokens {
        &self.special
    }
}

fn raise_exception(message: String) -> Result<Value, JinjaError> {
    Err(JinjaError::new(ErrorKind::InvalidOperation, message))
}

fn read_json(path: &Path) -> Result<serde_json::Value, ChatError> {
    let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
        .map_err(|source| ChatError::Io { path: path.to_path_buf(), source })?;
    serde_json::from_slice(&bytes).map_err(|source| ChatError::Json { path: path.to_path_buf(), source })
}

/// bos/eos/unk/pad tokens of tokenizer_config.json, given as strings or AddedToken objects.
fn special_tokens(config: &serde_json::Value) -> SpecialTokens {
    let mut by_name = BTreeMap::new();
    for name in ["bos_token", "eos_token", "unk_token", "pad_token"] {
        let token = match config.get(name) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Object(obj)) => obj.get("content").and_then(|c| c.as_str()).map(str::to_string),
            _ => None,
        };
        if let Some(token) = token {
            by_name.insert(name.to_string(), token);
        }
    }
    SpecialTokens { by_name }
}

/// eos ids from generation_config.json (a number or a list); empty when the file is absent.
fn generation_eos_ids(dir: &Path) -> Result<Vec<u32>, ChatError> {
    let path = dir.join("generation_config.json");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let config = read_json(&path)?;
    let ids = match config.get("eos_token_id") {
        Some(serde_json::Value::Number(n)) => n.as_u64().into_iter().collect(),
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_u64()).collect(),
        _ => Vec::new(),
    };
    Ok(ids.into_iter().filter_map(|id| u32::try_from(id).ok()).collect())
}

fn end_of_turn_ids(source: &str, special: &SpecialTokens, tokenizer: &Tokenizer, generation_eos: &[u32]) -> Vec<u32> {
    let mut ids: BTreeSet<u32> = generation_eos.iter().copied().collect();
    if let Some(id) = special.by_name.get("eos_token").and_then(|eos| tokenizer.token_to_id(eos)) {
        ids.insert(id);
    }
    for token in END_OF_TURN_TOKENS {
        if source.contains(token) {
            ids.extend(tokenizer.token_to_id(token));
        }
    }
    ids.into_iter().collect()
}
