//! The engine: one thread that owns the consensus state machine (on a validator) and
//! wires it to the ledger, the store, the mempool and the network. It builds blocks when
//! this validator proposes, checks proposed blocks, persists its own votes before they
//! leave, commits final blocks, catches up from peers' certified blocks, and keeps time
//! for consensus. An observer runs the same engine without consensus: it only takes
//! certified blocks, checks each certificate against the genesis validator set,
//! re-executes every transaction, and halts loudly if anything does not hold.
//!
//! A height starts only when there is something to decide: a transaction waiting, a
//! message of that height from a peer, or the heartbeat (an empty block every
//! `heartbeat_ms`). So an idle chain does not spin through rounds, and a busy one cuts
//! a block as soon as the previous one is final (see docs/adr/0004).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ebill_api::Rejection;
use ebill_consensus::{Config as ConsensusConfig, Consensus, Effect, Event, Message, TimeoutStep};
use ebill_ledger::{ChangeSet, Context, Prepared, apply_block_prepared, select_prepared};
use ebill_store::{Store, Tip};
use ebill_types::{
    Block, CommitCertificate, Genesis, Hash32, Header, SignedTx, SignedVote, TxId, ValidatorSet,
};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::network::{Outbound, OutboundQueue};
use crate::shared::{Shared, StoreView, lock, preverify_parallel, wall_ms};
use crate::wal;

/// Most blocks received from peers and kept for the current height.
const MAX_RECEIVED_BLOCKS: usize = 64;
/// Received votes of the height in progress kept in the WAL, per validator of the set.
const MAX_RECEIVED_VOTES_PER_VALIDATOR: usize = 128;
/// Most certified blocks of future heights kept while the gap is synced.
const MAX_FUTURE_BLOCKS: usize = 512;
/// Blocks asked for in one sync request.
const SYNC_BATCH_BLOCKS: u32 = 64;
/// Earlier rounds whose own votes are re-sent while a round is stuck.
const RESEND_OLDER_ROUNDS: u32 = 8;

/// What the engine reacts to.
#[derive(Debug)]
pub enum Input {
    /// Transactions were admitted to the mempool.
    TxsAdded,
    /// A consensus message from a peer; a proposal may carry its block.
    Consensus {
        /// The message.
        msg: Message,
        /// The proposed block.
        block: Option<Box<Block>>,
    },
    /// Certified blocks from a peer (sync answers and announcements).
    Blocks(Vec<(Block, CommitCertificate)>),
    /// A block without a certificate, fetched by hash after a decision on it.
    Block(Box<Block>),
    /// Stop after the current step.
    Shutdown,
}

/// A failure that stops the node: it cannot go on safely.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The store failed; a validator that cannot persist must not vote.
    #[error("store: {0}")]
    Store(#[from] ebill_store::StoreError),
    /// The consensus configuration is wrong (key not in the validator set, ...).
    #[error("consensus: {0}")]
    Consensus(String),
    /// The WAL holds bytes this node cannot read.
    #[error("the consensus WAL of height {height} is unreadable: {reason}")]
    Wal {
        /// Height.
        height: u64,
        /// Why.
        reason: String,
    },
    /// State reads failed while building or checking a block.
    #[error("state: {0}")]
    State(#[from] ebill_ledger::StateError),
    /// A block certified by 2f+1 validators does not re-execute here: either the
    /// validators or this node are faulty. An observer halts on it.
    #[error("HALT: certified block {hash} at height {height} does not hold: {reason}")]
    Mismatch {
        /// Height.
        height: u64,
        /// Block hash.
        hash: Hash32,
        /// What failed.
        reason: String,
    },
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Longest time between blocks when nothing happens (an empty block).
    pub heartbeat_ms: u64,
    /// How far ahead of the local clock a proposed block's time may be.
    pub max_clock_drift_ms: u64,
    /// How often to re-send own messages while a round makes no progress, and to ask
    /// peers for blocks when behind.
    pub tick_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 60_000,
            max_clock_drift_ms: 10_000,
            tick_ms: 1_000,
        }
    }
}

/// How a block is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CheckMode {
    /// Proposed for consensus: the clock rule applies too.
    Proposal,
    /// Certified by 2f+1 validators: everything but the local clock.
    Certified,
}

/// A block this node built or checked, with the changes it makes.
struct Candidate {
    block: Block,
    changes: ChangeSet,
}

/// `TimeoutStep` as a heap key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct StepKey(u8);

impl StepKey {
    fn from_step(s: TimeoutStep) -> Self {
        Self(match s {
            TimeoutStep::Propose => 0,
            TimeoutStep::Prevote => 1,
            TimeoutStep::Precommit => 2,
        })
    }
    fn step(self) -> TimeoutStep {
        match self.0 {
            0 => TimeoutStep::Propose,
            1 => TimeoutStep::Prevote,
            _ => TimeoutStep::Precommit,
        }
    }
}

/// The engine. Create with [`Engine::new`], run with [`Engine::run`] on its own thread.
pub struct Engine {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    genesis: Genesis,
    validators: ValidatorSet,
    /// `None` on an observer.
    consensus_config: Option<ConsensusConfig>,
    cfg: EngineConfig,
    out: Option<Arc<OutboundQueue>>,
    consensus: Option<Consensus>,
    /// The height being decided (or waited for): the tip's height + 1.
    height: u64,
    /// The last final block (height, hash, time).
    tip: (u64, Hash32, u64),
    candidates: HashMap<Hash32, Candidate>,
    received: HashMap<Hash32, Block>,
    /// Other validators' votes of the height in progress written to the WAL (each once).
    saved_votes: HashSet<SignedVote>,
    /// Received votes read back from the WAL at start, for consensus once it runs.
    replay_votes: Vec<SignedVote>,
    future: BTreeMap<u64, (Block, CommitCertificate)>,
    /// A decision whose block this node does not hold yet.
    awaiting_block: Option<(u64, Hash32, CommitCertificate)>,
    timers: BinaryHeap<Reverse<(u64, u64, u32, StepKey)>>,
    idle_since_ms: u64,
    next_tick_ms: u64,
    last_progress_ms: u64,
    epoch: Instant,
}

impl Engine {
    /// An engine at the store's tip. A validator (`consensus_config` given) restores
    /// consensus from the WAL if its height was under way before a restart.
    pub fn new(
        shared: Arc<Shared>,
        store: Arc<dyn Store>,
        genesis: Genesis,
        consensus_config: Option<ConsensusConfig>,
        cfg: EngineConfig,
        out: Option<Arc<OutboundQueue>>,
    ) -> Result<(Self, Vec<Effect>), EngineError> {
        let validators = genesis
            .validator_set()
            .map_err(|e| EngineError::Consensus(e.to_string()))?;
        let tip = match store.tip()? {
            Some(Tip { height, hash }) => {
                let time = store.header(height)?.map(|h| h.time_ms).unwrap_or(0);
                (height, hash, time)
            }
            None => (0, genesis.hash(), 0),
        };
        let height = tip.0 + 1;
        let mut engine = Self {
            shared,
            store,
            genesis,
            validators,
            consensus_config,
            cfg,
            out,
            consensus: None,
            height,
            tip,
            candidates: HashMap::new(),
            received: HashMap::new(),
            saved_votes: HashSet::new(),
            replay_votes: Vec::new(),
            future: BTreeMap::new(),
            awaiting_block: None,
            timers: BinaryHeap::new(),
            idle_since_ms: 0,
            next_tick_ms: 0,
            last_progress_ms: 0,
            epoch: Instant::now(),
        };
        let mut effects = Vec::new();
        if engine.consensus_config.is_some() {
            let records: Vec<wal::Record> = engine
                .store
                .wal_entries(height)?
                .iter()
                .map(|b| wal::decode_record(b))
                .collect::<Result<_, _>>()
                .map_err(|e| EngineError::Wal {
                    height,
                    reason: e.to_string(),
                })?;
            let mut wal = Vec::new();
            for r in records {
                match r {
                    wal::Record::Message(m) => wal.push(m),
                    wal::Record::Block(b) => {
                        engine.received.insert(b.header.hash(), *b);
                    }
                    wal::Record::Received(v) => {
                        engine.saved_votes.insert(v);
                        engine.replay_votes.push(v);
                    }
                }
            }
            if !wal.is_empty() {
                info!(
                    height,
                    entries = wal.len(),
                    "resuming consensus from the WAL"
                );
                effects = engine.start_consensus(&wal)?;
            }
        }
        Ok((engine, effects))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn send(&self, m: Outbound) {
        if let Some(out) = &self.out {
            out.send(m);
        }
    }

    fn start_consensus(&mut self, wal: &[Message]) -> Result<Vec<Effect>, EngineError> {
        let Some(config) = &self.consensus_config else {
            return Ok(Vec::new());
        };
        let now = self.now_ms();
        self.last_progress_ms = now;
        match &mut self.consensus {
            Some(c) => Ok(c.on_event(
                now,
                Event::StartHeight {
                    height: self.height,
                },
            )),
            None => {
                let (mut c, mut effects) =
                    Consensus::restore(config.clone(), self.height, wal, now)
                        .map_err(|e| EngineError::Consensus(e.to_string()))?;
                let height = self.height;
                let votes = std::mem::take(&mut self.replay_votes);
                if !votes.is_empty() {
                    info!(
                        height,
                        votes = votes.len(),
                        "replaying received votes from the WAL"
                    );
                }
                for v in votes.into_iter().filter(|v| v.vote.height == height) {
                    effects.extend(c.on_event(now, Event::Vote(v)));
                }
                self.consensus = Some(c);
                Ok(effects)
            }
        }
    }

    /// Keeps another validator's verified vote of the height in progress in the WAL
    /// (unsynced: losing it costs only what not keeping it would), if it is for nil or
    /// for a block this node holds, within a bound per validator. See
    /// `wal::Record::Received`.
    fn save_received_vote(&mut self, v: &SignedVote) -> Result<(), EngineError> {
        let own = self.consensus_config.as_ref().map(|c| c.validator_index);
        let held = |b: &Hash32| self.candidates.contains_key(b) || self.received.contains_key(b);
        if v.vote.height != self.height
            || Some(v.vote.validator) == own
            || !v.vote.block.as_ref().is_none_or(held)
            || self.saved_votes.len() >= MAX_RECEIVED_VOTES_PER_VALIDATOR * self.validators.len()
            || self.saved_votes.contains(v)
            // Last, as the costly check: only a vote that would be kept is verified.
            || !v.verify(&self.genesis.chain_id, &self.validators)
        {
            return Ok(());
        }
        self.store
            .wal_append_unsynced(self.height, &wal::encode_received_vote(v))?;
        self.saved_votes.insert(*v);
        Ok(())
    }

    /// True once consensus runs at the current height.
    fn started(&self) -> bool {
        self.consensus.as_ref().is_some_and(|c| {
            c.height() == self.height && c.step() != ebill_consensus::Step::Decided
        })
    }

    fn is_validator(&self) -> bool {
        self.consensus_config.is_some()
    }

    /// Runs until [`Input::Shutdown`] or a fatal error.
    pub fn run(mut self, rx: Receiver<Input>, first: Vec<Effect>) -> Result<(), EngineError> {
        let now = self.now_ms();
        self.idle_since_ms = now;
        self.next_tick_ms = now;
        self.carry_out(first)?;
        self.maybe_start()?;
        loop {
            let now = self.now_ms();
            let wait = self.next_deadline().saturating_sub(now);
            let input = match rx.recv_timeout(Duration::from_millis(wait)) {
                Ok(i) => Some(i),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            match input {
                Some(Input::Shutdown) => {
                    info!("engine stopping");
                    return Ok(());
                }
                Some(Input::TxsAdded) => self.maybe_start()?,
                Some(Input::Consensus { msg, block }) => self.on_consensus(msg, block)?,
                Some(Input::Blocks(blocks)) => self.on_blocks(blocks)?,
                Some(Input::Block(block)) => {
                    let hash = block.header.hash();
                    if self.awaiting_block.as_ref().is_some_and(|a| a.1 == hash) {
                        self.received.insert(hash, *block);
                        self.retry_awaiting_block()?;
                    }
                }
                None => {}
            }
            self.fire_timers()?;
            self.maybe_heartbeat()?;
            self.maybe_tick()?;
        }
    }

    fn next_deadline(&self) -> u64 {
        let mut d = self.next_tick_ms;
        if let Some(Reverse((at, ..))) = self.timers.peek() {
            d = d.min(*at);
        }
        if self.is_validator() && !self.started() {
            d = d.min(self.idle_since_ms + self.cfg.heartbeat_ms);
        }
        d
    }

    fn on_consensus(&mut self, msg: Message, block: Option<Box<Block>>) -> Result<(), EngineError> {
        if !self.is_validator() {
            return Ok(());
        }
        if let (Message::Proposal(p), Some(b)) = (&msg, block) {
            // Keep the block only if it is the one proposed, for the height in progress.
            if b.header.hash() == p.proposal.block && b.header.height == self.height {
                if self.received.len() >= MAX_RECEIVED_BLOCKS {
                    self.received.clear();
                }
                self.received.insert(p.proposal.block, *b);
            }
        }
        if msg.height() == self.height && !self.started() {
            let effects = self.start_consensus(&[])?;
            self.carry_out(effects)?;
        }
        if let Message::Vote(v) = &msg {
            self.save_received_vote(v)?;
        }
        let now = self.now_ms();
        if let Some(c) = &mut self.consensus {
            let effects = c.on_event(now, msg.into());
            self.carry_out(effects)?;
        }
        self.retry_awaiting_block()
    }

    fn fire_timers(&mut self) -> Result<(), EngineError> {
        let now = self.now_ms();
        while let Some(Reverse((at, height, round, step))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if let Some(c) = &mut self.consensus {
                let effects = c.on_event(
                    now,
                    Event::Timeout {
                        height,
                        round,
                        step: step.step(),
                    },
                );
                self.carry_out(effects)?;
            }
        }
        Ok(())
    }

    /// Starts the current height if transactions wait.
    fn maybe_start(&mut self) -> Result<(), EngineError> {
        if !self.is_validator() || self.started() || lock(&self.shared.mempool).is_empty() {
            return Ok(());
        }
        let effects = self.start_consensus(&[])?;
        self.carry_out(effects)
    }

    fn maybe_heartbeat(&mut self) -> Result<(), EngineError> {
        if self.is_validator()
            && !self.started()
            && self.now_ms() >= self.idle_since_ms + self.cfg.heartbeat_ms
        {
            debug!(
                height = self.height,
                "heartbeat: starting a height with no transactions"
            );
            let effects = self.start_consensus(&[])?;
            self.carry_out(effects)?;
        }
        Ok(())
    }

    /// Periodic work: rebroadcast while a round is stuck; ask for blocks when behind.
    fn maybe_tick(&mut self) -> Result<(), EngineError> {
        let now = self.now_ms();
        if now < self.next_tick_ms {
            return Ok(());
        }
        self.next_tick_ms = now + self.cfg.tick_ms;
        let behind = match &self.consensus {
            Some(c) => c.highest_height_seen() > self.height,
            None => true,
        };
        if behind || !self.future.is_empty() || !self.is_validator() {
            self.send(Outbound::RequestBlocks {
                from_height: self.height,
                max: SYNC_BATCH_BLOCKS,
            });
        }
        if let Some((_, hash, _)) = &self.awaiting_block {
            self.send(Outbound::RequestBlock { hash: *hash });
        }
        if self.started()
            && now.saturating_sub(self.last_progress_ms) >= self.cfg.tick_ms
            && let Some(c) = &mut self.consensus
        {
            let effects = c.on_event(now, Event::Rebroadcast);
            // Rebroadcast covers the current round; a peer still in an older round whose
            // copies of this validator's votes were lost needs those too (the simulator
            // found heights stuck without this). The last few rounds are enough: a peer
            // further behind catches up by round skipping.
            let round = c.round();
            let mut older = Vec::new();
            for r in round.saturating_sub(RESEND_OLDER_ROUNDS)..round {
                for kind in [
                    ebill_types::VoteKind::Prevote,
                    ebill_types::VoteKind::Precommit,
                ] {
                    if let Some(v) = c.own_vote(r, kind) {
                        older.push(*v);
                    }
                }
            }
            self.carry_out(effects)?;
            for v in older {
                self.send(Outbound::Consensus {
                    msg: Message::Vote(v),
                    block: None,
                });
            }
        }
        Ok(())
    }

    /// Carries out effects in order; answers to the state machine are fed back in turn.
    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), EngineError> {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            if let Some(event) = self.carry_out_one(effect)? {
                let now = self.now_ms();
                if let Some(c) = &mut self.consensus {
                    queue.extend(c.on_event(now, event));
                }
            }
        }
        Ok(())
    }

    fn carry_out_one(&mut self, effect: Effect) -> Result<Option<Event>, EngineError> {
        match effect {
            Effect::PersistVote(v) => {
                // The bytes of a block go to the WAL before this validator's precommit
                // for it: a decided block then survives any crash of those holding it.
                if v.vote.kind == ebill_types::VoteKind::Precommit
                    && let Some(hash) = v.vote.block
                    && let Some(block) = self
                        .candidates
                        .get(&hash)
                        .map(|c| &c.block)
                        .or_else(|| self.received.get(&hash))
                {
                    self.store
                        .wal_append(v.vote.height, &wal::encode_block(block))?;
                }
                self.store
                    .wal_append(v.vote.height, &wal::encode(&Message::Vote(v)))?;
                Ok(None)
            }
            Effect::PersistProposal(p) => {
                self.store
                    .wal_append(p.proposal.height, &wal::encode(&Message::Proposal(p)))?;
                Ok(None)
            }
            Effect::Broadcast(msg) => {
                let block = match &msg {
                    Message::Proposal(p) => self
                        .candidates
                        .get(&p.proposal.block)
                        .map(|c| c.block.clone())
                        .or_else(|| self.received.get(&p.proposal.block).cloned()),
                    Message::Vote(_) => None,
                };
                self.send(Outbound::Consensus { msg, block });
                Ok(None)
            }
            Effect::ScheduleTimeout {
                height,
                round,
                step,
                at_ms,
            } => {
                self.last_progress_ms = self.now_ms();
                self.timers
                    .push(Reverse((at_ms, height, round, StepKey::from_step(step))));
                Ok(None)
            }
            Effect::RequestProposalValue { height, round } => {
                let block = self.build_block(height)?;
                Ok(Some(Event::ProposalValue {
                    height,
                    round,
                    block,
                }))
            }
            Effect::CheckBlock { height, block, .. } => {
                let valid = self.check_proposed(height, &block)?;
                Ok(Some(Event::BlockChecked {
                    height,
                    block,
                    valid,
                }))
            }
            Effect::Commit {
                height,
                block,
                certificate,
            } => {
                self.commit_decided(height, block, certificate)?;
                Ok(None)
            }
            Effect::Evidence(e) => {
                warn!(offender = e.offender(), ?e, "equivocation evidence");
                Ok(None)
            }
        }
    }

    /// Whether a proposed block is valid on the tip (building the candidate if so).
    fn check_proposed(&mut self, height: u64, hash: &Hash32) -> Result<bool, EngineError> {
        if self.candidates.contains_key(hash) {
            return Ok(true);
        }
        let Some(block) = self.received.get(hash).cloned() else {
            warn!(height, %hash, "asked to check a block this node does not hold");
            return Ok(false);
        };
        match self.check_block(&block, CheckMode::Proposal)? {
            Ok(changes) => {
                self.candidates.insert(*hash, Candidate { block, changes });
                Ok(true)
            }
            Err(reason) => {
                warn!(height, %hash, %reason, "proposed block refused");
                Ok(false)
            }
        }
    }

    /// Every rule a block must meet on top of the tip; the changes it makes if it does.
    /// The outer error is a local failure; the inner one is the block's fault.
    fn check_block(
        &self,
        block: &Block,
        mode: CheckMode,
    ) -> Result<Result<ChangeSet, String>, EngineError> {
        let h = &block.header;
        let params = &self.genesis.params;
        let fail = |reason: String| Ok(Err(reason));
        if h.chain_id != self.genesis.chain_id {
            return fail(format!("chain id {:?}", h.chain_id));
        }
        if h.height != self.tip.0 + 1 {
            return fail(format!("height {} on a tip of {}", h.height, self.tip.0));
        }
        if h.prev_hash != self.tip.1 {
            return fail(format!(
                "previous hash {} is not the tip {}",
                h.prev_hash, self.tip.1
            ));
        }
        if h.validator_set_hash != self.validators.hash() {
            return fail("validator set hash".into());
        }
        if self.validators.get(h.proposer).is_none() {
            return fail(format!("proposer {} is not a validator", h.proposer));
        }
        if h.time_ms <= self.tip.2 {
            return fail(format!(
                "time {} is not after the previous block's {}",
                h.time_ms, self.tip.2
            ));
        }
        if mode == CheckMode::Proposal && h.time_ms > wall_ms() + self.cfg.max_clock_drift_ms {
            return fail(format!("time {} is ahead of this node's clock", h.time_ms));
        }
        if h.state_root != Hash32::ZERO {
            return fail("state root must be zero until the state tree exists".into());
        }
        // Each transaction is encoded and hashed once for every check below.
        let chain_id = self.genesis.chain_id.as_str();
        let prepared = Prepared::all(&block.txs, chain_id);
        let leaves: Vec<Hash32> = prepared.iter().map(Prepared::leaf_hash).collect();
        if let Err(e) = block.check_body_leaves(&leaves) {
            return fail(e.to_string());
        }
        let bytes: usize = prepared.iter().map(|p| p.encoded.len()).sum();
        if bytes > params.max_block_bytes as usize {
            return fail(format!(
                "{bytes} bytes of transactions, limit {}",
                params.max_block_bytes
            ));
        }
        let view = StoreView(self.store.as_ref());
        let ids: Vec<TxId> = prepared.iter().map(|p| p.id).collect();
        let (mut verified, unseen) = lock(&self.shared.mempool).verified_for(&ids);
        if !unseen.is_empty() {
            let rest: Vec<&Prepared<'_>> = unseen.iter().map(|&i| &prepared[i]).collect();
            verified.extend(preverify_parallel(&view, &self.genesis, &rest)?);
        }
        let ctx = Context {
            genesis: &self.genesis,
            height: h.height,
            time_ms: h.time_ms,
        };
        match apply_block_prepared(&view, ctx, &prepared, Some(&verified)) {
            Ok(changes) => Ok(Ok(changes)),
            Err(ebill_ledger::BlockError::State(e)) => Err(EngineError::State(e)),
            Err(e) => fail(e.to_string()),
        }
    }

    /// Builds a block on the tip from the oldest waiting transactions; drops those that
    /// no longer apply and tells their watchers why.
    fn build_block(&mut self, height: u64) -> Result<Hash32, EngineError> {
        let params = &self.genesis.params;
        let (candidates, verified) = lock(&self.shared.mempool).candidates(
            params.max_block_txs as usize,
            params.max_block_bytes as usize,
        );
        let txs: Vec<SignedTx> = candidates.iter().map(|(_, t)| (**t).clone()).collect();
        let prepared = Prepared::all(&txs, self.genesis.chain_id.as_str());
        let time_ms = wall_ms().max(self.tip.2 + 1);
        let ctx = Context {
            genesis: &self.genesis,
            height,
            time_ms,
        };
        let view = StoreView(self.store.as_ref());
        let selection = select_prepared(&view, ctx, &prepared, Some(&verified))?;
        let mut dropped: Vec<TxId> = Vec::new();
        for (i, err) in &selection.rejected {
            let id = candidates[*i].0;
            dropped.push(id);
            self.shared.on_dropped(id, Rejection::from(err.clone()));
        }
        lock(&self.shared.mempool).remove(&dropped);
        let tx_root = ebill_types::merkle::root_from_leaf_hashes(
            &selection
                .accepted
                .iter()
                .map(|&i| prepared[i].leaf_hash())
                .collect::<Vec<_>>(),
        );
        drop(prepared);
        let mut slots: Vec<Option<SignedTx>> = txs.into_iter().map(Some).collect();
        let block_txs: Vec<SignedTx> = selection
            .accepted
            .iter()
            .filter_map(|&i| slots[i].take())
            .collect();
        let proposer = self
            .consensus_config
            .as_ref()
            .map(|c| c.validator_index)
            .unwrap_or(0);
        let header = Header {
            chain_id: self.genesis.chain_id.clone(),
            height,
            prev_hash: self.tip.1,
            time_ms,
            proposer,
            tx_root,
            tx_count: u32::try_from(block_txs.len()).unwrap_or(u32::MAX),
            validator_set_hash: self.validators.hash(),
            state_root: Hash32::ZERO,
        };
        let hash = header.hash();
        debug!(height, txs = block_txs.len(), dropped = dropped.len(), %hash, "built block");
        self.candidates.insert(
            hash,
            Candidate {
                block: Block {
                    header,
                    txs: block_txs,
                },
                changes: selection.changes,
            },
        );
        Ok(hash)
    }

    /// Consensus decided `hash` at `height`.
    fn commit_decided(
        &mut self,
        height: u64,
        hash: Hash32,
        certificate: CommitCertificate,
    ) -> Result<(), EngineError> {
        if height != self.tip.0 + 1 {
            // Already committed through sync.
            return Ok(());
        }
        if let Some(c) = self.candidates.remove(&hash) {
            return self.commit(c, certificate, true);
        }
        if let Some(block) = self.received.remove(&hash) {
            return self.commit_certified(block, certificate);
        }
        warn!(height, %hash, "decided a block this node does not hold: fetching it");
        self.awaiting_block = Some((height, hash, certificate));
        self.send(Outbound::RequestBlock { hash });
        Ok(())
    }

    fn retry_awaiting_block(&mut self) -> Result<(), EngineError> {
        let Some((height, hash, _)) = &self.awaiting_block else {
            return Ok(());
        };
        if *height != self.tip.0 + 1 {
            self.awaiting_block = None;
            return Ok(());
        }
        let hash = *hash;
        if self.received.contains_key(&hash)
            && let Some((_, _, cert)) = self.awaiting_block.take()
            && let Some(block) = self.received.remove(&hash)
        {
            return self.commit_certified(block, cert);
        }
        Ok(())
    }

    /// Certified blocks from peers: commit those that extend the tip, in order; keep
    /// later ones until the gap is filled.
    fn on_blocks(&mut self, blocks: Vec<(Block, CommitCertificate)>) -> Result<(), EngineError> {
        for (block, cert) in blocks {
            let h = block.header.height;
            if h <= self.tip.0 {
                continue;
            }
            if let Some((_, hash, _)) = &self.awaiting_block
                && block.header.hash() == *hash
            {
                self.received.insert(*hash, block.clone());
            }
            // Bounded: only heights within reach of the tip are kept.
            if h <= self.tip.0 + MAX_FUTURE_BLOCKS as u64 {
                self.future.insert(h, (block, cert));
            }
        }
        let before = self.tip.0;
        while let Some((block, cert)) = self.future.remove(&(self.tip.0 + 1)) {
            self.commit_certified(block, cert)?;
        }
        // Catching up: ask for the next range at once rather than at the next tick.
        let behind = match &self.consensus {
            Some(c) => c.highest_height_seen() > self.height,
            None => true,
        };
        if (self.tip.0 > before + 1 && behind) || !self.future.is_empty() {
            self.send(Outbound::RequestBlocks {
                from_height: self.height,
                max: SYNC_BATCH_BLOCKS,
            });
        }
        self.future.retain(|h, _| *h > self.tip.0);
        self.retry_awaiting_block()?;
        self.maybe_start()
    }

    /// Commits a block that comes with a certificate: the certificate must verify
    /// against the genesis validator set and the block must re-execute here. A
    /// certified block that fails is a fault of 2f+1 validators or of this node: halt.
    fn commit_certified(
        &mut self,
        block: Block,
        cert: CommitCertificate,
    ) -> Result<(), EngineError> {
        let height = block.header.height;
        let hash = block.header.hash();
        if let Err(e) = cert.verify(&self.genesis.chain_id, height, &hash, &self.validators) {
            // Not certified: a peer's fault, not ours. Drop it.
            warn!(height, %hash, "refused a block with a bad certificate: {e}");
            return Ok(());
        }
        match self.check_block(&block, CheckMode::Certified)? {
            Ok(changes) => self.commit(Candidate { block, changes }, cert, false),
            Err(reason) => {
                error!(height, %hash, %reason, "HALT: a certified block does not hold");
                Err(EngineError::Mismatch {
                    height,
                    hash,
                    reason,
                })
            }
        }
    }

    fn commit(
        &mut self,
        candidate: Candidate,
        certificate: CommitCertificate,
        announce: bool,
    ) -> Result<(), EngineError> {
        let height = candidate.block.header.height;
        let hash = candidate.block.header.hash();
        let ids: Vec<TxId> = candidate.changes.txs.clone();
        self.store
            .commit_block(&candidate.block, &certificate, &candidate.changes)?;
        lock(&self.shared.mempool).remove(&ids);
        self.shared.on_committed(height, &ids);
        if self.is_validator() {
            self.store.wal_prune_below(height + 1)?;
        }
        self.candidates.clear();
        self.received.retain(|_, b| b.header.height > height);
        self.saved_votes.clear();
        self.replay_votes.clear();
        self.timers.clear();
        self.awaiting_block = None;
        self.tip = (height, hash, candidate.block.header.time_ms);
        self.height = height + 1;
        self.idle_since_ms = self.now_ms();
        info!(height, txs = ids.len(), %hash, "committed");
        // Only the proposer announces: every validator's certificate differs, so each
        // announcement is another copy of the block on the wire. Observers that miss it
        // sync the block on their next tick.
        let proposed_here = self
            .consensus_config
            .as_ref()
            .is_some_and(|c| c.validator_index == candidate.block.header.proposer);
        if announce && proposed_here {
            self.send(Outbound::Announce {
                block: candidate.block,
                certificate,
            });
        }
        self.maybe_start()
    }
}

/// Runs an engine on its own thread; a fatal error is logged and ends the thread.
pub fn spawn(
    engine: Engine,
    rx: Receiver<Input>,
    first: Vec<Effect>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), EngineError>>> {
    std::thread::Builder::new()
        .name("ebill-engine".into())
        .spawn(move || {
            let result = engine.run(rx, first);
            if let Err(e) = &result {
                error!("engine stopped: {e}");
            }
            result
        })
}
