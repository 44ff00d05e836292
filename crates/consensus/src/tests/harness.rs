//! A tiny deterministic cluster for the unit tests: a message queue, virtual time and a
//! timer set; no threads, no sleeps. (The real simulator is crates/sim.)

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ebill_types::{
    CommitCertificate, Hash32, Keypair, Proposal, SignedProposal, SignedVote, Validator,
    ValidatorSet, Vote, VoteKind,
};

use crate::{Config, Consensus, Effect, Event, Evidence, Message, TimeoutStep};

pub const CHAIN: &str = "ebill-test";

pub fn keys(n: usize) -> Vec<Keypair> {
    (0..n)
        .map(|i| Keypair::from_seed([i as u8 + 1; 32]))
        .collect()
}

pub fn validator_set(keys: &[Keypair]) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .enumerate()
            .map(|(i, k)| Validator {
                name: format!("v{i}"),
                public_key: k.public(),
            })
            .collect(),
    )
    .unwrap()
}

pub fn config(keys: &[Keypair], index: usize) -> Config {
    Config::new(
        CHAIN,
        validator_set(keys),
        index as u32,
        keys[index].clone(),
    )
}

/// The block a proposer builds for a height and round in these tests.
pub fn block_of(proposer: usize, height: u64, round: u32) -> Hash32 {
    Hash32::digest(format!("block h{height} r{round} by {proposer}").as_bytes())
}

pub fn named(name: &str) -> Hash32 {
    Hash32::digest(name.as_bytes())
}

pub fn vote(
    keys: &[Keypair],
    who: usize,
    kind: VoteKind,
    height: u64,
    round: u32,
    block: Option<Hash32>,
) -> SignedVote {
    Vote {
        kind,
        height,
        round,
        block,
        validator: who as u32,
    }
    .sign(CHAIN, &keys[who])
}

pub fn proposal(
    keys: &[Keypair],
    who: usize,
    height: u64,
    round: u32,
    block: Hash32,
    pol_round: Option<u32>,
) -> SignedProposal {
    Proposal {
        height,
        round,
        block,
        pol_round,
        proposer: who as u32,
    }
    .sign(CHAIN, &keys[who])
}

pub struct Node {
    pub consensus: Option<Consensus>,
    /// What the node persisted (its WAL), all heights.
    pub wal: Vec<Message>,
    /// Every own message it ever broadcast, across restarts.
    pub sent: Vec<Message>,
    pub commits: BTreeMap<u64, CommitCertificate>,
    pub evidence: Vec<Evidence>,
    pub config: Config,
}

type Link = Box<dyn FnMut(usize, usize, &Message) -> bool>;

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub now_ms: u64,
    queue: VecDeque<(usize, Event)>,
    timers: BTreeSet<(u64, u64, usize, u64, u32, TimeoutStep)>,
    timer_seq: u64,
    /// Heights above this are not started.
    pub max_height: u64,
    /// Whether a message from `from` reaches `to`.
    pub link: Link,
    /// Blocks the ledger refuses.
    pub invalid_blocks: BTreeSet<Hash32>,
    /// With a seed, the queue is delivered in a pseudo-random order.
    rng: Option<u64>,
    pub steps: u64,
    /// If set, every this many ms of virtual time each live node gets
    /// `Event::Rebroadcast` and, if it is behind, the certificates it lacks (the node's
    /// retransmission and catch-up, which are not consensus' job).
    pub rebroadcast_every_ms: Option<u64>,
    next_rebroadcast_ms: u64,
}

impl Cluster {
    pub fn new(n: usize) -> Self {
        Self::with_configs(keys(n), |c| c)
    }

    pub fn with_configs(keys: Vec<Keypair>, adjust: impl Fn(Config) -> Config) -> Self {
        let n = keys.len();
        let nodes = (0..n)
            .map(|i| Node {
                consensus: None,
                wal: Vec::new(),
                sent: Vec::new(),
                commits: BTreeMap::new(),
                evidence: Vec::new(),
                config: adjust(config(&keys, i)),
            })
            .collect();
        Self {
            nodes,
            now_ms: 0,
            queue: VecDeque::new(),
            timers: BTreeSet::new(),
            timer_seq: 0,
            max_height: 1,
            link: Box::new(|_, _, _| true),
            invalid_blocks: BTreeSet::new(),
            rng: None,
            steps: 0,
            rebroadcast_every_ms: None,
            next_rebroadcast_ms: 0,
        }
    }

    pub fn shuffled(mut self, seed: u64) -> Self {
        self.rng = Some(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        self
    }

    /// Starts every node at height 1 (except those listed as down).
    pub fn start(&mut self, down: &[usize]) {
        for i in 0..self.nodes.len() {
            if !down.contains(&i) {
                self.restart(i);
            }
        }
    }

    /// (Re)builds node `i` from its WAL at the height after its last commit.
    pub fn restart(&mut self, i: usize) {
        let node = &self.nodes[i];
        let height = node.commits.keys().max().map_or(1, |h| h + 1);
        let (c, effects) =
            Consensus::restore(node.config.clone(), height, &node.wal, self.now_ms).unwrap();
        self.nodes[i].consensus = Some(c);
        self.apply(i, effects);
    }

    pub fn crash(&mut self, i: usize) {
        self.nodes[i].consensus = None;
    }

    pub fn inject(&mut self, to: usize, event: Event) {
        self.queue.push_back((to, event));
    }

    fn next_rand(&mut self) -> Option<u64> {
        let s = self.rng.as_mut()?;
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        Some(*s)
    }

    pub fn apply(&mut self, i: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::RequestProposalValue { height, round } => self.queue.push_back((
                    i,
                    Event::ProposalValue {
                        height,
                        round,
                        block: block_of(i, height, round),
                    },
                )),
                Effect::CheckBlock { height, block, .. } => self.queue.push_back((
                    i,
                    Event::BlockChecked {
                        height,
                        block,
                        valid: !self.invalid_blocks.contains(&block),
                    },
                )),
                Effect::PersistVote(v) => self.nodes[i].wal.push(Message::Vote(v)),
                Effect::PersistProposal(p) => self.nodes[i].wal.push(Message::Proposal(p)),
                Effect::Broadcast(m) => {
                    if m.signer() == i as u32 {
                        if !no_wal(&self.nodes[i].config) {
                            assert!(
                                self.nodes[i].wal.contains(&m),
                                "node {i} broadcast {m:?} before persisting it"
                            );
                        }
                        self.nodes[i].sent.push(m);
                    }
                    for j in 0..self.nodes.len() {
                        if j != i && (self.link)(i, j, &m) {
                            self.queue.push_back((j, m.into()));
                        }
                    }
                }
                Effect::ScheduleTimeout {
                    height,
                    round,
                    step,
                    at_ms,
                } => {
                    assert!(at_ms > self.now_ms, "timeouts lie in the future");
                    self.timer_seq += 1;
                    self.timers
                        .insert((at_ms, self.timer_seq, i, height, round, step));
                }
                Effect::Commit {
                    height,
                    block,
                    certificate,
                } => {
                    certificate
                        .verify(CHAIN, height, &block, &self.nodes[i].config.validators)
                        .unwrap();
                    let prev = self.nodes[i].commits.insert(height, certificate);
                    assert!(prev.is_none(), "node {i} committed height {height} twice");
                    if height < self.max_height {
                        self.queue
                            .push_back((i, Event::StartHeight { height: height + 1 }));
                    }
                }
                Effect::Evidence(e) => self.nodes[i].evidence.push(e),
            }
        }
    }

    /// Delivers one event (a queued one, else the earliest timer). False if idle.
    pub fn step(&mut self) -> bool {
        self.steps += 1;
        let next = match self.next_rand() {
            Some(r) if !self.queue.is_empty() => {
                let k = (r % self.queue.len() as u64) as usize;
                self.queue.remove(k)
            }
            _ => self.queue.pop_front(),
        };
        if next.is_none()
            && let Some(every) = self.rebroadcast_every_ms
            && self
                .timers
                .first()
                .is_none_or(|t| t.0 >= self.next_rebroadcast_ms)
        {
            self.now_ms = self.now_ms.max(self.next_rebroadcast_ms);
            self.next_rebroadcast_ms = self.now_ms + every;
            self.tick();
            return true;
        }
        let (i, event) = match next {
            Some(x) => x,
            None => match self.timers.pop_first() {
                Some((at_ms, _, i, height, round, step)) => {
                    self.now_ms = self.now_ms.max(at_ms);
                    (
                        i,
                        Event::Timeout {
                            height,
                            round,
                            step,
                        },
                    )
                }
                None => return false,
            },
        };
        let now_ms = self.now_ms;
        if let Some(c) = self.nodes[i].consensus.as_mut() {
            let effects = c.on_event(now_ms, event);
            self.apply(i, effects);
        }
        true
    }

    /// Retransmission and catch-up for every live node.
    fn tick(&mut self) {
        for i in 0..self.nodes.len() {
            let Some(c) = self.nodes[i].consensus.as_mut() else {
                continue;
            };
            let effects = c.on_event(self.now_ms, Event::Rebroadcast);
            let height = c.height();
            self.apply(i, effects);
            let cert = self
                .nodes
                .iter()
                .find_map(|n| n.commits.get(&height).cloned());
            if let Some(cert) = cert
                && !self.nodes[i].commits.contains_key(&height)
            {
                self.queue.push_back((i, Event::Certificate(cert)));
            }
        }
    }

    /// Steps until `done` holds; panics after `max_steps`.
    pub fn run_until(&mut self, max_steps: u64, done: impl Fn(&Cluster) -> bool) {
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            assert!(self.step(), "cluster went idle before the goal");
        }
        assert!(done(self), "goal not reached in {max_steps} steps");
    }

    /// True when every node in `which` has committed `height`.
    pub fn committed(&self, which: &[usize], height: u64) -> bool {
        which
            .iter()
            .all(|i| self.nodes[*i].commits.contains_key(&height))
    }

    /// Whether no two nodes committed different blocks at one height.
    #[cfg_attr(not(feature = "bugs"), allow(dead_code))]
    pub fn agree(&self) -> bool {
        let mut decided: BTreeMap<u64, Hash32> = BTreeMap::new();
        self.nodes.iter().all(|node| {
            node.commits
                .iter()
                .all(|(h, cert)| *decided.entry(*h).or_insert(cert.block) == cert.block)
        })
    }

    /// Agreement: no two nodes committed different blocks at one height.
    pub fn check_agreement(&self) {
        let mut decided: BTreeMap<u64, Hash32> = BTreeMap::new();
        for (i, node) in self.nodes.iter().enumerate() {
            for (h, cert) in &node.commits {
                let b = *decided.entry(*h).or_insert(cert.block);
                assert_eq!(b, cert.block, "node {i} disagrees at height {h}");
            }
        }
    }

    /// No node ever broadcast two different own messages for one (height, round, kind).
    pub fn check_no_equivocation(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let mut seen: BTreeMap<(u64, u32, u8), Message> = BTreeMap::new();
            for m in &node.sent {
                let kind = match m {
                    Message::Proposal(_) => 0,
                    Message::Vote(v) => 1 + v.vote.kind as u8,
                };
                let prev = *seen.entry((m.height(), m.round(), kind)).or_insert(*m);
                assert_eq!(prev, *m, "node {i} signed two conflicting messages");
            }
        }
    }
}

#[cfg(feature = "bugs")]
fn no_wal(config: &Config) -> bool {
    config.bug == Some(crate::Bug::NoWal)
}

#[cfg(not(feature = "bugs"))]
fn no_wal(_config: &Config) -> bool {
    false
}
