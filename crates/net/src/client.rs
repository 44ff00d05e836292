//! The application's handle on the network: async methods over the command channel of
//! the event loop.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ebill_types::{Block, CommitCertificate, Hash32, SignedTx};
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Limits, RPC_SLACK_BYTES};
use crate::error::NetError;
use crate::gossip::{
    Checker, ConsensusMsg, TopicKind, encode_announcement, encode_consensus, encode_cosignature,
    encode_tx_batches,
};
use crate::stats::{Counters, NetStats};
use crate::sync::{SyncRequest, decode_block_response, decode_blocks_response};

/// A command for the event loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Publish encoded bytes on a topic.
    Publish {
        topic: TopicKind,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    /// Send a sync request; the reply is the raw response bytes.
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<Vec<u8>, NetError>>,
    },
    /// Dial an address now and whenever its connection drops.
    AddPeer { addr: Multiaddr },
    /// Stop the event loop; `ack` fires once the swarm is dropped.
    Shutdown { ack: oneshot::Sender<()> },
}

/// State shared between the clients and the event loop.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) local_peer_id: PeerId,
    pub(crate) checker: Arc<Checker>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) connected: watch::Receiver<BTreeSet<PeerId>>,
    pub(crate) gossip_peers: watch::Receiver<BTreeSet<PeerId>>,
    pub(crate) idle_connection_timeout: Duration,
    /// Makes every consensus publish distinct bytes (see `gossip::encode_consensus`);
    /// starts at the wall clock's nanoseconds so a restarted node does not repeat the
    /// bytes its peers may still remember.
    pub(crate) publish_attempt: std::sync::atomic::AtomicU64,
}

/// The handle on a running network. Cheap to clone; the event loop stops when the last
/// clone is dropped or on [`Client::shutdown`].
#[derive(Clone, Debug)]
pub struct Client {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) shared: Arc<Shared>,
}

impl Client {
    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.shared.checker.limits
    }

    /// The idle-connection timeout the swarm was built with.
    pub fn idle_connection_timeout(&self) -> Duration {
        self.shared.idle_connection_timeout
    }

    /// Gossips transactions, in batches of at most `max_batch_txs` transactions and
    /// `max_batch_bytes` bytes. A transaction over `max_tx_bytes` fails the whole call
    /// before anything is sent.
    pub async fn publish_txs(&self, txs: Vec<SignedTx>) -> Result<(), NetError> {
        let limits = self.limits();
        for batch in encode_tx_batches(&txs, &limits)? {
            self.publish(TopicKind::Txs, batch).await?;
        }
        Ok(())
    }

    /// Gossips a consensus message to every validator and observer. Publishing the
    /// same bytes again within gossipsub's duplicate window (60 s) is a no-op that
    /// succeeds (counted in [`NetStats::publish_duplicates`]).
    pub async fn publish_consensus(&self, msg: ConsensusMsg) -> Result<(), NetError> {
        let attempt = self
            .shared
            .publish_attempt
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = encode_consensus(&msg, attempt);
        self.publish(TopicKind::Consensus, data).await
    }

    /// Gossips a committed block with its certificate (for observers, and validators
    /// that missed the proposal). One announcer per block is enough: announcements of
    /// one block with different certificates are different messages.
    pub async fn announce_block(
        &self,
        block: Block,
        cert: CommitCertificate,
    ) -> Result<(), NetError> {
        let data = encode_announcement(&block, &cert);
        self.publish(TopicKind::Blocks, data).await
    }

    /// Gossips a witness's co-signature of a checkpoint. Each call is distinct bytes
    /// (a publish attempt counter, as for consensus messages), so a witness may re-send
    /// its latest co-signature for nodes that missed it.
    pub async fn publish_cosignature(
        &self,
        checkpoint: &ebill_types::checkpoint::Checkpoint,
        cosignature: &ebill_types::checkpoint::Cosignature,
    ) -> Result<(), NetError> {
        let attempt = self
            .shared
            .publish_attempt
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let data = encode_cosignature(checkpoint, cosignature, attempt);
        self.publish(TopicKind::Cosignatures, data).await
    }

    async fn publish(&self, topic: TopicKind, data: Vec<u8>) -> Result<(), NetError> {
        let limits = self.limits();
        let max_bytes = match topic {
            TopicKind::Txs => limits.max_txs_gossip_bytes,
            TopicKind::Consensus | TopicKind::Blocks | TopicKind::Cosignatures => {
                limits.max_gossip_bytes
            }
        } - RPC_SLACK_BYTES;
        if data.len() > max_bytes {
            return Err(NetError::TooLarge {
                what: "gossip message",
                bytes: data.len(),
                max_bytes,
            });
        }
        let (reply, rx) = oneshot::channel();
        self.send(Command::Publish { topic, data, reply }).await?;
        rx.await.map_err(|_| NetError::Closed)?
    }

    /// Asks `peer` for its committed blocks from `from_height` on, at most `max` (capped
    /// at this node's `max_sync_blocks`). Every block returned is checked: consecutive
    /// heights from `from_height`, each linked to the one before, its body matching its
    /// header and its certificate a quorum of the validator set. An empty list means the
    /// peer has no block at `from_height`.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from_height: u64,
        max: u32,
    ) -> Result<Vec<(Block, CommitCertificate)>, NetError> {
        let max = max.min(self.limits().max_sync_blocks);
        let bytes = self
            .request(peer, SyncRequest::Blocks { from_height, max })
            .await?;
        let checker = Arc::clone(&self.shared.checker);
        let verified = tokio::task::spawn_blocking(move || {
            decode_blocks_response(
                &bytes,
                from_height,
                max,
                &checker.chain_id,
                &checker.validators,
                &checker.limits,
            )
        })
        .await
        .map_err(|e| NetError::BadResponse {
            peer: peer.to_string(),
            reason: format!("checking task failed: {e}"),
        })?;
        verified.map_err(|reason| NetError::BadResponse {
            peer: peer.to_string(),
            reason,
        })
    }

    /// Asks `peer` for the block with header hash `hash` (for a validator that missed a
    /// proposal). The block returned hashes to `hash` and its body matches its header;
    /// its certificate, if the peer has one, verifies. `None` if the peer lacks it.
    pub async fn request_block(
        &self,
        peer: PeerId,
        hash: Hash32,
    ) -> Result<Option<(Block, Option<CommitCertificate>)>, NetError> {
        let bytes = self.request(peer, SyncRequest::Block { hash }).await?;
        let checker = Arc::clone(&self.shared.checker);
        let verified = tokio::task::spawn_blocking(move || {
            decode_block_response(
                &bytes,
                &hash,
                &checker.chain_id,
                &checker.validators,
                &checker.limits,
            )
        })
        .await
        .map_err(|e| NetError::BadResponse {
            peer: peer.to_string(),
            reason: format!("checking task failed: {e}"),
        })?;
        verified.map_err(|reason| NetError::BadResponse {
            peer: peer.to_string(),
            reason,
        })
    }

    async fn request(&self, peer: PeerId, request: SyncRequest) -> Result<Vec<u8>, NetError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await?;
        rx.await.map_err(|_| NetError::Closed)?
    }

    /// Dials `addr` now, and again with backoff whenever the connection drops.
    pub async fn add_peer(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.send(Command::AddPeer { addr }).await
    }

    /// Peers with at least one open connection.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.shared.connected.borrow().iter().copied().collect()
    }

    /// Connected peers subscribed to at least one gossip topic of the chain (each
    /// role takes in its own topics: see [`Topics`](crate::Topics)).
    pub fn gossip_peers(&self) -> Vec<PeerId> {
        self.shared.gossip_peers.borrow().iter().copied().collect()
    }

    /// Waits until at least `n` peers are subscribed to a gossip topic (wrap it in a
    /// timeout). Fails once the event loop has stopped.
    pub async fn wait_for_gossip_peers(&self, n: usize) -> Result<(), NetError> {
        let mut rx = self.shared.gossip_peers.clone();
        rx.wait_for(|peers| peers.len() >= n)
            .await
            .map(|_| ())
            .map_err(|_| NetError::Closed)
    }

    /// Tells the gossip checks the committed tip: consensus messages and announcements
    /// at this height or below are then ignored (not delivered, not forwarded).
    pub fn set_tip_height(&self, height: u64) {
        self.shared
            .checker
            .tip_height
            .fetch_max(height, Ordering::Relaxed);
    }

    /// The counters of refused and dropped things.
    pub fn stats(&self) -> NetStats {
        self.shared.counters.snapshot()
    }

    /// Stops the event loop and closes every connection; returns once the swarm is
    /// dropped (at once if it already was).
    pub async fn shutdown(&self) {
        let (ack, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown { ack }).await.is_ok() {
            let _ = rx.await;
        }
    }

    async fn send(&self, cmd: Command) -> Result<(), NetError> {
        self.commands.send(cmd).await.map_err(|_| NetError::Closed)
    }
}
