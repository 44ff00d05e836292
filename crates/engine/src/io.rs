//! What goes into the engine and what comes out of it. The node carries outputs out over
//! libp2p and its API; the simulator over its simulated network and checkers.

use std::sync::Arc;

use ebill_consensus::{Evidence, Message};
use ebill_ledger::{ChangeSet, TxError};
use ebill_types::{Block, CommitCertificate, Hash32, TxId};

/// A block with the commit certificate that makes it final.
#[derive(Clone, Debug)]
pub struct CertifiedBlock {
    /// The block.
    pub block: Arc<Block>,
    /// 2f+1 precommits for it.
    pub certificate: CommitCertificate,
}

/// What the engine reacts to (besides time, which comes with every input).
#[derive(Debug)]
pub enum Input {
    /// Transactions were admitted to the mempool.
    TxsAdded,
    /// A consensus message from a peer; a proposal may carry its block.
    Consensus {
        /// The message.
        msg: Message,
        /// The proposed block.
        block: Option<Arc<Block>>,
    },
    /// Certified blocks from a peer (sync answers and announcements).
    Blocks(Vec<CertifiedBlock>),
    /// A block without a certificate, fetched by hash.
    Block(Arc<Block>),
    /// Nothing but time passing: due timeouts, the heartbeat, periodic re-sends.
    Tick,
}

/// Messages for the network.
#[derive(Clone, Debug)]
pub enum Outbound {
    /// A consensus message for the validators; a proposal carries its block.
    Consensus {
        /// The message.
        msg: Message,
        /// The proposed block, with a proposal.
        block: Option<Arc<Block>>,
    },
    /// A block this validator proposed, just committed, with its certificate (observers
    /// follow these).
    Announce(CertifiedBlock),
    /// Ask a peer for final blocks from `from_height` on.
    RequestBlocks {
        /// First height wanted.
        from_height: u64,
        /// Most blocks wanted.
        max: u32,
    },
    /// Ask a peer for one block by hash: decided or proposed here, bytes missing.
    RequestBlock {
        /// Its hash.
        hash: Hash32,
    },
}

/// A block made final here, after the store holds it.
#[derive(Clone, Debug)]
pub struct Committed {
    /// The block and its certificate.
    pub certified: CertifiedBlock,
    /// The changes its execution made (`changes.txs`: its transaction ids in order).
    pub changes: ChangeSet,
}

/// What the engine asks its host to do, in order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send to the network.
    Send(Outbound),
    /// A block is final and stored.
    Committed(Box<Committed>),
    /// A waiting transaction no longer applies and left the mempool.
    Dropped {
        /// Its id.
        id: TxId,
        /// Why.
        error: TxError,
    },
    /// A validator signed two conflicting messages.
    Evidence(Evidence),
}
