//! Absence proofs: that no bill with a given id exists as of a final header (issue 10,
//! item 4).
//!
//! An [`AbsenceProof`] holds a final header, its commit certificate and the path of the
//! key `StateKey::Bill(id)` in the state tree ([`crate::state_tree`]) to that header's
//! `state_root`, ending at an empty subtree or at another key's leaf. Since every bill
//! ever issued keeps its leaf for ever (keys are only inserted or updated), "absent as of
//! height H" means "never issued up to height H".
//!
//! It tells whether a bill exists, so a node serves it only on its operator's listener
//! (`--admin-api`), never on the public API: the public API would otherwise be an
//! oracle for enumerating bill numbers.
//!
//! Two forms, like the proof bundle's: JSON (serde, unknown fields refused, `kind:
//! "absence"`, `version: 1`) and a binary form in the crate's canonical encoding, with its
//! own domain tag [`ABSENCE_DOMAIN`] (so that it is never read as a bundle, nor a bundle
//! as it), bounded decoding, trailing bytes refused.
//!
//! [`verify_absence`] is pure: no I/O, no clock.

use serde::{Deserialize, Serialize};

use crate::bill::BillId;
use crate::block::{CommitCertificate, Header};
use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::limits;
use crate::proof::{Link, MAX_STATE_BYTES, ProofError, check_chain, check_header};
use crate::state_tree::{StateKey, StateProof};

/// Domain tag of the binary form of an absence proof.
pub const ABSENCE_DOMAIN: &str = "ebill/absence/v1";
/// The absence proof format version this build reads and writes.
pub const ABSENCE_VERSION: u32 = 1;
/// Most bytes of an absence proof's binary form (and of its JSON text): a header, a
/// certificate of at most [`limits::MAX_VALIDATORS`] signatures and a state proof of at
/// most [`MAX_STATE_BYTES`] fit well within it.
pub const MAX_ABSENCE_BYTES: usize = 256 * 1024;

/// The `kind` field of the JSON form: always `"absence"`, so that a reader tells an
/// absence proof from a proof bundle (which has no `kind`) before parsing it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbsenceKind {
    /// An absence proof.
    #[default]
    Absence,
}

/// The proof that no bill `bill` exists as of a final header.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsenceProof {
    /// Always [`AbsenceKind::Absence`] (`"absence"` in JSON).
    pub kind: AbsenceKind,
    /// Format version: [`ABSENCE_VERSION`].
    pub version: u32,
    /// The chain.
    pub chain_id: String,
    /// Hash of the chain's genesis.
    pub genesis_hash: Hash32,
    /// The bill proved absent.
    pub bill: BillId,
    /// A final header (the node's latest when it made the proof).
    pub header: Header,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The path of `StateKey::Bill(bill)` to `header.state_root`, canonical bytes in hex
    /// ([`StateProof`]).
    #[serde(with = "crate::hexfmt::bytes")]
    pub proof: Vec<u8>,
}

fn decode_error(reason: impl Into<String>) -> ProofError {
    ProofError {
        entry: None,
        link: Link::Decode,
        reason: reason.into(),
    }
}

fn broken(link: Link, reason: impl Into<String>) -> ProofError {
    ProofError {
        entry: None,
        link,
        reason: reason.into(),
    }
}

fn check_size(len: usize) -> Result<(), ProofError> {
    if len > MAX_ABSENCE_BYTES {
        return Err(decode_error(format!(
            "absence proof is {len} bytes, over the limit of {MAX_ABSENCE_BYTES}"
        )));
    }
    Ok(())
}

impl AbsenceProof {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("an absence proof always serialises: {e}"))
    }

    /// Parses the JSON form (unknown fields refused).
    pub fn from_json(text: &str) -> Result<Self, ProofError> {
        check_size(text.len())?;
        serde_json::from_str(text).map_err(|e| decode_error(e.to_string()))
    }

    /// The compact binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_canonical_bytes()
    }

    /// Decodes the binary form, bounded in size, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        check_size(bytes.len())?;
        Self::from_canonical_bytes(bytes).map_err(|e| decode_error(e.to_string()))
    }

    /// Decodes either form: JSON if the first non-blank byte is `{`, else binary.
    pub fn decode_any(bytes: &[u8]) -> Result<Self, ProofError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| decode_error("JSON absence proof is not UTF-8"))?;
                Self::from_json(text)
            }
            _ => Self::from_bytes(bytes),
        }
    }
}

/// Whether `bytes` look like an absence proof rather than a proof bundle: binary that
/// starts with the encoded [`ABSENCE_DOMAIN`], or a JSON object whose top-level `kind`
/// is `"absence"`. Only tells which decoder to use; proves nothing.
pub fn is_absence_proof(bytes: &[u8]) -> bool {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            if bytes.len() > MAX_ABSENCE_BYTES {
                return false;
            }
            #[derive(Deserialize)]
            struct KindOnly {
                #[serde(default)]
                kind: Option<String>,
            }
            serde_json::from_slice::<KindOnly>(bytes)
                .is_ok_and(|k| k.kind.as_deref() == Some("absence"))
        }
        _ => bytes.starts_with(&Encoder::with_domain(ABSENCE_DOMAIN).finish()),
    }
}

impl Canonical for AbsenceProof {
    /// Domain tag, version, chain id, genesis hash, bill id, header, certificate, then
    /// the state proof as a length-prefixed byte string. The kind is the domain tag.
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(ABSENCE_DOMAIN)
            .u32(self.version)
            .str(&self.chain_id);
        self.genesis_hash.encode_to(enc);
        self.bill.encode_to(enc);
        self.header.encode_to(enc);
        self.certificate.encode_to(enc);
        enc.bytes(&self.proof);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let tag = dec.bytes("domain tag", ABSENCE_DOMAIN.len())?;
        if tag != ABSENCE_DOMAIN.as_bytes() {
            return Err(DecodeError::WrongDomain {
                expected: ABSENCE_DOMAIN,
            });
        }
        let version = dec.u32("absence proof version")?;
        if version != ABSENCE_VERSION {
            return Err(DecodeError::InvalidTag {
                what: "absence proof version",
                value: u64::from(version),
            });
        }
        Ok(Self {
            kind: AbsenceKind::Absence,
            version,
            chain_id: dec.str("chain id", limits::MAX_CHAIN_ID_BYTES)?.to_owned(),
            genesis_hash: Hash32::decode_from(dec)?,
            bill: BillId::decode_from(dec)?,
            header: Header::decode_from(dec)?,
            certificate: CommitCertificate::decode_from(dec)?,
            proof: dec.bytes("state proof", MAX_STATE_BYTES)?.to_vec(),
        })
    }
}

/// What an absence proof proved: no bill `bill` exists as of final block `height`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct VerifiedAbsence {
    /// The chain.
    pub chain_id: String,
    /// The bill proved absent.
    pub bill: BillId,
    /// The height of the certified header: no such bill up to and including it.
    pub height: u64,
    /// That header's time (Unix ms).
    pub time_ms: u64,
    /// That header's hash.
    pub block_hash: Hash32,
}

/// Verifies `proof` against `genesis`. Pure: no I/O, no clock.
///
/// Checks, in this order, naming the broken [`Link`]: the version; the genesis hash and
/// chain id; the header's chain id and validator-set hash against the genesis
/// validators; that the certificate names exactly this header and carries a quorum of
/// valid precommits of the genesis validators; then that the state proof decodes and
/// shows `StateKey::Bill(bill)` absent from the tree of `header.state_root`
/// ([`StateProof::verify_absent`]: a path that ends at the bill's own leaf is refused).
pub fn verify_absence(
    proof: &AbsenceProof,
    genesis: &Genesis,
) -> Result<VerifiedAbsence, ProofError> {
    if proof.version != ABSENCE_VERSION {
        return Err(broken(
            Link::Version,
            format!(
                "absence proof version {}, this verifier reads {ABSENCE_VERSION}",
                proof.version
            ),
        ));
    }
    let validators = check_chain(
        "absence proof",
        &proof.genesis_hash,
        &proof.chain_id,
        genesis,
    )?;
    let chain_id = genesis.chain_id.as_str();
    let h = &proof.header;
    let block_hash = check_header(h, &proof.certificate, chain_id, &validators)
        .map_err(|(link, reason)| broken(link, reason))?;
    proof
        .certificate
        .verify(chain_id, h.height, &block_hash, &validators)
        .map_err(|e| broken(Link::Certificate, e.to_string()))?;
    let path = StateProof::from_canonical_bytes(&proof.proof)
        .map_err(|e| broken(Link::StateProof, format!("state proof: {e}")))?;
    path.verify_absent(&h.state_root, &StateKey::Bill(proof.bill).hash())
        .map_err(|e| {
            broken(
                Link::StateProof,
                format!("bill {} as of height {}: {e}", proof.bill, h.height),
            )
        })?;
    Ok(VerifiedAbsence {
        chain_id: proof.chain_id.clone(),
        bill: proof.bill,
        height: h.height,
        time_ms: h.time_ms,
        block_hash,
    })
}
