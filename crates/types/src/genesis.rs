//! The genesis document: everything a node or an offline verifier needs to know about a
//! chain before its first block. Its hash is the previous-block hash of block 1.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bill::CodePrefix;
use crate::block::{Validator, ValidatorSet};
use crate::codec::{Canonical, Encoder};
use crate::credit_code::CreditCode;
use crate::hash::Hash32;
use crate::keys::PublicKey;
use crate::limits;
use crate::text::check_text;
use crate::timestamp::Timestamp;

/// Domain tag of the genesis hash.
pub const GENESIS_DOMAIN: &str = "ebill/genesis/v1";

/// Chain parameters.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Most bytes of transactions in one block.
    pub max_block_bytes: u32,
    /// Most bytes of one signed transaction.
    pub max_tx_bytes: u32,
    /// How far before the block time a bill's `issued_at` may be.
    pub issue_window_past_ms: u64,
    /// How far after the block time a bill's `issued_at` may be.
    pub issue_window_future_ms: u64,
    /// The most any amount of a bill may be, in fen: each item's unit price and amount,
    /// and the total. Default 10^12 fen (ten billion yuan).
    pub max_amount_fen: u64,
    /// The most any item's quantity may be, in whole units of the item. Default 10^6.
    pub max_item_quantity: u64,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            max_block_txs: 5_000,
            max_block_bytes: 8 * 1024 * 1024,
            max_tx_bytes: 64 * 1024,
            issue_window_past_ms: 7 * 24 * 3600 * 1000,
            issue_window_future_ms: 10 * 60 * 1000,
            max_amount_fen: 1_000_000_000_000,
            max_item_quantity: 1_000_000,
        }
    }
}

impl Params {
    /// The default parameters with the widest amount bounds any genesis may set: for
    /// checking a bill before it is known which chain it goes to (a client reading a
    /// file); the chain then holds it to its own bounds.
    pub fn widest_bounds() -> Self {
        Self {
            max_amount_fen: limits::MAX_AMOUNT_FEN_CEILING,
            max_item_quantity: limits::MAX_ITEM_QUANTITY_CEILING,
            ..Self::default()
        }
    }
}

/// A non-voting node that the validators let connect.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observer {
    /// A human name.
    pub name: String,
    /// Its node key.
    pub public_key: PublicKey,
    /// The regulator this observer belongs to (that regulator's governance key in
    /// `regulators.keys`), if it is a regulator's observer: then its node key co-signs
    /// checkpoints ([`crate::checkpoint`]) and offline verifiers count it as a witness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regulator: Option<PublicKey>,
}

/// One regulator key.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regulator {
    /// A human name.
    pub name: String,
    /// Its governance key.
    pub public_key: PublicKey,
}

/// The regulators and how many of them must sign a governance transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regulators {
    /// k: signatures needed.
    pub threshold: u16,
    /// The n keys.
    pub keys: Vec<Regulator>,
}

/// An issuing unit registered at genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerEntry {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Name.
    pub name: String,
    /// Signing key.
    pub public_key: PublicKey,
    /// Bill-code prefixes it may issue under.
    pub code_prefixes: Vec<CodePrefix>,
    /// The end of its qualification (开票资格), if it lapses: after this moment, by block
    /// time, it signs nothing new until a renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

/// A reimbursing unit registered at genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReimburserEntry {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Name.
    pub name: String,
    /// Signing key.
    pub public_key: PublicKey,
    /// The end of its qualification, if it lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<Timestamp>,
}

/// The genesis document (JSON).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// The chain id, in every signed form of the chain.
    pub chain_id: String,
    /// When the chain starts; block times are after it.
    pub genesis_time: Timestamp,
    /// Parameters.
    pub params: Params,
    /// Validators, in order (their index is their identity in votes).
    pub validators: Vec<Validator>,
    /// Observer nodes allowed to connect.
    #[serde(default)]
    pub observers: Vec<Observer>,
    /// Regulators.
    pub regulators: Regulators,
    /// Issuing units registered from the start.
    #[serde(default)]
    pub issuers: Vec<IssuerEntry>,
    /// Reimbursing units registered from the start.
    #[serde(default)]
    pub reimbursers: Vec<ReimburserEntry>,
}

/// Why a genesis document was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GenesisError {
    /// Not valid JSON of the right shape.
    #[error("genesis is not valid: {0}")]
    Json(String),
    /// A rule was broken.
    #[error("genesis {field}: {reason}")]
    Invalid {
        /// Which part.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::Invalid {
        field,
        reason: reason.into(),
    }
}

impl Genesis {
    /// Parses and validates genesis JSON.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        let g: Genesis =
            serde_json::from_str(text).map_err(|e| GenesisError::Json(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("genesis always serialises: {e}"))
    }

    /// Checks every rule of a genesis document.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let id = &self.chain_id;
        if id.is_empty()
            || id.len() > limits::MAX_CHAIN_ID_BYTES
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(invalid(
                "chain_id",
                "1 to 64 characters of a-z, 0-9, '-' and '.'",
            ));
        }
        let p = &self.params;
        if p.max_block_txs == 0 || p.max_block_txs as usize > limits::MAX_BLOCK_TXS {
            return Err(invalid(
                "params.max_block_txs",
                format!("1 to {}", limits::MAX_BLOCK_TXS),
            ));
        }
        if p.max_tx_bytes < 1024 || p.max_tx_bytes as usize > limits::MAX_TX_BYTES {
            return Err(invalid(
                "params.max_tx_bytes",
                format!("1024 to {}", limits::MAX_TX_BYTES),
            ));
        }
        if p.max_block_bytes < p.max_tx_bytes {
            return Err(invalid("params.max_block_bytes", "at least max_tx_bytes"));
        }
        if p.max_amount_fen == 0 || p.max_amount_fen > limits::MAX_AMOUNT_FEN_CEILING {
            return Err(invalid(
                "params.max_amount_fen",
                format!("1 to {}", limits::MAX_AMOUNT_FEN_CEILING),
            ));
        }
        if p.max_item_quantity == 0 || p.max_item_quantity > limits::MAX_ITEM_QUANTITY_CEILING {
            return Err(invalid(
                "params.max_item_quantity",
                format!("1 to {}", limits::MAX_ITEM_QUANTITY_CEILING),
            ));
        }
        self.validator_set()?;
        for v in &self.validators {
            check_text("validators.name", &v.name, limits::MAX_NAME_BYTES, false)
                .map_err(|e| invalid("validators", e.to_string()))?;
        }
        let mut keys = BTreeSet::new();
        for v in &self.validators {
            keys.insert(v.public_key);
        }
        // The regulators first: an observer names one of them.
        let r = &self.regulators;
        if r.keys.is_empty() || r.keys.len() > limits::MAX_REGULATORS {
            return Err(invalid(
                "regulators.keys",
                format!("1 to {}", limits::MAX_REGULATORS),
            ));
        }
        if r.threshold == 0 || usize::from(r.threshold) > r.keys.len() {
            return Err(invalid(
                "regulators.threshold",
                "1 to the number of regulator keys",
            ));
        }
        let mut reg_keys = BTreeSet::new();
        for k in &r.keys {
            k.public_key
                .check_registrable()
                .map_err(|e| invalid("regulators.keys", format!("{}: {e}", k.name)))?;
            if !reg_keys.insert(k.public_key) {
                return Err(invalid(
                    "regulators.keys",
                    format!("key {} used twice", k.public_key),
                ));
            }
        }
        if self.observers.len() > limits::MAX_OBSERVERS {
            return Err(invalid(
                "observers",
                format!("at most {}", limits::MAX_OBSERVERS),
            ));
        }
        let mut witness_ids = BTreeSet::new();
        for o in &self.observers {
            check_text("observers.name", &o.name, limits::MAX_NAME_BYTES, false)
                .map_err(|e| invalid("observers", e.to_string()))?;
            if !keys.insert(o.public_key) {
                return Err(invalid(
                    "observers",
                    format!("key {} used twice", o.public_key),
                ));
            }
            if let Some(reg) = o.regulator {
                if !self.regulators.keys.iter().any(|r| r.public_key == reg) {
                    return Err(invalid(
                        "observers.regulator",
                        format!("{}: {reg} is not a genesis regulator's key", o.name),
                    ));
                }
                o.public_key
                    .check_registrable()
                    .map_err(|e| invalid("observers.public_key", format!("{}: {e}", o.name)))?;
                if !witness_ids.insert(crate::checkpoint::KeyId::of(&o.public_key)) {
                    return Err(invalid(
                        "observers",
                        format!(
                            "{}: its witness key id collides with another regulator's observer",
                            o.name
                        ),
                    ));
                }
            }
        }
        if self.issuers.len() + self.reimbursers.len() > limits::MAX_GENESIS_UNITS {
            return Err(invalid(
                "issuers",
                format!("at most {} units", limits::MAX_GENESIS_UNITS),
            ));
        }
        let mut codes = BTreeSet::new();
        for u in &self.issuers {
            if !codes.insert(u.credit_code) {
                return Err(invalid(
                    "issuers",
                    format!("{} registered twice", u.credit_code),
                ));
            }
            check_text("issuers.name", &u.name, limits::MAX_NAME_BYTES, false)
                .map_err(|e| invalid("issuers", e.to_string()))?;
            u.public_key
                .check_registrable()
                .map_err(|e| invalid("issuers", format!("{}: {e}", u.credit_code)))?;
            if u.code_prefixes.is_empty() || u.code_prefixes.len() > limits::MAX_CODE_PREFIXES {
                return Err(invalid(
                    "issuers.code_prefixes",
                    format!("1 to {} prefixes", limits::MAX_CODE_PREFIXES),
                ));
            }
            if u.code_prefixes.iter().collect::<BTreeSet<_>>().len() != u.code_prefixes.len() {
                return Err(invalid(
                    "issuers.code_prefixes",
                    format!("{}: a prefix appears twice", u.credit_code),
                ));
            }
        }
        for u in &self.reimbursers {
            if !codes.insert(u.credit_code) {
                return Err(invalid(
                    "reimbursers",
                    format!("{} registered twice", u.credit_code),
                ));
            }
            check_text("reimbursers.name", &u.name, limits::MAX_NAME_BYTES, false)
                .map_err(|e| invalid("reimbursers", e.to_string()))?;
            u.public_key
                .check_registrable()
                .map_err(|e| invalid("reimbursers", format!("{}: {e}", u.credit_code)))?;
        }
        Ok(())
    }

    /// The validator set.
    pub fn validator_set(&self) -> Result<ValidatorSet, GenesisError> {
        ValidatorSet::new(self.validators.clone()).map_err(|e| invalid("validators", e.to_string()))
    }

    /// The genesis hash: SHA-256 of the canonical encoding of every field.
    pub fn hash(&self) -> Hash32 {
        let mut enc = Encoder::with_domain(GENESIS_DOMAIN);
        enc.str(&self.chain_id);
        self.genesis_time.encode_to(&mut enc);
        let p = &self.params;
        enc.u32(p.max_block_txs)
            .u32(p.max_block_bytes)
            .u32(p.max_tx_bytes)
            .u64(p.issue_window_past_ms)
            .u64(p.issue_window_future_ms)
            .u64(p.max_amount_fen)
            .u64(p.max_item_quantity);
        enc.seq(&self.validators, |e, v| {
            e.str(&v.name);
            v.public_key.encode_to(e);
        });
        enc.seq(&self.observers, |e, o| {
            e.str(&o.name);
            o.public_key.encode_to(e);
            e.option(o.regulator.as_ref(), |e2, k| k.encode_to(e2));
        });
        enc.u16(self.regulators.threshold);
        enc.seq(&self.regulators.keys, |e, r| {
            e.str(&r.name);
            r.public_key.encode_to(e);
        });
        enc.seq(&self.issuers, |e, u| {
            u.credit_code.encode_to(e);
            e.str(&u.name);
            u.public_key.encode_to(e);
            e.seq(&u.code_prefixes, |e2, p| p.encode_to(e2));
            e.option(u.valid_until.as_ref(), |e2, t| t.encode_to(e2));
        });
        enc.seq(&self.reimbursers, |e, u| {
            u.credit_code.encode_to(e);
            e.str(&u.name);
            u.public_key.encode_to(e);
            e.option(u.valid_until.as_ref(), |e2, t| t.encode_to(e2));
        });
        Hash32::digest(&enc.finish())
    }
}
