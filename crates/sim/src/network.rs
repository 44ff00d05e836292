//! The simulated network: what travels between validators, and the fate of each send
//! (lost, delayed, duplicated) under the run's fault schedule. Before GST (the global
//! stabilisation time) links lose, duplicate and delay messages at random and partitions
//! cut the cluster; from GST on there are no partitions and no losses, and every message
//! sent arrives within `post_gst_max_delay_ms` (duplicates included).

use std::sync::Arc;

use ebill_consensus::Message;
use ebill_engine::CertifiedBlock;
use ebill_types::{Block, CommitCertificate, Hash32, SignedTx};

use crate::rng::Rng;

/// A message between two nodes (or from a client to a validator).
#[derive(Clone, Debug)]
pub enum Payload {
    /// A consensus message; a proposal carries the bytes of its block (compact blocks
    /// would carry ids; the simulator keeps it simple).
    Consensus {
        /// The signed proposal or vote.
        msg: Message,
        /// The proposed block, for proposals whose sender holds it.
        block: Option<Arc<Block>>,
    },
    /// A transaction, from a client or gossiped by a validator.
    Tx(Arc<SignedTx>),
    /// "Send me your final blocks from this height on, at most this many."
    SyncRequest {
        /// The first height wanted.
        from_height: u64,
        /// Most blocks wanted.
        max: u32,
    },
    /// Final blocks with their commit certificates, in height order.
    SyncResponse {
        /// The blocks.
        blocks: Vec<CertifiedBlock>,
    },
    /// "Send me the bytes of this block" (decided or proposed, but missed).
    BlockRequest {
        /// The block hash.
        hash: Hash32,
    },
    /// The bytes of a block, with its certificate if it is final.
    BlockResponse {
        /// The block.
        block: Arc<Block>,
        /// Its commit certificate, if final at the sender.
        certificate: Option<CommitCertificate>,
    },
}

impl Payload {
    /// A small tag for the trace digest.
    pub fn tag(&self) -> u64 {
        let parts: [u64; 4] = match self {
            Payload::Consensus { msg, .. } => [
                1,
                msg.height(),
                u64::from(msg.round()),
                u64::from(msg.signer()),
            ],
            Payload::Tx(_) => [2, 0, 0, 0],
            Payload::SyncRequest { from_height, max } => [3, *from_height, u64::from(*max), 0],
            Payload::SyncResponse { blocks } => [4, blocks.len() as u64, 0, 0],
            Payload::BlockRequest { .. } => [5, 0, 0, 0],
            Payload::BlockResponse { .. } => [6, 0, 0, 0],
        };
        parts.iter().fold(0u64, |acc, p| crate::rng::mix(acc ^ p))
    }
}

/// Faults of a link before GST.
#[derive(Clone, Copy, Debug)]
pub struct LinkFaults {
    /// Shortest delay.
    pub min_delay_ms: u64,
    /// Longest usual delay.
    pub max_delay_ms: u64,
    /// Chance (per mille) that a message is one of the slow ones (up to 4x the longest
    /// usual delay), which reorders it behind later ones.
    pub slow_per_mille: u32,
    /// Chance (per mille) that a message is lost.
    pub loss_per_mille: u32,
    /// Chance (per mille) that a message is delivered twice.
    pub dup_per_mille: u32,
}

/// A partition: from `start_ms` to `end_ms`, nodes in different groups cannot talk.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Start.
    pub start_ms: u64,
    /// End (the partition heals; at the latest at GST).
    pub end_ms: u64,
    /// Group of each node, by index.
    pub group_of: Vec<u8>,
}

/// The network's fault schedule for one run.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Global stabilisation time: partitions healed, no more losses, bounded delays.
    pub gst_ms: u64,
    /// Link faults before GST.
    pub before_gst: LinkFaults,
    /// Delay bound of every message sent at or after GST.
    pub post_gst_max_delay_ms: u64,
    /// Chance (per mille) of a duplicate after GST (delivered within the bound too).
    pub post_gst_dup_per_mille: u32,
    /// Partitions, all healed by GST.
    pub partitions: Vec<Partition>,
}

/// Decides the fate of every message.
#[derive(Debug)]
pub struct Network {
    config: NetworkConfig,
}

impl Network {
    /// A network with this schedule.
    pub fn new(config: NetworkConfig) -> Self {
        Self { config }
    }

    /// Adds a partition during the run (ended by GST at the latest): `node` alone
    /// against everyone else from `start_ms` to `end_ms`.
    pub fn isolate(&mut self, node: u32, validators: u32, start_ms: u64, end_ms: u64) {
        let end_ms = end_ms.min(self.config.gst_ms);
        if start_ms >= end_ms {
            return;
        }
        let group_of = (0..validators).map(|i| u8::from(i == node)).collect();
        self.config.partitions.push(Partition {
            start_ms,
            end_ms,
            group_of,
        });
    }

    /// The schedule.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Whether `a` and `b` are cut off from each other at `now_ms`.
    pub fn partitioned(&self, now_ms: u64, a: u32, b: u32) -> bool {
        self.config.partitions.iter().any(|p| {
            now_ms >= p.start_ms
                && now_ms < p.end_ms
                && p.group_of.get(a as usize) != p.group_of.get(b as usize)
        })
    }

    /// Delivery delays of one message sent at `now_ms` from `from` (`None`: a client,
    /// never partitioned) to `to`: empty if lost, two entries if duplicated.
    pub fn fates(&self, rng: &mut Rng, now_ms: u64, from: Option<u32>, to: u32) -> Vec<u64> {
        if now_ms >= self.config.gst_ms {
            let bound = self.config.post_gst_max_delay_ms.max(1);
            let mut out = vec![rng.range(1, bound)];
            if rng.chance(self.config.post_gst_dup_per_mille) {
                out.push(rng.range(1, bound));
            }
            return out;
        }
        if let Some(from) = from
            && self.partitioned(now_ms, from, to)
        {
            return Vec::new();
        }
        let f = self.config.before_gst;
        if rng.chance(f.loss_per_mille) {
            return Vec::new();
        }
        let mut out = vec![pre_gst_delay(rng, &f)];
        if rng.chance(f.dup_per_mille) {
            out.push(pre_gst_delay(rng, &f));
        }
        out
    }
}

fn pre_gst_delay(rng: &mut Rng, f: &LinkFaults) -> u64 {
    if rng.chance(f.slow_per_mille) {
        rng.range(f.min_delay_ms, f.max_delay_ms.saturating_mul(4))
    } else {
        rng.range(f.min_delay_ms, f.max_delay_ms)
    }
}
