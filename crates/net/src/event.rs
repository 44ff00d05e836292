//! What the network layer tells the application.

use ebill_types::{Block, CommitCertificate, Hash32, SignedTx};
use libp2p::{Multiaddr, PeerId};

use crate::gossip::ConsensusMsg;
use crate::sync::{BlockResponder, BlocksResponder};

/// An event for the application. Every gossip event has passed the checks of this
/// crate (strict bounded decoding; signatures, block bodies and certificates against
/// the genesis validator set) and has been forwarded to the mesh.
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
