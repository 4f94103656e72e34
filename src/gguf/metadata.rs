//! Typed, error-reporting access to a GGUF file's key/value metadata.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;

use super::GgufError;

/// Read-only view of GGUF metadata whose getters name the key in every error.
pub struct Metadata<'a> {
    map: &'a HashMap<String, Value>,
}

impl<'a> Metadata<'a> {
    /// Wraps the metadata map read by candle's GGUF reader.
    pub fn new(map: &'a HashMap<String, Value>) -> Self {
        Self { map }
    }

    /// The value under `key`, or `MissingKey` naming it.
    pub fn get(&self, key: &str) -> Result<&'a Value, GgufError> {
        self.map.get(key).ok_or_else(|| GgufError::MissingKey { key: key.to_string() })
    }

    /// Whether the file has `key`.
    pub fn contains(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// A required non-negative integer, whatever integer type the writer chose.
    pub fn uint(&self, key: &str) -> Result<u64, GgufError> {
        value_as_uint(self.get(key)?).ok_or_else(|| wrong_type(key, "a non-negative integer", self.map[key].clone()))
    }

    /// An optional non-negative integer.
    pub fn opt_uint(&self, key: &str) -> Result<Option<u64>, GgufError> {
        if self.contains(key) {
            self.uint(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A required integer that must fit in `usize` and be positive (a dimension or count).
    pub fn dim(&self, key: &str) -> Result<usize, GgufError> {
        let value = self.uint(key)?;
        match usize::try_from(value) {
            Ok(v) if v > 0 => Ok(v),
            _ => Err(GgufError::InvalidMetadata {
                key: key.to_string(),
                reason: format!("expected a positive size, found {value}"),
            }),
        }
    }

    /// An optional positive dimension.
    pub fn opt_dim(&self, key: &str) -> Result<Option<usize>, GgufError> {
        if self.contains(key) {
            self.dim(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional token id (u32).
    pub fn opt_token_id(&self, key: &str) -> Result<Option<u32>, GgufError> {
        match self.opt_uint(key)? {
            None => Ok(None),
            Some(v) => u32::try_from(v).map(Some).map_err(|_| GgufError::InvalidMetadata {
                key: key.to_string(),
                reason: format!("token id {v} does not fit in 32 bits"),
            }),
        }
    }

    /// A required float (f32 or f64 in the file), returned as f64.
    pub fn float(&self, key: &str) -> Result<f64, GgufError> {
        match self.get(key)? {
            // Printing the f32 and parsing it back gives the decimal the writer meant (1e-5, not 9.99999974e-6).
            Value::F32(v) => Ok(v.to_string().parse::<f64>().unwrap_or(f64::from(*v))),
            Value::F64(v) => Ok(*v),
            other => Err(wrong_type(key, "a float", other.clone())),
        }
    }

    /// An optional float.
    pub fn opt_float(&self, key: &str) -> Result<Option<f64>, GgufError> {
        if self.contains(key) {
            self.float(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An optional boolean.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(key, "a boolean", other.clone())),
        }
    }

    /// A required string.
    pub fn string(&self, key: &str) -> Result<&'a str, GgufError> {
        match self.get(key)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(key, "a string", other.clone())),
        }
    }

    /// An optional string.
    pub fn opt_string(&self, key: &str) -> Result<Option<&'a str>, GgufError> {
        if self.contains(key) {
            self.string(key).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A required array of strings (token lists, merges).
    pub fn string_array(&self, key: &str) -> Result<Vec<&'a str>, GgufError> {
        let items = self.array(key)?;
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.as_str()),
                other => Err(wrong_type(key, "an array of strings", other.clone())),
            })
            .collect()
    }

    /// An optional array of integers (token types), as i64.
    pub fn opt_int_array(&self, key: &str) -> Result<Option<Vec<i64>>, GgufError> {
        if !self.contains(key) {
            return Ok(None);
        }
        let items = self.array(key)?;
        items
            .iter()
            .map(|item| value_as_int(item).ok_or_else(|| wrong_type(key, "an array of integers", item.clone())))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn array(&self, key: &str) -> Result<&'a Vec<Value>, GgufError> {
        match self.get(key)? {
            Value::Array(items) => Ok(items),
            other => Err(wrong_type(key, "an array", other.clone())),
        }
    }
}

fn value_as_int(value: &Value) -> Option<i64> {
    match *value {
        Value::U8(v) => Some(i64::from(v)),
        Value::I8(v) => Some(i64::from(v)),
        Value::U16(v) => Some(i64::from(v)),
        Value::I16(v) => Some(i64::from(v)),
        Value::U32(v) => Some(i64::from(v)),
        Value::I32(v) => Some(i64::from(v)),
        Value::U64(v) => i64::try_from(v).ok(),
        Value::I64(v) => Some(v),
        _ => None,
    }
}

fn value_as_uint(value: &Value) -> Option<u64> {
    match *value {
        Value::U64(v) => Some(v),
        _ => value_as_int(value).and_then(|v| u64::try_from(v).ok()),
    }
}

fn wrong_type(key: &str, expected: &str, found: Value) -> GgufError {
    GgufError::WrongKeyType { key: key.to_string(), expected: expected.to_string(), found: describe(&found) }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(s) => format!("string {s:?}"),
        Value::Array(items) => format!("array of {} items", items.len()),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_of_any_width_read_as_uint_and_negative_ones_are_rejected() {
        let mut map = HashMap::new();
        map.insert("a".to_string(), Value::U32(7));
        map.insert("b".to_string(), Value::I64(9));
        map.insert("c".to_string(), Value::I32(-1));
        let meta = Metadata::new(&map);
        assert_eq!(meta.uint("a").unwrap(), 7);
        assert_eq!(meta.uint("b").unwrap(), 9);
        let err = meta.uint("c").unwrap_err().to_string();
        assert!(err.contains("`c`") && err.contains("non-negative"), "{err}");
    }

    #[test]
    fn f32_floats_keep_their_short_decimal() {
        let mut map = HashMap::new();
        map.insert("eps".to_string(), Value::F32(1e-5));
        assert_eq!(Metadata::new(&map).float("eps").unwrap(), 1e-5_f64);
    }

    #[test]
    fn missing_key_is_named() {
        let map = HashMap::new();
        let err = Metadata::new(&map).string("tokenizer.ggml.model").unwrap_err().to_string();
        assert!(err.contains("tokenizer.ggml.model"), "{err}");
    }
}
