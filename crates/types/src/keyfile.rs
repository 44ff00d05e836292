//! The key file formats. No I/O, no clock, no randomness here: the client and the node
//! read and write the files (mode 0600), and whoever seals a key passes the salt and the
//! nonce in.
//!
//! # Plaintext: `ebill-key/v1`
//!
//! ```json
//! {"type": "ebill-key/v1", "public_key": hex32, "seed": hex32,
//!  "credit_code": optional, "role": optional}
//! ```
//!
//! Parsing checks that the public key is the seed's. The node reads this form only.
//!
//! # Sealed with a passphrase: `ebill-key-sealed/v1`
//!
//! ```json
//! {"type": "ebill-key-sealed/v1",
//!  "public_key": hex32, "credit_code": optional, "role": optional,
//!  "kdf": {"alg": "argon2id", "m_kib": 65536, "t": 3, "p": 4, "salt": hex16},
//!  "aead": {"alg": "xchacha20poly1305", "nonce": hex24},
//!  "ciphertext": hex48}
//! ```
//!
//! Every `hexN` is exactly `N` bytes as `2N` lowercase hex digits; every object refuses
//! unknown fields; `role` is at most [`MAX_ROLE_BYTES`] bytes of UTF-8.
//!
//! **Key.** The 32-byte AEAD key is Argon2id (RFC 9106, version 0x13) with password =
//! the passphrase's UTF-8 bytes exactly as typed (no trimming, no Unicode normalisation),
//! salt = the 16 `kdf.salt` bytes, memory `m_kib` KiB, `t` passes, `p` lanes, no secret
//! value, no Argon2 associated data, tag length 32.
//!
//! **Associated data** (authenticated, not encrypted) is the canonical encoding of
//! [`crate::codec`] (big-endian integers; text as a `u32` big-endian byte length and the
//! UTF-8 bytes; an optional value as a `0` byte, or a `1` byte and the value) of:
//!
//! | field                            | bytes                     |
//! |----------------------------------|---------------------------|
//! | domain `"ebill-key-sealed/v1"`   | text (4 + 19)             |
//! | `public_key`                     | 32                        |
//! | `credit_code`                    | optional text (18 chars)  |
//! | `role`                           | optional text             |
//! | `"argon2id"`                     | text (4 + 8)              |
//! | `m_kib`, `t`, `p`                | `u32` each                |
//! | `kdf.salt`                       | 16                        |
//! | `"xchacha20poly1305"`            | text (4 + 17)             |
//! | `aead.nonce`                     | 24                        |
//!
//! so nobody can swap the public key, the credit code or the role of a sealed file (nor
//! its parameters) without the opening failing.
//!
//! **Ciphertext.** XChaCha20-Poly1305 (the extended-nonce variant of RFC 8439) with that
//! key, the 24-byte `aead.nonce` and that associated data, over the 32-byte ed25519 seed:
//! 32 bytes of encrypted seed followed by the 16-byte Poly1305 tag. After decryption the
//! seed's public key must equal `public_key`.
//!
//! A reader refuses, before allocating or deriving anything, Argon2 parameters outside
//! [`KdfCost::check`]'s bounds (at most 1 GiB of memory, 32 passes, 16 lanes, and 4 GiB
//! of memory × passes), so that a file cannot make its reader spend unbounded memory or
//! time. A wrong passphrase and a damaged file cannot be told apart: both fail the tag.

mod sealed;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::credit_code::CreditCode;
use crate::hexfmt;
use crate::keys::{Keypair, PublicKey};

pub use sealed::{
    AeadAlg, AeadSpec, KdfAlg, KdfCost, KdfSpec, MAX_ROLE_BYTES, NONCE_BYTES, SALT_BYTES,
    SEALED_CIPHERTEXT_BYTES, SEALED_KEY_FILE_TYPE, SealedKeyFile,
};

/// The `type` value of a plaintext key file.
pub const KEY_FILE_TYPE: &str = "ebill-key/v1";

/// Why a key file was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyFileError {
    /// Not JSON of the right shape.
    #[error("not an ebill key file: {0}")]
    Format(String),
    /// `type` is not the one of the form being read.
    #[error("key file type is {found:?}, expected {expected:?}")]
    WrongType {
        /// Written in the file.
        found: String,
        /// The type of the form being read.
        expected: &'static str,
    },
    /// `type` is neither of the known forms.
    #[error(
        "key file type is {0:?}, expected {KEY_FILE_TYPE:?} (plaintext) or \
         {SEALED_KEY_FILE_TYPE:?} (sealed with a passphrase)"
    )]
    UnknownType(String),
    /// A sealed file where only plaintext ones are read (the node).
    #[error(
        "the key file is sealed with a passphrase ({SEALED_KEY_FILE_TYPE:?}); only a \
         plaintext key file ({KEY_FILE_TYPE:?}) can be used here"
    )]
    Sealed,
    /// The public key is not the seed's.
    #[error("public key {given} does not belong to the seed (that would be {derived})")]
    KeyMismatch {
        /// Written in the file.
        given: PublicKey,
        /// Derived from the seed.
        derived: PublicKey,
    },
    /// A sealed file's Argon2 parameter is outside what this version accepts; nothing was
    /// derived.
    #[error("the key file's argon2id {what} is {value}, outside the accepted {min}..={max}")]
    KdfOutOfBounds {
        /// Which parameter, with its unit.
        what: &'static str,
        /// Written in the file.
        value: u64,
        /// Least accepted.
        min: u64,
        /// Most accepted.
        max: u64,
    },
    /// The role is longer than [`MAX_ROLE_BYTES`].
    #[error("role is {0} bytes, over the limit of {MAX_ROLE_BYTES}")]
    RoleTooLong(usize),
    /// The Argon2 implementation refused its input (after the bounds checks this means
    /// it could not allocate its memory).
    #[error("argon2id failed: {0}")]
    Kdf(String),
    /// The authentication tag did not verify: the passphrase is wrong, or a byte of the
    /// file was changed.
    #[error("wrong passphrase or damaged file")]
    WrongPassphraseOrDamaged,
}

/// A plaintext key file's contents.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value")]
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

/// The strict field-by-field form of [`KeyFile`], read after the type is known not to
/// be the sealed one (so that a sealed file gets [`KeyFileError::Sealed`], not "unknown
/// field `kdf`").
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainFields {
    #[serde(rename = "type")]
    file_type: String,
    public_key: PublicKey,
    #[serde(with = "hexfmt::serde_fixed")]
    seed: [u8; 32],
    #[serde(default)]
    credit_code: Option<CreditCode>,
    #[serde(default)]
    role: Option<String>,
}

impl TryFrom<serde_json::Value> for KeyFile {
    type Error = KeyFileError;

    fn try_from(v: serde_json::Value) -> Result<Self, KeyFileError> {
        if v.get("type").and_then(serde_json::Value::as_str) == Some(SEALED_KEY_FILE_TYPE) {
            return Err(KeyFileError::Sealed);
        }
        let f: PlainFields =
            serde_json::from_value(v).map_err(|e| KeyFileError::Format(e.to_string()))?;
        Ok(Self {
            file_type: f.file_type,
            public_key: f.public_key,
            seed: f.seed,
            credit_code: f.credit_code,
            role: f.role,
        })
    }
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
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        let f = Self::try_from(v)?;
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
            return Err(KeyFileError::WrongType {
                found: self.file_type.clone(),
                expected: KEY_FILE_TYPE,
            });
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

/// A key file of either form, told apart by its `type`.
#[derive(Debug, Clone)]
pub enum AnyKeyFile {
    /// `ebill-key/v1`: the seed in the clear.
    Plain(KeyFile),
    /// `ebill-key-sealed/v1`: the seed sealed with a passphrase.
    Sealed(SealedKeyFile),
}

/// Just the `type` of a key file, to choose the strict form to read.
#[derive(Deserialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    file_type: String,
}

impl AnyKeyFile {
    /// Parses JSON text of either form and checks it as that form's `from_json` does
    /// (a sealed file's parameters are bounds-checked; it is not opened).
    pub fn from_json(text: &str) -> Result<Self, KeyFileError> {
        let t: TypeOnly =
            serde_json::from_str(text).map_err(|e| KeyFileError::Format(e.to_string()))?;
        match t.file_type.as_str() {
            KEY_FILE_TYPE => KeyFile::from_json(text).map(Self::Plain),
            SEALED_KEY_FILE_TYPE => SealedKeyFile::from_json(text).map(Self::Sealed),
            _ => Err(KeyFileError::UnknownType(t.file_type)),
        }
    }

    /// The public key, readable without the passphrase.
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Plain(f) => f.public_key,
            Self::Sealed(f) => f.public_key,
        }
    }

    /// The credit code, readable without the passphrase.
    pub fn credit_code(&self) -> Option<CreditCode> {
        match self {
            Self::Plain(f) => f.credit_code,
            Self::Sealed(f) => f.credit_code,
        }
    }

    /// The role, readable without the passphrase.
    pub fn role(&self) -> Option<&str> {
        match self {
            Self::Plain(f) => f.role.as_deref(),
            Self::Sealed(f) => f.role.as_deref(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

    #[test]
    fn plaintext_files_stay_strict_through_serde_too() {
        // The node reads key files with `serde_json::from_str::<KeyFile>`.
        let f = KeyFile::new(&Keypair::from_seed([5; 32]), None, Some("validator"));
        let read: KeyFile = serde_json::from_str(&f.to_json()).unwrap();
        assert_eq!(read.public_key, f.public_key);
        assert_eq!(read.role.as_deref(), Some("validator"));

        let mut v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        v["extra"] = serde_json::json!(1);
        let err = serde_json::from_value::<KeyFile>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `extra`"), "{err}");
    }

    #[test]
    fn a_sealed_file_read_as_plaintext_says_it_is_sealed() {
        let key = Keypair::from_seed([6; 32]);
        let cost = KdfCost {
            memory_kib: 64,
            passes: 1,
            lanes: 1,
        };
        let sealed = SealedKeyFile::seal(&key, None, None, b"pw", cost, [1; 16], [2; 24]).unwrap();
        let text = sealed.to_json();
        assert_eq!(KeyFile::from_json(&text).unwrap_err(), KeyFileError::Sealed);
        let err = serde_json::from_str::<KeyFile>(&text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sealed with a passphrase"), "{err}");
        assert!(matches!(
            AnyKeyFile::from_json(&text),
            Ok(AnyKeyFile::Sealed(_))
        ));
    }

    #[test]
    fn either_form_is_told_apart_by_its_type() {
        let key = Keypair::from_seed([7; 32]);
        let code = crate::dev::dev_issuer_code();
        let plain = KeyFile::new(&key, Some(code), Some("issuer")).to_json();
        let any = AnyKeyFile::from_json(&plain).unwrap();
        assert!(matches!(any, AnyKeyFile::Plain(_)));
        assert_eq!(any.public_key(), key.public());
        assert_eq!(any.credit_code(), Some(code));
        assert_eq!(any.role(), Some("issuer"));

        let other = plain.replace(KEY_FILE_TYPE, "ebill-key/v9");
        assert_eq!(
            AnyKeyFile::from_json(&other).unwrap_err(),
            KeyFileError::UnknownType("ebill-key/v9".to_owned())
        );
        assert!(matches!(
            AnyKeyFile::from_json("{\"seed\": 1}"),
            Err(KeyFileError::Format(_))
        ));
        assert!(matches!(
            AnyKeyFile::from_json("not json"),
            Err(KeyFileError::Format(_))
        ));
    }
}
