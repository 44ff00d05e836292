//! What the engine and the admission path send to peers, and a bounded queue to carry it
//! to whatever network is plugged in (libp2p in a node, channels in tests). A full queue
//! drops the message and counts it: consensus recovers lost messages by rebroadcast and
//! sync, so a slow network must never block the engine.

use std::sync::atomic::{AtomicU64, Ordering};

use ebill_types::SignedTx;
use ebill_types::checkpoint::{Checkpoint, Cosignature};
use tokio::sync::mpsc;

/// Messages for the network.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// What the engine sends: consensus messages, announcements, requests for blocks.
    Engine(ebill_engine::Outbound),
    /// Admitted transactions, for the other nodes' mempools.
    Txs(Vec<SignedTx>),
    /// This witness's co-signature of a checkpoint, for every node.
    Cosignature(Checkpoint, Cosignature),
}

/// Most messages queued for the network.
pub const OUTBOUND_QUEUE: usize = 8_192;

/// The sending side of the outbound queue.
#[derive(Debug)]
pub struct OutboundQueue {
    tx: mpsc::Sender<Outbound>,
    dropped: AtomicU64,
}

impl OutboundQueue {
    /// A queue and its receiving end.
    pub fn new() -> (Self, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(OUTBOUND_QUEUE);
        (
            Self {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Queues a message; drops it (and counts) if the queue is full or closed.
    pub fn send(&self, m: Outbound) {
        if self.tx.try_send(m).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
