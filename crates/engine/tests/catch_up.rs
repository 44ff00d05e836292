//! A validator left behind catches up although the rest of the network fell quiet.
//!
//! Four engines over `MemStore`s, joined by a hub that delivers each output at once (or
//! drops it, as a scenario says) and answers block requests from the peers' stores, on a
//! simulated clock. Every validator but the one left behind has a short heartbeat (so
//! they decide heights with nothing to do); the one left behind has an hour's, so a test
//! that passes shows it caught up by asking, not by its heartbeat.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use ebill_consensus::{Config as ConsensusConfig, Message};
use ebill_engine::{
    CertifiedBlock, Engine, EngineConfig, EngineSetup, Input, Mempool, Outbound, Output,
};
use ebill_store::{MemStore, Store};
use ebill_types::Hash32;
use ebill_types::dev::{dev_genesis_with, dev_key};

const VALIDATORS: u32 = 4;
const TICK_MS: u64 = 1_000;
const SHORT_HEARTBEAT_MS: u64 = 200;
const HOUR_MS: u64 = 3_600_000;
/// Unix time of the simulated clock's zero.
const WALL_EPOCH_MS: u64 = 1_767_196_800_000 + 60_000;
/// Longest simulated time a phase may take.
const PHASE_BOUND_MS: u64 = 120_000;

struct Validator {
    engine: Engine,
    store: Arc<MemStore>,
}

/// What the hub does with a message from one validator to another.
type Link<'a> = dyn Fn(u32, u32, &Outbound) -> bool + 'a;

struct Hub {
    validators: Vec<Validator>,
    now_ms: u64,
    /// Validators that get no input at all (frozen in time), by index.
    frozen: Vec<bool>,
    /// Outputs waiting to be carried out: (from, what).
    queue: std::collections::VecDeque<(u32, Output)>,
}

impl Hub {
    fn new(behind: u32) -> Self {
        let genesis = dev_genesis_with("ebill-catch-up", VALIDATORS);
        let set = genesis.validator_set().unwrap();
        let mut queue = std::collections::VecDeque::new();
        let validators = (0..VALIDATORS)
            .map(|i| {
                let store = Arc::new(MemStore::new());
                store.init_genesis(&genesis).unwrap();
                let heartbeat_ms = if i == behind {
                    HOUR_MS
                } else {
                    SHORT_HEARTBEAT_MS
                };
                let setup = EngineSetup {
                    store: Arc::clone(&store) as Arc<dyn Store>,
                    mempool: Arc::new(Mutex::new(Mempool::new(1_000, usize::MAX))),
                    genesis: genesis.clone(),
                    consensus: Some(ConsensusConfig::new(
                        genesis.chain_id.clone(),
                        set.clone(),
                        i,
                        dev_key("validator", i),
                    )),
                    config: EngineConfig {
                        heartbeat_ms,
                        tick_ms: TICK_MS,
                        ..EngineConfig::default()
                    },
                };
                let (engine, first) = Engine::start(setup, 0, WALL_EPOCH_MS).unwrap();
                queue.extend(first.into_iter().map(|o| (i, o)));
                Validator { engine, store }
            })
            .collect();
        Self {
            validators,
            now_ms: 0,
            frozen: vec![false; VALIDATORS as usize],
            queue,
        }
    }

    fn tip(&self, i: u32) -> u64 {
        self.validators[i as usize].engine.tip().height
    }

    fn input(&mut self, i: u32, input: Input) {
        if self.frozen[i as usize] {
            return;
        }
        let now = self.now_ms;
        let out = self.validators[i as usize]
            .engine
            .on_input(now, WALL_EPOCH_MS + now, input)
            .unwrap();
        self.queue.extend(out.into_iter().map(|o| (i, o)));
    }

    /// The final blocks of validator `server` from `from_height` on.
    fn certified_from(&self, server: u32, from_height: u64, max: u32) -> Vec<CertifiedBlock> {
        let store = &self.validators[server as usize].store;
        (from_height..from_height + u64::from(max))
            .map_while(|h| {
                let block = store.block(h).unwrap()?;
                let certificate = store.certificate(h).unwrap()?;
                Some(CertifiedBlock {
                    block: Arc::new(block),
                    certificate,
                })
            })
            .collect()
    }

    /// A block by hash from validator `server`: final (with its certificate) or pending.
    fn block_by_hash(&self, server: u32, hash: &Hash32) -> Option<Input> {
        let v = &self.validators[server as usize];
        if let Some(block) = v.store.block_by_hash(hash).unwrap() {
            let certificate = v.store.certificate(block.header.height).unwrap()?;
            return Some(Input::Blocks(vec![CertifiedBlock {
                block: Arc::new(block),
                certificate,
            }]));
        }
        v.engine.pending_block(hash).map(Input::Block)
    }

    /// Carries out every queued output; a request is answered by the first validator
    /// the link lets it reach that holds what it asks for (a frozen validator too: it
    /// is up, only idle).
    fn drain(&mut self, link: &Link<'_>) {
        while let Some((from, output)) = self.queue.pop_front() {
            let Output::Send(msg) = output else {
                continue;
            };
            let others: Vec<u32> = (0..VALIDATORS)
                .filter(|&to| to != from && link(from, to, &msg))
                .collect();
            match &msg {
                Outbound::Consensus { msg: m, block } => {
                    for to in others {
                        self.input(
                            to,
                            Input::Consensus {
                                msg: *m,
                                block: block.clone(),
                            },
                        );
                    }
                }
                Outbound::Announce(cb) => {
                    for to in others {
                        self.input(to, Input::Blocks(vec![cb.clone()]));
                    }
                }
                Outbound::RequestBlocks { from_height, max } => {
                    let blocks = others
                        .iter()
                        .map(|&server| self.certified_from(server, *from_height, *max))
                        .find(|blocks| !blocks.is_empty());
                    if let Some(blocks) = blocks {
                        self.input(from, Input::Blocks(blocks));
                    }
                }
                Outbound::RequestBlock { hash } => {
                    let answer = others
                        .iter()
                        .find_map(|&server| self.block_by_hash(server, hash));
                    if let Some(answer) = answer {
                        self.input(from, answer);
                    }
                }
            }
        }
    }

    /// Moves the clock to the next deadline of any running validator and wakes those
    /// due, then carries out what they sent, until `done` holds. Panics past the bound.
    fn run_until(&mut self, what: &str, link: &Link<'_>, done: impl Fn(&Self) -> bool) {
        let end = self.now_ms + PHASE_BOUND_MS;
        self.drain(link);
        while !done(self) {
            let next = (0..VALIDATORS)
                .filter(|&i| !self.frozen[i as usize])
                .map(|i| self.validators[i as usize].engine.next_deadline_ms())
                .min()
                .unwrap();
            assert!(
                next <= end,
                "{what}: not within {PHASE_BOUND_MS} ms of simulated time (tips {:?})",
                (0..VALIDATORS).map(|i| self.tip(i)).collect::<Vec<_>>()
            );
            self.now_ms = next.max(self.now_ms);
            for i in 0..VALIDATORS {
                if self.validators[i as usize].engine.next_deadline_ms() <= self.now_ms {
                    self.input(i, Input::Tick);
                }
            }
            self.drain(link);
        }
    }
}

fn everyone(_from: u32, _to: u32, _msg: &Outbound) -> bool {
    true
}

/// Validator 0 takes part in height 1, then loses every message of height 2, which the
/// other three decide before they all go quiet. It learns of height 2 only by asking
/// (its heartbeat is an hour away), and must within a few ticks.
#[test]
fn an_idle_validator_that_missed_a_height_asks_for_it() {
    let mut hub = Hub::new(0);
    hub.run_until("height 1 on every validator", &everyone, |h| {
        (0..VALIDATORS).all(|i| h.tip(i) >= 1)
    });
    let cut_off = |from: u32, to: u32, msg: &Outbound| match msg {
        Outbound::Consensus { msg, .. } => (from != 0 && to != 0) || msg.height() < 2,
        Outbound::Announce(_) => to != 0,
        Outbound::RequestBlocks { .. } | Outbound::RequestBlock { .. } => from != 0,
    };
    // The three decide height 2 without validator 0.
    hub.run_until("height 2 on validators 1-3", &cut_off, |h| {
        (1..VALIDATORS).all(|i| h.tip(i) >= 2)
    });
    assert_eq!(hub.tip(0), 1, "validator 0 heard nothing of height 2");
    for i in 1..VALIDATORS {
        hub.frozen[i as usize] = true;
    }
    let started_ms = hub.now_ms;
    hub.run_until("validator 0 at height 2", &everyone, |h| h.tip(0) >= 2);
    let took_ms = hub.now_ms - started_ms;
    assert!(
        took_ms <= 2 * TICK_MS,
        "validator 0 caught up after {took_ms} ms, not within two ticks"
    );
}

/// Validator 0 decides height 1 from the others' precommits without the block (its
/// proposal is lost), and while it fetches the block, every message of height 2 reaches
/// it (consensus buffers them). Once block 1 comes, it must start height 2 from those
/// buffered messages at once: the others decided height 2 and fell quiet.
#[test]
fn messages_of_the_next_height_start_it_once_the_height_before_is_committed() {
    let mut hub = Hub::new(0);
    let hold_block_1 = std::cell::Cell::new(true);
    let link = |_from: u32, to: u32, msg: &Outbound| match msg {
        Outbound::Consensus {
            msg: Message::Proposal(p),
            ..
        } => to != 0 || p.proposal.height != 1,
        // The fetch of block 1 (by hash or by height) goes unanswered until released.
        Outbound::RequestBlock { .. } | Outbound::RequestBlocks { .. } => !hold_block_1.get(),
        // Announcements would hand it the blocks: it lost them all.
        Outbound::Announce(_) => to != 0,
        Outbound::Consensus { .. } => true,
    };
    hub.run_until("height 2 on validators 1-3", &link, |h| {
        (1..VALIDATORS).all(|i| h.tip(i) >= 2)
    });
    assert_eq!(hub.tip(0), 0, "validator 0 still lacks block 1");
    for i in 1..VALIDATORS {
        hub.frozen[i as usize] = true;
    }
    let block_1 = hub.certified_from(1, 1, 1);
    assert_eq!(block_1.len(), 1);
    hold_block_1.set(false);
    hub.input(0, Input::Blocks(block_1));
    assert_eq!(hub.tip(0), 1, "block 1 commits");
    let consensus = hub.validators[0].engine.consensus().unwrap();
    assert_eq!(
        consensus.height(),
        2,
        "height 2 started from its buffered messages, with no tick and no heartbeat"
    );
    hub.run_until("validator 0 at height 2", &link, |h| h.tip(0) >= 2);
}
