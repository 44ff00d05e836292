//! The engine's state machine: one validator's (or observer's) every decision between
//! the network, consensus, the ledger, the mempool and the store. See the crate docs.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use ebill_consensus::{
    Config as ConsensusConfig, Consensus, Effect, Event, Message, Step, TimeoutStep,
};
use ebill_ledger::{ChangeSet, Prepared, VerifiedSignatures};
use ebill_store::{Store, StoreError};
use ebill_types::{Block, CommitCertificate, Genesis, Hash32, SignedVote, ValidatorSet, VoteKind};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::block::{
    BlockRules, ChainTip, InvalidBlock, block_signatures, build_block, check_block,
};
use crate::io::{CertifiedBlock, Committed, Input, Outbound, Output};
use crate::mempool::{Mempool, lock};
use crate::sync::{Answer, SYNC_REQUESTS_IN_FLIGHT, SyncWindow};
use crate::verify::Split;
use crate::wal;

/// Most blocks received from peers and kept for the current height.
const MAX_RECEIVED_BLOCKS: usize = 64;
/// Received votes of the height in progress kept in the WAL, per validator of the set.
const MAX_RECEIVED_VOTES_PER_VALIDATOR: usize = 128;
/// Most certified blocks of future heights kept while the gap is synced.
const MAX_FUTURE_BLOCKS: usize = 512;
/// Earlier rounds whose own votes are re-sent while a round is stuck.
const RESEND_OLDER_ROUNDS: u32 = 8;
/// Proposed blocks this node lacks and fetches at once, per height.
const MAX_PENDING_CHECKS: usize = 16;

/// A failure that stops the engine: it cannot go on safely. After one, the engine must
/// be dropped (a node halts; the simulator reports a fault).
#[derive(Debug, Error)]
pub enum EngineError {
    /// The store failed; a validator that cannot persist must not vote.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The consensus configuration is wrong (key not in the validator set, ...).
    #[error("consensus: {0}")]
    Consensus(String),
    /// The WAL holds bytes this node cannot read.
    #[error("the consensus WAL of height {height} is unreadable: {reason}")]
    Wal {
        /// The height whose WAL was read.
        height: u64,
        /// What did not decode.
        reason: String,
    },
    /// State reads failed while building or checking a block.
    #[error("state: {0}")]
    State(#[from] ebill_ledger::StateError),
    /// A block certified by 2f+1 validators does not re-execute here: either the
    /// validators or this node are faulty. An observer halts on it.
    #[error("HALT: certified block {hash} at height {height} does not hold: {reason}")]
    Mismatch {
        /// The block's height.
        height: u64,
        /// The block's hash.
        hash: Hash32,
        /// The rule it breaks.
        reason: InvalidBlock,
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
    /// Cores that signature checks may use (1: only the engine's own thread).
    pub verify_cores: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 60_000,
            max_clock_drift_ms: 10_000,
            tick_ms: 1_000,
            verify_cores: 1,
        }
    }
}

/// What the engine is built from.
pub struct EngineSetup {
    /// The store, opened, with the genesis recorded.
    pub store: Arc<dyn Store>,
    /// The mempool that admission fills.
    pub mempool: Arc<Mutex<Mempool>>,
    /// The chain.
    pub genesis: Genesis,
    /// This validator's consensus configuration; `None` on an observer.
    pub consensus: Option<ConsensusConfig>,
    /// Timing and resources.
    pub config: EngineConfig,
}

/// A block this node built or checked, with the changes it makes.
struct Candidate {
    block: Arc<Block>,
    changes: ChangeSet,
}

/// The signatures of a synced block, checked while the block before it was committed.
struct SignaturesAhead {
    /// The block's hash.
    block: Hash32,
    /// Its valid signatures ([`block_signatures`]).
    verified: VerifiedSignatures,
}

/// A decision whose block this node does not hold yet.
struct AwaitedBlock {
    height: u64,
    hash: Hash32,
    certificate: CommitCertificate,
}

/// A consensus timeout, ordered by when it is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct PendingTimeout {
    at_ms: u64,
    height: u64,
    round: u32,
    step: StepKey,
}

/// `TimeoutStep` as a heap key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum StepKey {
    Propose,
    Prevote,
    Precommit,
}

impl StepKey {
    fn from_step(s: TimeoutStep) -> Self {
        match s {
            TimeoutStep::Propose => Self::Propose,
            TimeoutStep::Prevote => Self::Prevote,
            TimeoutStep::Precommit => Self::Precommit,
        }
    }
    fn step(self) -> TimeoutStep {
        match self {
            Self::Propose => TimeoutStep::Propose,
            Self::Prevote => TimeoutStep::Prevote,
            Self::Precommit => TimeoutStep::Precommit,
        }
    }
}

/// The engine. Build with [`Engine::start`], drive with [`Engine::on_input`], wake at
/// [`Engine::next_deadline_ms`].
pub struct Engine {
    store: Arc<dyn Store>,
    mempool: Arc<Mutex<Mempool>>,
    /// Shared with the thread that checks the next synced block's signatures.
    genesis: Arc<Genesis>,
    validators: ValidatorSet,
    /// `None` on an observer.
    consensus_config: Option<ConsensusConfig>,
    cfg: EngineConfig,
    consensus: Option<Consensus>,
    /// The height being decided (or waited for): the tip's height + 1.
    height: u64,
    /// The last final block.
    tip: ChainTip,
    candidates: BTreeMap<Hash32, Candidate>,
    received: BTreeMap<Hash32, Arc<Block>>,
    /// Blocks of the height in progress whose bytes are in the WAL.
    wal_blocks: BTreeSet<Hash32>,
    /// Other validators' votes of the height in progress written to the WAL (each once).
    saved_votes: HashSet<SignedVote>,
    /// Received votes read back from the WAL at start, for consensus once it runs.
    replay_votes: Vec<SignedVote>,
    future: BTreeMap<u64, CertifiedBlock>,
    /// Sync requests in flight.
    sync: SyncWindow,
    awaiting_block: Option<AwaitedBlock>,
    /// Proposed blocks consensus asked to check whose bytes are being fetched.
    pending_checks: BTreeSet<Hash32>,
    timers: BinaryHeap<Reverse<PendingTimeout>>,
    idle_since_ms: u64,
    next_tick_ms: u64,
    last_progress_ms: u64,
    /// Monotonic time of the input being handled.
    now_ms: u64,
    /// Wall-clock time (Unix ms) of the input being handled.
    wall_ms: u64,
    out: Vec<Output>,
}

impl Engine {
    /// An engine at the store's tip. A validator restores consensus from the WAL if its
    /// height was under way before a restart, and starts a height if transactions wait.
    /// Returns the outputs of that start.
    pub fn start(
        setup: EngineSetup,
        now_ms: u64,
        wall_ms: u64,
    ) -> Result<(Self, Vec<Output>), EngineError> {
        let EngineSetup {
            store,
            mempool,
            genesis,
            consensus,
            config,
        } = setup;
        let validators = genesis
            .validator_set()
            .map_err(|e| EngineError::Consensus(e.to_string()))?;
        let tip = match store.tip()? {
            Some(t) => {
                let header = store.header(t.height)?.ok_or_else(|| {
                    EngineError::Store(StoreError::Corrupt {
                        what: format!("header {}", t.height),
                        reason: "the tip's header is missing".into(),
                    })
                })?;
                assert_eq!(header.hash(), t.hash, "the tip's header hashes to the tip");
                ChainTip {
                    height: t.height,
                    hash: t.hash,
                    time_ms: header.time_ms,
                }
            }
            None => ChainTip {
                height: 0,
                hash: genesis.hash(),
                time_ms: 0,
            },
        };
        let mut engine = Self {
            store,
            mempool,
            genesis: Arc::new(genesis),
            validators,
            consensus_config: consensus,
            cfg: config,
            consensus: None,
            height: tip.height + 1,
            tip,
            candidates: BTreeMap::new(),
            received: BTreeMap::new(),
            wal_blocks: BTreeSet::new(),
            saved_votes: HashSet::new(),
            replay_votes: Vec::new(),
            future: BTreeMap::new(),
            sync: SyncWindow::new(),
            awaiting_block: None,
            pending_checks: BTreeSet::new(),
            timers: BinaryHeap::new(),
            idle_since_ms: now_ms,
            next_tick_ms: now_ms,
            last_progress_ms: now_ms,
            now_ms,
            wall_ms,
            out: Vec::new(),
        };
        if engine.is_validator() {
            engine.restore_from_wal()?;
        }
        engine.maybe_start()?;
        let out = std::mem::take(&mut engine.out);
        Ok((engine, out))
    }

    /// Handles one input at `now_ms` (monotonic) and `wall_ms` (Unix): then fires the
    /// timeouts that are due, the heartbeat and the periodic re-sends. Returns what to
    /// carry out, in order.
    pub fn on_input(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        input: Input,
    ) -> Result<Vec<Output>, EngineError> {
        self.now_ms = now_ms.max(self.now_ms);
        self.wall_ms = wall_ms;
        match input {
            Input::TxsAdded => self.maybe_start()?,
            Input::Consensus { msg, block } => self.on_consensus(msg, block)?,
            Input::Blocks(blocks) => self.on_blocks(blocks)?,
            Input::Block(block) => self.on_block_bytes(block)?,
            Input::Tick => {}
        }
        self.fire_timers()?;
        self.maybe_heartbeat()?;
        self.maybe_tick()?;
        Ok(std::mem::take(&mut self.out))
    }

    /// When the engine next needs an input even if nothing arrives ([`Input::Tick`]):
    /// always after the time of the last input, so a host never spins.
    pub fn next_deadline_ms(&self) -> u64 {
        let mut d = self.next_tick_ms;
        if let Some(Reverse(t)) = self.timers.peek() {
            d = d.min(t.at_ms);
        }
        if let Some(at) = self.heartbeat_due_after_ms() {
            d = d.min(at);
        }
        d.max(self.now_ms.saturating_add(1))
    }

    /// Whether an idle validator waits for its heartbeat (no height running, no
    /// decision waiting for its block): the time it is due.
    fn heartbeat_due_after_ms(&self) -> Option<u64> {
        (self.is_validator() && !self.started() && self.awaiting_block.is_none())
            .then(|| self.idle_since_ms.saturating_add(self.cfg.heartbeat_ms))
    }

    /// The last final block.
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// The consensus instance, on a validator once it has run.
    pub fn consensus(&self) -> Option<&Consensus> {
        self.consensus.as_ref()
    }

    /// A block of the height in progress that this node built or received, for a peer
    /// that asks for it by hash (final blocks are in the store).
    pub fn pending_block(&self, hash: &Hash32) -> Option<Arc<Block>> {
        self.candidates
            .get(hash)
            .map(|c| Arc::clone(&c.block))
            .or_else(|| self.received.get(hash).cloned())
    }

    // ----- start and restore -----

    /// Reads the WAL of the next height: own messages for `Consensus::restore`, block
    /// bytes, received votes. Starts consensus if it holds own messages.
    fn restore_from_wal(&mut self) -> Result<(), EngineError> {
        let height = self.height;
        let records: Vec<wal::Record> = self
            .store
            .wal_entries(height)?
            .iter()
            .map(|b| wal::decode_record(b))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::Wal {
                height,
                reason: e.to_string(),
            })?;
        let mut own = Vec::new();
        for r in records {
            match r {
                wal::Record::Message(m) => own.push(m),
                wal::Record::Block(b) => {
                    let hash = b.header.hash();
                    self.wal_blocks.insert(hash);
                    self.received.insert(hash, Arc::new(*b));
                }
                wal::Record::Received(v) => {
                    self.saved_votes.insert(v);
                    self.replay_votes.push(v);
                }
            }
        }
        if !own.is_empty() {
            info!(
                height,
                entries = own.len(),
                "resuming consensus from the WAL"
            );
            self.start_consensus(&own)?;
        }
        Ok(())
    }

    fn start_consensus(&mut self, wal: &[Message]) -> Result<(), EngineError> {
        let Some(config) = &self.consensus_config else {
            return Ok(());
        };
        let now = self.now_ms;
        self.last_progress_ms = now;
        let effects = match &mut self.consensus {
            Some(c) => c.on_event(
                now,
                Event::StartHeight {
                    height: self.height,
                },
            ),
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
                effects
            }
        };
        self.carry_out(effects)
    }

    /// True once consensus runs, undecided, at the current height.
    fn started(&self) -> bool {
        self.consensus
            .as_ref()
            .is_some_and(|c| c.height() == self.height && c.step() != Step::Decided)
    }

    fn is_validator(&self) -> bool {
        self.consensus_config.is_some()
    }

    fn own_index(&self) -> Option<u32> {
        self.consensus_config.as_ref().map(|c| c.validator_index)
    }

    fn send(&mut self, m: Outbound) {
        self.out.push(Output::Send(m));
    }

    /// Asks peers for the final blocks above the tip that are neither held nor asked
    /// for, so that up to `requests` sync requests are in flight. A request unanswered
    /// for a tick is taken as lost.
    fn request_blocks(&mut self, requests: usize) {
        let plan = self.sync.plan(
            self.now_ms,
            self.cfg.tick_ms,
            self.tip.height,
            &self.future,
            requests,
            MAX_FUTURE_BLOCKS as u64,
        );
        for r in plan {
            self.send(Outbound::RequestBlocks {
                from_height: r.from_height,
                max: r.max,
            });
        }
    }

    fn rules(&self, latest_time_ms: Option<u64>) -> BlockRules<'_> {
        BlockRules {
            genesis: &self.genesis,
            validators: &self.validators,
            tip: self.tip,
            latest_time_ms,
            cores: self.cfg.verify_cores,
        }
    }

    // ----- inputs -----

    fn on_consensus(&mut self, msg: Message, block: Option<Arc<Block>>) -> Result<(), EngineError> {
        if !self.is_validator() {
            return Ok(());
        }
        if let (Message::Proposal(p), Some(b)) = (&msg, block)
            && b.header.hash() == p.proposal.block
        {
            // Only the bytes that match the proposal are kept.
            self.on_block_bytes(b)?;
        }
        if msg.height() == self.height && !self.started() {
            self.start_consensus(&[])?;
        }
        if let Message::Vote(v) = &msg {
            self.save_received_vote(v)?;
        }
        let now = self.now_ms;
        if let Some(c) = &mut self.consensus {
            let effects = c.on_event(now, msg.into());
            self.carry_out(effects)?;
        }
        Ok(())
    }

    /// Block bytes of the height in progress (with a proposal, or fetched by hash):
    /// kept, and used at once if a decision or a check waits for them.
    fn on_block_bytes(&mut self, block: Arc<Block>) -> Result<(), EngineError> {
        if block.header.height != self.height {
            return Ok(());
        }
        let hash = block.header.hash();
        if !self.received.contains_key(&hash) {
            if self.received.len() >= MAX_RECEIVED_BLOCKS {
                // Hostile proposers could send many: keep those a decision, a check or
                // the WAL needs, drop the rest.
                let keep: BTreeSet<Hash32> = self
                    .pending_checks
                    .iter()
                    .copied()
                    .chain(self.awaiting_block.as_ref().map(|a| a.hash))
                    .chain(self.wal_blocks.iter().copied())
                    .collect();
                self.received.retain(|h, _| keep.contains(h));
            }
            self.received.insert(hash, block);
        }
        if self.awaiting_block.as_ref().is_some_and(|a| a.hash == hash) {
            return self.retry_awaiting_block();
        }
        if self.pending_checks.remove(&hash) {
            let valid = self.check_proposed(&hash)?;
            let height = self.height;
            self.feed(Event::BlockChecked {
                height,
                block: hash,
                valid,
            })?;
        }
        Ok(())
    }

    /// Keeps another validator's verified vote of the height in progress in the WAL
    /// (unsynced: losing it costs only what not keeping it would), if it is for nil or
    /// for a block this node holds, within a bound per validator. See
    /// `wal::Record::Received`.
    fn save_received_vote(&mut self, v: &SignedVote) -> Result<(), EngineError> {
        let held = |b: &Hash32| self.candidates.contains_key(b) || self.received.contains_key(b);
        if v.vote.height != self.height
            || Some(v.vote.validator) == self.own_index()
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

    fn feed(&mut self, event: Event) -> Result<(), EngineError> {
        let now = self.now_ms;
        let Some(c) = &mut self.consensus else {
            return Ok(());
        };
        let effects = c.on_event(now, event);
        self.carry_out(effects)
    }

    fn fire_timers(&mut self) -> Result<(), EngineError> {
        while let Some(Reverse(t)) = self.timers.peek().copied() {
            if t.at_ms > self.now_ms {
                break;
            }
            self.timers.pop();
            self.feed(Event::Timeout {
                height: t.height,
                round: t.round,
                step: t.step.step(),
            })?;
        }
        Ok(())
    }

    /// Starts the current height if transactions wait, or if consensus already holds
    /// signed messages of it: those that came while this node was still finishing the
    /// height before (fetching its block, say) are buffered by consensus, and nothing
    /// else would start the height if the rest of the network decided it and fell
    /// quiet (the partition test found a validator left a height behind that way).
    fn maybe_start(&mut self) -> Result<(), EngineError> {
        if !self.is_validator() || self.started() || self.awaiting_block.is_some() {
            return Ok(());
        }
        let heard_of_height = self
            .consensus
            .as_ref()
            .is_some_and(|c| c.highest_height_seen() >= self.height);
        if heard_of_height || !lock(&self.mempool).is_empty() {
            self.start_consensus(&[])?;
        }
        Ok(())
    }

    fn maybe_heartbeat(&mut self) -> Result<(), EngineError> {
        if self
            .heartbeat_due_after_ms()
            .is_some_and(|at| self.now_ms >= at)
        {
            debug!(
                height = self.height,
                "heartbeat: starting a height with no transactions"
            );
            self.start_consensus(&[])?;
        }
        Ok(())
    }

    /// Whether consensus has seen signed messages of heights above the one in progress.
    fn behind(&self) -> bool {
        match &self.consensus {
            Some(c) => c.highest_height_seen() > self.height,
            // An observer, or a validator that has not run consensus since it started:
            // it learns of the chain's progress only by asking.
            None => true,
        }
    }

    /// Periodic work: rebroadcast while a round is stuck; ask for blocks unless a height
    /// is being decided here, and again for missing block bytes.
    ///
    /// A validator that is idle or whose round is stuck asks one peer per tick for the
    /// blocks after its tip, even when it has seen no sign that it is behind: the rest
    /// of the network may have decided a height whose every message this node lost (a
    /// partition) and then fallen quiet, and only a request finds that out before the
    /// heartbeat. The answer to a node that is not behind is empty, and costs one small
    /// message per tick.
    fn maybe_tick(&mut self) -> Result<(), EngineError> {
        let now = self.now_ms;
        if now < self.next_tick_ms {
            return Ok(());
        }
        self.next_tick_ms = now.saturating_add(self.cfg.tick_ms.max(1));
        let stuck = now.saturating_sub(self.last_progress_ms) >= self.cfg.tick_ms;
        let deciding = self.started() && !stuck;
        if !deciding || self.behind() || !self.future.is_empty() {
            self.request_blocks(1);
        }
        let missing: Vec<Hash32> = self
            .awaiting_block
            .iter()
            .map(|a| a.hash)
            .chain(self.pending_checks.iter().copied())
            .collect();
        for hash in missing {
            self.send(Outbound::RequestBlock { hash });
        }
        if self.started() && stuck {
            let Some(c) = &mut self.consensus else {
                return Ok(());
            };
            let effects = c.on_event(now, Event::Rebroadcast);
            // Rebroadcast covers the current round; a peer still in an older round whose
            // copies of this validator's votes were lost needs those too (the simulator
            // found heights stuck without this). The last few rounds are enough: a peer
            // further behind catches up by round skipping.
            let round = c.round();
            let mut older = Vec::new();
            for r in round.saturating_sub(RESEND_OLDER_ROUNDS)..round {
                for kind in [VoteKind::Prevote, VoteKind::Precommit] {
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

    // ----- effects -----

    /// Carries out effects in order; answers to the state machine are fed back in turn.
    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), EngineError> {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            if let Some(event) = self.carry_out_one(effect)? {
                let now = self.now_ms;
                if let Some(c) = &mut self.consensus {
                    queue.extend(c.on_event(now, event));
                }
            }
        }
        Ok(())
    }

    /// Writes the bytes of `hash` to the WAL once per height, before the first own
    /// signed message that names it: a block this validator proposed, prevoted or
    /// precommitted then survives any crash of those holding it, so a decided block can
    /// always be served, and a proposer restarted mid-round can still propose it.
    fn persist_block_once(&mut self, height: u64, hash: Hash32) -> Result<(), EngineError> {
        if self.wal_blocks.contains(&hash) {
            return Ok(());
        }
        let Some(block) = self.pending_block(&hash) else {
            return Ok(());
        };
        self.store.wal_append(height, &wal::encode_block(&block))?;
        self.wal_blocks.insert(hash);
        Ok(())
    }

    fn carry_out_one(&mut self, effect: Effect) -> Result<Option<Event>, EngineError> {
        match effect {
            Effect::PersistVote(v) => {
                if let Some(hash) = v.vote.block {
                    self.persist_block_once(v.vote.height, hash)?;
                }
                self.store
                    .wal_append(v.vote.height, &wal::encode(&Message::Vote(v)))?;
                Ok(None)
            }
            Effect::PersistProposal(p) => {
                self.persist_block_once(p.proposal.height, p.proposal.block)?;
                self.store
                    .wal_append(p.proposal.height, &wal::encode(&Message::Proposal(p)))?;
                Ok(None)
            }
            Effect::Broadcast(msg) => {
                let block = match &msg {
                    Message::Proposal(p) => self.pending_block(&p.proposal.block),
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
                self.last_progress_ms = self.now_ms;
                self.timers.push(Reverse(PendingTimeout {
                    at_ms,
                    height,
                    round,
                    step: StepKey::from_step(step),
                }));
                Ok(None)
            }
            Effect::RequestProposalValue { height, round } => {
                let block = self.build(height)?;
                Ok(Some(Event::ProposalValue {
                    height,
                    round,
                    block,
                }))
            }
            Effect::CheckBlock { height, block, .. } => {
                if self.candidates.contains_key(&block) || self.received.contains_key(&block) {
                    let valid = self.check_proposed(&block)?;
                    return Ok(Some(Event::BlockChecked {
                        height,
                        block,
                        valid,
                    }));
                }
                // The proposal came without its block (too large for one hop, or
                // dropped): fetch it; consensus waits, and its propose timeout still
                // runs, so a block that never comes costs a nil prevote, not the height.
                if self.pending_checks.len() < MAX_PENDING_CHECKS
                    && self.pending_checks.insert(block)
                {
                    debug!(height, %block, "fetching a proposed block");
                    self.send(Outbound::RequestBlock { hash: block });
                }
                Ok(None)
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
                self.out.push(Output::Evidence(e));
                Ok(None)
            }
        }
    }

    // ----- blocks -----

    /// Whether a proposed block this node holds is valid on the tip (keeping it as a
    /// candidate with its changes if so).
    fn check_proposed(&mut self, hash: &Hash32) -> Result<bool, EngineError> {
        if self.candidates.contains_key(hash) {
            return Ok(true);
        }
        let Some(block) = self.received.get(hash).cloned() else {
            return Ok(false);
        };
        let latest = self.wall_ms.saturating_add(self.cfg.max_clock_drift_ms);
        let verdict = check_block(
            &self.rules(Some(latest)),
            self.store.as_ref(),
            &self.mempool,
            &block,
            None,
        )?;
        match verdict {
            Ok(changes) => {
                self.candidates.insert(*hash, Candidate { block, changes });
                Ok(true)
            }
            Err(reason) => {
                if matches!(reason, InvalidBlock::Body(_)) {
                    // A bad copy of the proposed block: forget it, so that a good copy
                    // that comes later is kept (and checked) instead.
                    self.received.remove(hash);
                }
                warn!(height = block.header.height, %hash, %reason, "proposed block refused");
                Ok(false)
            }
        }
    }

    /// Builds this validator's proposal for `height` on the tip.
    fn build(&mut self, height: u64) -> Result<Hash32, EngineError> {
        assert_eq!(height, self.tip.height + 1, "a proposal extends the tip");
        let proposer = self.own_index().unwrap_or(0);
        let time_ms = self.wall_ms.max(self.tip.time_ms.saturating_add(1));
        let built = build_block(
            &self.rules(None),
            self.store.as_ref(),
            &self.mempool,
            proposer,
            time_ms,
        )?;
        for d in built.dropped {
            self.out.push(Output::Dropped {
                id: d.id,
                error: d.error,
            });
        }
        let hash = built.block.header.hash();
        debug!(height, txs = built.block.txs.len(), %hash, "built block");
        self.candidates.insert(
            hash,
            Candidate {
                block: built.block,
                changes: built.changes,
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
        if height != self.tip.height + 1 {
            // Already committed through sync.
            return Ok(());
        }
        assert_eq!(
            certificate.block, hash,
            "a decision's certificate is for its block"
        );
        if let Some(c) = self.candidates.remove(&hash) {
            return self.commit(c, certificate, true);
        }
        if let Some(block) = self.received.remove(&hash) {
            return self.commit_certified(block, certificate, None);
        }
        warn!(height, %hash, "decided a block this node does not hold: fetching it");
        self.fetch_certified(height, hash, certificate);
        Ok(())
    }

    /// Asks peers for the bytes of the certified block `hash` and commits it when they
    /// come.
    fn fetch_certified(&mut self, height: u64, hash: Hash32, certificate: CommitCertificate) {
        self.awaiting_block = Some(AwaitedBlock {
            height,
            hash,
            certificate,
        });
        self.send(Outbound::RequestBlock { hash });
    }

    fn retry_awaiting_block(&mut self) -> Result<(), EngineError> {
        let Some(awaited) = &self.awaiting_block else {
            return Ok(());
        };
        if awaited.height != self.tip.height + 1 {
            self.awaiting_block = None;
            return Ok(());
        }
        let hash = awaited.hash;
        if let Some(block) = self.received.remove(&hash)
            && let Some(awaited) = self.awaiting_block.take()
        {
            return self.commit_certified(block, awaited.certificate, None);
        }
        Ok(())
    }

    /// Certified blocks from peers: commit those that extend the tip, in order (through
    /// consensus while it runs at that height, so its log sees the certificate's
    /// precommits); keep later ones until the gap is filled. While catching up, keep
    /// [`SYNC_REQUESTS_IN_FLIGHT`] requests for the next blocks in flight, so that the
    /// next answers are on their way while these are committed.
    fn on_blocks(&mut self, blocks: Vec<CertifiedBlock>) -> Result<(), EngineError> {
        let answer = blocks.first().map_or(Answer::Unrequested, |cb| {
            self.sync.answered(cb.block.header.height, blocks.len())
        });
        // Whether the peer that answered may hold more: a full answer, or one cut short
        // by its byte limit. A single block short of the range is the peer's tip (or an
        // announcement of the height asked for): asking for more after each would chase
        // the tip with requests.
        let more = match answer {
            Answer::Full => true,
            Answer::Short => blocks.len() >= 2,
            Answer::Unrequested => false,
        };
        for cb in blocks {
            let h = cb.block.header.height;
            if h <= self.tip.height {
                continue;
            }
            // Bounded: only heights within reach of the tip are kept.
            if h <= self.tip.height + MAX_FUTURE_BLOCKS as u64 {
                self.future.insert(h, cb);
            }
        }
        let before = self.tip.height;
        let mut ahead: Option<SignaturesAhead> = None;
        while let Some(cb) = self.future.remove(&(self.tip.height + 1)) {
            let tip = self.tip.height;
            let hash = cb.block.header.hash();
            let checked = ahead.take().filter(|a| a.block == hash).map(|a| a.verified);
            let next = self.future.get(&(tip + 2)).map(|n| Arc::clone(&n.block));
            ahead = self.commit_synced(cb, checked, next)?;
            if self.tip.height == tip {
                break;
            }
        }
        let tip = self.tip.height;
        self.future.retain(|h, _| *h > tip);
        // Catching up: ask for the next ranges at once rather than at the next tick.
        if ((more || tip > before + 1) && self.behind()) || !self.future.is_empty() {
            self.request_blocks(SYNC_REQUESTS_IN_FLIGHT);
        }
        self.maybe_start()
    }

    /// A certified block of the next height from a peer. On an engine that does not run
    /// consensus at this height (an observer, a validator catching up), `checked` holds
    /// the block's signatures checked while the block before it was committed, and the
    /// signatures of `next`, the block after it if held, are checked on other threads
    /// while this one is executed and written: returned for its turn.
    fn commit_synced(
        &mut self,
        cb: CertifiedBlock,
        checked: Option<VerifiedSignatures>,
        next: Option<Arc<Block>>,
    ) -> Result<Option<SignaturesAhead>, EngineError> {
        let hash = cb.block.header.hash();
        if self.awaiting_block.as_ref().is_some_and(|a| a.hash == hash) {
            self.received.insert(hash, cb.block);
            self.retry_awaiting_block()?;
            return Ok(None);
        }
        if self.started() {
            // Consensus verifies the certificate and decides by it (paper line 49); its
            // Commit effect then commits the block, which must be held for that.
            self.received.insert(hash, Arc::clone(&cb.block));
            self.feed(Event::Certificate(cb.certificate.clone()))?;
            if self.tip.height + 1 == cb.block.header.height && self.received.contains_key(&hash) {
                // Consensus refused the certificate (a bad one, or for a block it does
                // not hold): the block is not final here.
                debug!(height = cb.block.header.height, %hash, "synced certificate not taken");
            }
            return Ok(None);
        }
        let cores = self.cfg.verify_cores;
        let Some(next) = next.filter(|_| cores >= 2) else {
            self.commit_certified(cb.block, cb.certificate, checked)?;
            return Ok(None);
        };
        let store = Arc::clone(&self.store);
        let mempool = Arc::clone(&self.mempool);
        let genesis = Arc::clone(&self.genesis);
        std::thread::scope(|s| {
            let worker = s.spawn(move || {
                let prepared = Prepared::all(&next.txs, genesis.chain_id.as_str());
                let split = Split::beside(cores);
                block_signatures(store.as_ref(), &genesis, &mempool, &prepared, split, None).map(
                    |verified| SignaturesAhead {
                        block: next.header.hash(),
                        verified,
                    },
                )
            });
            self.commit_certified(cb.block, cb.certificate, checked)?;
            // A failure here costs only the head start: the block's own check verifies
            // its signatures again in its turn.
            Ok(match worker.join() {
                Ok(Ok(ahead)) => Some(ahead),
                Ok(Err(e)) => {
                    debug!("checking the next synced block's signatures ahead: {e}");
                    None
                }
                Err(_) => {
                    warn!("the thread checking the next synced block's signatures panicked");
                    None
                }
            })
        })
    }

    /// Commits a block that comes with a certificate: the certificate must verify
    /// against the genesis validator set and the block must re-execute here. A
    /// certified block that fails is a fault of 2f+1 validators or of this node: halt.
    /// `checked`: its signatures checked ahead ([`check_block`]).
    fn commit_certified(
        &mut self,
        block: Arc<Block>,
        certificate: CommitCertificate,
        checked: Option<VerifiedSignatures>,
    ) -> Result<(), EngineError> {
        let height = block.header.height;
        let hash = block.header.hash();
        if let Err(e) = certificate.verify(&self.genesis.chain_id, height, &hash, &self.validators)
        {
            // Not certified: a peer's fault, not ours. Drop it.
            warn!(height, %hash, "refused a block with a bad certificate: {e}");
            return Ok(());
        }
        let verdict = check_block(
            &self.rules(None),
            self.store.as_ref(),
            &self.mempool,
            &block,
            checked,
        )?;
        match verdict {
            Ok(changes) => self.commit(Candidate { block, changes }, certificate, false),
            // The certificate signs the header; a body that is not the one the header
            // commits to is a peer's bad copy (corrupted or forged), not a fault of the
            // validators: fetch the block again rather than halt.
            Err(InvalidBlock::Body(reason)) => {
                warn!(height, %hash, %reason, "a peer's copy of a certified block is not that block: fetching it again");
                self.fetch_certified(height, hash, certificate);
                Ok(())
            }
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

    /// Stores a final block and moves to the next height. `announce`: the block was
    /// built here and decided by this validator's consensus.
    fn commit(
        &mut self,
        candidate: Candidate,
        certificate: CommitCertificate,
        announce: bool,
    ) -> Result<(), EngineError> {
        let Candidate { block, changes } = candidate;
        let height = block.header.height;
        let hash = block.header.hash();
        assert_eq!(height, self.tip.height + 1, "a commit extends the tip");
        assert_eq!(
            block.header.prev_hash, self.tip.hash,
            "a commit extends the tip"
        );
        assert_eq!(certificate.block, hash, "the certificate is for the block");
        assert_eq!(
            changes.txs.len(),
            block.txs.len(),
            "the changes list every transaction of the block"
        );
        self.store.commit_block(&block, &certificate, &changes)?;
        lock(&self.mempool).remove(&changes.txs);
        if self.is_validator() {
            self.store.wal_prune_below(height + 1)?;
        }
        self.candidates.clear();
        self.received.retain(|_, b| b.header.height > height);
        self.wal_blocks.clear();
        self.saved_votes.clear();
        self.replay_votes.clear();
        self.pending_checks.clear();
        self.timers.clear();
        self.awaiting_block = None;
        self.tip = ChainTip {
            height,
            hash,
            time_ms: block.header.time_ms,
        };
        self.height = height + 1;
        self.idle_since_ms = self.now_ms;
        info!(height, txs = changes.txs.len(), %hash, "committed");
        let certified = CertifiedBlock { block, certificate };
        // Only the proposer announces: every validator's certificate differs, so each
        // announcement is another copy of the block on the wire. Observers that miss it
        // sync the block on their next tick.
        if announce && self.own_index() == Some(certified.block.header.proposer) {
            self.send(Outbound::Announce(certified.clone()));
        }
        self.out.push(Output::Committed(Box::new(Committed {
            certified,
            changes,
        })));
        self.maybe_start()
    }
}
