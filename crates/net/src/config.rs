//! Configuration of a node's network, and the size limits derived from it.

use std::time::Duration;

use ebill_types::checkpoint::Witnesses;
use ebill_types::limits::{MAX_BLOCK_TXS, MAX_CHAIN_ID_BYTES, MAX_TX_BYTES, MAX_VALIDATORS};
use ebill_types::{Genesis, ValidatorSet};
use libp2p::{Multiaddr, PeerId};

use crate::error::NetError;
use crate::peer_id_of;

/// Default idle-connection timeout: one hour. libp2p's default (10 s) drops a quiet
/// connection between validators that happen not to share a gossipsub mesh.
pub const DEFAULT_IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);
/// Default timeout of one sync request (block range or block by hash).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default most blocks in one block-range response.
pub const DEFAULT_MAX_SYNC_BLOCKS: u32 = 64;
/// Default floor of the byte limit of one sync response: 16 MiB (raised to fit at least
/// one block of the largest size the genesis allows).
pub const DEFAULT_MIN_SYNC_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Default most transactions in one gossiped transaction batch.
pub const DEFAULT_MAX_BATCH_TXS: usize = 1024;
/// Default byte limit of one gossiped transaction batch: 1 MiB (raised to fit at least
/// one transaction of the largest size the genesis allows).
pub const DEFAULT_MAX_BATCH_BYTES: usize = 1024 * 1024;
/// Default capacity of the event channel to the application.
pub const DEFAULT_EVENT_CAPACITY: usize = 256;
/// Default most bytes of gossip waiting in the event channel for the application
/// (raised to fit two of the largest gossip messages).
pub const DEFAULT_MAX_EVENT_BYTES: usize = 128 * 1024 * 1024;

/// Bytes allowed on top of a block's transactions for its header and envelopes (domain
/// tags, the proposal or the commit certificate of up to 256 validators).
pub(crate) const ENVELOPE_SLACK_BYTES: usize = 64 * 1024;
/// Bytes allowed on top of an envelope for gossipsub's own framing (protobuf, topic,
/// sequence number, the publisher's key and signature).
pub(crate) const RPC_SLACK_BYTES: usize = 64 * 1024;

/// Everything the network layer needs to start.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// The chain: part of every topic and protocol name, and checked in every header.
    pub chain_id: String,
    /// The node's 32-byte ed25519 seed: the same seed as its validator or observer key,
    /// so its peer id is [`peer_id_of`] its genesis public key.
    pub seed: [u8; 32],
    /// Where to listen, e.g. `/ip4/0.0.0.0/tcp/26656` (`/tcp/0` for any free port).
    pub listen: Multiaddr,
    /// Peers to dial at start, and again (with backoff) whenever the connection drops.
    /// A trailing `/p2p/<peer id>` lets the node skip dialing a peer already connected.
    pub peers: Vec<Multiaddr>,
    /// The only peers that may connect (and that this node will dial): the genesis
    /// validators and observers plus any the node's config adds.
    pub allowed: Vec<PeerId>,
    /// The validator set: gossiped votes, proposals and certificates must verify
    /// against it before they are delivered or forwarded.
    pub validators: ValidatorSet,
    /// The genesis regulators' observers: gossiped co-signatures must verify against
    /// them.
    pub witnesses: Witnesses,
    /// Most bytes of transactions in a block (genesis `max_block_bytes`).
    pub max_block_bytes: usize,
    /// Most transactions in a block (genesis `max_block_txs`).
    pub max_block_txs: usize,
    /// Most bytes of one signed transaction (genesis `max_tx_bytes`).
    pub max_tx_bytes: usize,
    /// Most transactions in one gossiped batch; `publish_txs` splits larger lists.
    pub max_batch_txs: usize,
    /// Most bytes of one gossiped batch; `publish_txs` splits larger lists.
    pub max_batch_bytes: usize,
    /// Most blocks in one block-range response.
    pub max_sync_blocks: u32,
    /// Most bytes of one sync response (raised to fit one largest block if lower).
    pub max_sync_response_bytes: usize,
    /// Timeout of one sync request.
    pub request_timeout: Duration,
    /// How long a connection with no open stream is kept.
    pub idle_connection_timeout: Duration,
    /// Capacity of the event channel; events that do not fit are dropped and counted
    /// (a gossip message then gets the verdict Ignore and is not forwarded).
    pub event_capacity: usize,
    /// Most bytes of gossip messages delivered but not yet taken by the application;
    /// a message that does not fit is dropped and counted like one over
    /// `event_capacity`. Raised to fit two of the largest gossip messages.
    pub max_event_bytes: usize,
    /// The gossip topics this node takes in. A node may publish on any topic; it
    /// receives only these.
    pub subscribe: Topics,
}

/// A set of the chain's gossip topics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topics {
    /// Batches of signed transactions.
    pub txs: bool,
    /// Proposals (with blocks) and votes.
    pub consensus: bool,
    /// Committed blocks with their certificates.
    pub blocks: bool,
    /// Witnesses' co-signatures of checkpoints (small; every node keeps them).
    pub cosignatures: bool,
}

impl Topics {
    /// Every topic.
    pub const ALL: Topics = Topics {
        txs: true,
        consensus: true,
        blocks: true,
        cosignatures: true,
    };
    /// What a validator needs: transactions for its mempool, and consensus. It misses
    /// nothing without announcements: it decides the blocks they announce, and when it
    /// falls behind it syncs.
    pub const VALIDATOR: Topics = Topics {
        txs: true,
        consensus: true,
        blocks: false,
        cosignatures: true,
    };
    /// What an observer needs: committed blocks with their certificates. It takes part
    /// in no vote and keeps no mempool, so transactions and consensus messages (each
    /// block a second time, inside its proposal) would only be decoded and dropped.
    pub const OBSERVER: Topics = Topics {
        txs: false,
        consensus: false,
        blocks: true,
        cosignatures: true,
    };
}

impl NetConfig {
    /// A configuration for a node of the chain of `genesis`: every genesis validator and
    /// observer is allowed, limits come from the genesis parameters, the rest are the
    /// defaults of this module. Add peers to `allowed` for config-only nodes.
    pub fn from_genesis(
        genesis: &Genesis,
        seed: [u8; 32],
        listen: Multiaddr,
        peers: Vec<Multiaddr>,
    ) -> Result<Self, NetError> {
        let validators = genesis
            .validator_set()
            .map_err(|e| NetError::Config(e.to_string()))?;
        let allowed = genesis
            .validators
            .iter()
            .map(|v| peer_id_of(&v.public_key))
            .chain(genesis.observers.iter().map(|o| peer_id_of(&o.public_key)))
            .collect();
        Ok(Self {
            chain_id: genesis.chain_id.clone(),
            seed,
            listen,
            peers,
            allowed,
            validators,
            witnesses: Witnesses::of(genesis),
            max_block_bytes: genesis.params.max_block_bytes as usize,
            max_block_txs: genesis.params.max_block_txs as usize,
            max_tx_bytes: genesis.params.max_tx_bytes as usize,
            max_batch_txs: DEFAULT_MAX_BATCH_TXS,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
            max_sync_blocks: DEFAULT_MAX_SYNC_BLOCKS,
            max_sync_response_bytes: DEFAULT_MIN_SYNC_RESPONSE_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            idle_connection_timeout: DEFAULT_IDLE_CONNECTION_TIMEOUT,
            event_capacity: DEFAULT_EVENT_CAPACITY,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            subscribe: Topics::ALL,
        })
    }

    /// The limits this configuration implies, after checking it.
    pub fn limits(&self) -> Result<Limits, NetError> {
        let id = &self.chain_id;
        if id.is_empty()
            || id.len() > MAX_CHAIN_ID_BYTES
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        {
            return Err(NetError::Config(format!(
                "chain id {id:?}: 1 to {MAX_CHAIN_ID_BYTES} characters of a-z, 0-9, '-' and '.'"
            )));
        }
        if self.max_tx_bytes == 0 || self.max_tx_bytes > MAX_TX_BYTES {
            return Err(NetError::Config(format!(
                "max_tx_bytes must be 1 to {MAX_TX_BYTES}"
            )));
        }
        if self.max_block_txs == 0 || self.max_block_txs > MAX_BLOCK_TXS {
            return Err(NetError::Config(format!(
                "max_block_txs must be 1 to {MAX_BLOCK_TXS}"
            )));
        }
        if self.max_block_bytes < self.max_tx_bytes || self.max_block_bytes > 256 * 1024 * 1024 {
            return Err(NetError::Config(
                "max_block_bytes must be at least max_tx_bytes and at most 256 MiB".into(),
            ));
        }
        if self.max_batch_txs == 0 || self.max_sync_blocks == 0 || self.event_capacity == 0 {
            return Err(NetError::Config(
                "max_batch_txs, max_sync_blocks and event_capacity must be positive".into(),
            ));
        }
        // A block on the wire: the transactions, a 4-byte length prefix for each, the
        // header and envelope.
        let block_wire_bytes = self.max_block_bytes + 4 * self.max_block_txs + ENVELOPE_SLACK_BYTES;
        let batch_bytes = self
            .max_batch_bytes
            .max(self.max_tx_bytes + ENVELOPE_SLACK_BYTES);
        let gossip_bytes = block_wire_bytes + RPC_SLACK_BYTES;
        let sync_response_bytes = self
            .max_sync_response_bytes
            .max(block_wire_bytes + cert_wire_bytes());
        Ok(Limits {
            max_block_bytes: self.max_block_bytes,
            max_block_txs: self.max_block_txs,
            max_tx_bytes: self.max_tx_bytes,
            max_batch_txs: self.max_batch_txs,
            max_batch_bytes: batch_bytes,
            max_gossip_bytes: gossip_bytes,
            max_txs_gossip_bytes: batch_bytes + RPC_SLACK_BYTES,
            max_sync_blocks: self.max_sync_blocks,
            max_sync_response_bytes: sync_response_bytes,
            max_event_bytes: self.max_event_bytes.max(2 * gossip_bytes),
        })
    }
}

/// Bytes of the largest commit certificate: height, round, hash, count and one
/// (index, signature) pair per validator.
fn cert_wire_bytes() -> usize {
    8 + 4 + 32 + 4 + MAX_VALIDATORS * (4 + 64)
}

/// Small limits for the crate's unit tests.
#[cfg(test)]
pub(crate) fn test_limits() -> Limits {
    Limits {
        max_block_bytes: 1 << 20,
        max_block_txs: 100,
        max_tx_bytes: 1 << 16,
        max_batch_txs: 10,
        max_batch_bytes: 1 << 20,
        max_gossip_bytes: 2 << 20,
        max_txs_gossip_bytes: 2 << 20,
        max_sync_blocks: 8,
        max_sync_response_bytes: 4 << 20,
        max_event_bytes: 8 << 20,
    }
}

/// Size limits in force, derived from a [`NetConfig`] by [`NetConfig::limits`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of transactions in a block.
    pub max_block_bytes: usize,
    /// Most transactions in a block.
    pub max_block_txs: usize,
    /// Most bytes of one signed transaction.
    pub max_tx_bytes: usize,
    /// Most transactions in one gossiped batch.
    pub max_batch_txs: usize,
    /// Most bytes of one encoded transaction batch.
    pub max_batch_bytes: usize,
    /// Gossipsub's `max_transmit_size`: the largest gossip message (a proposal or an
    /// announcement carrying a block of the largest size) with gossipsub's framing.
    pub max_gossip_bytes: usize,
    /// Per-topic transmit limit of the transaction topic.
    pub max_txs_gossip_bytes: usize,
    /// Most blocks in one block-range response.
    pub max_sync_blocks: u32,
    /// Most bytes of one sync response.
    pub max_sync_response_bytes: usize,
    /// Most bytes of gossip waiting for the application.
    pub max_event_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_fit_the_largest_block_of_the_default_genesis() {
        let g = ebill_types::dev::dev_genesis();
        let cfg = NetConfig::from_genesis(
            &g,
            [7; 32],
            "/ip4/127.0.0.1/tcp/0"
                .parse()
                .unwrap_or_else(|e| unreachable!("{e}")),
            vec![],
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let l = cfg.limits().unwrap_or_else(|e| unreachable!("{e}"));
        // 8 MiB of transactions, 5,000 length prefixes, header and envelope.
        assert!(l.max_gossip_bytes >= 8 * 1024 * 1024 + 4 * 5_000 + 1024);
        assert!(l.max_gossip_bytes <= 9 * 1024 * 1024);
        assert!(l.max_sync_response_bytes >= l.max_gossip_bytes);
        assert_eq!(cfg.idle_connection_timeout, Duration::from_secs(3600));
        assert_eq!(cfg.allowed.len(), 1);
        let mut bad = cfg.clone();
        bad.chain_id = "Bad Chain".into();
        assert!(bad.limits().is_err());
    }
}
