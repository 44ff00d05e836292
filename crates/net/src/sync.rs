//! Block sync: requests, the responders the application answers through, and the
//! strict decoding and verification of responses.
//!
//! The store stays out of this crate: a request reaches the application as
//! [`crate::NetEvent::BlocksRequested`] or [`crate::NetEvent::BlockRequested`] with a
//! responder; the responder encodes the answer (on the caller's thread) and trims it to
//! the limits; the event loop sends it. A requester checks every block and certificate
//! of a response before it returns them.

use ebill_types::codec::{Canonical, DecodeError, Decoder, Encoder};
use ebill_types::{Block, CommitCertificate, Hash32, ValidatorSet};
use tokio::sync::oneshot;

use crate::config::Limits;
use crate::gossip::{check_block_body, decode_block_bytes, verify_certified};

/// Domain tag of a sync request.
pub const REQUEST_DOMAIN: &str = "ebill/net/sync-request/v1";
/// Domain tag of a block-range response.
pub const BLOCKS_DOMAIN: &str = "ebill/net/blocks/v1";
/// Domain tag of a block-by-hash response.
pub const BLOCK_BY_HASH_DOMAIN: &str = "ebill/net/block-by-hash/v1";

const TAG_RANGE: u8 = 1;
const TAG_BY_HASH: u8 = 2;

/// A sync request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncRequest {
    /// Committed blocks `from_height`, `from_height + 1`, ... (at most `max`), each with
    /// its commit certificate.
    Blocks {
        /// First height wanted.
        from_height: u64,
        /// Most blocks wanted.
        max: u32,
    },
    /// The block with this header hash (committed or only proposed), with its
    /// certificate if it has one.
    Block {
        /// The block hash.
        hash: Hash32,
    },
}

impl SyncRequest {
    /// Canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut enc = Encoder::with_domain(REQUEST_DOMAIN);
        match self {
            SyncRequest::Blocks { from_height, max } => {
                enc.u8(TAG_RANGE).u64(*from_height).u32(*max);
            }
            SyncRequest::Block { hash } => {
                enc.u8(TAG_BY_HASH).fixed(&hash.0);
            }
        }
        enc.finish()
    }

    /// Strict decoding of [`SyncRequest::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut dec = Decoder::with_domain(bytes, REQUEST_DOMAIN)?;
        let req = match dec.u8("sync request tag")? {
            TAG_RANGE => SyncRequest::Blocks {
                from_height: dec.u64("from height")?,
                max: dec.u32("max blocks")?,
            },
            TAG_BY_HASH => SyncRequest::Block {
                hash: Hash32::decode_from(&mut dec)?,
            },
            v => {
                return Err(DecodeError::InvalidTag {
                    what: "sync request tag",
                    value: u64::from(v),
                });
            }
        };
        dec.finish()?;
        Ok(req)
    }
}

/// The way to answer a [`crate::NetEvent::BlocksRequested`]. Dropping it unanswered
/// makes the request fail on the requester's side.
#[derive(Debug)]
pub struct BlocksResponder {
    pub(crate) tx: oneshot::Sender<Vec<u8>>,
    pub(crate) max_count: u32,
    pub(crate) max_bytes: usize,
}

impl BlocksResponder {
    /// Answers with consecutive committed blocks from the requested height, each with
    /// its certificate (an empty list if this node has none). The answer is cut to the
    /// requested count and to the response byte limit (always whole blocks, at least
    /// one if any fits). Returns how many blocks were sent.
    pub fn respond(self, blocks: Vec<(Block, CommitCertificate)>) -> usize {
        let header = 4 + BLOCKS_DOMAIN.len() + 4;
        let mut total = header;
        let mut items: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for (block, cert) in blocks.iter().take(self.max_count as usize) {
            let b = block.to_canonical_bytes();
            let c = cert.to_canonical_bytes();
            let size = 4 + b.len() + c.len();
            if total + size > self.max_bytes {
                break;
            }
            total += size;
            items.push((b, c));
        }
        let mut enc = Encoder::with_domain(BLOCKS_DOMAIN);
        enc.seq(&items, |e, (b, c)| {
            e.bytes(b).fixed(c);
        });
        let sent = items.len();
        // The requester may have given up: nothing to do then.
        let _ = self.tx.send(enc.finish());
        sent
    }

    /// Most blocks the answer may hold.
    pub fn max_count(&self) -> u32 {
        self.max_count
    }
}

/// The way to answer a [`crate::NetEvent::BlockRequested`]. Dropping it unanswered
/// makes the request fail on the requester's side.
#[derive(Debug)]
pub struct BlockResponder {
    pub(crate) tx: oneshot::Sender<Vec<u8>>,
    pub(crate) max_bytes: usize,
}

impl BlockResponder {
    /// Answers with the block, and its certificate if it is committed; `None` if this
    /// node does not have it. A block too large for the response limit is answered as
    /// `None`. Returns whether a block was sent.
    pub fn respond(self, found: Option<(Block, Option<CommitCertificate>)>) -> bool {
        let mut bytes = encode_block_by_hash(found.as_ref());
        let mut sent = found.is_some();
        if bytes.len() > self.max_bytes {
            bytes = encode_block_by_hash(None);
            sent = false;
        }
        let _ = self.tx.send(bytes);
        sent
    }
}

fn encode_block_by_hash(found: Option<&(Block, Option<CommitCertificate>)>) -> Vec<u8> {
    let mut enc = Encoder::with_domain(BLOCK_BY_HASH_DOMAIN);
    enc.option(found, |e, (block, cert)| {
        e.bytes(&block.to_canonical_bytes());
        e.option(cert.as_ref(), |e2, c| c.encode_to(e2));
    });
    enc.finish()
}

/// Decodes and verifies a block-range response to a request from `from_height` for at
/// most `max` blocks: consecutive heights from `from_height`, each block linked to the
/// previous one, its body matching its header, and its certificate a quorum of
/// `validators` for it.
pub(crate) fn decode_blocks_response(
    bytes: &[u8],
    from_height: u64,
    max: u32,
    chain_id: &str,
    validators: &ValidatorSet,
    limits: &Limits,
) -> Result<Vec<(Block, CommitCertificate)>, String> {
    let mut dec = Decoder::with_domain(bytes, BLOCKS_DOMAIN).map_err(|e| e.to_string())?;
    let items = dec
        .seq("blocks", max as usize, |d| {
            let block = decode_block_bytes(d, limits)?;
            let cert = CommitCertificate::decode_from(d)?;
            Ok((block, cert))
        })
        .map_err(|e| e.to_string())?;
    dec.finish().map_err(|e| e.to_string())?;
    let mut prev: Option<Hash32> = None;
    for (i, (block, cert)) in items.iter().enumerate() {
        let want = from_height + i as u64;
        if block.header.height != want {
            return Err(format!(
                "block {i} has height {}, not {want}",
                block.header.height
            ));
        }
        if let Some(p) = prev
            && block.header.prev_hash != p
        {
            return Err(format!("block {want} does not follow block {}", want - 1));
        }
        check_block_body(chain_id, block)?;
        verify_certified(chain_id, validators, block, cert)?;
        prev = Some(block.header.hash());
    }
    Ok(items)
}

/// Decodes and verifies a block-by-hash response: the block hashes to `hash`, its body
/// matches its header, and its certificate, if any, certifies it.
pub(crate) fn decode_block_response(
    bytes: &[u8],
    hash: &Hash32,
    chain_id: &str,
    validators: &ValidatorSet,
    limits: &Limits,
) -> Result<Option<(Block, Option<CommitCertificate>)>, String> {
    let mut dec = Decoder::with_domain(bytes, BLOCK_BY_HASH_DOMAIN).map_err(|e| e.to_string())?;
    let found = dec
        .option("block", |d| {
            let block = decode_block_bytes(d, limits)?;
            let cert = d.option("certificate", CommitCertificate::decode_from)?;
            Ok((block, cert))
        })
        .map_err(|e| e.to_string())?;
    dec.finish().map_err(|e| e.to_string())?;
    if let Some((block, cert)) = &found {
        if block.header.hash() != *hash {
            return Err(format!(
                "asked for block {hash}, got {}",
                block.header.hash()
            ));
        }
        check_block_body(chain_id, block)?;
        if let Some(cert) = cert {
            verify_certified(chain_id, validators, block, cert)?;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebill_types::{CommitSignature, Header, Signature};

    fn limits() -> Limits {
        crate::config::test_limits()
    }

    fn empty_block(height: u64) -> (Block, CommitCertificate) {
        let header = Header {
            chain_id: "c".into(),
            height,
            prev_hash: Hash32::ZERO,
            time_ms: 1,
            proposer: 0,
            tx_root: Block::tx_root(&[]),
            tx_count: 0,
            validator_set_hash: Hash32::ZERO,
            state_root: Hash32::ZERO,
        };
        let cert = CommitCertificate {
            height,
            round: 0,
            block: header.hash(),
            signatures: vec![CommitSignature {
                validator: 0,
                signature: Signature([0; 64]),
            }],
        };
        (
            Block {
                header,
                txs: vec![],
            },
            cert,
        )
    }

    fn count(bytes: &[u8]) -> usize {
        let mut dec =
            Decoder::with_domain(bytes, BLOCKS_DOMAIN).unwrap_or_else(|e| unreachable!("{e}"));
        dec.seq("blocks", 100, |d| {
            decode_block_bytes(d, &limits())?;
            CommitCertificate::decode_from(d)
        })
        .unwrap_or_else(|e| unreachable!("{e}"))
        .len()
    }

    #[test]
    fn requests_round_trip_and_refuse_other_bytes() {
        for r in [
            SyncRequest::Blocks {
                from_height: 7,
                max: 3,
            },
            SyncRequest::Block {
                hash: Hash32([4; 32]),
            },
        ] {
            let mut bytes = r.encode();
            assert_eq!(SyncRequest::decode(&bytes), Ok(r));
            bytes.push(0);
            assert!(SyncRequest::decode(&bytes).is_err());
            bytes.truncate(bytes.len() - 2);
            assert!(SyncRequest::decode(&bytes).is_err());
        }
    }

    #[test]
    fn responders_cut_answers_to_count_and_bytes() {
        let blocks: Vec<_> = (1..=10).map(empty_block).collect();
        let one =
            4 + blocks[0].0.to_canonical_bytes().len() + blocks[0].1.to_canonical_bytes().len();
        let header = 4 + BLOCKS_DOMAIN.len() + 4;

        let (tx, mut rx) = oneshot::channel();
        let r = BlocksResponder {
            tx,
            max_count: 4,
            max_bytes: 1 << 20,
        };
        assert_eq!(r.respond(blocks.clone()), 4);
        assert_eq!(
            count(&rx.try_recv().unwrap_or_else(|e| unreachable!("{e}"))),
            4
        );

        let (tx, mut rx) = oneshot::channel();
        let r = BlocksResponder {
            tx,
            max_count: 10,
            max_bytes: header + 3 * one + one / 2,
        };
        assert_eq!(r.respond(blocks.clone()), 3);
        let bytes = rx.try_recv().unwrap_or_else(|e| unreachable!("{e}"));
        assert!(bytes.len() <= header + 3 * one + one / 2);
        assert_eq!(count(&bytes), 3);

        let (tx, mut rx) = oneshot::channel();
        let r = BlockResponder { tx, max_bytes: 20 };
        assert!(!r.respond(Some((blocks[0].0.clone(), None))));
        let bytes = rx.try_recv().unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(bytes, encode_block_by_hash(None));
    }
}
