//! Corrupted messages: one bit flipped in what travels, as a faulty link, NIC or memory
//! would flip it below the transport's checksum. The flip lands in the canonical bytes
//! of the part it hits (a vote, a transaction, a block, a certificate, a proposal's
//! signature or block hash); bytes that still decode are delivered as what they decode
//! to, so the receiving engine meets a well-formed message that is not what was sent;
//! bytes that do not decode are dropped, as a node's decoder drops them.

use std::sync::Arc;

use ebill_consensus::Message;
use ebill_engine::CertifiedBlock;
use ebill_types::{Block, Canonical, CommitCertificate, Hash32, Signature, SignedTx};

use crate::network::Payload;
use crate::rng::Rng;

/// What a flip did to one message.
#[derive(Clone, Debug)]
pub enum Corrupted {
    /// It still decodes: deliver this instead.
    Delivered(Payload),
    /// It no longer decodes: the receiver drops it.
    Dropped,
}

/// Flips one bit of `bytes` at random and decodes the result as `T`.
fn flip<T: Canonical>(rng: &mut Rng, value: &T) -> Option<T> {
    let mut bytes = value.to_canonical_bytes();
    if bytes.is_empty() {
        return None;
    }
    let i = rng.index(bytes.len());
    bytes[i] ^= 1 << rng.below(8);
    T::from_canonical_bytes(&bytes).ok()
}

fn flip_block(rng: &mut Rng, block: &Arc<Block>) -> Option<Arc<Block>> {
    flip(rng, block.as_ref()).map(Arc::new)
}

fn flip_certified(rng: &mut Rng, blocks: &[CertifiedBlock]) -> Option<Vec<CertifiedBlock>> {
    let mut out = blocks.to_vec();
    let n = out.len();
    let one = out.get_mut(rng.index(n.max(1)))?;
    if rng.chance(500) {
        one.block = flip_block(rng, &one.block)?;
    } else {
        one.certificate = flip::<CommitCertificate>(rng, &one.certificate)?;
    }
    Some(out)
}

/// `payload` with one bit flipped somewhere in it.
pub fn corrupt(rng: &mut Rng, payload: &Payload) -> Corrupted {
    let flipped = match payload {
        Payload::Consensus { msg, block } => match msg {
            Message::Vote(v) => flip(rng, v).map(|v| Payload::Consensus {
                msg: Message::Vote(v),
                block: block.clone(),
            }),
            Message::Proposal(p) => {
                let mut p = *p;
                match (rng.below(3), block) {
                    (0, _) => flip::<Signature>(rng, &p.signature).map(|s| {
                        p.signature = s;
                        Payload::Consensus {
                            msg: Message::Proposal(p),
                            block: block.clone(),
                        }
                    }),
                    (1, Some(b)) => flip_block(rng, b).map(|b| Payload::Consensus {
                        msg: Message::Proposal(p),
                        block: Some(b),
                    }),
                    _ => flip::<Hash32>(rng, &p.proposal.block).map(|h| {
                        p.proposal.block = h;
                        Payload::Consensus {
                            msg: Message::Proposal(p),
                            block: block.clone(),
                        }
                    }),
                }
            }
        },
        Payload::Tx(tx) => flip::<SignedTx>(rng, tx.as_ref()).map(|t| Payload::Tx(Arc::new(t))),
        Payload::SyncRequest { from_height, max } => Some(if rng.below(2) == 0 {
            Payload::SyncRequest {
                from_height: from_height ^ (1 << rng.below(64)),
                max: *max,
            }
        } else {
            Payload::SyncRequest {
                from_height: *from_height,
                max: max ^ (1 << rng.below(32)),
            }
        }),
        Payload::SyncResponse { blocks } => {
            flip_certified(rng, blocks).map(|blocks| Payload::SyncResponse { blocks })
        }
        Payload::BlockRequest { hash } => {
            flip::<Hash32>(rng, hash).map(|hash| Payload::BlockRequest { hash })
        }
        Payload::BlockResponse { block, certificate } => {
            if certificate.is_some() && rng.chance(500) {
                certificate
                    .as_ref()
                    .and_then(|c| flip::<CommitCertificate>(rng, c))
                    .map(|c| Payload::BlockResponse {
                        block: Arc::clone(block),
                        certificate: Some(c),
                    })
            } else {
                flip_block(rng, block).map(|b| Payload::BlockResponse {
                    block: b,
                    certificate: certificate.clone(),
                })
            }
        }
    };
    flipped.map_or(Corrupted::Dropped, Corrupted::Delivered)
}
