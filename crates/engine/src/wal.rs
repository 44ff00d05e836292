//! Encoding of the consensus write-ahead log: this validator's own signed proposals and
//! votes, persisted before they are sent, and the bytes of every block it precommits
//! (so that a decided block survives even if every validator holding it crashes before
//! storing it). Decoding is strict: a node refuses to start on
//! a WAL it cannot read, rather than risk signing twice.

use ebill_consensus::WalEntry;
use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::{Block, Hash32, Proposal, Signature, SignedProposal, SignedVote};

const TAG_PROPOSAL: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_BLOCK: u8 = 3;
const TAG_RECEIVED_VOTE: u8 = 4;

/// One record of the WAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An own vote or proposal, for `Consensus::restore`.
    Message(WalEntry),
    /// A block this validator precommitted.
    Block(Box<Block>),
    /// Another validator's vote for the height in progress, fed back to consensus after
    /// a restart: `Consensus::restore` rebuilds this validator's own votes and lock, and
    /// without the votes it had received, a lock whose polka no peer can show again
    /// would stall the height (docs/simulation.md, finding 3).
    Received(SignedVote),
}

/// The bytes of a received-vote record.
pub fn encode_received_vote(vote: &SignedVote) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.u8(TAG_RECEIVED_VOTE);
    vote.encode_to(&mut enc);
    enc.finish()
}

/// The bytes of a block record.
pub fn encode_block(block: &Block) -> Vec<u8> {
    let mut enc = Encoder::new();
    enc.u8(TAG_BLOCK);
    block.encode_to(&mut enc);
    enc.finish()
}

/// Decodes any record, refusing trailing bytes and unknown tags.
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    if bytes.first() == Some(&TAG_BLOCK) {
        let mut dec = Decoder::new(&bytes[1..]);
        let block = Block::decode_from(&mut dec)?;
        dec.finish()?;
        return Ok(Record::Block(Box::new(block)));
    }
    if bytes.first() == Some(&TAG_RECEIVED_VOTE) {
        let mut dec = Decoder::new(&bytes[1..]);
        let vote = SignedVote::decode_from(&mut dec)?;
        dec.finish()?;
        return Ok(Record::Received(vote));
    }
    decode(bytes).map(Record::Message)
}

/// The bytes of one WAL entry.
pub fn encode(entry: &WalEntry) -> Vec<u8> {
    let mut enc = Encoder::new();
    match entry {
        WalEntry::Proposal(p) => {
            enc.u8(TAG_PROPOSAL)
                .u64(p.proposal.height)
                .u32(p.proposal.round)
                .fixed(&p.proposal.block.0)
                .option(p.proposal.pol_round.as_ref(), |e, r| {
                    e.u32(*r);
                })
                .u32(p.proposal.proposer);
            p.signature.encode_to(&mut enc);
        }
        WalEntry::Vote(v) => {
            enc.u8(TAG_VOTE);
            v.encode_to(&mut enc);
        }
    }
    enc.finish()
}

/// Decodes one WAL entry, refusing trailing bytes and unknown tags.
pub fn decode(bytes: &[u8]) -> Result<WalEntry, DecodeError> {
    let mut dec = Decoder::new(bytes);
    let entry = match dec.u8("wal tag")? {
        TAG_PROPOSAL => WalEntry::Proposal(SignedProposal {
            proposal: Proposal {
                height: dec.u64("height")?,
                round: dec.u32("round")?,
                block: Hash32::decode_from(&mut dec)?,
                pol_round: dec.option("pol round", |d| d.u32("pol round"))?,
                proposer: dec.u32("proposer")?,
            },
            signature: Signature::decode_from(&mut dec)?,
        }),
        TAG_VOTE => WalEntry::Vote(SignedVote::decode_from(&mut dec)?),
        v => {
            return Err(DecodeError::InvalidTag {
                what: "wal tag",
                value: u64::from(v),
            });
        }
    };
    dec.finish()?;
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_types::{Vote, VoteKind, dev};

    #[test]
    fn round_trips_and_refuses_trailing_bytes() {
        let key = dev::dev_validator_key();
        let p = Proposal {
            height: 3,
            round: 1,
            block: Hash32([7; 32]),
            pol_round: Some(0),
            proposer: 0,
        }
        .sign("c", &key);
        let v = Vote {
            kind: VoteKind::Precommit,
            height: 3,
            round: 1,
            block: None,
            validator: 0,
        }
        .sign("c", &key);
        for e in [WalEntry::Proposal(p), WalEntry::Vote(v)] {
            let mut bytes = encode(&e);
            assert_eq!(decode(&bytes), Ok(e));
            assert_eq!(decode_record(&bytes), Ok(Record::Message(e)));
            bytes.push(0);
            assert!(decode(&bytes).is_err());
        }
        let block = Block {
            header: ebill_types::Header {
                chain_id: "c".into(),
                height: 3,
                prev_hash: Hash32([1; 32]),
                time_ms: 5,
                proposer: 0,
                tx_root: Block::tx_root(&[]),
                tx_count: 0,
                validator_set_hash: Hash32([2; 32]),
                state_root: Hash32::ZERO,
            },
            txs: vec![],
        };
        let mut bytes = encode_block(&block);
        assert_eq!(decode_record(&bytes), Ok(Record::Block(Box::new(block))));
        bytes.push(0);
        assert!(decode_record(&bytes).is_err());
        let mut bytes = encode_received_vote(&v);
        assert_eq!(decode_record(&bytes), Ok(Record::Received(v)));
        // A received vote is never taken for one of this validator's own.
        assert!(decode(&bytes).is_err());
        bytes.push(0);
        assert!(decode_record(&bytes).is_err());
    }
}
