//! The key file format: `{"type": "ebill-key/v1", "public_key": hex, "seed": hex,
//! "credit_code": optional, "role": optional}`. Parsing checks that the public key is the
//! seed's. No I/O here: the client and the node read and write the files (mode 0600).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::credit_code::CreditCode;
use crate::hexfmt;
use crate::keys::{Keypair, PublicKey};

/// The `type` value of a key file.
pub const KEY_FILE_TYPE: &str = "ebill-key/v1";

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyFileError {
    /// Not JSON of the right shape.
    #[error("not an ebill key file: {0}")]
    Format(String),
    /// `type` is not `ebill-key/v1`.
    #[error("key file type is {0:?}, expected {KEY_FILE_TYPE:?}")]
    WrongType(String),
    /// The public key is not the seed's.
    #[error("public key {given} does not belong to the seed (that would be {derived})")]
    KeyMismatch {
        /// Written in the file.
        given: PublicKey,
        /// Derived from the seed.
        derived: PublicKey,
    },
}

/// A key file's contents.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// Always `ebill-key/v1`.
    #[serde(rename = "type")]
    pub file_type: String,
    /// The public key.
    pub public_key: PublicKey,
    /// The 32-byte secret seed, hex.
    #[serde(with = "hexfmt::serde_fixed")]
    pub seed: [u8; 32],
    /// The unit this key signs for, if it is a unit's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credit_code: Option<CreditCode>,
    /// What the key is for (`issuer`, `reimburser`, `regulator`, `validator`, `observer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFile")
            .field("public_key", &self.public_key)
            .field("credit_code", &self.credit_code)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl KeyFile {
    /// The file for `key`.
    pub fn new(key: &Keypair, credit_code: Option<CreditCode>, role: Option<&str>) -> Self {
        Self {
            file_type: KEY_FILE_TYPE.to_owned(),
            public_key: key.public(),
            seed: key.seed(),
            credit_code,
            role: role.map(str::to_owned),
        }
    }

    /// Parses JSON text and checks it.
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        let f: KeyFile =
            serde_json::from_str(text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        f.keypair()?;
        Ok(f)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a key file always serialises: {e}"))
    }

    /// The key pair, after checking the type and that the public key is the seed's.
    pub fn keypair(&self) -> Result<Keypair, KeyFileError> {
        if self.file_type != KEY_FILE_TYPE {
            return Err(KeyFileError::WrongType(self.file_type.clone()));
        }
        let key = Keypair::from_seed(self.seed);
        if key.public() != self.public_key {
            return Err(KeyFileError::KeyMismatch {
                given: self.public_key,
                derived: key.public(),
            });
        }
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_foreign_public_key() {
        let key = Keypair::from_seed([3; 32]);
        let f = KeyFile::new(&key, None, Some("validator"));
        let parsed = KeyFile::from_json(&f.to_json()).map(|f| f.public_key);
        assert_eq!(parsed, Ok(key.public()));
        let mut bad = f.clone();
        bad.public_key = Keypair::from_seed([4; 32]).public();
        assert!(matches!(
            KeyFile::from_json(&bad.to_json()),
            Err(KeyFileError::KeyMismatch { .. })
        ));
        assert!(!format!("{f:?}").contains("seed: ["));
    }
}
