//! Gossip: topics, the canonical envelopes of gossiped messages, and the checks every
//! message passes before it is delivered to the application or forwarded to peers.
//!
//! Every envelope starts with its own domain tag and is decoded strictly (bounded
//! lengths, no trailing bytes) with the canonical decoders of `ebill-types`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ebill_types::checkpoint::{Checkpoint, Cosignature, Witnesses};
use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::{
    Block, CommitCertificate, Hash32, Proposal, Signature, SignedProposal, SignedTx, SignedVote,
    ValidatorSet,
};
use libp2p::gossipsub::IdentTopic;

use crate::config::Limits;
use crate::error::NetError;

/// Domain tag of a gossiped transaction batch.
pub const TXS_DOMAIN: &str = "ebill/net/txs/v1";
/// Domain tag of a gossiped consensus message.
pub const CONSENSUS_DOMAIN: &str = "ebill/net/consensus/v2";
/// Domain tag of a committed-block announcement.
pub const BLOCK_DOMAIN: &str = "ebill/net/block/v1";
/// Domain tag of a gossiped witness co-signature.
pub const COSIGNATURE_DOMAIN: &str = "ebill/net/cosignature/v1";

const TAG_PROPOSAL: u8 = 1;
const TAG_VOTE: u8 = 2;

/// A consensus message as it travels: a proposal with the bytes of its block (so that
/// validators need no second round trip), or a vote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ConsensusMsg {
    /// A signed proposal and, normally, the block it names. `None` when the proposer
    /// re-broadcasts a proposal whose block was already sent.
    Proposal {
        /// The signed proposal.
        proposal: SignedProposal,
        /// The proposed block; its header hash is `proposal.proposal.block`.
        block: Option<Block>,
    },
    /// A signed prevote or precommit.
    Vote(SignedVote),
}

impl ConsensusMsg {
    /// The message for the consensus state machine (the block, if any, goes to the
    /// node's candidate store).
    pub fn message(&self) -> ebill_consensus::Message {
        match self {
            ConsensusMsg::Proposal { proposal, .. } => {
                ebill_consensus::Message::Proposal(*proposal)
            }
            ConsensusMsg::Vote(v) => ebill_consensus::Message::Vote(*v),
        }
    }

    /// Height of the message.
    pub fn height(&self) -> u64 {
        match self {
            ConsensusMsg::Proposal { proposal, .. } => proposal.proposal.height,
            ConsensusMsg::Vote(v) => v.vote.height,
        }
    }
}

impl From<ebill_consensus::Message> for ConsensusMsg {
    /// A proposal without its block, or a vote.
    fn from(m: ebill_consensus::Message) -> Self {
        match m {
            ebill_consensus::Message::Proposal(p) => ConsensusMsg::Proposal {
                proposal: p,
                block: None,
            },
            ebill_consensus::Message::Vote(v) => ConsensusMsg::Vote(v),
        }
    }
}

/// The four gossip topics of a chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub(crate) enum TopicKind {
    /// Batches of signed transactions.
    Txs,
    /// Proposals (with blocks) and votes.
    Consensus,
    /// Committed blocks with their certificates.
    Blocks,
    /// Witnesses' co-signatures of checkpoints.
    Cosignatures,
}

impl TopicKind {
    /// All topics.
    pub(crate) const ALL: [TopicKind; 4] = [
        TopicKind::Txs,
        TopicKind::Consensus,
        TopicKind::Blocks,
        TopicKind::Cosignatures,
    ];

    /// Whether `topics` holds this topic.
    pub(crate) fn is_in(self, topics: &crate::config::Topics) -> bool {
        match self {
            TopicKind::Txs => topics.txs,
            TopicKind::Consensus => topics.consensus,
            TopicKind::Blocks => topics.blocks,
            TopicKind::Cosignatures => topics.cosignatures,
        }
    }

    /// A short name for logs and errors.
    pub(crate) fn name(self) -> &'static str {
        match self {
            TopicKind::Txs => "txs",
            TopicKind::Consensus => "consensus",
            TopicKind::Blocks => "blocks",
            TopicKind::Cosignatures => "cosignatures",
        }
    }

    /// Bit of this topic in a subscription mask.
    pub(crate) fn bit(self) -> u8 {
        match self {
            TopicKind::Txs => 1,
            TopicKind::Consensus => 2,
            TopicKind::Blocks => 4,
            TopicKind::Cosignatures => 8,
        }
    }

    /// The topic of `chain_id`: `/ebill/<chain id>/<name>/1`.
    pub(crate) fn topic(self, chain_id: &str) -> IdentTopic {
        IdentTopic::new(format!("/ebill/{chain_id}/{}/1", self.name()))
    }
}

/// Encodes `txs` as batches of at most `limits.max_batch_txs` transactions and
/// `limits.max_batch_bytes` bytes each. A transaction over `max_tx_bytes` is an error
/// (nothing is published then).
pub(crate) fn encode_tx_batches(
    txs: &[SignedTx],
    limits: &Limits,
) -> Result<Vec<Vec<u8>>, NetError> {
    let mut batches = Vec::new();
    let mut current: Vec<Vec<u8>> = Vec::new();
    // Domain tag (4 + len) and count (4).
    let overhead = 4 + TXS_DOMAIN.len() + 4;
    let mut current_bytes = overhead;
    for tx in txs {
        let bytes = tx.to_canonical_bytes();
        if bytes.len() > limits.max_tx_bytes {
            return Err(NetError::TooLarge {
                what: "transaction",
                bytes: bytes.len(),
                max_bytes: limits.max_tx_bytes,
            });
        }
        let item = 4 + bytes.len();
        if !current.is_empty()
            && (current.len() >= limits.max_batch_txs
                || current_bytes + item > limits.max_batch_bytes)
        {
            batches.push(finish_batch(&current));
            current.clear();
            current_bytes = overhead;
        }
        current_bytes += item;
        current.push(bytes);
    }
    if !current.is_empty() {
        batches.push(finish_batch(&current));
    }
    Ok(batches)
}

fn finish_batch(items: &[Vec<u8>]) -> Vec<u8> {
    let mut enc = Encoder::with_domain(TXS_DOMAIN);
    enc.seq(items, |e, b| {
        e.bytes(b);
    });
    enc.finish()
}

/// Decodes a transaction batch: 1 to `max_batch_txs` transactions of at most
/// `max_tx_bytes` each.
pub(crate) fn decode_tx_batch(data: &[u8], limits: &Limits) -> Result<Vec<SignedTx>, DecodeError> {
    if data.len() > limits.max_batch_bytes {
        return Err(DecodeError::TooLong {
            what: "transaction batch",
            len: data.len(),
            max: limits.max_batch_bytes,
        });
    }
    let mut dec = Decoder::with_domain(data, TXS_DOMAIN)?;
    let txs = dec.seq("transactions", limits.max_batch_txs, |d| {
        let raw = d.bytes("transaction", limits.max_tx_bytes)?;
        SignedTx::decode_bounded(raw, limits.max_tx_bytes)
    })?;
    dec.finish()?;
    if txs.is_empty() {
        return Err(DecodeError::Invalid {
            what: "transaction batch",
            reason: "empty".into(),
        });
    }
    Ok(txs)
}

fn encode_proposal(enc: &mut Encoder, p: &SignedProposal) {
    enc.u64(p.proposal.height)
        .u32(p.proposal.round)
        .fixed(&p.proposal.block.0)
        .option(p.proposal.pol_round.as_ref(), |e, r| {
            e.u32(*r);
        })
        .u32(p.proposal.proposer);
    p.signature.encode_to(enc);
}

fn decode_proposal(dec: &mut Decoder<'_>) -> Result<SignedProposal, DecodeError> {
    Ok(SignedProposal {
        proposal: Proposal {
            height: dec.u64("height")?,
            round: dec.u32("round")?,
            block: Hash32::decode_from(dec)?,
            pol_round: dec.option("pol round", |d| d.u32("pol round"))?,
            proposer: dec.u32("proposer")?,
        },
        signature: Signature::decode_from(dec)?,
    })
}

/// The canonical envelope of a consensus message.
///
/// `attempt` makes every publish distinct bytes: gossip message ids are content hashes, so
/// without it a re-broadcast of the same signed vote (the way consensus recovers from
/// lost messages) would be refused as a duplicate for as long as gossipsub remembers the
/// first. It is outside every signed byte and ignored by receivers.
pub(crate) fn encode_consensus(msg: &ConsensusMsg, attempt: u64) -> Vec<u8> {
    let mut enc = Encoder::with_domain(CONSENSUS_DOMAIN);
    enc.u64(attempt);
    match msg {
        ConsensusMsg::Proposal { proposal, block } => {
            enc.u8(TAG_PROPOSAL);
            encode_proposal(&mut enc, proposal);
            enc.option(block.as_ref(), |e, b| {
                e.bytes(&b.to_canonical_bytes());
            });
        }
        ConsensusMsg::Vote(v) => {
            enc.u8(TAG_VOTE);
            v.encode_to(&mut enc);
        }
    }
    enc.finish()
}

/// Decodes a consensus envelope, with the block (if any) bounded by `limits`.
pub(crate) fn decode_consensus(data: &[u8], limits: &Limits) -> Result<ConsensusMsg, DecodeError> {
    let mut dec = Decoder::with_domain(data, CONSENSUS_DOMAIN)?;
    let _attempt = dec.u64("publish attempt")?;
    let msg = match dec.u8("consensus tag")? {
        TAG_PROPOSAL => {
            let proposal = decode_proposal(&mut dec)?;
            let block = dec.option("block", |d| decode_block_bytes(d, limits))?;
            ConsensusMsg::Proposal { proposal, block }
        }
        TAG_VOTE => ConsensusMsg::Vote(SignedVote::decode_from(&mut dec)?),
        v => {
            return Err(DecodeError::InvalidTag {
                what: "consensus tag",
                value: u64::from(v),
            });
        }
    };
    dec.finish()?;
    Ok(msg)
}

/// Reads a length-prefixed canonical block bounded by `limits`.
pub(crate) fn decode_block_bytes(
    dec: &mut Decoder<'_>,
    limits: &Limits,
) -> Result<Block, DecodeError> {
    let max =
        limits.max_block_bytes + 4 * limits.max_block_txs + crate::config::ENVELOPE_SLACK_BYTES;
    let raw = dec.bytes("block", max)?;
    Block::decode_bounded(raw, limits.max_block_txs, limits.max_tx_bytes)
}

/// Reads a canonical commit certificate (at most `MAX_VALIDATORS` signatures).
pub(crate) fn decode_cert(dec: &mut Decoder<'_>) -> Result<CommitCertificate, DecodeError> {
    CommitCertificate::decode_from(dec)
}

/// The canonical envelope of a committed-block announcement.
pub(crate) fn encode_announcement(block: &Block, cert: &CommitCertificate) -> Vec<u8> {
    let mut enc = Encoder::with_domain(BLOCK_DOMAIN);
    enc.bytes(&block.to_canonical_bytes());
    cert.encode_to(&mut enc);
    enc.finish()
}

/// Decodes an announcement bounded by `limits`.
pub(crate) fn decode_announcement(
    data: &[u8],
    limits: &Limits,
) -> Result<(Block, CommitCertificate), DecodeError> {
    let mut dec = Decoder::with_domain(data, BLOCK_DOMAIN)?;
    let block = decode_block_bytes(&mut dec, limits)?;
    let cert = decode_cert(&mut dec)?;
    dec.finish()?;
    Ok((block, cert))
}

/// The canonical envelope of a witness co-signature: `attempt` (outside every signed
/// byte, as in [`encode_consensus`]), the checkpoint and the co-signature.
pub(crate) fn encode_cosignature(
    checkpoint: &Checkpoint,
    cosignature: &Cosignature,
    attempt: u64,
) -> Vec<u8> {
    let mut enc = Encoder::with_domain(COSIGNATURE_DOMAIN);
    enc.u64(attempt);
    checkpoint.encode_to(&mut enc);
    cosignature.encode_to(&mut enc);
    enc.finish()
}

/// Most bytes of a co-signature envelope: domain tag, attempt, a checkpoint with the
/// longest chain id, key id and signature.
pub(crate) const MAX_COSIGNATURE_ENVELOPE_BYTES: usize = 4
    + COSIGNATURE_DOMAIN.len()
    + 8
    + 4
    + ebill_types::limits::MAX_CHAIN_ID_BYTES
    + 8
    + 64
    + 4
    + 64;

/// Decodes a co-signature envelope, strictly.
pub(crate) fn decode_cosignature(data: &[u8]) -> Result<(Checkpoint, Cosignature), DecodeError> {
    if data.len() > MAX_COSIGNATURE_ENVELOPE_BYTES {
        return Err(DecodeError::TooLong {
            what: "co-signature message",
            len: data.len(),
            max: MAX_COSIGNATURE_ENVELOPE_BYTES,
        });
    }
    let mut dec = Decoder::with_domain(data, COSIGNATURE_DOMAIN)?;
    let _attempt = dec.u64("publish attempt")?;
    let checkpoint = Checkpoint::decode_from(&mut dec)?;
    let cosignature = Cosignature::decode_from(&mut dec)?;
    dec.finish()?;
    Ok((checkpoint, cosignature))
}

/// A gossip message that passed its checks, ready for the application.
#[derive(Debug)]
pub(crate) enum Checked {
    /// A transaction batch.
    Txs(Vec<SignedTx>),
    /// A consensus message.
    Consensus(ConsensusMsg),
    /// A committed block with its certificate.
    Block(Block, CommitCertificate),
    /// A witness's co-signature of a checkpoint.
    Cosignature(Checkpoint, Cosignature),
}

impl Checked {
    /// Whether gossipsub relays the message to this node's mesh after delivering it.
    ///
    /// Every publisher floods its messages to all connected peers (`flood_publish`), and
    /// every node dials every member of the genesis, so relaying only helps a node that
    /// lacks a direct connection to the publisher. For small messages that help is
    /// cheap: votes, and proposals without a block, are relayed. Large messages are
    /// delivered but not relayed (ADR 0005): relayed transaction batches, proposal blocks
    /// and announcements raced ahead of gossipsub's IDONTWANT and cost a third of the
    /// cluster's loopback bytes. What a node misses that way it still gets: transactions
    /// inside the proposed block; a decided block, after the relayed votes tell it the
    /// decision, by `RequestBlock` or sync.
    pub(crate) fn relayed(&self) -> bool {
        match self {
            Checked::Txs(_) | Checked::Block(..) => false,
            Checked::Consensus(ConsensusMsg::Proposal { block, .. }) => block.is_none(),
            Checked::Consensus(ConsensusMsg::Vote(_)) | Checked::Cosignature(..) => true,
        }
    }
}

/// Why a gossip message is not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Invalid: not forwarded, and the sender is at fault.
    Reject(String),
    /// Valid but useless (stale): not forwarded, nobody is at fault.
    Ignore(String),
}

/// The checks of gossip messages. Cheap enough for any message: bounded strict decoding,
/// signatures against the genesis validator set, block bodies against their headers and
/// certificates against the validator set. Whether a transaction applies to the ledger
/// is not checked here (the mempool does it).
#[derive(Debug)]
pub(crate) struct Checker {
    pub(crate) chain_id: String,
    pub(crate) validators: ValidatorSet,
    /// The genesis regulators' observers, whose co-signatures are delivered.
    pub(crate) witnesses: Witnesses,
    pub(crate) limits: Limits,
    /// Messages of this height and below are stale (set by the application).
    pub(crate) tip_height: Arc<AtomicU64>,
}

impl Checker {
    /// The verdict on `data` gossiped on `topic`.
    pub(crate) fn check(&self, topic: TopicKind, data: &[u8]) -> Result<Checked, Refusal> {
        let reject = |e: DecodeError| Refusal::Reject(format!("{} message: {e}", topic.name()));
        match topic {
            TopicKind::Txs => decode_tx_batch(data, &self.limits)
                .map(Checked::Txs)
                .map_err(reject),
            TopicKind::Consensus => {
                let msg = decode_consensus(data, &self.limits).map_err(reject)?;
                self.check_consensus(&msg)?;
                Ok(Checked::Consensus(msg))
            }
            TopicKind::Blocks => {
                let (block, cert) = decode_announcement(data, &self.limits).map_err(reject)?;
                self.check_announcement(&block, &cert)?;
                Ok(Checked::Block(block, cert))
            }
            TopicKind::Cosignatures => {
                let (checkpoint, cosig) = decode_cosignature(data).map_err(reject)?;
                if checkpoint.chain_id != self.chain_id {
                    return Err(Refusal::Reject(format!(
                        "co-signature of a checkpoint of chain {:?}",
                        checkpoint.chain_id
                    )));
                }
                checkpoint
                    .verify_cosignature(&cosig, &self.witnesses)
                    .map_err(|e| Refusal::Reject(format!("co-signature: {e}")))?;
                Ok(Checked::Cosignature(checkpoint, cosig))
            }
        }
    }

    fn tip(&self) -> u64 {
        self.tip_height.load(Ordering::Relaxed)
    }

    fn check_consensus(&self, msg: &ConsensusMsg) -> Result<(), Refusal> {
        if msg.height() <= self.tip() {
            return Err(Refusal::Ignore(format!(
                "consensus message for height {} at tip {}",
                msg.height(),
                self.tip()
            )));
        }
        match msg {
            ConsensusMsg::Vote(v) => {
                if !v.verify(&self.chain_id, &self.validators) {
                    return Err(Refusal::Reject(format!(
                        "vote of validator {} does not verify",
                        v.vote.validator
                    )));
                }
            }
            ConsensusMsg::Proposal { proposal, block } => {
                if !proposal.verify(&self.chain_id, &self.validators) {
                    return Err(Refusal::Reject(format!(
                        "proposal of validator {} does not verify",
                        proposal.proposal.proposer
                    )));
                }
                if let Some(block) = block {
                    self.check_block(block)?;
                    if block.header.height != proposal.proposal.height
                        || block.header.hash() != proposal.proposal.block
                    {
                        return Err(Refusal::Reject(
                            "proposal names another block than the one it carries".into(),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_announcement(&self, block: &Block, cert: &CommitCertificate) -> Result<(), Refusal> {
        if block.header.height <= self.tip() {
            return Err(Refusal::Ignore(format!(
                "announcement of height {} at tip {}",
                block.header.height,
                self.tip()
            )));
        }
        self.check_block(block)?;
        verify_certified(&self.chain_id, &self.validators, block, cert).map_err(Refusal::Reject)
    }

    /// Chain id and body of a block.
    pub(crate) fn check_block(&self, block: &Block) -> Result<(), Refusal> {
        check_block_body(&self.chain_id, block).map_err(Refusal::Reject)
    }
}

/// The block is of `chain_id` and its body matches its header.
pub(crate) fn check_block_body(chain_id: &str, block: &Block) -> Result<(), String> {
    if block.header.chain_id != chain_id {
        return Err(format!("block of chain {:?}", block.header.chain_id));
    }
    block
        .check_body()
        .map_err(|e| format!("block {}: {e}", block.header.height))
}

/// `cert` certifies `block` (height and hash) with a quorum of `validators`.
pub(crate) fn verify_certified(
    chain_id: &str,
    validators: &ValidatorSet,
    block: &Block,
    cert: &CommitCertificate,
) -> Result<(), String> {
    cert.verify(
        chain_id,
        block.header.height,
        &block.header.hash(),
        validators,
    )
    .map_err(|e| format!("certificate of block {}: {e}", block.header.height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_types::dev::{dev_genesis_with, dev_key};
    use ebill_types::{Header, Vote, VoteKind};

    const CHAIN: &str = "unit";

    fn checker() -> Checker {
        let g = dev_genesis_with(CHAIN, 4);
        Checker {
            chain_id: CHAIN.into(),
            validators: g.validator_set().unwrap_or_else(|e| unreachable!("{e}")),
            witnesses: Witnesses::of(&g),
            limits: crate::config::test_limits(),
            tip_height: Arc::new(AtomicU64::new(0)),
        }
    }

    fn vote(validator: u32, signer: u32) -> SignedVote {
        Vote {
            kind: VoteKind::Prevote,
            height: 3,
            round: 0,
            block: None,
            validator,
        }
        .sign(CHAIN, &dev_key("validator", signer))
    }

    fn block(height: u64) -> Block {
        let header = Header {
            chain_id: CHAIN.into(),
            height,
            prev_hash: Hash32::ZERO,
            time_ms: 1,
            proposer: 0,
            tx_root: Block::tx_root(&[]),
            tx_count: 0,
            validator_set_hash: Hash32::ZERO,
            state_root: Hash32::ZERO,
        };
        Block {
            header,
            txs: vec![],
        }
    }

    fn proposal(b: &Block, signer: u32) -> SignedProposal {
        Proposal {
            height: b.header.height,
            round: 0,
            block: b.header.hash(),
            pol_round: None,
            proposer: 0,
        }
        .sign(CHAIN, &dev_key("validator", signer))
    }

    fn is_reject(r: Result<Checked, Refusal>) -> bool {
        matches!(r, Err(Refusal::Reject(_)))
    }

    #[test]
    fn votes_must_be_signed_by_their_validator() {
        let c = checker();
        let good = encode_consensus(&ConsensusMsg::Vote(vote(1, 1)), 0);
        assert!(c.check(TopicKind::Consensus, &good).is_ok());
        let forged = encode_consensus(&ConsensusMsg::Vote(vote(1, 2)), 0);
        assert!(is_reject(c.check(TopicKind::Consensus, &forged)));
        let unknown = encode_consensus(&ConsensusMsg::Vote(vote(9, 9)), 0);
        assert!(is_reject(c.check(TopicKind::Consensus, &unknown)));
        // Any change of framing is refused: trailing byte, truncation, wrong topic.
        let mut long = good.clone();
        long.push(0);
        assert!(is_reject(c.check(TopicKind::Consensus, &long)));
        assert!(is_reject(
            c.check(TopicKind::Consensus, &good[..good.len() - 1])
        ));
        assert!(is_reject(c.check(TopicKind::Txs, &good)));
        assert!(is_reject(c.check(TopicKind::Blocks, &good)));
        assert!(is_reject(c.check(TopicKind::Consensus, &[])));
    }

    #[test]
    fn only_small_messages_are_relayed() {
        let v = Checked::Consensus(ConsensusMsg::Vote(vote(1, 1)));
        assert!(v.relayed());
        let b = block(3);
        let bare = Checked::Consensus(ConsensusMsg::Proposal {
            proposal: proposal(&b, 0),
            block: None,
        });
        assert!(bare.relayed());
        let full = Checked::Consensus(ConsensusMsg::Proposal {
            proposal: proposal(&b, 0),
            block: Some(b.clone()),
        });
        assert!(!full.relayed());
        assert!(!Checked::Txs(vec![]).relayed());
    }

    #[test]
    fn a_proposal_must_carry_the_block_it_names() {
        let c = checker();
        let b = block(3);
        let p = proposal(&b, 0);
        let ok = ConsensusMsg::Proposal {
            proposal: p,
            block: Some(b.clone()),
        };
        let bytes = encode_consensus(&ok, 0);
        assert_eq!(decode_consensus(&bytes, &c.limits), Ok(ok));
        assert!(c.check(TopicKind::Consensus, &bytes).is_ok());
        let other = ConsensusMsg::Proposal {
            proposal: p,
            block: Some(block(4)),
        };
        assert!(is_reject(
            c.check(TopicKind::Consensus, &encode_consensus(&other, 0))
        ));
        let forged = ConsensusMsg::Proposal {
            proposal: proposal(&b, 1),
            block: Some(b.clone()),
        };
        assert!(is_reject(
            c.check(TopicKind::Consensus, &encode_consensus(&forged, 0))
        ));
        let mut bad_body = b.clone();
        bad_body.header.tx_count = 1;
        let p2 = proposal(&bad_body, 0);
        let bad = ConsensusMsg::Proposal {
            proposal: p2,
            block: Some(bad_body),
        };
        assert!(is_reject(
            c.check(TopicKind::Consensus, &encode_consensus(&bad, 0))
        ));
        // Stale once the tip passes it.
        c.tip_height.store(3, Ordering::Relaxed);
        assert!(matches!(
            c.check(TopicKind::Consensus, &bytes),
            Err(Refusal::Ignore(_))
        ));
    }

    #[test]
    fn announcements_need_a_quorum_certificate() {
        let c = checker();
        let b = block(2);
        let hash = b.header.hash();
        let sign = |signers: &[u32]| CommitCertificate {
            height: 2,
            round: 0,
            block: hash,
            signatures: signers
                .iter()
                .map(|&i| ebill_types::CommitSignature {
                    validator: i,
                    signature: Vote {
                        kind: VoteKind::Precommit,
                        height: 2,
                        round: 0,
                        block: Some(hash),
                        validator: i,
                    }
                    .sign(CHAIN, &dev_key("validator", i))
                    .signature,
                })
                .collect(),
        };
        let good = encode_announcement(&b, &sign(&[0, 1, 3]));
        assert!(matches!(
            c.check(TopicKind::Blocks, &good),
            Ok(Checked::Block(..))
        ));
        let weak = encode_announcement(&b, &sign(&[0, 1]));
        assert!(is_reject(c.check(TopicKind::Blocks, &weak)));
    }

    #[test]
    fn cosignatures_must_be_a_genesis_witness_s_and_strictly_framed() {
        let mut g = dev_genesis_with(CHAIN, 4);
        g.observers = vec![ebill_types::genesis::Observer {
            name: "witness".into(),
            public_key: dev_key("observer", 0).public(),
            regulator: Some(ebill_types::dev::dev_regulator_keys()[0].public()),
        }];
        let mut c = checker();
        c.witnesses = Witnesses::of(&g);
        let cp = Checkpoint {
            chain_id: CHAIN.into(),
            height: 3,
            block_hash: Hash32([1; 32]),
            state_root: Hash32([2; 32]),
        };
        let good = encode_cosignature(&cp, &cp.cosign(&dev_key("observer", 0)), 7);
        assert!(matches!(
            c.check(TopicKind::Cosignatures, &good),
            Ok(Checked::Cosignature(..))
        ));
        assert!(Checked::Cosignature(cp.clone(), cp.cosign(&dev_key("observer", 0))).relayed());
        // Signed by a key that is no witness, or forged under the witness's key id.
        let stranger = encode_cosignature(&cp, &cp.cosign(&dev_key("observer", 1)), 7);
        assert!(is_reject(c.check(TopicKind::Cosignatures, &stranger)));
        let mut forged = cp.cosign(&dev_key("observer", 1));
        forged.key_id = ebill_types::checkpoint::KeyId::of(&dev_key("observer", 0).public());
        assert!(is_reject(c.check(
            TopicKind::Cosignatures,
            &encode_cosignature(&cp, &forged, 7)
        )));
        // Another chain's checkpoint.
        let mut other = cp.clone();
        other.chain_id = "other".into();
        let signed = encode_cosignature(&other, &other.cosign(&dev_key("observer", 0)), 7);
        assert!(is_reject(c.check(TopicKind::Cosignatures, &signed)));
        // Framing: a trailing byte, a truncation, too long.
        let mut long = good.clone();
        long.push(0);
        assert!(is_reject(c.check(TopicKind::Cosignatures, &long)));
        assert!(is_reject(
            c.check(TopicKind::Cosignatures, &good[..good.len() - 1])
        ));
        assert!(is_reject(c.check(
            TopicKind::Cosignatures,
            &vec![0u8; MAX_COSIGNATURE_ENVELOPE_BYTES + 1]
        )));
    }

    #[test]
    fn tx_batches_split_by_count_and_bytes_and_decode_back() {
        let c = checker();
        let txs: Vec<SignedTx> = (0..25)
            .map(|n| {
                ebill_types::tx::Tx {
                    nonce: 0,
                    body: ebill_types::tx::TxBody::IssueBill(ebill_types::dev::sample_bill(
                        n,
                        100,
                        ebill_types::dev::DEV_GENESIS_TIME_MS,
                    )),
                }
                .sign_unit(CHAIN, &ebill_types::dev::dev_issuer_key())
            })
            .collect();
        let batches = encode_tx_batches(&txs, &c.limits).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(batches.len(), 3);
        let mut back = Vec::new();
        for b in &batches {
            match c.check(TopicKind::Txs, b) {
                Ok(Checked::Txs(t)) => back.extend(t),
                other => unreachable!("{other:?}"),
            }
        }
        assert_eq!(back, txs);
        let mut small = c.limits;
        small.max_batch_bytes = 2 * txs[0].to_canonical_bytes().len() + 100;
        assert_eq!(encode_tx_batches(&txs[..6], &small).map(|b| b.len()), Ok(3));
        // An empty batch is refused.
        assert!(is_reject(c.check(TopicKind::Txs, &finish_batch(&[]))));
    }
}
