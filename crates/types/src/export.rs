//! The signed manifest of an audit export (docs/spec/export.md): which chain, which
//! heights, the block hash at the last height (the checkpoint), and per file its table,
//! row count, SHA-256 and schema version, signed with Ed25519 by a node whose key the
//! genesis names as a validator or an observer.

use serde::{Deserialize, Serialize};

use crate::codec::Encoder;
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::keys::{Keypair, PublicKey, Signature};

/// Domain tag of a manifest's signing bytes.
pub const EXPORT_MANIFEST_DOMAIN: &str = "ebill/export-manifest/v1";

/// Most files one manifest lists.
pub const MAX_MANIFEST_FILES: usize = 16;

/// One exported file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportFile {
    /// The table (`bills`, `events`, `units`); the file is `<table>.<format>`.
    pub table: String,
    /// The file's format: `csv`, `parquet` or `xlsx`.
    pub format: String,
    /// The column schema's version.
    pub schema_version: u32,
    /// Data rows, not counting the header row.
    pub rows: u64,
    /// SHA-256 of the file's bytes.
    pub sha256: Hash32,
}

/// What a manifest claims, before it is signed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestBody {
    /// The chain.
    pub chain_id: String,
    /// Its genesis hash.
    pub genesis_hash: Hash32,
    /// First height, inclusive.
    pub from_height: u64,
    /// Last height, inclusive.
    pub to_height: u64,
    /// Hash of the block at `to_height` (the checkpoint).
    pub block_hash: Hash32,
    /// The files, in the order written.
    pub files: Vec<ExportFile>,
}

/// A signed manifest (`manifest.json`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportManifest {
    /// What is claimed.
    #[serde(flatten)]
    pub body: ManifestBody,
    /// The key that signed.
    pub signer: PublicKey,
    /// Ed25519 over [`ManifestBody::signing_bytes`] with `signer`.
    pub signature: Signature,
}

/// Why a manifest is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    /// More files than [`MAX_MANIFEST_FILES`].
    #[error("the manifest lists {0} files, more than {MAX_MANIFEST_FILES}")]
    TooManyFiles(usize),
    /// Another chain's.
    #[error("the manifest is of chain {found:?}, the genesis of {expected:?}")]
    WrongChain {
        /// In the genesis.
        expected: String,
        /// In the manifest.
        found: String,
    },
    /// Another genesis's.
    #[error("the manifest's genesis hash {found} is not the genesis's {expected}")]
    WrongGenesis {
        /// Of the genesis.
        expected: Hash32,
        /// In the manifest.
        found: Hash32,
    },
    /// The signer is no validator or observer of the genesis.
    #[error("the signer {0} is no validator or observer named in the genesis")]
    UnknownSigner(PublicKey),
    /// The signature does not verify.
    #[error("the manifest's signature does not verify with the key of {0}")]
    BadSignature(String),
}

/// Stable snake_case codes of [`ManifestError`].
impl ManifestError {
    /// The code.
    pub fn code(&self) -> &'static str {
        match self {
            ManifestError::TooManyFiles(_) => "manifest_too_many_files",
            ManifestError::WrongChain { .. } => "manifest_wrong_chain",
            ManifestError::WrongGenesis { .. } => "manifest_wrong_genesis",
            ManifestError::UnknownSigner(_) => "manifest_unknown_signer",
            ManifestError::BadSignature(_) => "manifest_bad_signature",
        }
    }
}

impl ManifestBody {
    /// The bytes signed (docs/spec/export.md): the domain tag, then chain id, genesis
    /// hash, from and to heights, block hash, the files (a `u32` count, then per file
    /// table, schema version, rows, SHA-256), then the signer's key.
    pub fn signing_bytes(&self, signer: &PublicKey) -> Vec<u8> {
        let mut enc = Encoder::with_domain(EXPORT_MANIFEST_DOMAIN);
        enc.str(&self.chain_id)
            .fixed(&self.genesis_hash.0)
            .u64(self.from_height)
            .u64(self.to_height)
            .fixed(&self.block_hash.0)
            .seq(&self.files, |e, f| {
                e.str(&f.table)
                    .str(&f.format)
                    .u32(f.schema_version)
                    .u64(f.rows)
                    .fixed(&f.sha256.0);
            })
            .fixed(&signer.0);
        enc.finish()
    }

    /// Signs with `key`.
    pub fn sign(self, key: &Keypair) -> ExportManifest {
        let signer = key.public();
        let signature = key.sign(&self.signing_bytes(&signer));
        ExportManifest {
            body: self,
            signer,
            signature,
        }
    }
}

impl ExportManifest {
    /// Checks the manifest against `genesis`: its chain and genesis hash, a signer the
    /// genesis names as a validator or an observer, and the signature. Returns the name
    /// the genesis gives the signer. The files themselves are the caller's to hash.
    pub fn verify(&self, genesis: &Genesis) -> Result<String, ManifestError> {
        if self.body.files.len() > MAX_MANIFEST_FILES {
            return Err(ManifestError::TooManyFiles(self.body.files.len()));
        }
        if self.body.chain_id != genesis.chain_id {
            return Err(ManifestError::WrongChain {
                expected: genesis.chain_id.clone(),
                found: self.body.chain_id.clone(),
            });
        }
        let expected = genesis.hash();
        if self.body.genesis_hash != expected {
            return Err(ManifestError::WrongGenesis {
                expected,
                found: self.body.genesis_hash,
            });
        }
        let name = genesis
            .validators
            .iter()
            .find(|v| v.public_key == self.signer)
            .map(|v| format!("validator {}", v.name))
            .or_else(|| {
                genesis
                    .observers
                    .iter()
                    .find(|o| o.public_key == self.signer)
                    .map(|o| format!("observer {}", o.name))
            })
            .ok_or(ManifestError::UnknownSigner(self.signer))?;
        self.signer
            .verify(&self.body.signing_bytes(&self.signer), &self.signature)
            .map_err(|_| ManifestError::BadSignature(name.clone()))?;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::dev;

    fn body(g: &Genesis) -> ManifestBody {
        ManifestBody {
            chain_id: g.chain_id.clone(),
            genesis_hash: g.hash(),
            from_height: 1,
            to_height: 9,
            block_hash: Hash32::digest(b"block 9"),
            files: vec![ExportFile {
                table: "bills".to_owned(),
                format: "csv".to_owned(),
                schema_version: 1,
                rows: 3,
                sha256: Hash32::digest(b"height,...\r\n"),
            }],
        }
    }

    #[test]
    fn a_validators_manifest_verifies_and_any_change_is_refused() {
        let g = dev::dev_genesis_with(dev::DEV_CHAIN_ID, 1);
        let m = body(&g).sign(&dev::dev_validator_key());
        let name = m.verify(&g).unwrap();
        assert!(name.starts_with("validator "), "{name}");
        let json = serde_json::to_string(&m).unwrap();
        let back: ExportManifest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, m);
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["to_height"], 9, "{json}");
        v["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<ExportManifest>(v).is_err());

        let mut bad = m.clone();
        bad.body.files[0].rows = 4;
        assert_eq!(bad.verify(&g).unwrap_err().code(), "manifest_bad_signature");
        let mut bad = m.clone();
        bad.body.to_height = 8;
        assert_eq!(bad.verify(&g).unwrap_err().code(), "manifest_bad_signature");
        let mut bad = m.clone();
        bad.body.chain_id = "other".to_owned();
        assert_eq!(bad.verify(&g).unwrap_err().code(), "manifest_wrong_chain");
        let mut bad = m.clone();
        bad.body.genesis_hash = Hash32::ZERO;
        assert_eq!(bad.verify(&g).unwrap_err().code(), "manifest_wrong_genesis");
        let stranger = body(&g).sign(&dev::dev_issuer_key());
        assert_eq!(
            stranger.verify(&g).unwrap_err().code(),
            "manifest_unknown_signer"
        );
    }

    #[test]
    fn signing_bytes_start_with_the_tag_and_end_with_the_signer() {
        let g = dev::dev_genesis_with(dev::DEV_CHAIN_ID, 1);
        let k = dev::dev_validator_key().public();
        let b = body(&g).signing_bytes(&k);
        let tag = EXPORT_MANIFEST_DOMAIN.as_bytes();
        assert_eq!(&b[..4], &u32::try_from(tag.len()).unwrap().to_be_bytes());
        assert_eq!(&b[4..4 + tag.len()], tag);
        assert_eq!(&b[b.len() - 32..], &k.0);
        // tag, chain id, genesis hash, 2 heights, block hash, count, one file (table, format, schema version, rows, hash), signer.
        let file = (4 + 5) + (4 + 3) + 4 + 8 + 32;
        let len = 4 + tag.len() + 4 + g.chain_id.len() + 32 + 16 + 32 + 4 + file + 32;
        assert_eq!(b.len(), len);
    }
}
