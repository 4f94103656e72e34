//! A checkpoint's tokenizer (tokenizer.json through the `tokenizers` crate), with errors that
//! name the file.

use std::path::{Path, PathBuf};

/// Failures loading or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// tokenizer.json is missing or cannot be parsed.
    #[error("cannot load tokenizer {path}: {message}")]
    Load {
        /// The tokenizer.json path.
        path: PathBuf,
        /// What the tokenizers crate reported.
        message: String,
    },
    /// Encoding or decoding failed.
    #[error("tokenizer {path}: {message}")]
    Run {
        /// The tokenizer.json path.
        path: PathBuf,
        /// What the tokenizers crate reported.
        message: String,
    },
}

/// Token ids with each token's byte span (start, end) in the encoded text.
pub type IdsWithOffsets = (Vec<u32>, Vec<(usize, usize)>);

/// A loaded Hugging Face tokenizer.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl Tokenizer {
    /// Loads `dir/tokenizer.json`.
    pub fn from_checkpoint_dir(dir: &Path) -> Result<Self, TokenizerError> {
        Self::from_file(&dir.join("tokenizer.json"))
    }

    /// Loads a tokenizer.json file.
    pub fn from_file(path: &Path) -> Result<Self, TokenizerError> {
        let load = |message: String| TokenizerError::Load { path: path.to_path_buf(), message };
        let bytes = crate::fsutil::read_capped(path, crate::fsutil::MAX_JSON_BYTES, crate::fsutil::Links::Follow)
            .map_err(|e| load(e.to_string()))?;
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| load(e.to_string()))?;
        Ok(Self { inner, path: path.to_path_buf() })
    }

    /// Token ids of `text`; `add_special_tokens` applies the post-processor (e.g. a leading bos).
    /// Special tokens written in the text (`<|im_start|>`) are always recognised.
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self.inner.encode(text, add_special_tokens).map_err(|e| self.run_error(e))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Token ids of `text` with each token's byte span in `text` (start, end), as the
    /// `tokenizers` crate reports them; used to find which tokens spell a name or an answer.
    pub fn encode_with_offsets(&self, text: &str, add_special_tokens: bool) -> Result<IdsWithOffsets, TokenizerError> {
        let encoding = self.inner.encode(text, add_special_tokens).map_err(|e| self.run_error(e))?;
        Ok((encoding.get_ids().to_vec(), encoding.get_offsets().to_vec()))
    }

    /// Text of `ids`; `skip_special_tokens` drops special tokens such as `<|im_end|>`.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| self.run_error(e))
    }

    /// Id of a token string (including added tokens), if the vocabulary has it.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Number of tokens including added ones.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    fn run_error(&self, err: tokenizers::Error) -> TokenizerError {
        TokenizerError::Run { path: self.path.clone(), message: err.to_string() }
    }
}
