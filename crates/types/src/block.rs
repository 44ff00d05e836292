//! Blocks, votes, proposals and commit certificates (docs/design.md §4; bytes in docs/spec/block.md, docs/spec/vote.md, docs/spec/certificate.md).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec::{Canonical, DecodeError, Decoder, Encoder};
use crate::hash::Hash32;
use crate::keys::{Keypair, PublicKey, Signature, verify_many};
use crate::limits;
use crate::merkle;
use crate::tx::{SignedTx, TxId};

/// Domain tag of a block header.
pub const HEADER_DOMAIN: &str = "ebill/header/v1";
/// Domain tag of a vote.
pub const VOTE_DOMAIN: &str = "ebill/vote/v1";
/// Domain tag of a proposal.
pub const PROPOSAL_DOMAIN: &str = "ebill/proposal/v1";
/// Domain tag of a validator set.
pub const VALIDATOR_SET_DOMAIN: &str = "ebill/validators/v1";

/// One validator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validator {
    /// A human name (the operating agency).
    pub name: String,
    /// The key that signs its votes and proposals.
    pub public_key: PublicKey,
}

/// The fixed validator set of a chain, in genesis order; every validator has one vote.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

/// Why a validator set was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidatorSetError {
    /// None, or more than the limit.
    #[error("a validator set has 1 to {max} validators, not {0}", max = limits::MAX_VALIDATORS)]
    Size(usize),
    /// The same key twice.
    #[error("validator key {0} appears twice")]
    DuplicateKey(PublicKey),
    /// A key that may not sign.
    #[error("validator {name}: {reason}")]
    BadKey {
        /// The validator.
        name: String,
        /// Why.
        reason: String,
    },
}

impl ValidatorSet {
    /// A validated set.
    pub fn new(validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() || validators.len() > limits::MAX_VALIDATORS {
            return Err(ValidatorSetError::Size(validators.len()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for v in &validators {
            if !seen.insert(v.public_key) {
                return Err(ValidatorSetError::DuplicateKey(v.public_key));
            }
            v.public_key
                .check_registrable()
                .map_err(|e| ValidatorSetError::BadKey {
                    name: v.name.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(Self { validators })
    }

    /// Number of validators, n.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true for a validated set.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// Validators in order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// The validator at `index`.
    pub fn get(&self, index: u32) -> Option<&Validator> {
        self.validators.get(index as usize)
    }

    /// Index of the validator with `key`.
    pub fn index_of(&self, key: &PublicKey) -> Option<u32> {
        self.validators
            .iter()
            .position(|v| v.public_key == *key)
            .map(|i| i as u32)
    }

    /// The most faulty validators the set tolerates: f = floor((n - 1) / 3).
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Votes needed for a quorum: more than two thirds, floor(2n / 3) + 1.
    pub fn quorum(&self) -> usize {
        self.len() * 2 / 3 + 1
    }

    /// Votes that prove at least one honest validator: f + 1.
    pub fn honest_threshold(&self) -> usize {
        self.max_faulty() + 1
    }

    /// The proposer of `height` and `round`: round robin over the set.
    pub fn proposer(&self, height: u64, round: u32) -> u32 {
        let n = self.len() as u64;
        ((height + u64::from(round)) % n) as u32
    }

    /// Hash of the set, stored in every header.
    pub fn hash(&self) -> Hash32 {
        let mut enc = Encoder::with_domain(VALIDATOR_SET_DOMAIN);
        enc.seq(&self.validators, |e, v| {
            e.str(&v.name);
            v.public_key.encode_to(e);
        });
        Hash32::digest(&enc.finish())
    }
}

/// A block header: what the commit certificate signs, through its hash.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// The chain.
    pub chain_id: String,
    /// Height, from 1.
    pub height: u64,
    /// Hash of the previous block; the genesis hash for height 1.
    pub prev_hash: Hash32,
    /// The proposer's time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Index of the proposer in the validator set.
    pub proposer: u32,
    /// RFC 6962 root over the canonical bytes of the signed transactions.
    pub tx_root: Hash32,
    /// Number of transactions.
    pub tx_count: u32,
    /// Hash of the validator set.
    pub validator_set_hash: Hash32,
    /// Root of the state after this block; all zeros until the state tree exists.
    pub state_root: Hash32,
}

impl Header {
    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        Hash32::digest(&self.to_canonical_bytes())
    }
}

impl Canonical for Header {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.str(HEADER_DOMAIN)
            .str(&self.chain_id)
            .u64(self.height)
            .fixed(&self.prev_hash.0)
            .u64(self.time_ms)
            .u32(self.proposer)
            .fixed(&self.tx_root.0)
            .u32(self.tx_count)
            .fixed(&self.validator_set_hash.0)
            .fixed(&self.state_root.0);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let tag = dec.bytes("domain tag", HEADER_DOMAIN.len())?;
        if tag != HEADER_DOMAIN.as_bytes() {
            return Err(DecodeError::WrongDomain {
                expected: HEADER_DOMAIN,
            });
        }
        Ok(Self {
            chain_id: dec.str("chain id", limits::MAX_CHAIN_ID_BYTES)?.to_owned(),
            height: dec.u64("height")?,
            prev_hash: Hash32::decode_from(dec)?,
            time_ms: dec.u64("time")?,
            proposer: dec.u32("proposer")?,
            tx_root: Hash32::decode_from(dec)?,
            tx_count: dec.u32("tx count")?,
            validator_set_hash: Hash32::decode_from(dec)?,
            state_root: Hash32::decode_from(dec)?,
        })
    }
}

/// A block: header and the signed transactions, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The transactions.
    pub txs: Vec<SignedTx>,
}

/// Why a block's body does not match its header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BlockError {
    /// Count differs.
    #[error("header says {header} transactions, body has {body}")]
    CountMismatch {
        /// In the header.
        header: u32,
        /// In the body.
        body: usize,
    },
    /// Root differs.
    #[error("transaction root {computed} does not match the header's {header}")]
    RootMismatch {
        /// Computed from the body.
        computed: Hash32,
        /// In the header.
        header: Hash32,
    },
}

impl Block {
    /// Leaf hashes of the transactions: RFC 6962 leaf hashes of their canonical bytes.
    pub fn leaf_hashes(txs: &[SignedTx]) -> Vec<Hash32> {
        txs.iter()
            .map(|t| merkle::leaf_hash(&t.to_canonical_bytes()))
            .collect()
    }

    /// The transaction root of `txs`.
    pub fn tx_root(txs: &[SignedTx]) -> Hash32 {
        merkle::root_from_leaf_hashes(&Self::leaf_hashes(txs))
    }

    /// Checks that the body is the one the header commits to.
    pub fn check_body(&self) -> Result<(), BlockError> {
        self.check_body_leaves(&Self::leaf_hashes(&self.txs))
    }

    /// [`Block::check_body`] with the Merkle leaf hashes of the transactions already
    /// computed (by a caller that encoded them for other checks too).
    pub fn check_body_leaves(&self, leaves: &[Hash32]) -> Result<(), BlockError> {
        if self.header.tx_count as usize != self.txs.len() || leaves.len() != self.txs.len() {
            return Err(BlockError::CountMismatch {
                header: self.header.tx_count,
                body: self.txs.len(),
            });
        }
        let computed = merkle::root_from_leaf_hashes(leaves);
        if computed != self.header.tx_root {
            return Err(BlockError::RootMismatch {
                computed,
                header: self.header.tx_root,
            });
        }
        Ok(())
    }

    /// Ids of the transactions on `chain_id`.
    pub fn tx_ids(&self) -> Vec<TxId> {
        self.txs
            .iter()
            .map(|t| t.tx.id(&self.header.chain_id))
            .collect()
    }

    /// Canonical bytes with at most `max_txs` transactions of at most `max_tx_bytes` each
    /// are accepted by [`Block::decode_bounded`].
    pub fn decode_bounded(
        bytes: &[u8],
        max_txs: usize,
        max_tx_bytes: usize,
    ) -> Result<Self, DecodeError> {
        let mut dec = Decoder::new(bytes);
        let header = Header::decode_from(&mut dec)?;
        let txs = dec.seq("transactions", max_txs.min(limits::MAX_BLOCK_TXS), |d| {
            let raw = d.bytes("transaction", max_tx_bytes.min(limits::MAX_TX_BYTES))?;
            SignedTx::from_canonical_bytes(raw)
        })?;
        dec.finish()?;
        Ok(Self { header, txs })
    }
}

impl Canonical for Block {
    fn encode_to(&self, enc: &mut Encoder) {
        self.header.encode_to(enc);
        enc.seq(&self.txs, |e, t| {
            e.bytes(&t.to_canonical_bytes());
        });
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let header = Header::decode_from(dec)?;
        let txs = dec.seq("transactions", limits::MAX_BLOCK_TXS, |d| {
            let raw = d.bytes("transaction", limits::MAX_TX_BYTES)?;
            SignedTx::from_canonical_bytes(raw)
        })?;
        Ok(Self { header, txs })
    }
}

/// Prevote or precommit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum VoteKind {
    /// First voting step.
    Prevote,
    /// Second voting step; 2f+1 of them for one block make it final.
    Precommit,
}

/// A vote of one validator for a block hash, or for nothing (nil).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// The block voted for; `None` is a nil vote.
    pub block: Option<Hash32>,
    /// Index of the voter in the validator set.
    pub validator: u32,
}

impl Vote {
    /// The bytes the validator signs.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut enc = Encoder::with_domain(VOTE_DOMAIN);
        enc.str(chain_id)
            .u8(match self.kind {
                VoteKind::Prevote => 1,
                VoteKind::Precommit => 2,
            })
            .u64(self.height)
            .u32(self.round)
            .option(self.block.as_ref(), |e, h| {
                e.fixed(&h.0);
            })
            .u32(self.validator);
        enc.finish()
    }

    /// Signs it.
    pub fn sign(self, chain_id: &str, key: &Keypair) -> SignedVote {
        SignedVote {
            signature: key.sign(&self.signing_bytes(chain_id)),
            vote: self,
        }
    }
}

/// A vote with its signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedVote {
    /// The vote.
    pub vote: Vote,
    /// The validator's signature over its signing bytes.
    pub signature: Signature,
}

impl SignedVote {
    /// Checks the signature against the validator set.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> bool {
        validators.get(self.vote.validator).is_some_and(|v| {
            v.public_key
                .verify(&self.vote.signing_bytes(chain_id), &self.signature)
                .is_ok()
        })
    }
}

impl Canonical for SignedVote {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u8(match self.vote.kind {
            VoteKind::Prevote => 1,
            VoteKind::Precommit => 2,
        })
        .u64(self.vote.height)
        .u32(self.vote.round)
        .option(self.vote.block.as_ref(), |e, h| {
            e.fixed(&h.0);
        })
        .u32(self.vote.validator);
        self.signature.encode_to(enc);
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let kind = match dec.u8("vote kind")? {
            1 => VoteKind::Prevote,
            2 => VoteKind::Precommit,
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "vote kind",
                    value: u64::from(v),
                });
            }
        };
        Ok(Self {
            vote: Vote {
                kind,
                height: dec.u64("height")?,
                round: dec.u32("round")?,
                block: dec.option("block", Hash32::decode_from)?,
                validator: dec.u32("validator")?,
            },
            signature: Signature::decode_from(dec)?,
        })
    }
}

/// A proposer's proposal of a block for a height and round.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proposal {
    /// Height.
    pub height: u64,
    /// Round.
    pub round: u32,
    /// Hash of the proposed block.
    pub block: Hash32,
    /// The round in which this block got a polka (2f+1 prevotes) before, if any
    /// (validRound of the paper; -1 there).
    pub pol_round: Option<u32>,
    /// Index of the proposer.
    pub proposer: u32,
}

impl Proposal {
    /// The bytes the proposer signs.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        let mut enc = Encoder::with_domain(PROPOSAL_DOMAIN);
        enc.str(chain_id)
            .u64(self.height)
            .u32(self.round)
            .fixed(&self.block.0)
            .option(self.pol_round.as_ref(), |e, r| {
                e.u32(*r);
            })
            .u32(self.proposer);
        enc.finish()
    }

    /// Signs it.
    pub fn sign(self, chain_id: &str, key: &Keypair) -> SignedProposal {
        SignedProposal {
            signature: key.sign(&self.signing_bytes(chain_id)),
            proposal: self,
        }
    }
}

/// A proposal with its signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedProposal {
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature.
    pub signature: Signature,
}

impl SignedProposal {
    /// Checks the signature against the validator set (not whether it is the right
    /// proposer for the round: that is the consensus state machine's rule).
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> bool {
        validators.get(self.proposal.proposer).is_some_and(|v| {
            v.public_key
                .verify(&self.proposal.signing_bytes(chain_id), &self.signature)
                .is_ok()
        })
    }
}

/// One precommit signature in a commit certificate.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitSignature {
    /// Index of the validator.
    pub validator: u32,
    /// Its precommit signature.
    pub signature: Signature,
}

/// 2f+1 precommits for one block at one height and round: the proof that it is final.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitCertificate {
    /// Height.
    pub height: u64,
    /// Round of the precommits.
    pub round: u32,
    /// The block.
    pub block: Hash32,
    /// The precommit signatures, in strictly increasing validator order.
    pub signatures: Vec<CommitSignature>,
}

/// Why a commit certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// For another block or height.
    #[error(
        "certificate is for height {cert_height} block {cert_block}, not height {height} block {block}"
    )]
    WrongBlock {
        /// The certificate's height.
        cert_height: u64,
        /// The certificate's block.
        cert_block: Hash32,
        /// The expected height.
        height: u64,
        /// The expected block.
        block: Hash32,
    },
    /// Validators not in strictly increasing order, or unknown.
    #[error("signer list is not strictly increasing known validators")]
    BadSigners,
    /// Not enough signatures.
    #[error("{got} precommits, {need} needed")]
    NoQuorum {
        /// Valid signatures.
        got: usize,
        /// Quorum.
        need: usize,
    },
    /// A signature did not verify.
    #[error("precommit signature of validator {0} does not verify")]
    BadSignature(u32),
}

impl CommitCertificate {
    /// Checks that this certifies `block` at `height` with a quorum of valid precommit
    /// signatures from `validators`.
    pub fn verify(
        &self,
        chain_id: &str,
        height: u64,
        block: &Hash32,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        if self.height != height || self.block != *block {
            return Err(CertificateError::WrongBlock {
                cert_height: self.height,
                cert_block: self.block,
                height,
                block: *block,
            });
        }
        if self
            .signatures
            .windows(2)
            .any(|w| w[0].validator >= w[1].validator)
        {
            return Err(CertificateError::BadSigners);
        }
        let mut msgs = Vec::with_capacity(self.signatures.len());
        let mut keys = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let v = validators
                .get(s.validator)
                .ok_or(CertificateError::BadSigners)?;
            keys.push(v.public_key);
            msgs.push(
                Vote {
                    kind: VoteKind::Precommit,
                    height: self.height,
                    round: self.round,
                    block: Some(self.block),
                    validator: s.validator,
                }
                .signing_bytes(chain_id),
            );
        }
        if self.signatures.len() < validators.quorum() {
            return Err(CertificateError::NoQuorum {
                got: self.signatures.len(),
                need: validators.quorum(),
            });
        }
        let items: Vec<_> = self
            .signatures
            .iter()
            .zip(&keys)
            .zip(&msgs)
            .map(|((s, k), m)| (k, m.as_slice(), &s.signature))
            .collect();
        for (ok, s) in verify_many(&items).into_iter().zip(&self.signatures) {
            if !ok {
                return Err(CertificateError::BadSignature(s.validator));
            }
        }
        Ok(())
    }
}

impl Canonical for CommitCertificate {
    fn encode_to(&self, enc: &mut Encoder) {
        enc.u64(self.height).u32(self.round).fixed(&self.block.0);
        enc.seq(&self.signatures, |e, s| {
            e.u32(s.validator);
            s.signature.encode_to(e);
        });
    }
    fn decode_from(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            height: dec.u64("height")?,
            round: dec.u32("round")?,
            block: Hash32::decode_from(dec)?,
            signatures: dec.seq("commit signatures", limits::MAX_VALIDATORS, |d| {
                Ok(CommitSignature {
                    validator: d.u32("validator")?,
                    signature: Signature::decode_from(d)?,
                })
            })?,
        })
    }
}
