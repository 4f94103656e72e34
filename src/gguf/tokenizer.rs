//! tokenizer.json and tokenizer_config.json from a GGUF's `tokenizer.ggml.*` metadata, built
//! the way Hugging Face's GGUF conversion builds them for byte-level BPE ("gpt2") vocabularies.

use serde_json::{json, Map, Value};

use super::metadata::Metadata;
use super::GgufError;

/// llama.cpp token type of control tokens (`<|im_start|>`, `<|eot_id|>`).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// llama.cpp token type of user-defined tokens (always matched whole, not special).
const TOKEN_TYPE_USER_DEFINED: i64 = 4;

/// The vocabulary read from the GGUF, with the special token ids it names.
pub struct GgufVocab<'a> {
    /// Token strings by id (byte-level encoded).
    pub tokens: Vec<&'a str>,
    /// BPE merges, `"left right"`, highest priority first.
    pub merges: Vec<&'a str>,
    /// llama.cpp token types by id, when the file has them.
    pub token_types: Option<Vec<i64>>,
    /// Begin-of-sequence token id.
    pub bos: Option<u32>,
    /// End-of-sequence token id.
    pub eos: Option<u32>,
    /// Unknown token id.
    pub unk: Option<u32>,
    /// Padding token id.
    pub pad: Option<u32>,
    /// Whether encoding prepends bos (`tokenizer.ggml.add_bos_token`, default true like llama.cpp).
    pub add_bos: bool,
    /// Whether encoding appends eos (`tokenizer.ggml.add_eos_token`, default false).
    pub add_eos: bool,
}

/// Reads the vocabulary; only byte-level BPE (`tokenizer.ggml.model = "gpt2"`) is supported.
pub fn read_vocab<'a>(meta: &Metadata<'a>) -> Result<GgufVocab<'a>, GgufError> {
    let model = meta.string("tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(GgufError::UnsupportedTokenizer { found: model.to_string() });
    }
    let tokens = meta.string_array("tokenizer.ggml.tokens")?;
    let token_types = meta.opt_int_array("tokenizer.ggml.token_type")?;
    if let Some(types) = &token_types {
        if types.len() != tokens.len() {
            return Err(GgufError::InvalidMetadata {
                key: "tokenizer.ggml.token_type".to_string(),
                reason: format!("has {} entries for {} tokens", types.len(), tokens.len()),
            });
        }
    }
    let vocab = GgufVocab {
        merges: meta.string_array("tokenizer.ggml.merges")?,
        token_types,
        bos: checked_id(meta, "tokenizer.ggml.bos_token_id", tokens.len())?,
        eos: checked_id(meta, "tokenizer.ggml.eos_token_id", tokens.len())?,
        unk: checked_id(meta, "tokenizer.ggml.unknown_token_id", tokens.len())?,
        pad: checked_id(meta, "tokenizer.ggml.padding_token_id", tokens.len())?,
        add_bos: meta.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true),
        add_eos: meta.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false),
        tokens,
    };
    Ok(vocab)
}

fn checked_id(meta: &Metadata, key: &str, vocab_len: usize) -> Result<Option<u32>, GgufError> {
    match meta.opt_token_id(key)? {
        Some(id) if id as usize >= vocab_len => Err(GgufError::InvalidMetadata {
            key: key.to_string(),
            reason: format!("token id {id} is outside the {vocab_len}-token vocabulary"),
        }),
        other => Ok(other),
    }
}

impl GgufVocab<'_> {
    fn token(&self, id: Option<u32>) -> Option<&str> {
        id.map(|id| self.tokens[id as usize])
    }

    /// tokenizer.json: BPE model, control tokens as special added tokens, byte-level
    /// pre-tokenizer and the decoder sequence of Hugging Face's GGUF converter.
    pub fn tokenizer_json(&self) -> Value {
        let vocab: Map<String, Value> =
            self.tokens.iter().enumerate().map(|(id, token)| (token.to_string(), Value::from(id))).collect();
        json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": self.added_tokens(),
            "normalizer": {"type": "Sequence", "normalizers": []},
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
            "post_processor": self.post_processor(),
            "decoder": {"type": "Sequence", "decoders": [
                {"type": "ByteFallback"},
                {"type": "Fuse"},
                {"type": "Replace", "pattern": {"String": "\u{2581}"}, "content": " "},
                {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}
            ]},
            "model": {
                "type": "BPE",
                "dropout": null,
                "unk_token": self.token(self.unk),
                "continuing_subword_prefix": null,
                "end_of_word_suffix": null,
                "fuse_unk": true,
                "byte_fallback": true,
                "ignore_merges": false,
                "vocab": vocab,
                "merges": self.merges,
            }
        })
    }

    fn added_tokens(&self) -> Vec<Value> {
        let Some(types) = &self.token_types else {
            return Vec::new();
        };
        types
            .iter()
            .enumerate()
            .filter(|(_, t)| **t == TOKEN_TYPE_CONTROL || **t == TOKEN_TYPE_USER_DEFINED)
            .map(|(id, t)| {
                json!({
                    "id": id,
                    "content": self.tokens[id],
                    "single_word": false,
                    "lstrip": false,
                    "rstrip": false,
                    "normalized": false,
                    "special": *t == TOKEN_TYPE_CONTROL,
                })
            })
            .collect()
    }

    /// Hugging Face Llama's template: `[bos] $A [eos]` and `[bos] $A [eos] [bos] $B [eos]`,
    /// each special token present only when the GGUF asks for it.
    fn post_processor(&self) -> Value {
        let bos = self.bos.filter(|_| self.add_bos);
        let eos = self.eos.filter(|_| self.add_eos);
        let special =
            |id: u32, type_id: u32| json!({"SpecialToken": {"id": self.tokens[id as usize], "type_id": type_id}});
        let piece = |sequence: &str, type_id: u32| -> Vec<Value> {
            let body = json!({"Sequence": {"id": sequence, "type_id": type_id}});
            bos.map(|id| special(id, type_id))
                .into_iter()
                .chain([body])
                .chain(eos.map(|id| special(id, type_id)))
                .collect()
        };
        let special_tokens: Map<String, Value> = [bos, eos]
            .into_iter()
            .flatten()
            .map(|id| {
                let token = self.tokens[id as usize];
                (token.to_string(), json!({"id": token, "ids": [id], "tokens": [token]}))
            })
            .collect();
        let pair = [piece("A", 0), piece("B", 1)].concat();
        json!({
            "type": "TemplateProcessing",
            "single": piece("A", 0),
            "pair": pair,
            "special_tokens": special_tokens,
        })
    }

    /// tokenizer_config.json: special tokens by name, bos/eos flags and the chat template.
    pub fn tokenizer_config(&self, chat_template: Option<&str>, model_max_length: usize) -> Value {
        let mut config = Map::new();
        config.insert("add_bos_token".to_string(), Value::Bool(self.add_bos));
        config.insert("add_eos_token".to_string(), Value::Bool(self.add_eos));
        for (name, id) in
            [("bos_token", self.bos), ("eos_token", self.eos), ("unk_token", self.unk), ("pad_token", self.pad)]
        {
            if let Some(token) = self.token(id) {
                config.insert(name.to_string(), Value::from(token));
            }
        }
        if let Some(template) = chat_template {
            config.insert("chat_template".to_string(), Value::from(template));
        }
        config.insert("clean_up_tokenization_spaces".to_string(), Value::Bool(false));
        config.insert("model_max_length".to_string(), Value::from(model_max_length));
        config.insert("tokenizer_class".to_string(), Value::from("PreTrainedTokenizerFast"));
        Value::Object(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vocab(add_bos: bool, add_eos: bool) -> GgufVocab<'static> {
        GgufVocab {
            tokens: vec!["<s>", "</s>", "a"],
            merges: vec![],
            token_types: Some(vec![3, 3, 1]),
            bos: Some(0),
            eos: Some(1),
            unk: None,
            pad: None,
            add_bos,
            add_eos,
        }
    }

    #[test]
    fn post_processor_adds_only_the_requested_special_tokens() {
        let none = vocab(false, false).post_processor();
        assert_eq!(none["single"], json!([{"Sequence": {"id": "A", "type_id": 0}}]));
        assert_eq!(none["special_tokens"], json!({}));
        let both = vocab(true, true).post_processor();
        let single: Vec<String> = both["single"].as_array().unwrap().iter().map(|v| v.to_string()).collect();
        assert_eq!(single.len(), 3);
        assert!(single[0].contains("<s>") && single[1].contains("\"A\"") && single[2].contains("</s>"));
        assert_eq!(both["pair"].as_array().unwrap().len(), 6);
        assert_eq!(both["pair"][3], json!({"SpecialToken": {"id": "<s>", "type_id": 1}}));
        assert_eq!(both["special_tokens"]["</s>"]["ids"], json!([1]));
    }

    #[test]
    fn control_tokens_are_special_added_tokens() {
        let added = vocab(true, false).added_tokens();
        assert_eq!(added.len(), 2);
        assert_eq!(added[1]["content"], "</s>");
        assert_eq!(added[1]["special"], true);
        assert_eq!(added[1]["normalized"], false);
    }
}
