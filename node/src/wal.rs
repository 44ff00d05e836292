//! Encoding of the consensus write-ahead log: this validator's own signed proposals and
//! votes, persisted before they are sent. Decoding is strict: a node refuses to start on
//! a WAL it cannot read, rather than risk signing twice.

use ebill_consensus::WalEntry;
use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::{Hash32, Proposal, Signature, SignedProposal, SignedVote};

const TAG_PROPOSAL: u8 = 1;
const TAG_VOTE: u8 = 2;

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
            bytes.push(0);
            assert!(decode(&bytes).is_err());
        }
    }
}
