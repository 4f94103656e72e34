//! A checkpoint ready to answer chat prompts: the model, its tokenizer, its chat template
//! and the tokens that end an answer.

use std::path::Path;

use super::{
    generate_keyed, Completion, GenerateOptions, Llama, LoadOptions, ModelError, SamplingParams, WeightSource,
};
use crate::chat::{ChatError, ChatTemplate, Message};
use crate::checkpoint::Checkpoint;
use crate::progress::Progress;
use crate::tokenizer::{Tokenizer, TokenizerError};

/// Loading or prompting a chat session failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The model could not be loaded or run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The chat template could not be loaded or rendered.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// The tokenizer could not be loaded or used.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The prompt tokenizes to nothing.
    #[error("the prompt is empty after templating and tokenization")]
    EmptyPrompt,
}

/// How answers are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingSettings {
    /// Answers per prompt.
    pub samples: usize,
    /// Longest answer in tokens.
    pub max_new_tokens: usize,
    /// Sampling temperature (0: greedy).
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Seed of the per-sample random streams.
    pub seed: u64,
    /// Upper bound on decoding rows (prompts x samples) per batch.
    pub max_rows: usize,
}

/// A loaded checkpoint with its tokenizer and chat template.
pub struct ChatSession {
    model: Llama,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
}

impl ChatSession {
    /// Loads the model, tokenizer and chat template of a checkpoint directory.
    pub fn load(dir: &Path, opts: LoadOptions) -> Result<Self, SessionError> {
        let ckpt = Checkpoint::open(dir).map_err(ModelError::from)?;
        Self::load_from(&ckpt, &ckpt, opts)
    }

    /// Loads with weights from `weights` (e.g. a mask applied in memory) and everything
    /// else (config, tokenizer, template) from the opened checkpoint.
    pub fn load_from(ckpt: &Checkpoint, weights: &dyn WeightSource, opts: LoadOptions) -> Result<Self, SessionError> {
        let cfg = crate::model::config_from_json(ckpt.config(), ckpt.dir())?;
        let model = Llama::load(weights, cfg, opts)?;
        let tokenizer = Tokenizer::from_checkpoint_dir(ckpt.dir())?;
        let template = ChatTemplate::from_checkpoint_dir(ckpt.dir())?;
        let mut stop_tokens: Vec<u32> = model.config().eos_token_ids.clone();
        stop_tokens.extend_from_slice(template.end_of_turn_token_ids());
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        Ok(ChatSession { model, tokenizer, template, stop_tokens })
    }

    /// The model.
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The chat template.
    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// Tokens that end an answer: config.json's eos ids and the template's end-of-turn ids.
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// The text the model sees for a single user turn (template, generation prompt).
    pub fn render_user_prompt(&self, text: &str) -> Result<String, SessionError> {
        Ok(self.template.render(&[Message::user(text)], true)?)
    }

    /// The token ids of a single user turn, ready for generation.
    pub fn encode_user_prompt(&self, text: &str) -> Result<Vec<u32>, SessionError> {
        let ids = self.tokenizer.encode(&self.render_user_prompt(text)?, false)?;
        if ids.is_empty() {
            return Err(SessionError::EmptyPrompt);
        }
        Ok(ids)
    }

    /// Samples answers to already encoded prompts; sample s of `prompts[i]` uses the random
    /// stream keyed by (seed, `keys[i]`, s).
    pub fn sample(
        &self,
        prompts: &[Vec<u32>],
        keys: &[usize],
        settings: &SamplingSettings,
        progress: &dyn Progress,
    ) -> Result<Vec<Vec<Completion>>, SessionError> {
        let opts = GenerateOptions {
            samples: settings.samples,
            max_new_tokens: settings.max_new_tokens,
            params: SamplingParams { temperature: settings.temperature, top_p: settings.top_p },
            seed: settings.seed,
            stop_tokens: self.stop_tokens.clone(),
            pad_id: 0,
            max_rows: settings.max_rows,
        };
        Ok(generate_keyed(&self.model, prompts, keys, &opts, progress)?)
    }

    /// The text of an answer, special tokens dropped.
    pub fn decode(&self, tokens: &[u32]) -> Result<String, SessionError> {
        Ok(self.tokenizer.decode(tokens, true)?)
    }
}
