//! The `tojson` filter as Hugging Face defines it for chat templates: Python's `json.dumps`
//! (", " and ": " separators, no HTML escaping, non-ASCII kept unless `ensure_ascii`).

use std::io;

use minijinja::value::Kwargs;
use minijinja::{Error, ErrorKind, Value};
use serde::Serialize;

/// `value | tojson(indent=None, sort_keys=False, ensure_ascii=False)` with Python's output.
pub fn tojson(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    kwargs.assert_all_used()?;
    let text = if sort_keys.unwrap_or(false) {
        let sorted = sort_object_keys(serde_json::to_value(value).map_err(json_error)?);
        write_json(&sorted, indent)
    } else {
        write_json(value, indent)
    }?;
    Ok(Value::from(if ensure_ascii.unwrap_or(false) { escape_non_ascii(&text) } else { text }))
}

fn write_json<T: Serialize>(value: &T, indent: Option<usize>) -> Result<String, Error> {
    let mut out = Vec::new();
    match indent {
        Some(width) => {
            let spaces = " ".repeat(width);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
            value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, formatter))
        }
        None => value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, PythonSeparators)),
    }
    .map_err(json_error)?;
    String::from_utf8(out)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("tojson produced invalid UTF-8: {e}")))
}

fn json_error(err: serde_json::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, "cannot serialize to JSON").with_source(err)
}

/// Objects rebuilt with keys in sorted order, recursively.
fn sort_object_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sort_object_keys(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sort_object_keys).collect()),
        other => other,
    }
}

/// Python's `ensure_ascii=True`: every non-ASCII character as `\uXXXX` UTF-16 units.
fn escape_non_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0u16; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

/// serde_json formatter with Python's default compact separators `", "` and `": "`.
struct PythonSeparators;

impl serde_json::ser::Formatter for PythonSeparators {
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}
