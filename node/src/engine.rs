//! The engine: one thread that owns the consensus state machine and wires it to the
//! ledger, the store and the mempool. It builds blocks when this validator proposes,
//! checks proposed blocks, persists its own votes before they leave, commits final
//! blocks, and keeps time for consensus.
//!
//! A height starts only when there is something to decide: a transaction waiting, a
//! message of that height from a peer, or the heartbeat (an empty block every
//! `heartbeat_ms`). So an idle chain does not spin through rounds, and a busy one cuts
//! a block as soon as the previous one is final.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ebill_api::Rejection;
use ebill_consensus::{Config as ConsensusConfig, Consensus, Effect, Event, Message, TimeoutStep};
use ebill_ledger::{ChangeSet, Context, select};
use ebill_store::{Store, Tip};
use ebill_types::{
    Block, CommitCertificate, Genesis, Hash32, Header, SignedTx, TxId, ValidatorSet,
};
use thiserror::Error;
use tracing::{debug, error, info, warn};

use crate::shared::{Shared, StoreView, lock, wall_ms};
use crate::wal;

/// What the engine reacts to.
#[derive(Debug)]
pub enum Input {
    /// Transactions were admitted to the mempool.
    TxsAdded,
    /// A consensus message from a peer.
    Message(Message),
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
    /// Consensus decided a block this node does not hold.
    #[error("decided block {0} at height {1} is unknown here (block sync comes with the network)")]
    MissingBlock(Hash32, u64),
}

/// Engine settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Longest time between blocks when nothing happens (an empty block).
    pub heartbeat_ms: u64,
    /// How far ahead of the local clock a proposed block's time may be.
    pub max_clock_drift_ms: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            heartbeat_ms: 60_000,
            max_clock_drift_ms: 10_000,
        }
    }
}

/// A block this node built or checked, with the changes it makes.
struct Candidate {
    block: Block,
    changes: ChangeSet,
}

/// The engine. Create with [`Engine::new`], run with [`Engine::run`] on its own thread.
pub struct Engine {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    genesis: Genesis,
    validators: ValidatorSet,
    consensus_config: ConsensusConfig,
    cfg: EngineConfig,
    consensus: Option<Consensus>,
    /// The height consensus works on, or waits to start.
    height: u64,
    /// The last final block (height, hash, time).
    tip: (u64, Hash32, u64),
    candidates: HashMap<Hash32, Candidate>,
    timers: BinaryHeap<Reverse<(u64, u64, u32, TimeoutStepKey)>>,
    idle_since_ms: u64,
    epoch: Instant,
}

/// `TimeoutStep` in a heap (it is not `Ord` by itself in every version).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct TimeoutStepKey(u8);

impl TimeoutStepKey {
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

impl Engine {
    /// An engine at the store's tip, restoring consensus from the WAL if this height was
    /// already under way before a restart.
    pub fn new(
        shared: Arc<Shared>,
        store: Arc<dyn Store>,
        genesis: Genesis,
        consensus_config: ConsensusConfig,
        cfg: EngineConfig,
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
            consensus: None,
            height,
            tip,
            candidates: HashMap::new(),
            timers: BinaryHeap::new(),
            idle_since_ms: 0,
            epoch: Instant::now(),
        };
        let wal: Vec<Message> = engine
            .store
            .wal_entries(height)?
            .iter()
            .map(|b| wal::decode(b))
            .collect::<Result<_, _>>()
            .map_err(|e| EngineError::Wal {
                height,
                reason: e.to_string(),
            })?;
        let mut effects = Vec::new();
        if !wal.is_empty() {
            info!(
                height,
                entries = wal.len(),
                "resuming consensus from the WAL"
            );
            effects = engine.start_consensus(&wal)?;
        }
        Ok((engine, effects))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn start_consensus(&mut self, wal: &[Message]) -> Result<Vec<Effect>, EngineError> {
        let now = self.now_ms();
        match &mut self.consensus {
            Some(c) => Ok(c.on_event(
                now,
                Event::StartHeight {
                    height: self.height,
                },
            )),
            None => {
                let (c, effects) =
                    Consensus::restore(self.consensus_config.clone(), self.height, wal, now)
                        .map_err(|e| EngineError::Consensus(e.to_string()))?;
                self.consensus = Some(c);
                Ok(effects)
            }
        }
    }

    /// True once consensus runs at the current height.
    fn started(&self) -> bool {
        self.consensus
            .as_ref()
            .is_some_and(|c| c.height() == self.height)
            && self
                .consensus
                .as_ref()
                .is_some_and(|c| c.step() != ebill_consensus::Step::Decided)
    }

    /// Runs until [`Input::Shutdown`] or a fatal error.
    pub fn run(mut self, rx: Receiver<Input>, first: Vec<Effect>) -> Result<(), EngineError> {
        self.idle_since_ms = self.now_ms();
        self.carry_out(first)?;
        self.maybe_start()?;
        loop {
            let now = self.now_ms();
            let deadline = self.next_deadline();
            let wait = deadline.map(|d| d.saturating_sub(now));
            let input = match wait {
                Some(ms) => match rx.recv_timeout(Duration::from_millis(ms)) {
                    Ok(i) => Some(i),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match rx.recv() {
                    Ok(i) => Some(i),
                    Err(_) => return Ok(()),
                },
            };
            match input {
                Some(Input::Shutdown) => {
                    info!("engine stopping");
                    return Ok(());
                }
                Some(Input::TxsAdded) => self.maybe_start()?,
                Some(Input::Message(m)) => {
                    if m.height() == self.height && !self.started() {
                        let effects = self.start_consensus(&[])?;
                        self.carry_out(effects)?;
                    }
                    let now = self.now_ms();
                    if let Some(c) = &mut self.consensus {
                        let effects = c.on_event(now, m.into());
                        self.carry_out(effects)?;
                    }
                }
                None => {}
            }
            self.fire_timers()?;
            self.maybe_heartbeat()?;
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        let timer = self.timers.peek().map(|Reverse((at, ..))| *at);
        let heartbeat = (!self.started()).then(|| self.idle_since_ms + self.cfg.heartbeat_ms);
        match (timer, heartbeat) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
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
        if self.started() || lock(&self.shared.mempool).is_empty() {
            return Ok(());
        }
        let effects = self.start_consensus(&[])?;
        self.carry_out(effects)
    }

    fn maybe_heartbeat(&mut self) -> Result<(), EngineError> {
        if !self.started() && self.now_ms() >= self.idle_since_ms + self.cfg.heartbeat_ms {
            debug!(
                height = self.height,
                "heartbeat: starting a height with no transactions"
            );
            let effects = self.start_consensus(&[])?;
            self.carry_out(effects)?;
        }
        Ok(())
    }

    /// Carries out effects in order; answers to the state machine are fed back in turn.
    fn carry_out(&mut self, effects: Vec<Effect>) -> Result<(), EngineError> {
        let mut queue: VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            let answer = self.carry_out_one(effect)?;
            if let Some(event) = answer {
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
                self.store
                    .wal_append(v.vote.height, &wal::encode(&Message::Vote(v)))?;
                Ok(None)
            }
            Effect::PersistProposal(p) => {
                self.store
                    .wal_append(p.proposal.height, &wal::encode(&Message::Proposal(p)))?;
                Ok(None)
            }
            Effect::Broadcast(_m) => {
                // One validator: nobody to send to. The network (issue 5) plugs in here.
                Ok(None)
            }
            Effect::ScheduleTimeout {
                height,
                round,
                step,
                at_ms,
            } => {
                self.timers.push(Reverse((
                    at_ms,
                    height,
                    round,
                    TimeoutStepKey::from_step(step),
                )));
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
                // A block we built or checked before is valid; others arrive with the
                // network (issue 5), until then they are unknown and so not valid.
                let valid = self.candidates.contains_key(&block);
                if !valid {
                    warn!(height, %block, "asked to check a block this node does not hold");
                }
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
                self.commit(height, block, certificate)?;
                Ok(None)
            }
            Effect::Evidence(e) => {
                warn!(offender = e.offender(), ?e, "equivocation evidence");
                Ok(None)
            }
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
        let time_ms = wall_ms().max(self.tip.2 + 1);
        let ctx = Context {
            genesis: &self.genesis,
            height,
            time_ms,
        };
        let view = StoreView(self.store.as_ref());
        let selection = select(&view, ctx, &txs, Some(&verified))?;
        let mut dropped: Vec<TxId> = Vec::new();
        for (i, err) in &selection.rejected {
            let id = candidates[*i].0;
            dropped.push(id);
            self.shared.on_dropped(id, Rejection::from(err.clone()));
        }
        lock(&self.shared.mempool).remove(&dropped);
        let mut block_txs = Vec::with_capacity(selection.accepted.len());
        for &i in &selection.accepted {
            block_txs.push(txs[i].clone());
        }
        let proposer = self.consensus_config.validator_index;
        let header = Header {
            chain_id: self.genesis.chain_id.clone(),
            height,
            prev_hash: self.tip.1,
            time_ms,
            proposer,
            tx_root: Block::tx_root(&block_txs),
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

    fn commit(
        &mut self,
        height: u64,
        hash: Hash32,
        certificate: CommitCertificate,
    ) -> Result<(), EngineError> {
        let Some(candidate) = self.candidates.remove(&hash) else {
            return Err(EngineError::MissingBlock(hash, height));
        };
        let ids: Vec<TxId> = candidate.changes.txs.clone();
        self.store
            .commit_block(&candidate.block, &certificate, &candidate.changes)?;
        lock(&self.shared.mempool).remove(&ids);
        self.shared.on_committed(height, &ids);
        self.store.wal_prune_below(height + 1)?;
        self.candidates.clear();
        self.timers.clear();
        self.tip = (height, hash, candidate.block.header.time_ms);
        self.height = height + 1;
        self.idle_since_ms = self.now_ms();
        info!(height, txs = ids.len(), %hash, "committed");
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
