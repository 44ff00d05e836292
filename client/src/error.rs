//! The client's errors: a stable machine-readable code and a human message, printed as
//! `{"error": {"code": "...", "message": "..."}}` with `--json`.

use thiserror::Error;

/// An error with a stable code. Codes of the node's API are passed through unchanged
/// (`bill_exists`, `already_reimbursed`, ...); the client's own are `usage`,
/// `invalid_argument`, `invalid_input`, `invalid_key_file`, `key_mismatch`,
/// `no_passphrase` (a sealed key file, no passphrase flag and no terminal),
/// `invalid_passphrase`, `wrong_passphrase` (or a damaged sealed file), `io`,
/// `file_exists`, `node_unreachable`, `bad_answer`, `not_authentic`, `not_final`, and
/// the proof links of `verify-proof` (`merkle_path`, `certificate`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct CliError {
    /// Stable machine-readable code.
    pub code: String,
    /// Human message.
    pub message: String,
}

impl CliError {
    /// An error with `code` and `message`.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }

    /// `io`: a file could not be read or written.
    pub fn io(what: &std::path::Path, e: &std::io::Error) -> Self {
        Self::new("io", format!("{}: {e}", what.display()))
    }

    /// `invalid_argument`: a command-line value is malformed.
    pub fn argument(message: impl Into<String>) -> Self {
        Self::new("invalid_argument", message)
    }

    /// The JSON form: `{"error": {"code", "message"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code, "message": self.message}})
    }
}
