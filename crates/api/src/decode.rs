//! Strict decoding of JSON request bodies, with errors that name the field.
//!
//! Every body is decoded through `serde_path_to_error`, so that a refusal says where it
//! is (`tx.body.payer.id: ...`). On top of that:
//!
//! - **JSON or not.** `malformed_json` is kept for bodies that are not JSON text at all
//!   (a syntax error, a truncated body). A body that is JSON but that the strict
//!   decoder refuses with what serde_json calls a syntax error is `invalid_json`, with
//!   a message that says what is wrong: a `\u` escape of a lone UTF-16 surrogate (valid
//!   JSON grammar, but no Unicode text), an `auth` object with two keys where one is
//!   expected, a number out of range.
//! - **Inside a transaction body.** A transaction's `body` is an internally tagged enum
//!   (`"type": "issue_bill"`); serde buffers it before decoding, which hides the path
//!   inside. A refusal placed at `tx.body` is located again by decoding the bill on its
//!   own (IssueBill) or by finding the one key whose removal changes the refusal (the
//!   other kinds, which have a handful of keys).
//! - **Credit codes held as text.** A unit payer's `payer.id` is a credit code kept as a
//!   string (a person's is an identity number); it is checked here, so that a
//!   malformed credit code answers the same `400 invalid_json`, naming the field,
//!   whether it is in `issuer`, `unit` or `payer.id`.
//!
//! Refinement only runs on bodies already refused, and is bounded: at most
//! [`MAX_LOCATE_ATTEMPTS`] extra decodes of one small object.

use ebill_types::{
    Bill, CheckCode, CreditCode, PayerType, Signature, SignedBill, SignedTx, TxBody,
};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::error::Category;
use serde_json::{Map, Value};

use crate::error::{ApiError, codes};

/// Most extra decodes spent locating a refusal inside a transaction body.
pub const MAX_LOCATE_ATTEMPTS: usize = 16;

/// A refusal located at a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Where, in the JSON form (`tx.body.items[2].amount`); empty for the whole body.
    pub path: String,
    /// What is wrong, without the position in the text.
    pub message: String,
}

/// A type that request bodies decode into.
pub trait RequestBody: DeserializeOwned {
    /// Locates a data error that the tracked decoder placed at `path` (where it may be
    /// only the enclosing object) in `doc`, the body decoded as a generic JSON value.
    /// `None` keeps `path` and the decoder's message.
    fn locate(_doc: &Value, _path: &str) -> Option<FieldError> {
        None
    }

    /// Rules of the decoded value that the types leave to later but that are about the
    /// format of a field (a credit code held as text).
    fn check(&self) -> Result<(), FieldError> {
        Ok(())
    }
}

/// Decodes a whole request body.
pub fn decode<T: RequestBody>(bytes: &[u8]) -> Result<T, ApiError> {
    decode_at(bytes, "")
}

/// Decodes `bytes` as the value at `prefix` of a larger body (`txs[3]`): paths in the
/// errors start with `prefix`.
pub fn decode_at<T: RequestBody>(bytes: &[u8], prefix: &str) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            return Err(refusal::<T>(bytes, prefix, &path, &e.into_inner()));
        }
    };
    // Bytes after the value: not one JSON text.
    if let Err(e) = de.end() {
        return Err(refusal::<T>(bytes, prefix, "", &e));
    }
    value.check().map_err(|f| invalid_json(prefix, &f))?;
    Ok(value)
}

/// The answer to a refused body.
fn refusal<T: RequestBody>(
    bytes: &[u8],
    prefix: &str,
    path: &str,
    e: &serde_json::Error,
) -> ApiError {
    let path = if path == "." { "" } else { path };
    match e.classify() {
        Category::Data => {
            let located = serde_json::from_slice::<Value>(bytes)
                .ok()
                .and_then(|doc| T::locate(&doc, path));
            let f = located.unwrap_or_else(|| FieldError {
                path: path.to_owned(),
                message: without_position(e),
            });
            invalid_json(prefix, &name_the_key(f))
        }
        Category::Syntax | Category::Eof | Category::Io => {
            if is_json_text(bytes) {
                invalid_json(
                    prefix,
                    &FieldError {
                        path: path.to_owned(),
                        message: explain_syntax(path, &without_position(e)),
                    },
                )
            } else {
                let at = if prefix.is_empty() {
                    String::new()
                } else {
                    format!("{prefix}: ")
                };
                ApiError::bad_request(codes::MALFORMED_JSON, format!("{at}malformed JSON: {e}"))
            }
        }
    }
}

/// True if `bytes` is one JSON text by the grammar alone (RFC 8259): serde_json skips
/// values without decoding their strings, so a lone surrogate escape passes, as does a
/// key given twice.
fn is_json_text(bytes: &[u8]) -> bool {
    serde_json::from_slice::<IgnoredAny>(bytes).is_ok()
}

/// serde_json's message without " at line L column C".
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(t) => t.to_owned(),
        None => text,
    }
}

/// Says in words what serde_json's "syntax" refusals of a body that is JSON text mean.
/// The prefixes are serde_json's messages (pinned by a test).
fn explain_syntax(path: &str, message: &str) -> String {
    let starts = |p: &str| message.starts_with(p);
    if starts("lone leading surrogate in hex escape")
        || starts("unexpected end of hex escape")
        || starts("invalid unicode code point")
    {
        "the string holds a \\u escape of a lone UTF-16 surrogate (U+D800 to U+DFFF \
         without its pair), which is no Unicode character"
            .to_owned()
    } else if starts("expected value") {
        // In a body that is JSON text, only an externally tagged enum answers this:
        // something else than an object with exactly one key.
        if path == "auth" || path.ends_with(".auth") {
            "must be an object with exactly one key, \"unit\" or \"regulators\"".to_owned()
        } else {
            "must be an object with exactly one key".to_owned()
        }
    } else if starts("number out of range") {
        "number out of range".to_owned()
    } else if starts("recursion limit exceeded") {
        "nested too deeply".to_owned()
    } else {
        message.to_owned()
    }
}

/// Puts the key of "duplicate field `x`" into the path.
fn name_the_key(f: FieldError) -> FieldError {
    if let Some(rest) = f.message.strip_prefix("duplicate field `")
        && let Some(key) = rest.strip_suffix('`')
    {
        return FieldError {
            path: join(&f.path, key),
            message: "the key appears more than once".to_owned(),
        };
    }
    f
}

/// `a.b` from `a` and `b`; `[3]` segments join without a dot.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_owned(),
        (false, true) => a.to_owned(),
        (false, false) if b.starts_with('[') => format!("{a}{b}"),
        (false, false) => format!("{a}.{b}"),
    }
}

/// 400 `invalid_json` naming the field.
fn invalid_json(prefix: &str, f: &FieldError) -> ApiError {
    let path = join(prefix, &f.path);
    let path = if path.is_empty() {
        "the request body"
    } else {
        &path
    };
    ApiError::bad_request(codes::INVALID_JSON, format!("{path}: {}", f.message))
}

/// Decodes `value` as `T` with path tracking; the refusal, if any, at `base` + its path.
fn tracked<T: DeserializeOwned>(value: Value, base: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { "" } else { &path };
        name_the_key(FieldError {
            path: join(base, path),
            message: e.into_inner().to_string(),
        })
    })
}

/// Locates a refusal inside the transaction body at `path` of `doc`.
fn locate_in_body(doc: &Value, path: &str) -> Option<FieldError> {
    let body = path
        .split('.')
        .try_fold(doc, |v, key| v.as_object()?.get(key))?
        .as_object()?;
    if body.get("type").and_then(Value::as_str) == Some("issue_bill") {
        let mut fields = body.clone();
        fields.remove("type");
        return tracked::<Bill>(Value::Object(fields), path).err();
    }
    locate_by_removal(body, path)
}

/// The key of `body` (a transaction body of a kind with a few flat fields) whose removal
/// changes the refusal: the first field the decoder refused.
fn locate_by_removal(body: &Map<String, Value>, path: &str) -> Option<FieldError> {
    let original = serde_json::from_value::<TxBody>(Value::Object(body.clone()))
        .err()?
        .to_string();
    let keys = body.keys().filter(|k| k.as_str() != "type");
    for key in keys.take(MAX_LOCATE_ATTEMPTS) {
        let mut without = body.clone();
        without.remove(key);
        let changed = match serde_json::from_value::<TxBody>(Value::Object(without)) {
            Ok(_) => true,
            Err(e) => e.to_string() != original,
        };
        if changed {
            return Some(FieldError {
                path: join(path, key),
                message: original,
            });
        }
    }
    None
}

/// A unit payer's id is a credit code.
fn check_payer_id(bill: &Bill, base: &str) -> Result<(), FieldError> {
    if bill.payer.payer_type != PayerType::Unit {
        return Ok(());
    }
    CreditCode::parse(&bill.payer.id)
        .map(|_| ())
        .map_err(|e| FieldError {
            path: join(base, "payer.id"),
            message: e.to_string(),
        })
}

impl RequestBody for SignedTx {
    fn locate(doc: &Value, path: &str) -> Option<FieldError> {
        if path == "tx.body" {
            locate_in_body(doc, path)
        } else {
            None
        }
    }

    fn check(&self) -> Result<(), FieldError> {
        match &self.tx.body {
            TxBody::IssueBill(bill) => check_payer_id(bill, "tx.body"),
            _ => Ok(()),
        }
    }
}

impl RequestBody for SignedBill {
    /// A signed bill file is the bill's object plus `signature` and `check_code`; its
    /// decoder takes the object apart, so refusals arrive without a path.
    fn locate(doc: &Value, path: &str) -> Option<FieldError> {
        if !path.is_empty() {
            return None;
        }
        let mut fields = doc.as_object()?.clone();
        if let Some(v) = fields.remove("signature")
            && let Err(f) = tracked::<Signature>(v, "signature")
        {
            return Some(f);
        }
        if let Some(v) = fields.remove("check_code")
            && let Err(f) = tracked::<CheckCode>(v, "check_code")
        {
            return Some(f);
        }
        tracked::<Bill>(Value::Object(fields), "").err()
    }

    fn check(&self) -> Result<(), FieldError> {
        check_payer_id(&self.bill, "")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The serde_json messages that [`explain_syntax`] reads: a change in serde_json
    /// must fail here, not quietly turn clear answers back into serde's words.
    #[test]
    fn serde_json_messages_are_the_ones_explained() {
        let msg = |s: &str| {
            let e = serde_json::from_str::<String>(s).unwrap_err();
            without_position(&e)
        };
        assert_eq!(msg(r#""\ud800""#), "unexpected end of hex escape");
        assert_eq!(msg(r#""\udc00""#), "lone leading surrogate in hex escape");
        assert_eq!(
            msg(r#""\ud800\u0041""#),
            "lone leading surrogate in hex escape"
        );
        let e = serde_json::from_str::<u64>("1e400").unwrap_err();
        assert_eq!(without_position(&e), "number out of range");
        #[derive(serde::Deserialize, Debug)]
        #[serde(rename_all = "snake_case")]
        enum E {
            A(#[allow(dead_code)] u8),
        }
        let e = serde_json::from_str::<E>(r#"{"a": 1, "a": 2}"#).unwrap_err();
        assert_eq!(without_position(&e), "expected value");
        assert!(is_json_text(br#"{"a": "\ud800", "a": 2}"#));
    }

    #[test]
    fn paths_join() {
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", ""), "a");
        assert_eq!(join("txs[2]", "tx.body"), "txs[2].tx.body");
        assert_eq!(join("items", "[2]"), "items[2]");
    }
}
