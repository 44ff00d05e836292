//! One simulated validator: a consensus instance, a ledger ([`MemState`]), a block store
//! and a WAL (both durable: they survive a crash), a mempool, and the glue that drives
//! consensus the way `node/src/engine.rs` does: a height starts only when there is work
//! (a transaction waits, a message of that height arrives, or the heartbeat is due),
//! blocks are built with `ebill_ledger::select` and checked with `apply_block`, the
//! own votes are persisted before they leave, and a decided block is stored with its
//! certificate. A node behind its peers catches up by syncing final blocks with their
//! certificates (verified, then re-executed).
//!
//! A node never touches the network or the clock itself: every handler takes `now_ms`
//! and returns [`Output`]s that the run carries out.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

#[cfg(feature = "bugs")]
use ebill_consensus::Bug;
use ebill_consensus::{
    Config, Consensus, Effect, Event, Evidence, Message, Step, TimeoutStep, Timeouts, WalEntry,
};
use ebill_ledger::{ChangeSet, Context, MemState, apply_block, genesis_changes, select};
use ebill_types::{
    Block, Canonical, CommitCertificate, Genesis, Hash32, Header, Keypair, SignedTx, SignedVote,
    TxId, ValidatorSet, VoteKind,
};

use crate::byzantine::Adversary;
use crate::network::Payload;
use crate::rng::Rng;
use crate::workload::CHAIN_EPOCH_MS;

/// A consensus bug planted in the honest validators (feature `bugs` of this crate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlantedBug {
    /// `Bug::NoLock`: prevotes ignore the lock.
    NoLock,
    /// `Bug::SmallQuorum`: f+1 instead of 2f+1.
    SmallQuorum,
    /// `Bug::NoWal`: nothing persisted, the WAL ignored on restart.
    NoWal,
}

impl PlantedBug {
    /// Parses `no-lock`, `small-quorum` or `no-wal`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "no-lock" => Some(Self::NoLock),
            "small-quorum" => Some(Self::SmallQuorum),
            "no-wal" => Some(Self::NoWal),
            _ => None,
        }
    }

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoLock => "no-lock",
            Self::SmallQuorum => "small-quorum",
            Self::NoWal => "no-wal",
        }
    }

    /// Whether this build can plant bugs (the cargo feature `bugs`).
    pub fn available() -> bool {
        cfg!(feature = "bugs")
    }
}

/// Settings shared by every node of a run.
#[derive(Clone, Debug)]
pub struct NodeParams {
    /// The genesis.
    pub genesis: Genesis,
    /// Its validator set.
    pub validators: ValidatorSet,
    /// Consensus step timeouts.
    pub timeouts: Timeouts,
    /// How often a node re-sends its own messages of the current round.
    pub rebroadcast_ms: u64,
    /// How often a node asks a random peer for blocks above its tip.
    pub sync_ms: u64,
    /// Longest time between heights with nothing to do (an empty block).
    pub heartbeat_ms: u64,
    /// Most transactions a proposer puts in a block.
    pub max_block_txs: usize,
    /// How far ahead of the local clock a block's time may be.
    pub max_clock_drift_ms: u64,
    /// Blocks per sync answer.
    pub sync_batch: usize,
    /// The planted bug of the honest validators, if any.
    pub bug: Option<PlantedBug>,
}

/// A timer of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// A consensus timeout.
    Consensus {
        /// Height.
        height: u64,
        /// Round.
        round: u32,
        /// Step.
        step: TimeoutStep,
    },
    /// Re-send the own messages of the current round; ask again for missing blocks.
    Rebroadcast,
    /// Ask a random peer for blocks above the tip; start an idle height if due.
    Sync,
    /// A Byzantine node's garbage.
    Garbage,
}

/// What a node asks the run to do, or reports to the checkers.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send to one peer.
    Send {
        /// The peer.
        to: u32,
        /// What.
        payload: Payload,
    },
    /// Send to every other validator.
    Broadcast(Payload),
    /// Fire `timer` at `at_ms` (unless the node crashed meanwhile).
    Timer {
        /// When.
        at_ms: u64,
        /// Which.
        timer: Timer,
    },
    /// This node signed and sent `msg` (for the no-equivocation checker).
    Signed(Message),
    /// This node made `height` final.
    Committed {
        /// The height.
        height: u64,
        /// The block.
        block: Rc<Block>,
        /// Its certificate.
        certificate: CommitCertificate,
        /// Digest of the ledger after the block.
        state_digest: Hash32,
    },
    /// Equivocation evidence this node saw.
    Evidence(Evidence),
    /// Something that must never happen to a correct node (a final block that does not
    /// apply, a WAL refused at restart...).
    Fault(String),
}

/// What survives a crash: the block store and the WAL.
#[derive(Debug, Default)]
pub struct Disk {
    /// Final blocks with their certificates, by height.
    pub blocks: BTreeMap<u64, (Rc<Block>, CommitCertificate)>,
    /// Height of each final block, by hash.
    pub heights: BTreeMap<Hash32, u64>,
    /// Own votes and proposals, persisted before they were sent.
    pub wal: Vec<WalEntry>,
    /// Bytes of the blocks this node proposed or voted for (persisted with the proposal
    /// or vote, so that after a restart it can still serve them).
    pub own_blocks: BTreeMap<Hash32, Rc<Block>>,
    /// Votes received for the next height, nil or for a block this node holds,
    /// written lazily (losing some is like losing messages) and fed back to consensus
    /// after a restart. `Consensus::restore` rebuilds the own votes and the lock, not
    /// the polka behind the lock: when every honest validator holding a polka that
    /// includes a Byzantine prevote has restarted, nobody could prove that POL round
    /// again, and locked validators would refuse everything else for good.
    pub received: BTreeMap<(u64, u32, u8, u32, Option<Hash32>), SignedVote>,
}

/// The tip: the last final block.
#[derive(Clone, Copy, Debug)]
struct Tip {
    height: u64,
    hash: Hash32,
    time_ms: u64,
    state_digest: Hash32,
}

/// What a crash loses.
#[derive(Debug)]
struct Mem {
    consensus: Option<Consensus>,
    ledger: MemState,
    tip: Tip,
    /// Blocks of height tip+1 that this node built or received.
    known_blocks: BTreeMap<Hash32, Rc<Block>>,
    /// Verdicts of `check_block` for height tip+1, with the changes of valid blocks.
    verdicts: BTreeMap<Hash32, Option<Rc<ChangeSet>>>,
    /// Transactions waiting, in arrival order.
    mempool_order: BTreeMap<u64, TxId>,
    mempool: BTreeMap<TxId, (u64, Rc<SignedTx>)>,
    next_seq: u64,
    /// Transactions seen (gossip de-duplication).
    seen: BTreeSet<TxId>,
    /// Decided at tip+1, block bytes missing.
    pending_commit: Option<CommitCertificate>,
    /// Blocks consensus asked to check whose bytes are missing.
    pending_checks: BTreeSet<Hash32>,
    last_commit_ms: u64,
    last_sync_request_ms: u64,
}

/// Most blocks of the next height a node keeps (Byzantine proposers could send many).
const MAX_KNOWN_BLOCKS: usize = 64;

/// Received votes kept on disk per height, per validator of the set (a bound against
/// Byzantine floods; honest validators sign two votes a round).
const MAX_RECEIVED_PER_VALIDATOR: usize = 128;

/// One validator.
#[derive(Debug)]
pub struct Node {
    index: u32,
    key: Keypair,
    params: Rc<NodeParams>,
    /// The durable part.
    pub disk: Disk,
    mem: Option<Mem>,
    adversary: Option<Adversary>,
    /// Incarnation: bumped at every restart, so that old timers are ignored.
    pub epoch: u64,
}

impl Node {
    /// Validator `index` (not yet started: call [`Node::restart`]).
    pub fn new(
        index: u32,
        key: Keypair,
        params: Rc<NodeParams>,
        adversary: Option<Adversary>,
    ) -> Self {
        Self {
            index,
            key,
            params,
            disk: Disk::default(),
            mem: None,
            adversary,
            epoch: 0,
        }
    }

    /// Its index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// Whether it is Byzantine.
    pub fn byzantine(&self) -> bool {
        self.adversary.is_some()
    }

    /// Whether it runs (not crashed).
    pub fn alive(&self) -> bool {
        self.mem.is_some()
    }

    /// Height of its last final block (from the store, so also while crashed).
    pub fn tip_height(&self) -> u64 {
        self.disk.blocks.keys().next_back().copied().unwrap_or(0)
    }

    /// Consensus height and round, if consensus runs.
    pub fn consensus_position(&self) -> Option<(u64, u32, Step)> {
        let c = self.mem.as_ref()?.consensus.as_ref()?;
        Some((c.height(), c.round(), c.step()))
    }

    /// `Stats::refused_conflicting_signatures` of the running instance (0 if none).
    pub fn refused_conflicting_signatures(&self) -> u64 {
        self.mem
            .as_ref()
            .and_then(|m| m.consensus.as_ref())
            .map_or(0, |c| c.stats().refused_conflicting_signatures)
    }

    fn n(&self) -> u32 {
        self.params.validators.len() as u32
    }

    fn chain_id(&self) -> &str {
        &self.params.genesis.chain_id
    }

    fn config(&self) -> Config {
        let config = Config::new(
            self.params.genesis.chain_id.clone(),
            self.params.validators.clone(),
            self.index,
            self.key.clone(),
        )
        .with_timeouts(self.params.timeouts);
        #[cfg(feature = "bugs")]
        let config = if self.adversary.is_some() {
            config
        } else {
            config.with_bug(self.params.bug.map(|b| match b {
                PlantedBug::NoLock => Bug::NoLock,
                PlantedBug::SmallQuorum => Bug::SmallQuorum,
                PlantedBug::NoWal => Bug::NoWal,
            }))
        };
        config
    }

    // ----- crash and restart -----

    /// Crash: everything in memory is lost; the store and the WAL stay.
    pub fn crash(&mut self) {
        self.mem = None;
    }

    /// (Re)start from the store and the WAL: re-execute the stored blocks, resume
    /// consensus from the WAL if it holds messages of the next height, start the timers.
    pub fn restart(&mut self, now_ms: u64, rng: &mut Rng, out: &mut Vec<Output>) {
        self.epoch += 1;
        let genesis = &self.params.genesis;
        let mut ledger = MemState::default();
        let genesis_changes = genesis_changes(genesis);
        ledger.commit(0, &genesis_changes);
        let mut tip = Tip {
            height: 0,
            hash: genesis.hash(),
            time_ms: u64::try_from(genesis.genesis_time.unix_ms).unwrap_or(0),
            state_digest: digest_changes(Hash32::ZERO, &genesis_changes),
        };
        for (height, (block, _)) in &self.disk.blocks {
            let ctx = Context {
                genesis,
                height: *height,
                time_ms: block.header.time_ms,
            };
            match apply_block(&ledger, ctx, &block.txs, None) {
                Ok(changes) => {
                    ledger.commit(*height, &changes);
                    tip = Tip {
                        height: *height,
                        hash: block.header.hash(),
                        time_ms: block.header.time_ms,
                        state_digest: digest_changes(tip.state_digest, &changes),
                    };
                }
                Err(e) => {
                    out.push(Output::Fault(format!(
                        "stored block {height} does not re-execute: {e}"
                    )));
                    return;
                }
            }
        }
        self.mem = Some(Mem {
            consensus: None,
            ledger,
            tip,
            known_blocks: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            mempool_order: BTreeMap::new(),
            mempool: BTreeMap::new(),
            next_seq: 0,
            seen: BTreeSet::new(),
            pending_commit: None,
            pending_checks: BTreeSet::new(),
            last_commit_ms: now_ms,
            last_sync_request_ms: 0,
        });
        let next = tip.height + 1;
        if self.disk.wal.iter().any(|e| e.height() == next) {
            match Consensus::restore(self.config(), next, &self.disk.wal, now_ms) {
                Ok((c, effects)) => {
                    if let Some(m) = self.mem.as_mut() {
                        m.consensus = Some(c);
                    }
                    self.carry_out(now_ms, rng, effects, out);
                    self.replay_received(now_ms, rng, next, out);
                }
                Err(e) => out.push(Output::Fault(format!("consensus restore refused: {e}"))),
            }
        }
        let p = &self.params;
        out.push(Output::Timer {
            at_ms: now_ms + rng.range(1, p.rebroadcast_ms),
            timer: Timer::Rebroadcast,
        });
        out.push(Output::Timer {
            at_ms: now_ms + rng.range(1, p.sync_ms),
            timer: Timer::Sync,
        });
        if self.adversary.is_some() {
            out.push(Output::Timer {
                at_ms: now_ms + rng.range(1, p.rebroadcast_ms),
                timer: Timer::Garbage,
            });
        }
        self.request_sync(now_ms, rng, out);
    }

    // ----- inputs -----

    /// A timer fired.
    pub fn on_timer(&mut self, now_ms: u64, rng: &mut Rng, timer: Timer, out: &mut Vec<Output>) {
        if self.mem.is_none() {
            return;
        }
        match timer {
            Timer::Consensus {
                height,
                round,
                step,
            } => self.feed(
                now_ms,
                rng,
                Event::Timeout {
                    height,
                    round,
                    step,
                },
                out,
            ),
            Timer::Rebroadcast => {
                if self.started() {
                    self.feed(now_ms, rng, Event::Rebroadcast, out);
                    self.resend_older_rounds(out);
                }
                self.request_missing_blocks(out);
                out.push(Output::Timer {
                    at_ms: now_ms + self.params.rebroadcast_ms,
                    timer: Timer::Rebroadcast,
                });
            }
            Timer::Sync => {
                self.request_sync(now_ms, rng, out);
                self.maybe_start(now_ms, rng, false, out);
                out.push(Output::Timer {
                    at_ms: now_ms + self.params.sync_ms,
                    timer: Timer::Sync,
                });
            }
            Timer::Garbage => {
                let (height, round) = self
                    .consensus_position()
                    .map_or((self.tip_height() + 1, 0), |(h, r, _)| (h, r));
                if let Some(adv) = self.adversary.as_mut() {
                    for (to, payload) in adv.garbage(rng, height, round) {
                        out.push(Output::Send { to, payload });
                    }
                }
                out.push(Output::Timer {
                    at_ms: now_ms + self.params.rebroadcast_ms / 2 + 1,
                    timer: Timer::Garbage,
                });
            }
        }
    }

    /// A message arrived from `from` (`None`: a client).
    pub fn on_payload(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        from: Option<u32>,
        payload: Payload,
        out: &mut Vec<Output>,
    ) {
        if self.mem.is_none() {
            return;
        }
        match payload {
            Payload::Consensus { msg, block } => self.on_consensus(now_ms, rng, msg, block, out),
            Payload::Tx(tx) => self.on_tx(now_ms, rng, tx, out),
            Payload::SyncRequest { from_height } => {
                if let Some(from) = from {
                    self.on_sync_request(rng, from, from_height, out);
                }
            }
            Payload::SyncResponse { blocks } => {
                for (block, cert) in blocks {
                    if !self.on_synced_block(now_ms, rng, block, cert, out) {
                        break;
                    }
                }
            }
            Payload::BlockRequest { hash } => {
                if let (Some(from), Some(block)) = (from, self.block_by_hash(&hash)) {
                    out.push(Output::Send {
                        to: from,
                        payload: Payload::BlockResponse { block },
                    });
                }
            }
            Payload::BlockResponse { block } => self.on_block_bytes(now_ms, rng, block, out),
        }
    }

    fn on_consensus(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        msg: Message,
        block: Option<Rc<Block>>,
        out: &mut Vec<Output>,
    ) {
        if let (Message::Proposal(p), Some(block)) = (&msg, block) {
            // Only the bytes that match the proposal are kept.
            if block.header.hash() == p.proposal.block {
                self.on_block_bytes(now_ms, rng, block, out);
            }
        }
        let Some(tip) = self.mem.as_ref().map(|m| m.tip.height) else {
            return;
        };
        if let Message::Vote(v) = msg {
            self.persist_received(tip, v);
        }
        if let (Some(adv), Message::Proposal(p)) = (self.adversary.as_mut(), &msg)
            && p.proposal.height == tip + 1
            && p.proposal.proposer != self.index
            && p.verify(&self.params.genesis.chain_id, &self.params.validators)
        {
            for (to, payload) in adv.on_foreign_proposal(rng, p) {
                out.push(Output::Send { to, payload });
            }
        }
        let height = msg.height();
        if height == tip + 1 && !self.started() {
            self.maybe_start(now_ms, rng, true, out);
        }
        if self.mem.as_ref().is_some_and(|m| m.consensus.is_some()) {
            self.feed(now_ms, rng, msg.into(), out);
        }
        let behind = self
            .mem
            .as_ref()
            .and_then(|m| m.consensus.as_ref())
            .is_some_and(|c| c.highest_height_seen() > c.height() + 1);
        if height > tip + 1 || behind {
            self.request_sync(now_ms, rng, out);
        }
    }

    fn persist_received(&mut self, tip: u64, v: SignedVote) {
        let vote = v.vote;
        let cap = MAX_RECEIVED_PER_VALIDATOR * self.params.validators.len();
        let held = |b: &Hash32| {
            self.disk.own_blocks.contains_key(b)
                || self
                    .mem
                    .as_ref()
                    .is_some_and(|m| m.known_blocks.contains_key(b))
        };
        if vote.height != tip + 1
            || self.disk.received.len() >= cap
            || !vote.block.as_ref().is_none_or(held)
        {
            return;
        }
        let kind = u8::from(vote.kind == VoteKind::Precommit);
        self.disk
            .received
            .entry((vote.height, vote.round, kind, vote.validator, vote.block))
            .or_insert(v);
    }

    /// Feeds the received votes of `height` kept on disk back to consensus.
    fn replay_received(&mut self, now_ms: u64, rng: &mut Rng, height: u64, out: &mut Vec<Output>) {
        let votes: Vec<SignedVote> = self
            .disk
            .received
            .range((height, 0, 0, 0, None)..)
            .take_while(|(k, _)| k.0 == height)
            .map(|(_, v)| *v)
            .collect();
        for v in votes {
            self.feed(now_ms, rng, Event::Vote(v), out);
        }
    }

    fn on_tx(&mut self, now_ms: u64, rng: &mut Rng, tx: Rc<SignedTx>, out: &mut Vec<Output>) {
        let id = tx.tx.id(self.chain_id());
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        if !m.seen.insert(id) || m.ledger.txs.contains_key(&id) {
            return;
        }
        let seq = m.next_seq;
        m.next_seq += 1;
        m.mempool_order.insert(seq, id);
        m.mempool.insert(id, (seq, Rc::clone(&tx)));
        if self.adversary.is_none() || rng.chance(500) {
            out.push(Output::Broadcast(Payload::Tx(tx)));
        }
        self.maybe_start(now_ms, rng, false, out);
    }

    fn on_sync_request(
        &mut self,
        rng: &mut Rng,
        from: u32,
        from_height: u64,
        out: &mut Vec<Output>,
    ) {
        let blocks: Vec<(Rc<Block>, CommitCertificate)> = self
            .disk
            .blocks
            .range(from_height..)
            .take(self.params.sync_batch)
            .map(|(_, (b, c))| (Rc::clone(b), c.clone()))
            .collect();
        if let Some(adv) = self.adversary.as_mut()
            && let Some(forged) = adv.forge_sync(rng, blocks.first().cloned())
        {
            out.push(Output::Send {
                to: from,
                payload: forged,
            });
            return;
        }
        if !blocks.is_empty() {
            out.push(Output::Send {
                to: from,
                payload: Payload::SyncResponse { blocks },
            });
        }
    }

    /// A final block from a peer. Returns whether it was the next one and is now final.
    fn on_synced_block(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        block: Rc<Block>,
        cert: CommitCertificate,
        out: &mut Vec<Output>,
    ) -> bool {
        let Some(m) = self.mem.as_ref() else {
            return false;
        };
        let next = m.tip.height + 1;
        let hash = block.header.hash();
        if cert.height != next || cert.block != hash || block.header.height != next {
            return false;
        }
        let p = &self.params;
        if cert.signatures.len() > p.validators.len()
            || cert
                .verify(&p.genesis.chain_id, next, &hash, &p.validators)
                .is_err()
        {
            return false;
        }
        self.remember_block(Rc::clone(&block));
        let running = self
            .mem
            .as_ref()
            .and_then(|m| m.consensus.as_ref())
            .is_some_and(|c| c.height() == next && c.step() != Step::Decided);
        if running {
            // Consensus decides by the certificate (line 49) and emits the Commit.
            self.feed(now_ms, rng, Event::Certificate(cert), out);
        } else {
            self.apply_commit(now_ms, rng, block, cert, out);
        }
        self.mem.as_ref().is_some_and(|m| m.tip.height == next)
    }

    /// Block bytes arrived (with a proposal, or answering a request).
    fn on_block_bytes(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        block: Rc<Block>,
        out: &mut Vec<Output>,
    ) {
        let hash = block.header.hash();
        let Some(m) = self.mem.as_ref() else {
            return;
        };
        if block.header.height != m.tip.height + 1 {
            return;
        }
        let pending_commit = m.pending_commit.as_ref().is_some_and(|c| c.block == hash);
        let pending_check = m.pending_checks.contains(&hash);
        self.remember_block(Rc::clone(&block));
        if pending_commit {
            if let Some(cert) = self.mem.as_mut().and_then(|m| m.pending_commit.take()) {
                self.apply_commit(now_ms, rng, block, cert, out);
            }
            return;
        }
        if pending_check {
            let height = block.header.height;
            let valid = self.check_block(now_ms, &block);
            if let Some(m) = self.mem.as_mut() {
                m.pending_checks.remove(&hash);
            }
            self.feed(
                now_ms,
                rng,
                Event::BlockChecked {
                    height,
                    block: hash,
                    valid,
                },
                out,
            );
        }
    }

    fn remember_block(&mut self, block: Rc<Block>) {
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        if m.known_blocks.len() < MAX_KNOWN_BLOCKS {
            m.known_blocks.insert(block.header.hash(), block);
        }
    }

    fn block_by_hash(&self, hash: &Hash32) -> Option<Rc<Block>> {
        if let Some(b) = self.mem.as_ref().and_then(|m| m.known_blocks.get(hash)) {
            return Some(Rc::clone(b));
        }
        if let Some(b) = self.disk.own_blocks.get(hash) {
            return Some(Rc::clone(b));
        }
        let height = self.disk.heights.get(hash)?;
        self.disk.blocks.get(height).map(|(b, _)| Rc::clone(b))
    }

    // ----- driving consensus -----

    /// True once consensus runs, undecided, at tip+1.
    fn started(&self) -> bool {
        self.mem.as_ref().is_some_and(|m| {
            m.consensus
                .as_ref()
                .is_some_and(|c| c.height() == m.tip.height + 1 && c.step() != Step::Decided)
        })
    }

    /// Starts height tip+1 if there is work: a waiting transaction, a message of that
    /// height (`forced`), or the heartbeat.
    fn maybe_start(&mut self, now_ms: u64, rng: &mut Rng, forced: bool, out: &mut Vec<Output>) {
        let Some(m) = self.mem.as_ref() else {
            return;
        };
        if self.started() || m.pending_commit.is_some() {
            return;
        }
        let due = forced
            || !m.mempool.is_empty()
            || now_ms >= m.last_commit_ms + self.params.heartbeat_ms;
        if !due {
            return;
        }
        let height = m.tip.height + 1;
        let has_consensus = m.consensus.is_some();
        if has_consensus {
            self.feed(now_ms, rng, Event::StartHeight { height }, out);
        } else {
            match Consensus::new(self.config(), height, now_ms) {
                Ok((c, effects)) => {
                    if let Some(m) = self.mem.as_mut() {
                        m.consensus = Some(c);
                    }
                    self.carry_out(now_ms, rng, effects, out);
                    self.replay_received(now_ms, rng, height, out);
                }
                Err(e) => out.push(Output::Fault(format!("consensus refused to start: {e}"))),
            }
        }
    }

    fn feed(&mut self, now_ms: u64, rng: &mut Rng, event: Event, out: &mut Vec<Output>) {
        let effects = match self.mem.as_mut().and_then(|m| m.consensus.as_mut()) {
            Some(c) => c.on_event(now_ms, event),
            None => return,
        };
        self.carry_out(now_ms, rng, effects, out);
    }

    /// Carries out effects in order; answers go back into consensus in turn.
    fn carry_out(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        effects: Vec<Effect>,
        out: &mut Vec<Output>,
    ) {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let answer = self.carry_out_one(now_ms, rng, effect, out);
            if let Some(event) = answer
                && let Some(c) = self.mem.as_mut().and_then(|m| m.consensus.as_mut())
            {
                queue.extend(c.on_event(now_ms, event));
            }
        }
    }

    fn carry_out_one(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        effect: Effect,
        out: &mut Vec<Output>,
    ) -> Option<Event> {
        match effect {
            Effect::PersistVote(v) => {
                self.disk.wal.push(Message::Vote(v));
                // The bytes of a block this validator votes for are persisted with the
                // vote: if it is decided, some honest validator must still hold them
                // after every holder restarted.
                if let Some(hash) = v.vote.block
                    && let Some(b) = self.block_by_hash(&hash)
                {
                    self.disk.own_blocks.insert(hash, b);
                }
                None
            }
            Effect::PersistProposal(p) => {
                self.disk.wal.push(Message::Proposal(p));
                if let Some(b) = self.block_by_hash(&p.proposal.block) {
                    self.disk.own_blocks.insert(p.proposal.block, b);
                }
                None
            }
            Effect::Broadcast(msg) => {
                let block = match msg {
                    Message::Proposal(p) => self.block_by_hash(&p.proposal.block),
                    Message::Vote(_) => None,
                };
                let own = msg.signer() == self.index;
                match self.adversary.as_mut() {
                    // A relayed vote of another validator (the polka behind validValue).
                    None if !own => {
                        out.push(Output::Broadcast(Payload::Consensus { msg, block }));
                    }
                    Some(_) if !own => {
                        let payload = Payload::Consensus { msg, block };
                        for to in (0..self.n()).filter(|i| *i != self.index) {
                            if rng.chance(500) {
                                out.push(Output::Send {
                                    to,
                                    payload: payload.clone(),
                                });
                            }
                        }
                    }
                    Some(adv) => {
                        for (to, payload) in adv.on_broadcast(rng, msg, block) {
                            out.push(Output::Send { to, payload });
                        }
                    }
                    None => {
                        out.push(Output::Signed(msg));
                        out.push(Output::Broadcast(Payload::Consensus { msg, block }));
                    }
                }
                None
            }
            Effect::ScheduleTimeout {
                height,
                round,
                step,
                at_ms,
            } => {
                out.push(Output::Timer {
                    at_ms,
                    timer: Timer::Consensus {
                        height,
                        round,
                        step,
                    },
                });
                None
            }
            Effect::RequestProposalValue { height, round } => {
                let block = self.build_block(now_ms, height)?;
                Some(Event::ProposalValue {
                    height,
                    round,
                    block,
                })
            }
            Effect::CheckBlock { height, block, .. } => {
                let bytes = self.mem.as_ref()?.known_blocks.get(&block).cloned();
                match bytes {
                    Some(b) => {
                        let valid = self.check_block(now_ms, &b);
                        Some(Event::BlockChecked {
                            height,
                            block,
                            valid,
                        })
                    }
                    None => {
                        self.mem.as_mut()?.pending_checks.insert(block);
                        out.push(Output::Broadcast(Payload::BlockRequest { hash: block }));
                        None
                    }
                }
            }
            Effect::Commit {
                height,
                block,
                certificate,
            } => {
                let tip = self.mem.as_ref()?.tip.height;
                if height != tip + 1 {
                    out.push(Output::Fault(format!(
                        "consensus committed height {height} on tip {tip}"
                    )));
                    return None;
                }
                match self.block_by_hash(&block) {
                    Some(b) => self.apply_commit(now_ms, rng, b, certificate, out),
                    None => {
                        self.mem.as_mut()?.pending_commit = Some(certificate);
                        out.push(Output::Broadcast(Payload::BlockRequest { hash: block }));
                    }
                }
                None
            }
            Effect::Evidence(e) => {
                out.push(Output::Evidence(e));
                None
            }
        }
    }

    /// Re-sends this validator's own votes of the earlier rounds of the height.
    /// `Event::Rebroadcast` covers only the current round; a peer still in an older
    /// round whose copies of these votes were lost before GST needs them to leave that
    /// round when the other validators of a quorum are Byzantine and silent (the
    /// paper's gossip assumption: every message of a correct process is eventually
    /// received). Byzantine validators do not bother.
    fn resend_older_rounds(&self, out: &mut Vec<Output>) {
        if self.adversary.is_some() {
            return;
        }
        let Some(c) = self.mem.as_ref().and_then(|m| m.consensus.as_ref()) else {
            return;
        };
        for round in 0..c.round() {
            for kind in [VoteKind::Prevote, VoteKind::Precommit] {
                if let Some(v) = c.own_vote(round, kind) {
                    out.push(Output::Broadcast(Payload::Consensus {
                        msg: Message::Vote(*v),
                        block: None,
                    }));
                }
            }
        }
    }

    fn request_missing_blocks(&self, out: &mut Vec<Output>) {
        let Some(m) = self.mem.as_ref() else {
            return;
        };
        let missing = m
            .pending_commit
            .iter()
            .map(|c| c.block)
            .chain(m.pending_checks.iter().copied());
        for hash in missing {
            out.push(Output::Broadcast(Payload::BlockRequest { hash }));
        }
    }

    fn request_sync(&mut self, now_ms: u64, rng: &mut Rng, out: &mut Vec<Output>) {
        let n = self.n();
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        if n < 2 || now_ms < m.last_sync_request_ms + self.params.sync_ms / 4 {
            return;
        }
        m.last_sync_request_ms = now_ms;
        let to = (self.index + 1 + rng.below(u64::from(n - 1)) as u32) % n;
        out.push(Output::Send {
            to,
            payload: Payload::SyncRequest {
                from_height: m.tip.height + 1,
            },
        });
    }

    // ----- blocks -----

    fn chain_now_ms(now_ms: u64) -> u64 {
        CHAIN_EPOCH_MS + now_ms
    }

    /// Builds a block on the tip from the oldest waiting transactions that apply; drops
    /// those that no longer do.
    fn build_block(&mut self, now_ms: u64, height: u64) -> Option<Hash32> {
        let p = Rc::clone(&self.params);
        let index = self.index;
        let m = self.mem.as_mut()?;
        if height != m.tip.height + 1 {
            return None;
        }
        let candidates: Vec<(TxId, Rc<SignedTx>)> = m
            .mempool_order
            .values()
            .take(p.max_block_txs)
            .filter_map(|id| m.mempool.get(id).map(|(_, t)| (*id, Rc::clone(t))))
            .collect();
        let txs: Vec<SignedTx> = candidates.iter().map(|(_, t)| (**t).clone()).collect();
        let time_ms = Self::chain_now_ms(now_ms).max(m.tip.time_ms + 1);
        let ctx = Context {
            genesis: &p.genesis,
            height,
            time_ms,
        };
        let selection = select(&m.ledger, ctx, &txs, None).ok()?;
        for (i, _) in &selection.rejected {
            if let Some((id, _)) = candidates.get(*i) {
                remove_from_mempool(m, id);
            }
        }
        let block_txs: Vec<SignedTx> = selection
            .accepted
            .iter()
            .filter_map(|i| txs.get(*i).cloned())
            .collect();
        let header = Header {
            chain_id: p.genesis.chain_id.clone(),
            height,
            prev_hash: m.tip.hash,
            time_ms,
            proposer: index,
            tx_root: Block::tx_root(&block_txs),
            tx_count: block_txs.len() as u32,
            validator_set_hash: p.validators.hash(),
            state_root: Hash32::ZERO,
        };
        let hash = header.hash();
        m.known_blocks.insert(
            hash,
            Rc::new(Block {
                header,
                txs: block_txs,
            }),
        );
        m.verdicts.insert(hash, Some(Rc::new(selection.changes)));
        Some(hash)
    }

    /// valid(v): the block extends the tip, its header is right, its time is sane and
    /// every transaction applies in order.
    fn check_block(&mut self, now_ms: u64, block: &Block) -> bool {
        let p = Rc::clone(&self.params);
        let Some(m) = self.mem.as_mut() else {
            return false;
        };
        let hash = block.header.hash();
        if let Some(v) = m.verdicts.get(&hash) {
            return v.is_some();
        }
        let h = &block.header;
        let header_ok = h.chain_id == p.genesis.chain_id
            && h.height == m.tip.height + 1
            && h.prev_hash == m.tip.hash
            && h.time_ms > m.tip.time_ms
            && h.time_ms <= Self::chain_now_ms(now_ms) + p.max_clock_drift_ms
            && (h.proposer as usize) < p.validators.len()
            && h.validator_set_hash == p.validators.hash()
            && h.state_root == Hash32::ZERO
            && block.txs.len() <= p.max_block_txs
            && block.check_body().is_ok();
        let changes = if header_ok {
            apply_block(
                &m.ledger,
                Context {
                    genesis: &p.genesis,
                    height: h.height,
                    time_ms: h.time_ms,
                },
                &block.txs,
                None,
            )
            .ok()
            .map(Rc::new)
        } else {
            None
        };
        let valid = changes.is_some();
        m.verdicts.insert(hash, changes);
        valid
    }

    /// Makes `block` final at tip+1: re-execute, store with the certificate, prune the
    /// WAL, clean the mempool, then start the next height if there is work.
    fn apply_commit(
        &mut self,
        now_ms: u64,
        rng: &mut Rng,
        block: Rc<Block>,
        certificate: CommitCertificate,
        out: &mut Vec<Output>,
    ) {
        let p = Rc::clone(&self.params);
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        let height = m.tip.height + 1;
        let hash = block.header.hash();
        if block.header.height != height || certificate.block != hash {
            out.push(Output::Fault(format!(
                "final block {hash} of height {} does not fit tip {} / certificate {}",
                block.header.height, m.tip.height, certificate.block
            )));
            return;
        }
        let ctx = Context {
            genesis: &p.genesis,
            height,
            time_ms: block.header.time_ms,
        };
        let cached = m.verdicts.get(&hash).cloned().flatten();
        let changes = if block.header.prev_hash != m.tip.hash {
            Err(format!("its prev_hash is not the tip {}", m.tip.hash))
        } else if let Some(c) = cached {
            // Checked before (valid(v)) against this very tip: the same changes.
            Ok((*c).clone())
        } else {
            block
                .check_body()
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    apply_block(&m.ledger, ctx, &block.txs, None).map_err(|e| e.to_string())
                })
        };
        let changes = match changes {
            Ok(c) => c,
            Err(e) => {
                out.push(Output::Fault(format!(
                    "final block {hash} at height {height} is invalid: {e}"
                )));
                // Keep the node from building on it: it stays stuck, and the run reports it.
                m.pending_commit = Some(certificate);
                return;
            }
        };
        m.ledger.commit(height, &changes);
        let state_digest = digest_changes(m.tip.state_digest, &changes);
        m.tip = Tip {
            height,
            hash,
            time_ms: block.header.time_ms,
            state_digest,
        };
        for id in &changes.txs {
            remove_from_mempool(m, id);
        }
        m.known_blocks.clear();
        m.verdicts.clear();
        m.pending_checks.clear();
        m.pending_commit = None;
        m.last_commit_ms = now_ms;
        self.disk
            .blocks
            .insert(height, (Rc::clone(&block), certificate.clone()));
        self.disk.heights.insert(hash, height);
        self.disk.wal.retain(|e| e.height() > height);
        self.disk.received.retain(|k, _| k.0 > height);
        self.disk.own_blocks.retain(|_, b| b.header.height > height);
        out.push(Output::Committed {
            height,
            block,
            certificate,
            state_digest,
        });
        self.maybe_start(now_ms, rng, false, out);
    }
}

fn remove_from_mempool(m: &mut Mem, id: &TxId) {
    if let Some((seq, _)) = m.mempool.remove(id) {
        m.mempool_order.remove(&seq);
    }
}

/// The ledger digest after a block: SHA-256 over the previous digest and the canonical
/// bytes of every record the block changed and every transaction it applied. Equal
/// digests at one height mean equal ledgers (the ledger is genesis plus these changes).
pub fn digest_changes(previous: Hash32, changes: &ChangeSet) -> Hash32 {
    let mut bytes = previous.0.to_vec();
    for (id, rec) in &changes.bills {
        bytes.extend(id.to_canonical_bytes());
        bytes.extend(rec.to_canonical_bytes());
    }
    for (code, rec) in &changes.units {
        bytes.extend(code.to_canonical_bytes());
        bytes.extend(rec.to_canonical_bytes());
    }
    for id in &changes.txs {
        bytes.extend(id.0);
    }
    Hash32::digest(&bytes)
}
