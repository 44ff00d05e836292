//! What the network layer tells the application.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ebill_types::{Block, CommitCertificate, Hash32, SignedTx};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::mpsc;

use crate::gossip::ConsensusMsg;
use crate::sync::{BlockResponder, BlocksResponder};

/// An event for the application. Every gossip event has passed the checks of this
/// crate (strict bounded decoding; signatures, block bodies and certificates against
/// the genesis validator set); small ones have also been relayed to the mesh (ADR 0005).
#[derive(Debug)]
pub enum NetEvent {
    /// A batch of transactions (decoded, not yet checked against the ledger).
    Txs {
        /// The peer that published them.
        from: PeerId,
        /// The transactions.
        txs: Vec<SignedTx>,
    },
    /// A proposal (with its block, checked against the proposal) or a vote, signed by
    /// a genesis validator.
    Consensus {
        /// The peer that published it (not necessarily the signer: votes are relayed).
        from: PeerId,
        /// The message.
        msg: ConsensusMsg,
    },
    /// A committed block whose certificate verifies.
    BlockAnnounced {
        /// The peer that published it.
        from: PeerId,
        /// The block.
        block: Block,
        /// Its commit certificate.
        cert: CommitCertificate,
    },
    /// A witness's co-signature of a checkpoint, verified against the genesis
    /// regulators' observers.
    Cosignature {
        /// The peer that published it (not necessarily the witness: relayed).
        from: PeerId,
        /// The checkpoint.
        checkpoint: ebill_types::checkpoint::Checkpoint,
        /// The co-signature.
        cosignature: ebill_types::checkpoint::Cosignature,
    },
    /// A peer asks for committed blocks from `from_height`; answer through `respond`.
    BlocksRequested {
        /// The peer asking.
        from: PeerId,
        /// First height wanted.
        from_height: u64,
        /// Most blocks wanted (already capped at this node's `max_sync_blocks`).
        max: u32,
        /// Where the answer goes.
        respond: BlocksResponder,
    },
    /// A peer asks for the block with this hash; answer through `respond`.
    BlockRequested {
        /// The peer asking.
        from: PeerId,
        /// The block hash.
        hash: Hash32,
        /// Where the answer goes.
        respond: BlockResponder,
    },
    /// The first connection to a peer is up.
    PeerConnected(PeerId),
    /// The last connection to a peer is closed.
    PeerDisconnected(PeerId),
    /// A peer that is not on the allow-list (or over the connection limits) was refused.
    PeerDenied(PeerId),
    /// The node listens on this address.
    Listening(Multiaddr),
}

/// The application's end of the event channel: [`NetEvent`]s in order, bounded in count
/// (`NetConfig::event_capacity`) and in the bytes of the gossip messages they carry
/// (`NetConfig::max_event_bytes`), so that a flood of large messages while the
/// application is slow costs a bounded amount of memory.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<(NetEvent, usize)>,
    queued_bytes: Arc<AtomicUsize>,
}

impl Events {
    pub(crate) fn new(
        rx: mpsc::Receiver<(NetEvent, usize)>,
        queued_bytes: Arc<AtomicUsize>,
    ) -> Self {
        Self { rx, queued_bytes }
    }

    fn taken(&self, (event, bytes): (NetEvent, usize)) -> NetEvent {
        self.queued_bytes.fetch_sub(bytes, Ordering::AcqRel);
        event
    }

    /// The next event; `None` once the network has stopped.
    pub async fn recv(&mut self) -> Option<NetEvent> {
        let item = self.rx.recv().await?;
        Some(self.taken(item))
    }

    /// The next event if one waits.
    pub fn try_recv(&mut self) -> Result<NetEvent, mpsc::error::TryRecvError> {
        let item = self.rx.try_recv()?;
        Ok(self.taken(item))
    }

    /// Bytes of gossip waiting in the channel.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Acquire)
    }
}

/// The network's end of the event channel, keeping the byte count of [`Events`].
#[derive(Debug)]
pub(crate) struct EventSender {
    tx: mpsc::Sender<(NetEvent, usize)>,
    queued_bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// Room for one event of a given size, taken from both bounds; given back if dropped
/// unused.
pub(crate) struct EventPermit<'a> {
    permit: Option<mpsc::Permit<'a, (NetEvent, usize)>>,
    bytes: usize,
    queued_bytes: &'a AtomicUsize,
}

impl EventPermit<'_> {
    /// Sends the event the room was taken for.
    pub(crate) fn send(mut self, event: NetEvent) {
        if let Some(permit) = self.permit.take() {
            permit.send((event, self.bytes));
        }
    }
}

impl Drop for EventPermit<'_> {
    fn drop(&mut self) {
        if self.permit.is_some() {
            self.queued_bytes.fetch_sub(self.bytes, Ordering::AcqRel);
        }
    }
}

impl EventSender {
    /// A sender and its receiver: at most `capacity` events and `max_bytes` bytes.
    pub(crate) fn channel(capacity: usize, max_bytes: usize) -> (Self, Events) {
        let (tx, rx) = mpsc::channel(capacity);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        (
            Self {
                tx,
                queued_bytes: Arc::clone(&queued_bytes),
                max_bytes,
            },
            Events::new(rx, queued_bytes),
        )
    }

    /// Room for an event carrying `bytes` bytes of gossip, if both bounds allow it.
    pub(crate) fn try_reserve(&self, bytes: usize) -> Option<EventPermit<'_>> {
        let permit = self.tx.try_reserve().ok()?;
        // Only the event loop adds, so checking then adding cannot overshoot.
        if self.queued_bytes.load(Ordering::Acquire) + bytes > self.max_bytes {
            return None;
        }
        self.queued_bytes.fetch_add(bytes, Ordering::AcqRel);
        Some(EventPermit {
            permit: Some(permit),
            bytes,
            queued_bytes: &self.queued_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]

    use super::*;

    fn txs() -> NetEvent {
        NetEvent::Txs {
            from: PeerId::random(),
            txs: Vec::new(),
        }
    }

    #[test]
    fn the_channel_is_bounded_in_bytes_as_well_as_count() {
        let (tx, mut rx) = EventSender::channel(3, 100);
        let Some(p) = tx.try_reserve(60) else {
            panic!("room for 60 of 100 bytes")
        };
        p.send(txs());
        assert_eq!(rx.queued_bytes(), 60);
        assert!(tx.try_reserve(50).is_none(), "60 + 50 is over 100 bytes");
        // Events without gossip bytes (a peer connected) still pass while bytes are full.
        let Some(p) = tx.try_reserve(0) else {
            panic!("a zero-byte event fits")
        };
        p.send(txs());
        assert!(rx.try_recv().is_ok());
        assert_eq!(rx.queued_bytes(), 0);
        let Some(p) = tx.try_reserve(100) else {
            panic!("room again once taken")
        };
        p.send(txs());
        // The count bound: 3 slots, 2 taken.
        assert!(tx.try_reserve(0).is_some());
        let Some(p) = tx.try_reserve(0) else {
            panic!("third slot")
        };
        p.send(txs());
        assert!(tx.try_reserve(0).is_none(), "3 events queued");
        // Room taken and not used is given back.
        while rx.try_recv().is_ok() {}
        assert_eq!(rx.queued_bytes(), 0);
        drop(tx.try_reserve(70));
        assert_eq!(rx.queued_bytes(), 0);
        assert!(tx.try_reserve(100).is_some());
    }
}
