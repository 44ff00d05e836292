//! One run of the simulator from one seed, and many runs.
//!
//! A run draws its whole scenario from the seed: which validators are Byzantine and how
//! they behave, the network's faults before GST (delays, losses, duplicates, slow
//! messages that reorder, partitions), the crashes and restarts (at random times, and
//! right after a validator signs), and the clients' transactions. It then runs a
//! discrete-event loop ordered by (time, sequence number), carrying out what the nodes
//! ask, and runs the checkers after every event. It ends when every honest validator
//! has made `heights` blocks final (and at least [`POST_GST_HEIGHTS`] more after GST),
//! at the first violation, or at a stall.

use std::collections::BTreeMap;
use std::sync::Arc;

use ebill_consensus::{TimeoutSchedule, Timeouts};
use ebill_types::dev;

use crate::byzantine::{Adversary, Strategy};
use crate::checker::{Checker, Violation};
use crate::corrupt::{Corrupted, corrupt};
use crate::disk::CommitFault;
use crate::network::{LinkFaults, Network, NetworkConfig, Partition, Payload};
use crate::node::{Node, NodeParams, Output, PlantedBug, Timer};
use crate::rng::{Rng, mix};
use crate::workload::{CHAIN_EPOCH_MS, Workload};

/// Blocks that must become final after GST in every run, whatever `heights` says, so
/// that every run shows liveness after the network heals.
pub const POST_GST_HEIGHTS: u64 = 2;

/// The chain id of simulated chains.
pub const SIM_CHAIN_ID: &str = "ebill-sim";

/// What to simulate.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// Validators (n).
    pub validators: u32,
    /// Byzantine validators among them (at most f = (n-1)/3 for the guarantees to hold).
    pub byzantine: u32,
    /// Heights every honest validator must make final before the run ends.
    pub heights: u64,
    /// A planted consensus bug in the honest validators.
    pub bug: Option<PlantedBug>,
    /// Liveness bound: after GST (all partitions healed, all crashed validators
    /// restarted, delays bounded by `post_gst_max_delay_ms`), the cluster must make a
    /// new block final, and every lagging honest validator must make its next block
    /// final, within this much simulated time; otherwise the run is a stall.
    pub liveness_bound_ms: u64,
    /// Delay bound of every message after GST.
    pub post_gst_max_delay_ms: u64,
    /// Latest GST drawn (GST is drawn in `[min_gst_ms, max_gst_ms]`).
    pub max_gst_ms: u64,
    /// Earliest GST drawn.
    pub min_gst_ms: u64,
    /// Keep a human-readable log of every event in the report (for replaying one seed).
    pub log: bool,
    /// Chance (per mille) that a message sent before GST has a bit flipped; `None`:
    /// drawn per seed from 0 to 19.
    pub corrupt_per_mille: Option<u32>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            validators: 4,
            byzantine: 1,
            heights: 8,
            bug: None,
            liveness_bound_ms: 30_000,
            post_gst_max_delay_ms: 100,
            min_gst_ms: 2_000,
            max_gst_ms: 12_000,
            corrupt_per_mille: None,
            log: false,
        }
    }
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// Its seed.
    pub seed: u64,
    /// Highest height final at any honest validator.
    pub final_blocks: u64,
    /// Safety violations (the run stops at the first step that finds any).
    pub violations: Vec<Violation>,
    /// Why the run stalled, if it did.
    pub stall: Option<String>,
    /// Simulated time at the end.
    pub sim_time_ms: u64,
    /// GST of the run.
    pub gst_ms: u64,
    /// Messages delivered.
    pub messages: u64,
    /// Events processed.
    pub events: u64,
    /// Longest wait, after GST, for a new final block (or a lagging validator's next).
    pub max_post_gst_gap_ms: u64,
    /// Digest of everything that happened, in order: equal digests, equal runs.
    pub trace_digest: u64,
    /// Commits that failed before writing, injected by the disks.
    pub failed_commits: u64,
    /// Crashes right after a durable commit, injected by the disks.
    pub crashes_after_commit: u64,
    /// Messages with a bit flipped before GST (delivered as what they decoded to, or
    /// dropped where they no longer decoded).
    pub corrupted_messages: u64,
    /// The event log, if [`RunConfig::log`] was set.
    pub log: Vec<String>,
}

impl RunReport {
    /// Whether the run broke nothing.
    pub fn ok(&self) -> bool {
        self.violations.is_empty() && self.stall.is_none()
    }
}

/// What happens at an instant.
#[derive(Clone, Debug)]
enum SimEvent {
    Deliver {
        to: u32,
        from: Option<u32>,
        payload: Payload,
    },
    Timer {
        node: u32,
        epoch: u64,
        timer: Timer,
    },
    Client,
    Crash {
        node: u32,
    },
    Restart {
        node: u32,
    },
    Gst,
    LivenessCheck,
}

/// The scenario drawn from a seed.
#[derive(Debug)]
struct Scenario {
    byzantine: Vec<u32>,
    strategies: BTreeMap<u32, Strategy>,
    network: NetworkConfig,
    crashes: Vec<(u64, u64, u32)>,
    crash_after_sign_per_mille: u32,
    isolate_after_commit_per_mille: u32,
    /// Chance per event, before GST, that a node's next commit fails or crashes.
    store_fault_per_mille: u32,
    /// Each validator's clock offset.
    clock_offsets_ms: Vec<i64>,
    /// Chance per delivered copy, before GST, that a bit of it is flipped.
    corrupt_per_mille: u32,
    client_gap_ms: (u64, u64),
}

fn draw_scenario(config: &RunConfig, rng: &mut Rng) -> Scenario {
    let n = config.validators;
    let mut all: Vec<u32> = (0..n).collect();
    rng.shuffle(&mut all);
    let mut byzantine: Vec<u32> = all
        .iter()
        .copied()
        .take(config.byzantine as usize)
        .collect();
    byzantine.sort_unstable();
    let strategies = byzantine
        .iter()
        .map(|b| (*b, Strategy::random(rng)))
        .collect();
    let gst_ms = rng.range(config.min_gst_ms, config.max_gst_ms);
    let max_delay_ms = match rng.below(3) {
        0 => rng.range(5, 60),
        1 => rng.range(60, 400),
        _ => rng.range(400, 1_500),
    };
    let before_gst = LinkFaults {
        min_delay_ms: 1,
        max_delay_ms,
        slow_per_mille: rng.range(0, 100) as u32,
        loss_per_mille: rng.range(0, 300) as u32,
        dup_per_mille: rng.range(0, 100) as u32,
    };
    let mut partitions = Vec::new();
    for _ in 0..rng.range(0, 3) {
        let start_ms = rng.below(gst_ms);
        let end_ms = rng.range(start_ms + 1, gst_ms);
        let groups = rng.range(2, 3) as u8;
        let group_of = (0..n).map(|_| rng.below(u64::from(groups)) as u8).collect();
        partitions.push(Partition {
            start_ms,
            end_ms,
            group_of,
        });
    }
    let honest: Vec<u32> = (0..n).filter(|i| !byzantine.contains(i)).collect();
    let mut crashes = Vec::new();
    for _ in 0..rng.range(0, honest.len() as u64) {
        let node = honest[rng.index(honest.len())];
        let at = rng.below(gst_ms);
        let back = rng.range(at + 1, (at + 5_000).min(gst_ms).max(at + 1));
        crashes.push((at, back, node));
    }
    Scenario {
        byzantine,
        strategies,
        network: NetworkConfig {
            gst_ms,
            before_gst,
            post_gst_max_delay_ms: config.post_gst_max_delay_ms,
            post_gst_dup_per_mille: 20,
            partitions,
        },
        crashes,
        crash_after_sign_per_mille: rng.range(0, 40) as u32,
        isolate_after_commit_per_mille: rng.range(0, 600) as u32,
        store_fault_per_mille: rng.range(0, 3) as u32,
        // Clocks apart by up to 4 s either way: well inside the 10 s a proposal's time
        // may be ahead of a validator's clock.
        clock_offsets_ms: (0..n).map(|_| rng.range(0, 8_000) as i64 - 4_000).collect(),
        client_gap_ms: (20, rng.range(100, 600)),
        corrupt_per_mille: {
            let drawn = rng.range(0, 20) as u32;
            config.corrupt_per_mille.unwrap_or(drawn)
        },
    }
}

/// The timeouts of simulated validators: short (the simulated network is fast), growing
/// per round as Tendermint needs.
pub fn sim_timeouts() -> Timeouts {
    Timeouts {
        propose: TimeoutSchedule::new(600, 150),
        prevote: TimeoutSchedule::new(300, 150),
        precommit: TimeoutSchedule::new(300, 150),
    }
}

/// A whole cluster in one seed.
struct World {
    config: RunConfig,
    rng: Rng,
    now_ms: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), SimEvent>,
    nodes: Vec<Node>,
    network: Network,
    workload: Workload,
    checker: Checker,
    scenario: Scenario,
    /// Restarts scheduled and not yet done, per node (no crash while one is pending).
    down_until: BTreeMap<u32, u64>,
    gst_passed: bool,
    tip_at_gst: u64,
    last_progress_ms: u64,
    last_commit_of: BTreeMap<u32, u64>,
    max_gap_ms: u64,
    messages: u64,
    corrupted_messages: u64,
    events: u64,
    trace: u64,
    stall: Option<String>,
    log: Vec<String>,
}

impl World {
    fn new(config: RunConfig, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let scenario = draw_scenario(&config, &mut rng);
        let mut genesis = dev::dev_genesis_with(SIM_CHAIN_ID, config.validators);
        // Small blocks, so that a run's few hundred transactions span many heights.
        genesis.params.max_block_txs = 16;
        let validators = match genesis.validator_set() {
            Ok(v) => v,
            Err(e) => unreachable!("the dev genesis has a valid validator set: {e}"),
        };
        let params = Arc::new(NodeParams {
            genesis,
            validators: validators.clone(),
            timeouts: sim_timeouts(),
            tick_ms: 400,
            heartbeat_ms: 3_000,
            max_clock_drift_ms: 10_000,
            sync_batch: 8,
            mempool_max_txs: 100_000,
            bug: config.bug,
        });
        let mut nodes: Vec<Node> = (0..config.validators)
            .map(|i| {
                let key = dev::dev_key("validator", i);
                let adversary = scenario
                    .strategies
                    .get(&i)
                    .map(|s| Adversary::new(*s, SIM_CHAIN_ID, validators.clone(), i, key.clone()));
                let mut node = Node::new(i, key, Arc::clone(&params), adversary);
                node.set_clock_offset_ms(
                    scenario
                        .clock_offsets_ms
                        .get(i as usize)
                        .copied()
                        .unwrap_or(0),
                );
                node
            })
            .collect();
        if config.bug == Some(PlantedBug::SkipStateUpdate)
            && let Some(first_honest) = nodes.iter().find(|n| !n.byzantine())
        {
            first_honest.arm_commit_fault(CommitFault::SkipStateUpdate);
        }
        let nodes = std::mem::take(&mut nodes);
        let network = Network::new(scenario.network.clone());
        Self {
            workload: Workload::new(SIM_CHAIN_ID, config.validators),
            checker: Checker::new(SIM_CHAIN_ID, validators),
            config,
            rng,
            now_ms: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            network,
            scenario,
            down_until: BTreeMap::new(),
            gst_passed: false,
            tip_at_gst: 0,
            last_progress_ms: 0,
            last_commit_of: BTreeMap::new(),
            max_gap_ms: 0,
            messages: 0,
            corrupted_messages: 0,
            events: 0,
            trace: 0,
            stall: None,
            log: Vec::new(),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.config.log {
            let l = line();
            self.log.push(format!("{:>7} {l}", self.now_ms));
        }
    }

    fn schedule(&mut self, at_ms: u64, event: SimEvent) {
        self.seq += 1;
        self.queue.insert((at_ms.max(self.now_ms), self.seq), event);
    }

    fn honest(&self, node: u32) -> bool {
        !self.scenario.byzantine.contains(&node)
    }

    fn trace(&mut self, x: u64) {
        self.trace = mix(self.trace ^ x);
    }

    fn send(&mut self, from: Option<u32>, to: u32, payload: Payload) {
        for delay in self.network.fates(&mut self.rng, self.now_ms, from, to) {
            self.messages += 1;
            let payload = if self.now_ms < self.scenario.network.gst_ms
                && self.rng.chance(self.scenario.corrupt_per_mille)
            {
                self.corrupted_messages += 1;
                match corrupt(&mut self.rng, &payload) {
                    Corrupted::Delivered(p) => p,
                    Corrupted::Dropped => continue,
                }
            } else {
                payload.clone()
            };
            self.schedule(self.now_ms + delay, SimEvent::Deliver { to, from, payload });
        }
    }

    fn boot(&mut self) {
        let strategies: Vec<String> = self
            .scenario
            .strategies
            .iter()
            .map(|(i, s)| format!("v{i} {s:?}"))
            .collect();
        let gst = self.scenario.network.gst_ms;
        self.log(|| format!("BYZANTINE {strategies:?}, GST at {gst} ms"));
        for i in 0..self.config.validators {
            let mut out = Vec::new();
            if let Some(node) = self.nodes.get_mut(i as usize) {
                node.restart(0, &mut self.rng, &mut out);
            }
            self.carry_out(i, out);
        }
        let setup = self.workload.setup();
        for to in setup.to {
            self.send(None, to, Payload::Tx(Arc::clone(&setup.tx)));
        }
        self.schedule(1, SimEvent::Client);
        let crashes = self.scenario.crashes.clone();
        for (at, back, node) in crashes {
            self.schedule(at, SimEvent::Crash { node });
            self.schedule(back, SimEvent::Restart { node });
        }
        self.schedule(self.scenario.network.gst_ms, SimEvent::Gst);
    }

    /// Carries out what node `i` asked for, and feeds the checkers.
    fn carry_out(&mut self, i: u32, out: Vec<Output>) {
        let honest = self.honest(i);
        for o in out {
            match o {
                Output::Send { to, payload } => self.send(Some(i), to, payload),
                Output::Broadcast(payload) => {
                    for to in 0..self.config.validators {
                        if to != i {
                            self.send(Some(i), to, payload.clone());
                        }
                    }
                }
                Output::Timer { at_ms, timer } => {
                    let epoch = self.nodes.get(i as usize).map_or(0, |n| n.epoch);
                    self.schedule(
                        at_ms,
                        SimEvent::Timer {
                            node: i,
                            epoch,
                            timer,
                        },
                    );
                }
                Output::Signed(msg) => {
                    if honest {
                        self.checker.on_signed(self.now_ms, i, msg);
                        self.maybe_crash_after_sign(i);
                    }
                }
                Output::Committed {
                    height,
                    block,
                    certificate,
                    state_digest,
                } => {
                    self.log(|| {
                        format!(
                            "COMMIT v{i} h{height} {} round {} txs {}",
                            block.header.hash(),
                            certificate.round,
                            block.txs.len()
                        )
                    });
                    self.trace(
                        mix(u64::from(i) ^ height)
                            ^ u64::from_le_bytes(first8(&block.header.hash().0)),
                    );
                    if honest {
                        self.checker.on_commit(
                            self.now_ms,
                            i,
                            height,
                            &block,
                            &certificate,
                            state_digest,
                        );
                        self.on_progress(i);
                        self.maybe_isolate_after_commit(i);
                    }
                }
                Output::TreeRoot {
                    height,
                    header_root,
                    tree_root,
                } => {
                    if honest {
                        self.checker
                            .on_tree_root(self.now_ms, i, height, header_root, tree_root);
                    }
                }
                Output::Crashed => {
                    self.log(|| format!("CRASH v{i} (injected store fault)"));
                    let back = self.now_ms + self.rng.range(1, 800);
                    self.down_until.insert(i, back);
                    self.schedule(back, SimEvent::Restart { node: i });
                }
                Output::Evidence(_) => {}
                Output::Fault(detail) => {
                    if honest {
                        self.checker.on_fault(self.now_ms, i, detail);
                    }
                }
            }
        }
        if honest {
            let refused = self
                .nodes
                .get(i as usize)
                .map_or(0, |n| n.refused_conflicting_signatures());
            self.checker.after_step(self.now_ms, i, refused);
        }
    }

    /// Before GST, a node's next commit sometimes fails before writing (the engine
    /// stops; the node restarts) or crashes right after it is durable.
    fn maybe_arm_store_fault(&mut self, i: u32) {
        if self.now_ms >= self.scenario.network.gst_ms
            || self.config.bug == Some(PlantedBug::SkipStateUpdate)
            || self.down_until.contains_key(&i)
            || !self.rng.chance(self.scenario.store_fault_per_mille)
        {
            return;
        }
        let fault = if self.rng.chance(500) {
            CommitFault::FailBefore
        } else {
            CommitFault::CrashAfter
        };
        if let Some(n) = self.nodes.get(i as usize) {
            n.arm_commit_fault(fault);
        }
    }

    /// Before GST, a validator that just signed sometimes crashes right away (before or
    /// after its message got out) and restarts soon: the WAL's raison d'être.
    fn maybe_crash_after_sign(&mut self, i: u32) {
        if self.now_ms >= self.scenario.network.gst_ms
            || self.down_until.contains_key(&i)
            || !self.rng.chance(self.scenario.crash_after_sign_per_mille)
        {
            return;
        }
        let crash_at = self.now_ms + self.rng.below(3);
        let back =
            (crash_at + self.rng.range(1, 800)).min(self.scenario.network.gst_ms.max(crash_at + 1));
        self.down_until.insert(i, back);
        self.schedule(crash_at, SimEvent::Crash { node: i });
        self.schedule(back, SimEvent::Restart { node: i });
    }

    /// Before GST, a validator that just made a block final is sometimes cut off from
    /// everyone for a while: the others must then decide the same block without it
    /// (what locks are for).
    fn maybe_isolate_after_commit(&mut self, i: u32) {
        if self.now_ms >= self.scenario.network.gst_ms
            || !self
                .rng
                .chance(self.scenario.isolate_after_commit_per_mille)
        {
            return;
        }
        let end = self.now_ms + self.rng.range(300, 4_000);
        self.network
            .isolate(i, self.config.validators, self.now_ms, end);
    }

    fn on_progress(&mut self, i: u32) {
        if self.gst_passed {
            let gap = self.now_ms - self.last_progress_ms.max(self.scenario.network.gst_ms);
            let own = self.now_ms
                - self
                    .last_commit_of
                    .get(&i)
                    .copied()
                    .unwrap_or(0)
                    .max(self.scenario.network.gst_ms);
            self.max_gap_ms = self.max_gap_ms.max(gap.min(own));
        }
        self.last_progress_ms = self.now_ms;
        self.last_commit_of.insert(i, self.now_ms);
    }

    fn honest_tips(&self) -> impl Iterator<Item = u64> + '_ {
        self.nodes
            .iter()
            .filter(|n| !n.byzantine())
            .map(|n| n.tip_height())
    }

    fn target(&self) -> u64 {
        self.config.heights.max(self.tip_at_gst + POST_GST_HEIGHTS)
    }

    fn done(&self) -> bool {
        self.gst_passed
            && self
                .nodes
                .iter()
                .filter(|n| !n.byzantine())
                .all(|n| n.alive())
            && self.honest_tips().min().unwrap_or(0) >= self.target()
    }

    /// After GST: the cluster makes a new block final within the bound, and every
    /// honest validator below the highest honest tip makes its next one final within it.
    fn check_liveness(&mut self) {
        let bound = self.config.liveness_bound_ms;
        let gst = self.scenario.network.gst_ms;
        let since_progress = self.now_ms - self.last_progress_ms.max(gst);
        if since_progress > bound {
            self.stall = Some(format!(
                "no new final block for {since_progress} ms after GST (bound {bound} ms); tips {:?}, positions {:?}",
                self.tips(),
                self.positions()
            ));
            return;
        }
        let top = self.honest_tips().max().unwrap_or(0);
        let lagging: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| !n.byzantine() && n.tip_height() < top)
            .map(|n| n.index())
            .filter(|i| {
                self.now_ms - self.last_commit_of.get(i).copied().unwrap_or(0).max(gst) > bound
            })
            .collect();
        if let Some(i) = lagging.first() {
            self.stall = Some(format!(
                "validator {i} made nothing final for {bound} ms after GST while behind; tips {:?}, positions {:?}",
                self.tips(),
                self.positions()
            ));
        }
    }

    fn tips(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.tip_height()).collect()
    }

    fn positions(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| match n.consensus_position() {
                Some((h, r, s)) => format!("{}:h{h}r{r}{s:?}", n.index()),
                None if n.alive() => format!("{}:idle", n.index()),
                None => format!("{}:down", n.index()),
            })
            .collect()
    }

    fn step(&mut self, event: SimEvent) {
        if self.config.log {
            let alive: Vec<bool> = self.nodes.iter().map(Node::alive).collect();
            self.log(|| describe_event(&event, &alive));
        }
        match event {
            SimEvent::Deliver { to, from, payload } => {
                self.trace(payload.tag() ^ (u64::from(to) << 48));
                self.maybe_arm_store_fault(to);
                let mut out = Vec::new();
                if let Some(node) = self.nodes.get_mut(to as usize) {
                    node.on_payload(self.now_ms, &mut self.rng, from, payload, &mut out);
                }
                self.carry_out(to, out);
            }
            SimEvent::Timer { node, epoch, timer } => {
                let mut out = Vec::new();
                if let Some(n) = self.nodes.get_mut(node as usize)
                    && n.epoch == epoch
                {
                    n.on_timer(self.now_ms, &mut self.rng, timer, &mut out);
                }
                self.carry_out(node, out);
            }
            SimEvent::Client => {
                let chain_now = CHAIN_EPOCH_MS + self.now_ms;
                for s in self.workload.next(&mut self.rng, chain_now) {
                    for to in s.to {
                        self.send(None, to, Payload::Tx(Arc::clone(&s.tx)));
                    }
                }
                let (lo, hi) = self.scenario.client_gap_ms;
                let gap = self.rng.range(lo, hi);
                self.schedule(self.now_ms + gap, SimEvent::Client);
            }
            SimEvent::Crash { node } => {
                if let Some(n) = self.nodes.get_mut(node as usize) {
                    n.crash();
                }
            }
            SimEvent::Restart { node } => {
                self.down_until.remove(&node);
                let mut out = Vec::new();
                if let Some(n) = self.nodes.get_mut(node as usize)
                    && !n.alive()
                {
                    n.restart(self.now_ms, &mut self.rng, &mut out);
                }
                self.carry_out(node, out);
            }
            SimEvent::Gst => {
                self.gst_passed = true;
                // From GST on the disks behave (the planted bug is armed once, at boot).
                if self.config.bug != Some(PlantedBug::SkipStateUpdate) {
                    for n in &self.nodes {
                        n.arm_commit_fault(CommitFault::None);
                    }
                }
                self.tip_at_gst = self.honest_tips().max().unwrap_or(0);
                self.schedule(self.now_ms + 500, SimEvent::LivenessCheck);
            }
            SimEvent::LivenessCheck => {
                self.check_liveness();
                let min_tip = self.honest_tips().min().unwrap_or(0);
                self.checker.prune_signed_below(min_tip);
                self.schedule(self.now_ms + 500, SimEvent::LivenessCheck);
            }
        }
    }

    fn run(mut self, seed: u64) -> RunReport {
        self.boot();
        while let Some(((at_ms, seq), event)) = self.queue.pop_first() {
            self.now_ms = at_ms;
            self.events += 1;
            self.trace(at_ms ^ (seq << 32));
            self.step(event);
            if !self.checker.violations().is_empty() || self.stall.is_some() || self.done() {
                break;
            }
        }
        RunReport {
            seed,
            final_blocks: self.checker.final_heights(),
            violations: self.checker.violations().to_vec(),
            stall: self.stall,
            sim_time_ms: self.now_ms,
            gst_ms: self.scenario.network.gst_ms,
            messages: self.messages,
            events: self.events,
            max_post_gst_gap_ms: self.max_gap_ms,
            trace_digest: self.trace,
            failed_commits: self
                .nodes
                .iter()
                .map(|n| n.disk.store.injected().failed_commits)
                .sum(),
            crashes_after_commit: self
                .nodes
                .iter()
                .map(|n| n.disk.store.injected().crashes_after_commit)
                .sum(),
            corrupted_messages: self.corrupted_messages,
            log: self.log,
        }
    }
}

fn describe_event(event: &SimEvent, alive: &[bool]) -> String {
    let down = |i: u32| {
        if alive.get(i as usize).copied().unwrap_or(false) {
            ""
        } else {
            " (down)"
        }
    };
    match event {
        SimEvent::Deliver { to, from, payload } => {
            let from = from.map_or("client".to_owned(), |f| format!("v{f}"));
            let what = match payload {
                Payload::Consensus { msg, block } => match msg {
                    ebill_consensus::Message::Proposal(p) => format!(
                        "PROPOSAL h{} r{} {} pol {:?} by v{}{}",
                        p.proposal.height,
                        p.proposal.round,
                        p.proposal.block,
                        p.proposal.pol_round,
                        p.proposal.proposer,
                        if block.is_some() { " +block" } else { "" }
                    ),
                    ebill_consensus::Message::Vote(v) => format!(
                        "{:?} h{} r{} {} by v{}",
                        v.vote.kind,
                        v.vote.height,
                        v.vote.round,
                        v.vote.block.map_or("nil".to_owned(), |b| b.to_string()),
                        v.vote.validator
                    ),
                },
                Payload::Tx(_) => "tx".to_owned(),
                Payload::SyncRequest { from_height, max } => {
                    format!("sync request from h{from_height}, at most {max}")
                }
                Payload::SyncResponse { blocks } => format!(
                    "sync response h{:?}",
                    blocks
                        .iter()
                        .map(|cb| cb.block.header.height)
                        .collect::<Vec<_>>()
                ),
                Payload::BlockRequest { hash } => format!("block request {hash}"),
                Payload::BlockResponse { block, .. } => {
                    format!("block response {}", block.header.hash())
                }
            };
            format!("{from} -> v{to}{}: {what}", down(*to))
        }
        SimEvent::Timer { node, timer, .. } => format!("timer v{node}{}: {timer:?}", down(*node)),
        SimEvent::Client => "client".to_owned(),
        SimEvent::Crash { node } => format!("CRASH v{node}"),
        SimEvent::Restart { node } => format!("RESTART v{node}"),
        SimEvent::Gst => "GST".to_owned(),
        SimEvent::LivenessCheck => "liveness check".to_owned(),
    }
}

fn first8(bytes: &[u8; 32]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// Runs one seed.
pub fn run_seed(config: &RunConfig, seed: u64) -> RunReport {
    World::new(config.clone(), seed).run(seed)
}

/// The outcome of many runs.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Runs.
    pub runs: u64,
    /// Final blocks over all runs (highest honest final height of each run, summed).
    pub final_blocks: u64,
    /// Safety violations over all runs.
    pub violations: u64,
    /// Runs that stalled.
    pub stalls: u64,
    /// Seeds of failing runs (the first [`MAX_FAILING_SEEDS`]).
    pub failing_seeds: Vec<u64>,
    /// The first failure, described.
    pub first_failure: Option<String>,
    /// Simulated time over all runs.
    pub sim_time_ms: u64,
    /// Messages delivered over all runs.
    pub messages: u64,
    /// Longest post-GST wait for a new final block over all runs.
    pub max_post_gst_gap_ms: u64,
    /// Violations by checker.
    pub violation_kinds: BTreeMap<&'static str, u64>,
    /// Injected commit failures over all runs.
    pub failed_commits: u64,
    /// Injected crashes right after a commit over all runs.
    pub crashes_after_commit: u64,
    /// Messages corrupted (one bit flipped) over all runs.
    pub corrupted_messages: u64,
}

/// Failing seeds kept in a [`Summary`].
pub const MAX_FAILING_SEEDS: usize = 20;

impl Summary {
    /// Adds one run.
    pub fn add(&mut self, r: &RunReport) {
        self.runs += 1;
        self.final_blocks += r.final_blocks;
        self.violations += r.violations.len() as u64;
        self.stalls += u64::from(r.stall.is_some());
        self.sim_time_ms += r.sim_time_ms;
        self.messages += r.messages;
        self.max_post_gst_gap_ms = self.max_post_gst_gap_ms.max(r.max_post_gst_gap_ms);
        self.failed_commits += r.failed_commits;
        self.crashes_after_commit += r.crashes_after_commit;
        self.corrupted_messages += r.corrupted_messages;
        for v in &r.violations {
            *self.violation_kinds.entry(v.kind).or_insert(0) += 1;
        }
        if !r.ok() {
            if self.failing_seeds.len() < MAX_FAILING_SEEDS {
                self.failing_seeds.push(r.seed);
            }
            if self.first_failure.is_none() {
                self.first_failure = Some(describe_failure(r));
            }
        }
    }
}

/// A failing run in one line: its seed, then what broke.
pub fn describe_failure(r: &RunReport) -> String {
    match (r.violations.first(), &r.stall) {
        (Some(v), _) => format!(
            "seed {}: {} at {} ms (node {:?}): {}",
            r.seed, v.kind, v.time_ms, v.node, v.detail
        ),
        (None, Some(s)) => format!("seed {}: stall at {} ms: {s}", r.seed, r.sim_time_ms),
        (None, None) => format!("seed {}: ok", r.seed),
    }
}

/// Runs `seeds` seeds from `first_seed` on, calling `each` after every run.
pub fn run_seeds(
    config: &RunConfig,
    first_seed: u64,
    seeds: u64,
    mut each: impl FnMut(&RunReport),
) -> Summary {
    let mut summary = Summary::default();
    for seed in first_seed..first_seed.saturating_add(seeds) {
        let report = run_seed(config, seed);
        each(&report);
        summary.add(&report);
    }
    summary
}

impl Summary {
    /// One JSON object: `runs`, `final_blocks`, `violations`, `stalls`, `failing_seeds`,
    /// `first_failure`, `sim_time_ms`, `messages`, `max_post_gst_gap_ms`,
    /// `liveness_bound_ms`, `violation_kinds`, `failed_commits`, `crashes_after_commit`,
    /// `corrupted_messages`, and the run settings.
    pub fn to_json(&self, config: &RunConfig, first_seed: u64) -> String {
        let seeds: Vec<String> = self.failing_seeds.iter().map(u64::to_string).collect();
        let kinds: Vec<String> = self
            .violation_kinds
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        let first = match &self.first_failure {
            Some(f) => format!("\"{}\"", json_escape(f)),
            None => "null".to_owned(),
        };
        let bug = match config.bug {
            Some(b) => format!("\"{}\"", b.name()),
            None => "null".to_owned(),
        };
        format!(
            "{{\"runs\":{},\"final_blocks\":{},\"violations\":{},\"stalls\":{},\"failing_seeds\":[{}],\"first_failure\":{},\"sim_time_ms\":{},\"messages\":{},\"max_post_gst_gap_ms\":{},\"liveness_bound_ms\":{},\"violation_kinds\":{{{}}},\"failed_commits\":{},\"crashes_after_commit\":{},\"corrupted_messages\":{},\"validators\":{},\"byzantine\":{},\"heights\":{},\"first_seed\":{},\"bug\":{}}}",
            self.runs,
            self.final_blocks,
            self.violations,
            self.stalls,
            seeds.join(","),
            first,
            self.sim_time_ms,
            self.messages,
            self.max_post_gst_gap_ms,
            config.liveness_bound_ms,
            kinds.join(","),
            self.failed_commits,
            self.crashes_after_commit,
            self.corrupted_messages,
            config.validators,
            config.byzantine,
            config.heights,
            first_seed,
            bug
        )
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
