//! One simulated validator: the node's own engine (`ebill-engine`) over a [`MemStore`]
//! that survives crashes (its blocks, state and WAL are the validator's disk), with the
//! glue a node has around it: a mempool that clients and peers fill, answers to peers'
//! requests for blocks, and the network. Every decision (when a height starts, which
//! block to build, whether a block is valid, what to persist before sending, when to
//! commit, sync, fetch or re-send) is the engine's; this module only carries its
//! outputs over the simulated network, and for a Byzantine validator passes what it
//! sends through its [`Adversary`].
//!
//! A node never touches the network or the clock itself: every handler takes `now_ms`
//! and returns [`Output`]s that the run carries out.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[cfg(feature = "bugs")]
use ebill_consensus::Bug;
use ebill_consensus::{Config, Evidence, Message, Step, Timeouts};
use ebill_engine::{
    CertifiedBlock, Engine, EngineConfig, EngineSetup, Input, Mempool, Outbound,
    Output as EngineOutput, mempool::lock,
};
use ebill_ledger::{ChangeSet, genesis_changes};
use ebill_store::{MemStore, Store};

use crate::disk::{CommitFault, FaultyStore};
use ebill_types::{
    Block, Canonical, CommitCertificate, Genesis, Hash32, Keypair, SignedTx, ValidatorSet,
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
    /// One honest validator's store forgets the state-tree update of its first commit
    /// (not a consensus bug: the state-root checker must catch it).
    SkipStateUpdate,
}

impl PlantedBug {
    /// Parses `no-lock`, `small-quorum` or `no-wal`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "no-lock" => Some(Self::NoLock),
            "small-quorum" => Some(Self::SmallQuorum),
            "no-wal" => Some(Self::NoWal),
            "skip-state-update" => Some(Self::SkipStateUpdate),
            _ => None,
        }
    }

    /// Its command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::NoLock => "no-lock",
            Self::SmallQuorum => "small-quorum",
            Self::NoWal => "no-wal",
            Self::SkipStateUpdate => "skip-state-update",
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
    /// The genesis (its parameters bound the blocks).
    pub genesis: Genesis,
    /// Its validator set.
    pub validators: ValidatorSet,
    /// Consensus step timeouts.
    pub timeouts: Timeouts,
    /// The engine's tick: re-sends while a round is stuck, requests for blocks.
    pub tick_ms: u64,
    /// Longest time between heights with nothing to do (an empty block).
    pub heartbeat_ms: u64,
    /// How far ahead of the local clock a block's time may be.
    pub max_clock_drift_ms: u64,
    /// Most blocks a node puts in one sync answer.
    pub sync_batch: usize,
    /// Most transactions waiting in a node's mempool.
    pub mempool_max_txs: usize,
    /// The planted bug of the honest validators, if any.
    pub bug: Option<PlantedBug>,
}

/// A timer of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The engine's next deadline (a consensus timeout, the heartbeat, a tick).
    Wake,
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
        block: Arc<Block>,
        /// Its certificate.
        certificate: CommitCertificate,
        /// Digest of the ledger after the block.
        state_digest: Hash32,
    },
    /// After the commits of one step: the root of this node's state tree and the state
    /// root its tip's header carries (for the state-root checker).
    TreeRoot {
        /// The tip's height.
        height: u64,
        /// `header.state_root` of the tip.
        header_root: Hash32,
        /// The root of the node's own tree.
        tree_root: Hash32,
    },
    /// An injected fault (a failed commit, a crash after one) ended the process: the
    /// run restarts it.
    Crashed,
    /// Equivocation evidence this node saw.
    Evidence(Evidence),
    /// Something that must never happen to a correct node (a final block that does not
    /// apply, a WAL refused at restart, a store that fails...): its engine stopped.
    Fault(String),
}

/// What survives a crash: the store (blocks, certificates, ledger state, state tree,
/// WAL), and the checkers' digest of the ledger after each final block.
pub struct Disk {
    /// The node's store, with its fault injector.
    pub store: Arc<FaultyStore>,
    /// [`digest_changes`] after each final height (instrumentation for the ledger
    /// equality checker, not something a node keeps).
    pub digests: BTreeMap<u64, Hash32>,
}

/// What a crash loses.
struct Mem {
    engine: Engine,
    mempool: Arc<Mutex<Mempool>>,
    /// Transactions seen (gossip de-duplication).
    seen: BTreeSet<ebill_types::TxId>,
    /// When the engine's wake-up is scheduled, if it is.
    wake_at_ms: Option<u64>,
    /// The engine stopped with an error: it takes no more input (a halted node).
    halted: bool,
}

/// One validator.
pub struct Node {
    index: u32,
    key: Keypair,
    params: Arc<NodeParams>,
    /// The durable part.
    pub disk: Disk,
    mem: Option<Mem>,
    adversary: Option<Adversary>,
    /// Incarnation: bumped at every restart, so that old timers are ignored.
    pub epoch: u64,
    /// How far its clock is off.
    clock_offset_ms: i64,
}

impl Node {
    /// Validator `index` (not yet started: call [`Node::restart`]).
    pub fn new(
        index: u32,
        key: Keypair,
        params: Arc<NodeParams>,
        adversary: Option<Adversary>,
    ) -> Self {
        let disk = Disk {
            store: Arc::new(FaultyStore::new(Arc::new(MemStore::new()))),
            digests: BTreeMap::new(),
        };
        let genesis = &params.genesis;
        // A fresh MemStore takes the genesis; it cannot refuse its first one.
        if let Err(e) = disk.store.init_genesis(genesis) {
            unreachable!("a new store refused the genesis: {e}");
        }
        let mut disk = disk;
        disk.digests
            .insert(0, digest_changes(Hash32::ZERO, &genesis_changes(genesis)));
        Self {
            index,
            key,
            params,
            disk,
            mem: None,
            adversary,
            epoch: 0,
            clock_offset_ms: 0,
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
        self.disk.store.tip().ok().flatten().map_or(0, |t| t.height)
    }

    /// Consensus height, round and step, if consensus runs.
    pub fn consensus_position(&self) -> Option<(u64, u32, Step)> {
        let c = self.mem.as_ref()?.engine.consensus()?;
        Some((c.height(), c.round(), c.step()))
    }

    /// `Stats::refused_conflicting_signatures` of the running instance (0 if none).
    pub fn refused_conflicting_signatures(&self) -> u64 {
        self.mem
            .as_ref()
            .and_then(|m| m.engine.consensus())
            .map_or(0, |c| c.stats().refused_conflicting_signatures)
    }

    fn n(&self) -> u32 {
        self.params.validators.len() as u32
    }

    /// Makes this node's next commit fail, crash after it, or (a planted bug) forget
    /// its state-tree update; [`CommitFault::None`] disarms.
    pub fn arm_commit_fault(&self, fault: CommitFault) {
        self.disk.store.arm(fault);
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
            config.with_bug(self.params.bug.and_then(|b| match b {
                PlantedBug::NoLock => Some(Bug::NoLock),
                PlantedBug::SmallQuorum => Some(Bug::SmallQuorum),
                PlantedBug::NoWal => Some(Bug::NoWal),
                // A store bug, armed by the run.
                PlantedBug::SkipStateUpdate => None,
            }))
        };
        config
    }

    /// This validator's clock: simulated time from the chain's epoch, off by its
    /// drift.
    fn wall_ms(&self, now_ms: u64) -> u64 {
        (CHAIN_EPOCH_MS + now_ms).saturating_add_signed(self.clock_offset_ms)
    }

    /// Sets how far this validator's clock is off (negative: behind).
    pub fn set_clock_offset_ms(&mut self, offset_ms: i64) {
        self.clock_offset_ms = offset_ms;
    }

    // ----- crash and restart -----

    /// Crash: everything in memory is lost; the store and the WAL stay.
    pub fn crash(&mut self) {
        self.mem = None;
    }

    /// (Re)start from the store and the WAL, as a node does: the engine resumes
    /// consensus from the WAL if it holds messages of the next height.
    pub fn restart(&mut self, now_ms: u64, rng: &mut Rng, out: &mut Vec<Output>) {
        self.epoch += 1;
        let mempool = Arc::new(Mutex::new(Mempool::new(
            self.params.mempool_max_txs,
            usize::MAX,
        )));
        let store: Arc<dyn Store> = Arc::clone(&self.disk.store) as Arc<dyn Store>;
        let setup = EngineSetup {
            store,
            mempool: Arc::clone(&mempool),
            genesis: self.params.genesis.clone(),
            consensus: Some(self.config()),
            config: EngineConfig {
                heartbeat_ms: self.params.heartbeat_ms,
                max_clock_drift_ms: self.params.max_clock_drift_ms,
                tick_ms: self.params.tick_ms,
                verify_cores: 1,
            },
        };
        match Engine::start(setup, now_ms, self.wall_ms(now_ms)) {
            Ok((engine, first)) => {
                self.mem = Some(Mem {
                    engine,
                    mempool,
                    seen: BTreeSet::new(),
                    wake_at_ms: None,
                    halted: false,
                });
                self.carry_out(now_ms, rng, first, out);
                self.schedule_wake(out);
            }
            Err(e) => {
                if self.disk.store.take_crash() {
                    // A fault armed before the node went down fired in a commit the
                    // engine makes while starting (a decision in its WAL): the process
                    // died again, as it would on a real machine; the run restarts it.
                    self.died_of_injected_fault(out);
                } else {
                    out.push(Output::Fault(format!("the engine refused to start: {e}")));
                }
                return;
            }
        }
        if self.adversary.is_some() {
            out.push(Output::Timer {
                at_ms: now_ms + rng.range(1, self.params.tick_ms),
                timer: Timer::Garbage,
            });
        }
    }

    // ----- inputs -----

    /// A timer fired.
    pub fn on_timer(&mut self, now_ms: u64, rng: &mut Rng, timer: Timer, out: &mut Vec<Output>) {
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        match timer {
            Timer::Wake => {
                m.wake_at_ms = None;
                self.drive(now_ms, rng, Input::Tick, out);
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
                    at_ms: now_ms + self.params.tick_ms / 2 + 1,
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
            Payload::Consensus { msg, block } => {
                self.adversary_sees(rng, &msg, out);
                self.drive(now_ms, rng, Input::Consensus { msg, block }, out);
            }
            Payload::Tx(tx) => self.on_tx(now_ms, rng, tx, out),
            Payload::SyncRequest { from_height, max } => {
                if let Some(from) = from {
                    self.on_sync_request(rng, from, from_height, max, out);
                }
            }
            Payload::SyncResponse { blocks } => {
                self.drive(now_ms, rng, Input::Blocks(blocks), out);
            }
            Payload::BlockRequest { hash } => {
                if let Some(from) = from
                    && let Some(payload) = self.block_answer(&hash)
                {
                    out.push(Output::Send { to: from, payload });
                }
            }
            Payload::BlockResponse { block, certificate } => {
                let input = match certificate {
                    Some(certificate) => Input::Blocks(vec![CertifiedBlock { block, certificate }]),
                    None => Input::Block(block),
                };
                self.drive(now_ms, rng, input, out);
            }
        }
    }

    /// A Byzantine validator reacts to other validators' proposals on its own.
    fn adversary_sees(&mut self, rng: &mut Rng, msg: &Message, out: &mut Vec<Output>) {
        let tip = self.tip_height();
        if let (Some(adv), Message::Proposal(p)) = (self.adversary.as_mut(), msg)
            && p.proposal.height == tip + 1
            && p.proposal.proposer != self.index
            && p.verify(&self.params.genesis.chain_id, &self.params.validators)
        {
            for (to, payload) in adv.on_foreign_proposal(rng, p) {
                out.push(Output::Send { to, payload });
            }
        }
    }

    fn on_tx(&mut self, now_ms: u64, rng: &mut Rng, tx: Arc<SignedTx>, out: &mut Vec<Output>) {
        let id = tx.tx.id(&self.params.genesis.chain_id);
        let committed = self
            .disk
            .store
            .find_tx_location(&id)
            .ok()
            .flatten()
            .is_some();
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        if !m.seen.insert(id) || committed {
            return;
        }
        let len = tx.to_canonical_bytes().len();
        lock(&m.mempool).insert(id, Arc::clone(&tx), len, Vec::new());
        if self.adversary.is_none() || rng.chance(500) {
            out.push(Output::Broadcast(Payload::Tx(tx)));
        }
        self.drive(now_ms, rng, Input::TxsAdded, out);
    }

    fn on_sync_request(
        &mut self,
        rng: &mut Rng,
        from: u32,
        from_height: u64,
        max: u32,
        out: &mut Vec<Output>,
    ) {
        let store = &self.disk.store;
        let mut blocks = Vec::new();
        // As a node answers: at most what was asked for, and what fits its limit.
        let count = (self.params.sync_batch as u64).min(u64::from(max));
        for h in from_height..from_height.saturating_add(count) {
            match (store.block(h), store.certificate(h)) {
                (Ok(Some(b)), Ok(Some(c))) => blocks.push(CertifiedBlock {
                    block: Arc::new(b),
                    certificate: c,
                }),
                _ => break,
            }
        }
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

    /// A block asked for by hash: final (with its certificate) or of the height in
    /// progress (from the engine).
    fn block_answer(&self, hash: &Hash32) -> Option<Payload> {
        let store = &self.disk.store;
        if let Ok(Some(h)) = store.height_of_block(hash)
            && let Ok(Some(b)) = store.block(h)
        {
            return Some(Payload::BlockResponse {
                block: Arc::new(b),
                certificate: store.certificate(h).ok().flatten(),
            });
        }
        let block = self.mem.as_ref()?.engine.pending_block(hash)?;
        Some(Payload::BlockResponse {
            block,
            certificate: None,
        })
    }

    // ----- driving the engine -----

    /// Gives the engine one input and carries out what it asks.
    fn drive(&mut self, now_ms: u64, rng: &mut Rng, input: Input, out: &mut Vec<Output>) {
        let wall_ms = self.wall_ms(now_ms);
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        if m.halted {
            return;
        }
        match m.engine.on_input(now_ms, wall_ms, input) {
            Ok(outputs) => self.carry_out(now_ms, rng, outputs, out),
            Err(e) => {
                if self.disk.store.take_crash() {
                    self.died_of_injected_fault(out);
                } else {
                    m.halted = true;
                    out.push(Output::Fault(format!("the engine stopped: {e}")));
                }
                return;
            }
        }
        self.schedule_wake(out);
    }

    /// The injected fault killed the process; the run restarts it. A commit that
    /// became durable first is reported as the node's.
    fn died_of_injected_fault(&mut self, out: &mut Vec<Output>) {
        if let Some(c) = self.disk.store.take_unreported() {
            self.report_commit(Arc::new(c.block), c.certificate, &c.changes, out);
            self.report_tree_root(out);
        }
        self.crash();
        out.push(Output::Crashed);
    }

    /// Asks the run to wake the engine at its next deadline, unless an earlier wake-up
    /// is already scheduled.
    fn schedule_wake(&mut self, out: &mut Vec<Output>) {
        let Some(m) = self.mem.as_mut() else {
            return;
        };
        let at_ms = m.engine.next_deadline_ms();
        if m.wake_at_ms.is_some_and(|w| w <= at_ms) {
            return;
        }
        m.wake_at_ms = Some(at_ms);
        out.push(Output::Timer {
            at_ms,
            timer: Timer::Wake,
        });
    }

    fn random_peer(&self, rng: &mut Rng) -> Option<u32> {
        let n = self.n();
        (n >= 2).then(|| (self.index + 1 + rng.below(u64::from(n - 1)) as u32) % n)
    }

    fn carry_out(
        &mut self,
        _now_ms: u64,
        rng: &mut Rng,
        outputs: Vec<EngineOutput>,
        out: &mut Vec<Output>,
    ) {
        let committed = outputs
            .iter()
            .any(|o| matches!(o, EngineOutput::Committed(_)));
        for o in outputs {
            match o {
                EngineOutput::Send(Outbound::Consensus { msg, block }) => {
                    self.send_consensus(rng, msg, block, out);
                }
                EngineOutput::Send(Outbound::Announce(cb)) => {
                    out.push(Output::Broadcast(Payload::SyncResponse {
                        blocks: vec![cb],
                    }));
                }
                EngineOutput::Send(Outbound::RequestBlocks { from_height, max }) => {
                    if let Some(to) = self.random_peer(rng) {
                        out.push(Output::Send {
                            to,
                            payload: Payload::SyncRequest { from_height, max },
                        });
                    }
                }
                EngineOutput::Send(Outbound::RequestBlock { hash }) => {
                    if let Some(to) = self.random_peer(rng) {
                        out.push(Output::Send {
                            to,
                            payload: Payload::BlockRequest { hash },
                        });
                    }
                }
                EngineOutput::Committed(c) => {
                    self.report_commit(c.certified.block, c.certified.certificate, &c.changes, out);
                }
                EngineOutput::Dropped { .. } => {}
                EngineOutput::Evidence(e) => out.push(Output::Evidence(e)),
            }
        }
        if committed {
            self.report_tree_root(out);
        }
    }

    /// A final block for the checkers, with the ledger digest after it.
    fn report_commit(
        &mut self,
        block: Arc<Block>,
        certificate: CommitCertificate,
        changes: &ChangeSet,
        out: &mut Vec<Output>,
    ) {
        let height = block.header.height;
        let Some(previous) = self.disk.digests.get(&(height - 1)).copied() else {
            out.push(Output::Fault(format!(
                "height {height} committed, but height {} was never reported",
                height - 1
            )));
            return;
        };
        let state_digest = digest_changes(previous, changes);
        self.disk.digests.insert(height, state_digest);
        out.push(Output::Committed {
            height,
            block,
            certificate,
            state_digest,
        });
    }

    /// The node's own tree root against its tip's header.
    fn report_tree_root(&self, out: &mut Vec<Output>) {
        let store = &self.disk.store;
        let tip = store.tip().ok().flatten();
        let header = tip.and_then(|t| store.header(t.height).ok().flatten());
        match (header, store.state_root()) {
            (Some(h), Ok(tree_root)) => out.push(Output::TreeRoot {
                height: h.height,
                header_root: h.state_root,
                tree_root,
            }),
            (_, Err(e)) => out.push(Output::Fault(format!("the state tree is unreadable: {e}"))),
            (None, Ok(_)) => out.push(Output::Fault("a commit left no tip header".into())),
        }
    }

    /// A consensus message the engine sends: an honest validator's go to every peer
    /// (its own also to the no-equivocation checker); a Byzantine one's through its
    /// adversary.
    fn send_consensus(
        &mut self,
        rng: &mut Rng,
        msg: Message,
        block: Option<Arc<Block>>,
        out: &mut Vec<Output>,
    ) {
        let own = msg.signer() == self.index;
        let n = self.n();
        match self.adversary.as_mut() {
            // A relayed vote of another validator (the polka behind validValue).
            None if !own => out.push(Output::Broadcast(Payload::Consensus { msg, block })),
            None => {
                out.push(Output::Signed(msg));
                out.push(Output::Broadcast(Payload::Consensus { msg, block }));
            }
            Some(_) if !own => {
                let payload = Payload::Consensus { msg, block };
                for to in (0..n).filter(|i| *i != self.index) {
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
        }
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
