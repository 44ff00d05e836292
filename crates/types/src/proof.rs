//! Proof bundles and their offline verifier (docs/design.md §8; bytes in docs/spec/proof-bundle.md).
//!
//! A [`ProofBundle`] lets anyone check a bill with nothing but the chain's genesis file:
//! it carries every transaction that matters for the bill, each with its RFC 6962
//! inclusion proof to its block's transaction root, the block header and that block's
//! commit certificate (a quorum of the genesis validators' precommits). The transactions
//! are:
//!
//! 1. the IssueBill transaction (the bill and the issuer's signature);
//! 2. every later lifecycle transaction of the bill (lock, unlock, reimbursement,
//!    red reversal, paper exchange);
//! 3. the registry changes after genesis (registration, key rotations, revocation) of
//!    every unit that signed one of them, so that the key valid at each height is proved
//!    too.
//!
//! [`verify_bundle`] is pure: no I/O, no clock. It checks every link and replays the
//! bill's life with the ledger's own transition rule ([`crate::transition`]).
//!
//! A version 2 bundle also carries a **state proof** ([`StateEvidence`]): the bill's
//! record in the state tree ([`crate::state_tree`]) with its path to the state root of a
//! final header, and that header's certificate. The record holds the bill's status and
//! a digest of its whole history, and the verifier checks that both agree with the
//! transactions replayed: so a v2 bundle proves "status S as of height H, and no other
//! transaction of this bill up to H". A version 1 bundle (no state proof) is still read
//! and verified, and proves less: the status after the transactions it shows, with no
//! word on later ones ([`Verified::state_height`] is `None`).
//!
//! Two forms: JSON (serde, unknown fields refused, a `version` field) and a compact
//! binary form in the crate's canonical encoding (domain tag `ebill/proof/v1`, bounded
//! decoding, trailing bytes refused).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bill::{BillId, CheckCode, CodePrefix, SignedBill};
use crate::block::{CommitCertificate, Header, ValidatorSet};
use crate::checkpoint::{Checkpoint, Cosignature, KeyId, Witnesses};
use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::credit_code::CreditCode;
use crate::genesis::Genesis;
use crate::hash::Hash32;
use crate::keys::PublicKey;
use crate::limits;
use crate::merkle::{self, InclusionProof};
use crate::tx::{Actor, Auth, SignedTx, TxBody, TxId, TxKind};

/// Domain tag of the binary form of a bundle (of every version).
pub const BUNDLE_DOMAIN: &str = "ebill/proof/v1";
/// The bundle format version this build writes: 3, with a state proof and the
/// witnesses' co-signatures of its state's checkpoint.
pub const BUNDLE_VERSION: u32 = 3;
/// The second bundle version: a state proof, no witnesses. Still read and verified.
pub const BUNDLE_VERSION_2: u32 = 2;
/// The first bundle version, without a state proof: still read and verified.
pub const BUNDLE_VERSION_1: u32 = 1;
/// Most co-signatures in one bundle.
pub const MAX_BUNDLE_WITNESSES: usize = 256;
/// Most entries in one bundle: the issue, the bill's whole history and the registry
/// changes of the units involved fit comfortably.
pub const MAX_BUNDLE_ENTRIES: usize = 1024;
/// Most bytes of a bundle's binary form (and of its JSON text, for readers).
pub const MAX_BUNDLE_BYTES: usize = 32 * 1024 * 1024;

/// One transaction proved final: included in a block whose header a quorum certified.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvedTx {
    /// The signed transaction.
    pub tx: SignedTx,
    /// Its inclusion proof: leaf = `merkle::leaf_hash(tx.to_canonical_bytes())`,
    /// root = `header.tx_root`, size = `header.tx_count`.
    pub proof: InclusionProof,
    /// The header of the block that holds it.
    pub header: Header,
    /// That block's commit certificate.
    pub certificate: CommitCertificate,
}

impl Canonical for ProvedTx {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.bytes(&self.tx.to_canonical_bytes());
        self.proof.encode_to(enc);
        self.header.encode_to(enc);
        self.certificate.encode_to(enc);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let raw = dec.bytes("transaction", limits::MAX_TX_BYTES)?;
        Ok(Self {
            tx: SignedTx::from_canonical_bytes(raw)?,
            proof: InclusionProof::decode_from(dec)?,
            header: Header::decode_from(dec)?,
            certificate: CommitCertificate::decode_from(dec)?,
        })
    }
}

/// The bill's record in the state tree as of a final header: the proof that no other
/// transaction of the bill exists up to that header's height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateEvidence {
    /// A final header (the node's latest when it made the bundle).
    pub header: Header,
    /// Its commit certificate.
    pub certificate: CommitCertificate,
    /// The bill's record in the state tree, canonical bytes in hex
    /// ([`crate::state_tree::BillState`]).
    #[serde(with = "crate::hexfmt::bytes")]
    pub record: Vec<u8>,
    /// Its path to `header.state_root`, canonical bytes in hex
    /// ([`crate::state_tree::StateProof`]).
    #[serde(with = "crate::hexfmt::bytes")]
    pub proof: Vec<u8>,
}

/// Most bytes of a state record or state proof in a bundle.
pub const MAX_STATE_BYTES: usize = 16 * 1024;

impl Canonical for StateEvidence {
    fn encode_to(&self, enc: &mut Encoder) {
        self.header.encode_to(enc);
        self.certificate.encode_to(enc);
        enc.bytes(&self.record);
        enc.bytes(&self.proof);
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            header: Header::decode_from(dec)?,
            certificate: CommitCertificate::decode_from(dec)?,
            record: dec.bytes("state record", MAX_STATE_BYTES)?.to_vec(),
            proof: dec.bytes("state proof", MAX_STATE_BYTES)?.to_vec(),
        })
    }
}

/// A proof bundle: everything needed to verify one bill offline against the genesis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofBundle {
    /// Format version: [`BUNDLE_VERSION`] (3) with `state` and `witnesses`,
    /// [`BUNDLE_VERSION_2`] with `state` only, [`BUNDLE_VERSION_1`] with neither.
    pub version: u32,
    /// The chain.
    pub chain_id: String,
    /// Hash of the chain's genesis.
    pub genesis_hash: Hash32,
    /// The bill proved.
    pub bill: BillId,
    /// The proved transactions, ordered by (height, position in the block).
    pub entries: Vec<ProvedTx>,
    /// The bill's state proof (versions 2 and 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StateEvidence>,
    /// Version 3: the witnesses' co-signatures of the checkpoint of `state.header`
    /// (docs/spec/checkpoint.md), as many as the node held when it made the bundle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub witnesses: Vec<Cosignature>,
}

impl ProofBundle {
    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|e| unreachable!("a proof bundle always serialises: {e}"))
    }

    /// Parses the JSON form (unknown fields refused).
    pub fn from_json(text: &str) -> Result<Self, ProofError> {
        if text.len() > MAX_BUNDLE_BYTES {
            return Err(ProofError::decode(format!(
                "bundle is {} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                text.len()
            )));
        }
        serde_json::from_str(text).map_err(|e| ProofError::decode(e.to_string()))
    }

    /// The compact binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_canonical_bytes()
    }

    /// Decodes the binary form, bounded in size, refusing trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(ProofError::decode(format!(
                "bundle is {} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                bytes.len()
            )));
        }
        Self::from_canonical_bytes(bytes).map_err(|e| ProofError::decode(e.to_string()))
    }

    /// Decodes either form: JSON if the first non-blank byte is `{`, else binary.
    pub fn decode_any(bytes: &[u8]) -> Result<Self, ProofError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {
                let text = std::str::from_utf8(bytes)
                    .map_err(|_| ProofError::decode("JSON bundle is not UTF-8"))?;
                Self::from_json(text)
            }
            _ => Self::from_bytes(bytes),
        }
    }
}

impl Canonical for ProofBundle {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(BUNDLE_DOMAIN).u32(self.version).str(&self.chain_id);
        self.genesis_hash.encode_to(enc);
        self.bill.encode_to(enc);
        enc.seq(&self.entries, |e, p| p.encode_to(e));
        if self.version != BUNDLE_VERSION_1 {
            enc.option(self.state.as_ref(), |e, s| s.encode_to(e));
        }
        if self.version == BUNDLE_VERSION {
            enc.seq(&self.witnesses, |e, c| c.encode_to(e));
        }
    }

    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let tag = dec.bytes("domain tag", BUNDLE_DOMAIN.len())?;
        if tag != BUNDLE_DOMAIN.as_bytes() {
            return Err(DecodeError::WrongDomain {
                expected: BUNDLE_DOMAIN,
            });
        }
        let version = dec.u32("bundle version")?;
        if !matches!(
            version,
            BUNDLE_VERSION_1 | BUNDLE_VERSION_2 | BUNDLE_VERSION
        ) {
            return Err(DecodeError::InvalidTag {
                what: "bundle version",
                value: u64::from(version),
            });
        }
        let chain_id = dec.str("chain id", limits::MAX_CHAIN_ID_BYTES)?.to_owned();
        let genesis_hash = Hash32::decode_from(dec)?;
        let bill = BillId::decode_from(dec)?;
        let entries = dec.seq("proof entries", MAX_BUNDLE_ENTRIES, ProvedTx::decode_from)?;
        let state = if version == BUNDLE_VERSION_1 {
            None
        } else {
            dec.option("state evidence", StateEvidence::decode_from)?
        };
        let witnesses = if version == BUNDLE_VERSION {
            dec.seq("witnesses", MAX_BUNDLE_WITNESSES, Cosignature::decode_from)?
        } else {
            Vec::new()
        };
        Ok(Self {
            version,
            chain_id,
            genesis_hash,
            bill,
            entries,
            state,
            witnesses,
        })
    }
}

/// A link of the chain of evidence; its name is the stable error code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Link {
    /// The bundle could not be read (JSON or binary).
    Decode,
    /// A bundle version this build does not know.
    Version,
    /// The bundle is for another genesis.
    GenesisHash,
    /// The bundle names another chain id.
    ChainId,
    /// A header names another chain.
    HeaderChainId,
    /// A header names another validator set (or the genesis has none that is valid).
    ValidatorSet,
    /// The Merkle path does not lead from the transaction to the header's root.
    MerklePath,
    /// The commit certificate does not certify the header with a quorum.
    Certificate,
    /// Entries are not in strictly increasing (height, position) order.
    EntryOrder,
    /// A transaction concerns another bill.
    BillId,
    /// The IssueBill transaction is missing, or is not a valid issue of the bill.
    IssueBill,
    /// The issuer was not registered (active, as an issuer, for the code prefix) when
    /// it issued.
    IssuerRegistration,
    /// The issuer's signature on the IssueBill does not verify with the key valid then.
    IssuerSignature,
    /// A unit acting on the bill was not registered, active and in the right role then.
    UnitRegistration,
    /// A unit's signature on a lifecycle transaction does not verify.
    UnitSignature,
    /// A registry change lacks a quorum of valid regulator signatures.
    RegulatorSignature,
    /// The bill's transactions do not replay into a consistent history.
    LifecycleOrder,
    /// The state proof is missing (version 2), unreadable, does not lead to its
    /// certified header's state root, or its record disagrees with the replayed history.
    StateProof,
    /// Fewer valid co-signatures of distinct regulators' observers on the bundle's state
    /// checkpoint than required (or a bundle that carries none: version 1 or 2).
    Witnesses,
}

impl Link {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Link::Decode => "decode",
            Link::Version => "version",
            Link::GenesisHash => "genesis_hash",
            Link::ChainId => "chain_id",
            Link::HeaderChainId => "header_chain_id",
            Link::ValidatorSet => "validator_set",
            Link::MerklePath => "merkle_path",
            Link::Certificate => "certificate",
            Link::EntryOrder => "entry_order",
            Link::BillId => "bill_id",
            Link::IssueBill => "issue_bill",
            Link::IssuerRegistration => "issuer_registration",
            Link::IssuerSignature => "issuer_signature",
            Link::UnitRegistration => "unit_registration",
            Link::UnitSignature => "unit_signature",
            Link::RegulatorSignature => "regulator_signature",
            Link::LifecycleOrder => "lifecycle_order",
            Link::StateProof => "state_proof",
            Link::Witnesses => "witnesses",
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The link that broke: which entry (if the fault is in one), which link and why.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ProofError {
    /// Index of the entry in `bundle.entries`, if the fault is in one entry.
    pub entry: Option<usize>,
    /// The broken link.
    pub link: Link,
    /// What is wrong, naming the facts.
    pub reason: String,
}

impl ProofError {
    fn new(entry: Option<usize>, link: Link, reason: impl Into<String>) -> Self {
        Self {
            entry,
            link,
            reason: reason.into(),
        }
    }

    fn at(entry: usize, link: Link, reason: impl Into<String>) -> Self {
        Self::new(Some(entry), link, reason)
    }

    fn decode(reason: impl Into<String>) -> Self {
        Self::new(None, Link::Decode, reason)
    }

    /// The stable error code: the link's name (`merkle_path`, `certificate`, ...).
    pub fn code(&self) -> &'static str {
        self.link.as_str()
    }
}

impl fmt::Display for ProofError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.entry {
            Some(i) => write!(f, "entry {i}: {}: {}", self.link, self.reason),
            None => write!(f, "{}: {}", self.link, self.reason),
        }
    }
}

impl std::error::Error for ProofError {}

pub use crate::status::BillStatus;

/// One proved step of the bill's life.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProvedStep {
    /// What was done.
    pub action: TxKind,
    /// By which unit.
    pub by: CreditCode,
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u64,
    /// Block time, ms since the epoch.
    pub time_ms: u64,
    /// Block hash.
    pub block_hash: Hash32,
    /// Transaction id.
    pub tx_id: TxId,
}

/// The issuing unit as proved (from the genesis or a proved registration).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ProvedIssuer {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Name as registered.
    pub name: String,
    /// The key that signed the bill.
    pub public_key: PublicKey,
    /// Whether its registration is in the genesis (else proved in the bundle).
    pub in_genesis: bool,
}

/// What a bundle proved.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Verified {
    /// The chain.
    pub chain_id: String,
    /// Its genesis hash.
    pub genesis_hash: Hash32,
    /// The signed bill (bill, issuer signature, derived check code).
    pub bill: SignedBill,
    /// The issuer.
    pub issuer: ProvedIssuer,
    /// The status after the proved transactions.
    pub status: BillStatus,
    /// The bill's proved history, the issue first.
    pub history: Vec<ProvedStep>,
    /// The highest height in the bundle's entries (and its state proof): the status
    /// holds as of this height.
    pub height: u64,
    /// Number of entries checked.
    pub entries: usize,
    /// With a state proof: the height as of which the state tree proves this status and
    /// that the bill has no other transaction. `None` for a version 1 bundle.
    pub state_height: Option<u64>,
    /// With a state proof: the time of that height's header (Unix ms).
    pub state_time_ms: Option<u64>,
    /// Version 3: the co-signatures of the state checkpoint, checked. `None` for a
    /// version 1 or 2 bundle, which carries no witnesses.
    pub witnesses: Option<WitnessReport>,
}

/// The co-signatures of a version 3 bundle's state checkpoint, each checked against the
/// genesis regulators' observers ([`crate::checkpoint`]).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct WitnessReport {
    /// The checkpoint of the state header.
    pub checkpoint: Checkpoint,
    /// The co-signatures that count: valid, of a distinct regulator's observer each, in
    /// the bundle's order.
    pub counted: Vec<CountedWitness>,
    /// The co-signatures that do not count, with why (forged, unknown key, repeated).
    pub refused: Vec<RefusedCosignature>,
}

/// A co-signature that counts.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CountedWitness {
    /// Its key id.
    pub key_id: KeyId,
    /// The observer's name in the genesis.
    pub observer: String,
    /// The regulator it belongs to (name in the genesis).
    pub regulator: String,
}

/// A co-signature that does not count.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RefusedCosignature {
    /// Its index in the bundle's `witnesses`.
    pub index: usize,
    /// Its key id.
    pub key_id: KeyId,
    /// Stable code: `unknown_witness`, `bad_signature` or `duplicate`.
    pub code: &'static str,
    /// Why, naming the facts.
    pub reason: String,
}

impl WitnessReport {
    /// Checks every co-signature of `cosigs` on `checkpoint`: the first valid one of
    /// each witness counts; later ones of the same witness are `duplicate`s.
    pub fn check(checkpoint: Checkpoint, cosigs: &[Cosignature], genesis: &Genesis) -> Self {
        let witnesses = Witnesses::of(genesis);
        let mut counted: Vec<CountedWitness> = Vec::new();
        let mut refused = Vec::new();
        for (index, c) in cosigs.iter().enumerate() {
            match checkpoint.verify_cosignature(c, &witnesses) {
                Ok(w) if counted.iter().any(|k| k.key_id == w.key_id) => {
                    refused.push(RefusedCosignature {
                        index,
                        key_id: c.key_id,
                        code: "duplicate",
                        reason: format!(
                            "a second co-signature of witness {} ({}): counted once",
                            w.key_id, w.name
                        ),
                    });
                }
                Ok(w) => counted.push(CountedWitness {
                    key_id: w.key_id,
                    observer: w.name.clone(),
                    regulator: w.regulator_name.clone(),
                }),
                Err(e) => refused.push(RefusedCosignature {
                    index,
                    key_id: c.key_id,
                    code: e.code(),
                    reason: e.to_string(),
                }),
            }
        }
        Self {
            checkpoint,
            counted,
            refused,
        }
    }
}

/// Requires at least `k` co-signatures of distinct regulators' observers on the state
/// checkpoint of a verified bundle (`ebill verify-proof --witnesses K`). The error
/// (`witnesses`) names every co-signature that did not count and why.
pub fn require_witnesses(verified: &Verified, k: usize) -> Result<(), ProofError> {
    let Some(report) = &verified.witnesses else {
        return Err(ProofError::new(
            None,
            Link::Witnesses,
            format!(
                "{k} witnesses required, and this bundle (version 1 or 2) carries no witnesses"
            ),
        ));
    };
    if report.counted.len() >= k {
        return Ok(());
    }
    let mut reason = format!(
        "{k} co-signatures of distinct regulators' observers required on checkpoint {} at height {}, {} valid",
        report.checkpoint.block_hash,
        report.checkpoint.height,
        report.counted.len()
    );
    if !report.counted.is_empty() {
        let names: Vec<&str> = report.counted.iter().map(|c| c.observer.as_str()).collect();
        reason.push_str(&format!(" ({})", names.join(", ")));
    }
    for r in &report.refused {
        reason.push_str(&format!(
            "; co-signature {} (key id {}) does not count: {}: {}",
            r.index, r.key_id, r.code, r.reason
        ));
    }
    Err(ProofError::new(None, Link::Witnesses, reason))
}

impl Verified {
    /// The issue step.
    pub fn issue(&self) -> Option<&ProvedStep> {
        self.history.first()
    }
}

/// What the replay knows about a unit.
struct UnitState {
    name: String,
    key: PublicKey,
    /// Prefixes of an issuer; `None` for a reimbursing unit.
    prefixes: Option<Vec<CodePrefix>>,
    revoked_at: Option<u64>,
    /// The end of its qualification, if it lapses.
    valid_until: Option<crate::timestamp::Timestamp>,
    in_genesis: bool,
}

struct Replay {
    /// Proposals seen so far, by id.
    proposals: BTreeMap<Hash32, PendingProposal>,
    issuer: Option<ProvedIssuer>,
    signed: Option<SignedBill>,
    status: BillStatus,
    history: Vec<ProvedStep>,
}

/// Verifies `bundle` against `genesis`: every link, from the genesis to the bill's
/// status. Pure: no I/O, no clock.
///
/// Checks, in this order (cheap checks first, so that a broken bundle is refused fast):
/// the version, the genesis hash and chain id; for every entry the header's chain id and
/// validator-set hash, the Merkle path from the transaction to the header's root (for a
/// tree of `header.tx_count` leaves), that the certificate names this header; the order
/// of the entries; every commit certificate's quorum of precommit signatures against the
/// genesis validators; then replays the entries: regulator quorums on registry changes,
/// the issue (nonce 0, this bill, valid fields, issuer registered for the code prefix
/// and signing with the key valid at that point), and every lifecycle transaction
/// (this bill, signed by a registered unit in the right role, a legal transition).
pub fn verify_bundle(bundle: &ProofBundle, genesis: &Genesis) -> Result<Verified, ProofError> {
    if !matches!(
        bundle.version,
        BUNDLE_VERSION_1 | BUNDLE_VERSION_2 | BUNDLE_VERSION
    ) {
        return Err(ProofError::new(
            None,
            Link::Version,
            format!(
                "bundle version {}, this verifier reads {BUNDLE_VERSION_1} to {BUNDLE_VERSION}",
                bundle.version
            ),
        ));
    }
    match (bundle.version, &bundle.state) {
        (BUNDLE_VERSION_1, Some(_)) => {
            return Err(ProofError::new(
                None,
                Link::Version,
                "a version 1 bundle carries no state proof",
            ));
        }
        (v, None) if v != BUNDLE_VERSION_1 => {
            return Err(ProofError::new(
                None,
                Link::StateProof,
                format!("a version {v} bundle must carry the bill's state proof"),
            ));
        }
        _ => {}
    }
    if bundle.version != BUNDLE_VERSION && !bundle.witnesses.is_empty() {
        return Err(ProofError::new(
            None,
            Link::Version,
            format!("a version {} bundle carries no witnesses", bundle.version),
        ));
    }
    if bundle.witnesses.len() > MAX_BUNDLE_WITNESSES {
        return Err(ProofError::decode(format!(
            "{} co-signatures, over the limit of {MAX_BUNDLE_WITNESSES}",
            bundle.witnesses.len()
        )));
    }
    let genesis_hash = genesis.hash();
    let validators = check_chain("bundle", &bundle.genesis_hash, &bundle.chain_id, genesis)?;
    let chain_id = genesis.chain_id.as_str();
    if bundle.entries.is_empty() {
        return Err(ProofError::new(
            None,
            Link::IssueBill,
            "the bundle proves no transaction",
        ));
    }
    if bundle.entries.len() > MAX_BUNDLE_ENTRIES {
        return Err(ProofError::decode(format!(
            "{} entries, over the limit of {MAX_BUNDLE_ENTRIES}",
            bundle.entries.len()
        )));
    }

    // Pass 1: the cheap links of every entry.
    let mut block_hashes = Vec::with_capacity(bundle.entries.len());
    for (i, e) in bundle.entries.iter().enumerate() {
        let h = &e.header;
        if e.proof.tree_size != u64::from(h.tx_count) {
            return Err(ProofError::at(
                i,
                Link::MerklePath,
                format!(
                    "proof is for a tree of {} leaves, the block has {} transactions",
                    e.proof.tree_size, h.tx_count
                ),
            ));
        }
        let leaf = merkle::leaf_hash(&e.tx.to_canonical_bytes());
        e.proof
            .verify(&leaf, &h.tx_root)
            .map_err(|err| ProofError::at(i, Link::MerklePath, err.to_string()))?;
        let block_hash = check_header(h, &e.certificate, chain_id, &validators)
            .map_err(|(link, reason)| ProofError::at(i, link, reason))?;
        block_hashes.push(block_hash);
    }
    for (i, w) in bundle.entries.windows(2).enumerate() {
        let a = (w[0].header.height, w[0].proof.leaf_index);
        let b = (w[1].header.height, w[1].proof.leaf_index);
        if a >= b {
            return Err(ProofError::at(
                i + 1,
                Link::EntryOrder,
                format!(
                    "entry at height {} position {} follows height {} position {}",
                    b.0, b.1, a.0, a.1
                ),
            ));
        }
    }

    // Pass 2: the certificates, once per distinct (block, certificate).
    let mut checked: Vec<(Hash32, &CommitCertificate)> = Vec::new();
    for (i, e) in bundle.entries.iter().enumerate() {
        let hash = block_hashes[i];
        if checked
            .iter()
            .any(|(h, c)| *h == hash && **c == e.certificate)
        {
            continue;
        }
        e.certificate
            .verify(chain_id, e.header.height, &hash, &validators)
            .map_err(|err| ProofError::at(i, Link::Certificate, err.to_string()))?;
        checked.push((hash, &e.certificate));
    }

    // Pass 3: replay.
    let mut units: BTreeMap<CreditCode, UnitState> = BTreeMap::new();
    for u in &genesis.issuers {
        units.insert(
            u.credit_code,
            UnitState {
                name: u.name.clone(),
                key: u.public_key,
                prefixes: Some(u.code_prefixes.clone()),
                revoked_at: None,
                valid_until: u.valid_until,
                in_genesis: true,
            },
        );
    }
    for u in &genesis.reimbursers {
        units.insert(
            u.credit_code,
            UnitState {
                name: u.name.clone(),
                key: u.public_key,
                prefixes: None,
                revoked_at: None,
                valid_until: u.valid_until,
                in_genesis: true,
            },
        );
    }
    let mut replay = Replay {
        proposals: BTreeMap::new(),
        issuer: None,
        signed: None,
        status: BillStatus::Issued,
        history: Vec::new(),
    };
    for (i, e) in bundle.entries.iter().enumerate() {
        replay_entry(
            i,
            e,
            block_hashes[i],
            bundle,
            genesis,
            &mut units,
            &mut replay,
        )?;
    }
    let (Some(signed), Some(issuer)) = (replay.signed, replay.issuer) else {
        return Err(ProofError::new(
            None,
            Link::IssueBill,
            format!(
                "the bundle holds no IssueBill transaction of bill {}",
                bundle.bill
            ),
        ));
    };
    let mut height = bundle
        .entries
        .iter()
        .map(|e| e.header.height)
        .max()
        .unwrap_or(0);
    let witnesses = match (&bundle.state, bundle.version) {
        (Some(s), BUNDLE_VERSION) => Some(WitnessReport::check(
            Checkpoint::of(&s.header),
            &bundle.witnesses,
            genesis,
        )),
        _ => None,
    };
    let (state_height, state_time_ms) = match &bundle.state {
        Some(s) => {
            check_state(
                s,
                bundle,
                chain_id,
                &validators,
                replay.status,
                &replay.history,
                height,
            )?;
            height = height.max(s.header.height);
            (Some(s.header.height), Some(s.header.time_ms))
        }
        None => (None, None),
    };
    Ok(Verified {
        chain_id: chain_id.to_owned(),
        genesis_hash,
        bill: signed,
        issuer,
        status: replay.status,
        history: replay.history,
        height,
        entries: bundle.entries.len(),
        state_height,
        state_time_ms,
        witnesses,
    })
}

/// The chain a proof (`what`: "bundle", "absence proof") says it is of is the genesis
/// given, by hash and by chain id; returns the genesis validator set. The first links
/// every verifier checks.
pub(crate) fn check_chain(
    what: &str,
    claimed_genesis: &Hash32,
    claimed_chain_id: &str,
    genesis: &Genesis,
) -> Result<ValidatorSet, ProofError> {
    let genesis_hash = genesis.hash();
    if *claimed_genesis != genesis_hash {
        return Err(ProofError::new(
            None,
            Link::GenesisHash,
            format!(
                "{what} is for genesis {claimed_genesis}, the genesis given hashes to {genesis_hash}"
            ),
        ));
    }
    let chain_id = genesis.chain_id.as_str();
    if claimed_chain_id != chain_id {
        return Err(ProofError::new(
            None,
            Link::ChainId,
            format!("{what} names chain {claimed_chain_id:?}, the genesis {chain_id:?}"),
        ));
    }
    genesis
        .validator_set()
        .map_err(|e| ProofError::new(None, Link::ValidatorSet, e.to_string()))
}

/// A header of this chain and validator set, and a certificate that names it (its
/// signatures are checked apart, once per distinct certificate); returns the block
/// hash, or the broken link and why.
pub(crate) fn check_header(
    h: &Header,
    certificate: &CommitCertificate,
    chain_id: &str,
    validators: &ValidatorSet,
) -> Result<Hash32, (Link, String)> {
    if h.chain_id != chain_id {
        return Err((
            Link::HeaderChainId,
            format!("header names chain {:?}, not {chain_id:?}", h.chain_id),
        ));
    }
    let vset_hash = validators.hash();
    if h.validator_set_hash != vset_hash {
        return Err((
            Link::ValidatorSet,
            format!(
                "header names validator set {}, the genesis set hashes to {vset_hash}",
                h.validator_set_hash
            ),
        ));
    }
    let block_hash = h.hash();
    if certificate.height != h.height || certificate.block != block_hash {
        return Err((
            Link::Certificate,
            format!(
                "certificate is for height {} block {}, the header is height {} block {block_hash}",
                certificate.height, certificate.block, h.height
            ),
        ));
    }
    Ok(block_hash)
}

/// The state proof: a certified header at or above every entry, the bill's record on
/// the path to its state root, and a record that summarises exactly the replayed
/// history (same status, same number of transactions, same first and last, same
/// history digest), so no transaction of the bill up to that height is missing.
fn check_state(
    s: &StateEvidence,
    bundle: &ProofBundle,
    chain_id: &str,
    validators: &ValidatorSet,
    status: BillStatus,
    history: &[ProvedStep],
    entries_height: u64,
) -> Result<(), ProofError> {
    use crate::state_tree::{BillState, HistoryStep, StateKey, StateProof, history_digest};
    let fail = |reason: String| Err(ProofError::new(None, Link::StateProof, reason));
    let h = &s.header;
    if h.chain_id != chain_id || h.validator_set_hash != validators.hash() {
        return fail("the state header names another chain or validator set".into());
    }
    if h.height < entries_height {
        return fail(format!(
            "the state header is at height {}, below the bundle's transactions at {entries_height}",
            h.height
        ));
    }
    let hash = h.hash();
    if s.certificate.height != h.height || s.certificate.block != hash {
        return fail("the state header's certificate is for another block".into());
    }
    s.certificate
        .verify(chain_id, h.height, &hash, validators)
        .map_err(|e| ProofError::new(None, Link::StateProof, format!("certificate: {e}")))?;
    let record = BillState::from_canonical_bytes(&s.record)
        .map_err(|e| ProofError::new(None, Link::StateProof, format!("record: {e}")))?;
    let proof = StateProof::from_canonical_bytes(&s.proof)
        .map_err(|e| ProofError::new(None, Link::StateProof, format!("proof: {e}")))?;
    let key = StateKey::Bill(bundle.bill);
    proof
        .verify_member(&h.state_root, &key.hash(), &key.value_hash(&s.record))
        .map_err(|e| ProofError::new(None, Link::StateProof, e.to_string()))?;
    let digest = history_digest(history.iter().map(|step| HistoryStep {
        action: step.action,
        by: step.by,
        height: step.height,
        time_ms: step.time_ms,
        tx_id: step.tx_id,
    }));
    let (Some(first), Some(last)) = (history.first(), history.last()) else {
        return fail("no history to compare the state record with".into());
    };
    if record.status != status {
        return fail(format!(
            "the state tree says {}, the transactions replay to {}",
            record.status.as_str(),
            status.as_str()
        ));
    }
    if usize::try_from(record.history_len).ok() != Some(history.len())
        || record.history_digest != digest
        || record.issue_tx != first.tx_id
        || record.last_tx != last.tx_id
        || record.last_height != last.height
    {
        return fail(format!(
            "the state tree records {} transactions of the bill up to height {}, the bundle shows {}: a transaction is missing or extra",
            record.history_len,
            h.height,
            history.len()
        ));
    }
    Ok(())
}

fn check_regulators(i: usize, e: &ProvedTx, genesis: &Genesis) -> Result<(), ProofError> {
    let Auth::Regulators(sigs) = &e.tx.auth else {
        return Err(ProofError::at(
            i,
            Link::RegulatorSignature,
            "a registry change carries regulator signatures, not a unit's",
        ));
    };
    let regs = &genesis.regulators;
    if sigs.windows(2).any(|w| w[0].index >= w[1].index) {
        return Err(ProofError::at(
            i,
            Link::RegulatorSignature,
            "regulator signatures are not in strictly increasing index order",
        ));
    }
    let msg = e.tx.tx.signing_bytes(&genesis.chain_id);
    for s in sigs {
        let Some(r) = regs.keys.get(usize::from(s.index)) else {
            return Err(ProofError::at(
                i,
                Link::RegulatorSignature,
                format!("regulator index {} is not in the genesis", s.index),
            ));
        };
        r.public_key.verify(&msg, &s.signature).map_err(|_| {
            ProofError::at(
                i,
                Link::RegulatorSignature,
                format!(
                    "signature of regulator {} ({}) does not verify",
                    s.index, r.name
                ),
            )
        })?;
    }
    if sigs.len() < usize::from(regs.threshold) {
        return Err(ProofError::at(
            i,
            Link::RegulatorSignature,
            format!(
                "{} regulator signatures, {} needed",
                sigs.len(),
                regs.threshold
            ),
        ));
    }
    Ok(())
}

fn unit_signature(
    i: usize,
    e: &ProvedTx,
    key: &PublicKey,
    chain_id: &str,
    link: Link,
) -> Result<crate::keys::Signature, ProofError> {
    let Auth::Unit(sig) = &e.tx.auth else {
        return Err(ProofError::at(
            i,
            link,
            "a unit's transaction carries one unit signature",
        ));
    };
    key.verify(&e.tx.tx.signing_bytes(chain_id), sig)
        .map_err(|err| ProofError::at(i, link, format!("{err} (key {key})")))?;
    Ok(*sig)
}

/// A proposal seen in the bundle, with the genesis regulators who approved it.
struct PendingProposal {
    action: TxBody,
    approvals: std::collections::BTreeSet<u16>,
    executed: bool,
}

/// Checks the one regulator signature of a proposal or a vote against the genesis
/// regulators; returns the signer's index.
fn check_one_regulator(i: usize, e: &ProvedTx, genesis: &Genesis) -> Result<u16, ProofError> {
    let sig_err = |reason: String| ProofError::at(i, Link::RegulatorSignature, reason);
    let Auth::Regulators(sigs) = &e.tx.auth else {
        return Err(sig_err(
            "a proposal or vote carries one regulator's signature".into(),
        ));
    };
    let [s] = sigs.as_slice() else {
        return Err(sig_err(format!(
            "{} signatures on one regulator's vote",
            sigs.len()
        )));
    };
    let Some(r) = genesis.regulators.keys.get(usize::from(s.index)) else {
        return Err(sig_err(format!(
            "regulator index {} is not in the genesis",
            s.index
        )));
    };
    r.public_key
        .verify(&e.tx.tx.signing_bytes(&genesis.chain_id), &s.signature)
        .map_err(|_| {
            sig_err(format!(
                "signature of regulator {} ({}) does not verify (the verifier counts the genesis regulators)",
                s.index, r.name
            ))
        })?;
    Ok(s.index)
}

/// Applies a registry action (already proved signed by enough regulators) to the units.
fn apply_registry(
    i: usize,
    action: &TxBody,
    height: u64,
    units: &mut BTreeMap<CreditCode, UnitState>,
) -> Result<(), ProofError> {
    let reg_err = |reason: String| ProofError::at(i, Link::UnitRegistration, reason);
    match action {
        TxBody::RegisterIssuer {
            credit_code,
            name,
            public_key,
            code_prefixes,
            valid_until,
        } => {
            if units.contains_key(credit_code) {
                return Err(reg_err(format!("{credit_code} is registered twice")));
            }
            units.insert(
                *credit_code,
                UnitState {
                    name: name.clone(),
                    key: *public_key,
                    prefixes: Some(code_prefixes.clone()),
                    revoked_at: None,
                    valid_until: Some(*valid_until),
                    in_genesis: false,
                },
            );
        }
        TxBody::RegisterReimburser {
            credit_code,
            name,
            public_key,
        } => {
            if units.contains_key(credit_code) {
                return Err(reg_err(format!("{credit_code} is registered twice")));
            }
            units.insert(
                *credit_code,
                UnitState {
                    name: name.clone(),
                    key: *public_key,
                    prefixes: None,
                    revoked_at: None,
                    valid_until: None,
                    in_genesis: false,
                },
            );
        }
        TxBody::RotateKey {
            credit_code,
            public_key,
        } => {
            let Some(u) = units.get_mut(credit_code) else {
                return Err(reg_err(format!(
                    "key rotation of {credit_code}, which is not registered"
                )));
            };
            u.key = *public_key;
        }
        TxBody::RevokeUnit { credit_code, .. } => {
            let Some(u) = units.get_mut(credit_code) else {
                return Err(reg_err(format!(
                    "revocation of {credit_code}, which is not registered"
                )));
            };
            u.revoked_at = Some(height);
        }
        TxBody::SetPrefixes {
            credit_code,
            code_prefixes,
        } => {
            let Some(u) = units.get_mut(credit_code) else {
                return Err(reg_err(format!(
                    "prefix change of {credit_code}, which is not registered"
                )));
            };
            u.prefixes = Some(code_prefixes.clone());
        }
        TxBody::RenewQualification {
            credit_code,
            valid_until,
        } => {
            let Some(u) = units.get_mut(credit_code) else {
                return Err(reg_err(format!(
                    "renewal of {credit_code}, which is not registered"
                )));
            };
            u.valid_until = Some(*valid_until);
        }
        other => {
            return Err(ProofError::at(
                i,
                Link::RegulatorSignature,
                format!(
                    "{} is not replayed by this verifier: it counts the genesis regulators only",
                    other.kind().as_str()
                ),
            ));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_lines)]
fn replay_entry(
    i: usize,
    e: &ProvedTx,
    block_hash: Hash32,
    bundle: &ProofBundle,
    genesis: &Genesis,
    units: &mut BTreeMap<CreditCode, UnitState>,
    replay: &mut Replay,
) -> Result<(), ProofError> {
    let chain_id = genesis.chain_id.as_str();
    let height = e.header.height;
    let body = &e.tx.tx.body;
    let step = |by: CreditCode| ProvedStep {
        action: body.kind(),
        by,
        height,
        index: e.proof.leaf_index,
        time_ms: e.header.time_ms,
        block_hash,
        tx_id: e.tx.tx.id(chain_id),
    };
    let reg_err = |reason: String| ProofError::at(i, Link::UnitRegistration, reason);
    match body {
        TxBody::RegisterIssuer { .. }
        | TxBody::RegisterReimburser { .. }
        | TxBody::RotateKey { .. }
        | TxBody::RevokeUnit { .. }
        | TxBody::SetPrefixes { .. }
        | TxBody::RenewQualification { .. } => {
            check_regulators(i, e, genesis)?;
            apply_registry(i, body, height, units)?;
        }
        TxBody::Propose { action, .. } => {
            let index = check_one_regulator(i, e, genesis)?;
            let Some(id) = body.proposal_id(chain_id) else {
                unreachable!("a Propose has an id")
            };
            let mut pending = PendingProposal {
                action: (**action).clone(),
                approvals: std::collections::BTreeSet::from([index]),
                executed: false,
            };
            if pending.approvals.len() >= usize::from(genesis.regulators.threshold) {
                apply_registry(i, &pending.action, height, units)?;
                pending.executed = true;
            }
            replay.proposals.insert(id, pending);
        }
        TxBody::Approve { proposal } => {
            let index = check_one_regulator(i, e, genesis)?;
            let Some(pending) = replay.proposals.get_mut(proposal) else {
                return Err(ProofError::at(
                    i,
                    Link::RegulatorSignature,
                    format!(
                        "an approval of proposal {proposal}, whose Propose is not in the bundle"
                    ),
                ));
            };
            if pending.executed || !pending.approvals.insert(index) {
                return Err(ProofError::at(
                    i,
                    Link::RegulatorSignature,
                    format!(
                        "approval of proposal {proposal} by regulator {index} after it executed or a second time"
                    ),
                ));
            }
            if pending.approvals.len() >= usize::from(genesis.regulators.threshold) {
                let action = pending.action.clone();
                pending.executed = true;
                apply_registry(i, &action, height, units)?;
            }
        }
        TxBody::AddRegulator { .. }
        | TxBody::RemoveRegulator { .. }
        | TxBody::SetThreshold { .. }
        | TxBody::Reject { .. }
        | TxBody::Withdraw { .. } => {
            return Err(ProofError::at(
                i,
                Link::RegulatorSignature,
                format!(
                    "{} is not replayed by this verifier: it counts the genesis regulators only",
                    body.kind().as_str()
                ),
            ));
        }
        TxBody::IssueBill(bill) => {
            if bill.id() != bundle.bill {
                return Err(ProofError::at(
                    i,
                    Link::BillId,
                    format!(
                        "IssueBill of bill {}, the bundle is for {}",
                        bill.id(),
                        bundle.bill
                    ),
                ));
            }
            if replay.signed.is_some() {
                return Err(ProofError::at(
                    i,
                    Link::LifecycleOrder,
                    format!("bill {} is issued a second time", bundle.bill),
                ));
            }
            if e.tx.tx.nonce != 0 {
                return Err(ProofError::at(
                    i,
                    Link::IssueBill,
                    format!("an IssueBill has nonce 0, not {}", e.tx.tx.nonce),
                ));
            }
            bill.validate(&genesis.params)
                .map_err(|err| ProofError::at(i, Link::IssueBill, err.to_string()))?;
            let issuer_err = |reason: String| ProofError::at(i, Link::IssuerRegistration, reason);
            let Some(u) = units.get(&bill.issuer) else {
                return Err(issuer_err(format!(
                    "{} is not a registered issuing unit at height {height}",
                    bill.issuer
                )));
            };
            if let Some(r) = u.revoked_at {
                return Err(issuer_err(format!(
                    "{} was revoked at height {r}",
                    bill.issuer
                )));
            }
            if let Some(until) = u.valid_until
                && until.lapsed_at(e.header.time_ms)
            {
                return Err(issuer_err(format!(
                    "the qualification of {} lapsed at {until}, before block {height}",
                    bill.issuer
                )));
            }
            let Some(prefixes) = &u.prefixes else {
                return Err(issuer_err(format!(
                    "{} is registered as a reimbursing unit, not an issuer",
                    bill.issuer
                )));
            };
            if !prefixes.iter().any(|p| bill.code.has_prefix(p)) {
                return Err(issuer_err(format!(
                    "{} may issue under prefixes {:?}, not code {}",
                    bill.issuer,
                    prefixes.iter().map(CodePrefix::as_str).collect::<Vec<_>>(),
                    bill.code
                )));
            }
            unit_signature(i, e, &u.key, chain_id, Link::IssuerSignature)?;
            let Some(signed) = e.tx.to_signed_bill() else {
                return Err(ProofError::at(
                    i,
                    Link::IssuerSignature,
                    "not a unit-signed IssueBill",
                ));
            };
            replay.issuer = Some(ProvedIssuer {
                credit_code: bill.issuer,
                name: u.name.clone(),
                public_key: u.key,
                in_genesis: u.in_genesis,
            });
            replay.signed = Some(signed);
            replay.status = BillStatus::Issued;
            replay.history.push(step(bill.issuer));
        }
        TxBody::RedReverse { .. }
        | TxBody::ExchangePaper { .. }
        | TxBody::Lock { .. }
        | TxBody::Unlock { .. }
        | TxBody::ConfirmReimbursed { .. } => {
            let (Some(bill_id), Actor::Unit(by)) = (body.bill_id(), body.actor()) else {
                return Err(ProofError::at(
                    i,
                    Link::LifecycleOrder,
                    "not a lifecycle transaction",
                ));
            };
            if bill_id != bundle.bill {
                return Err(ProofError::at(
                    i,
                    Link::BillId,
                    format!(
                        "{} of bill {bill_id}, the bundle is for {}",
                        body.kind().as_str(),
                        bundle.bill
                    ),
                ));
            }
            let Some(signed) = &replay.signed else {
                return Err(ProofError::at(
                    i,
                    Link::LifecycleOrder,
                    format!("{} before the bill was issued", body.kind().as_str()),
                ));
            };
            let issuer_side = matches!(
                body,
                TxBody::RedReverse { .. } | TxBody::ExchangePaper { .. }
            );
            let Some(u) = units.get(&by) else {
                return Err(reg_err(format!(
                    "{by} is not a registered unit at height {height}"
                )));
            };
            if let Some(r) = u.revoked_at {
                return Err(reg_err(format!("{by} was revoked at height {r}")));
            }
            if u.prefixes.is_some() != issuer_side {
                return Err(reg_err(format!(
                    "{by} is not registered for {}",
                    body.kind().as_str()
                )));
            }
            if let Some(until) = u.valid_until
                && until.lapsed_at(e.header.time_ms)
            {
                return Err(reg_err(format!(
                    "the qualification of {by} lapsed at {until}, before block {height}"
                )));
            }
            unit_signature(i, e, &u.key, chain_id, Link::UnitSignature)?;
            if replay.history.len() > limits::MAX_BILL_HISTORY {
                return Err(ProofError::at(
                    i,
                    Link::LifecycleOrder,
                    format!("more than {} changes of one bill", limits::MAX_BILL_HISTORY),
                ));
            }
            replay.status = transition(
                replay.status,
                body,
                by,
                height,
                &signed.bill.issuer,
                &signed.check_code,
            )
            .map_err(|reason| ProofError::at(i, Link::LifecycleOrder, reason))?;
            replay.history.push(step(by));
        }
    }
    Ok(())
}

/// The bill's next status by the ledger's own rule ([`crate::transition::transition`]),
/// or why the transaction could not have applied.
fn transition(
    status: BillStatus,
    body: &TxBody,
    by: CreditCode,
    height: u64,
    issuer: &CreditCode,
    check_code: &CheckCode,
) -> Result<BillStatus, String> {
    use crate::transition::{Lifecycle, TransitionFacts};
    let kind = body.kind().as_str();
    let Some(action) = Lifecycle::of(body.kind()) else {
        return Err(format!("{kind} is not a lifecycle transaction"));
    };
    let check_code_matches = match body {
        TxBody::Lock { check_code: c, .. } | TxBody::ConfirmReimbursed { check_code: c, .. } => {
            c.ct_eq(check_code)
        }
        _ => true,
    };
    let facts = TransitionFacts {
        issuer: *issuer,
        check_code_matches,
    };
    crate::transition::transition(status, action, by, height, facts)
        .map_err(|e| format!("{kind} by {by}: {e}"))
}
