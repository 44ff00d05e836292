//! Byzantine validators. A Byzantine node runs an honest consensus instance (so that it
//! keeps up with the cluster and knows what is being decided) but everything it sends
//! goes through its [`Adversary`], which signs with the validator's key directly:
//! equivocating proposals (two valid blocks for one round, to two halves of the peers),
//! conflicting prevotes and precommits to different peers, votes for random hashes,
//! selective silence, and garbage (bad signatures, wrong heights, absurd rounds, unknown
//! validator indexes, proposals from non-proposers, forged commit certificates).

use std::collections::BTreeMap;
use std::sync::Arc;

use ebill_consensus::Message;
use ebill_engine::CertifiedBlock;
use ebill_types::{
    Block, CommitCertificate, CommitSignature, Hash32, Keypair, Proposal, Signature, SignedVote,
    ValidatorSet, Vote, VoteKind,
};

use crate::network::Payload;
use crate::rng::Rng;

/// How a Byzantine validator behaves for a whole run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Equivocates on everything it signs and sends some garbage.
    Equivocate,
    /// Sends nothing at all (a crashed-forever validator that still counts in n).
    Silent,
    /// Sends its honest messages, but to random subsets, and a lot of garbage.
    Garbage,
    /// Tries to make a decision that one validator alone sees and then get another
    /// value decided: its proposal and prevotes of round r go to all but the proposer
    /// of round r+1 (who then sees no polka and proposes a fresh value), its real
    /// precommit to one other peer only, and every fresh proposal after round 0 gets
    /// its prevote and precommit. Harmless to a correct Tendermint; fatal without
    /// locks.
    ForkHunter,
}

impl Strategy {
    /// A strategy drawn at random (equivocation most often).
    pub fn random(rng: &mut Rng) -> Self {
        match rng.below(10) {
            0..=3 => Strategy::Equivocate,
            4..=5 => Strategy::ForkHunter,
            6..=7 => Strategy::Garbage,
            _ => Strategy::Silent,
        }
    }
}

/// The adversary of one Byzantine validator.
#[derive(Debug)]
pub struct Adversary {
    strategy: Strategy,
    chain_id: String,
    validators: ValidatorSet,
    index: u32,
    key: Keypair,
    /// Per (height, round): the second block of an equivocating proposal, so that the
    /// conflicting votes go for it.
    alternatives: BTreeMap<(u64, u32), Hash32>,
}

impl Adversary {
    /// The adversary of validator `index`, holding its key.
    pub fn new(
        strategy: Strategy,
        chain_id: &str,
        validators: ValidatorSet,
        index: u32,
        key: Keypair,
    ) -> Self {
        Self {
            strategy,
            chain_id: chain_id.to_owned(),
            validators,
            index,
            key,
            alternatives: BTreeMap::new(),
        }
    }

    /// Its strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn peers(&self) -> Vec<u32> {
        let n = self.validators.len() as u32;
        (0..n).filter(|i| *i != self.index).collect()
    }

    /// A random split of the peers into two non-empty-where-possible halves.
    fn split(&self, rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
        let mut peers = self.peers();
        rng.shuffle(&mut peers);
        let cut = if peers.len() > 1 {
            1 + rng.index(peers.len() - 1)
        } else {
            peers.len()
        };
        let b = peers.split_off(cut);
        (peers, b)
    }

    fn vote(&self, kind: VoteKind, height: u64, round: u32, block: Option<Hash32>) -> SignedVote {
        Vote {
            kind,
            height,
            round,
            block,
            validator: self.index,
        }
        .sign(&self.chain_id, &self.key)
    }

    fn forget_old(&mut self, height: u64) {
        self.alternatives.retain(|(h, _), _| *h + 1 >= height);
    }

    /// What to send instead of the honest broadcast of `msg` (a proposal carries its
    /// `block`): a list of (peer, payload).
    pub fn on_broadcast(
        &mut self,
        rng: &mut Rng,
        msg: Message,
        block: Option<Arc<Block>>,
    ) -> Vec<(u32, Payload)> {
        self.forget_old(msg.height());
        let honest = |to: u32| {
            (
                to,
                Payload::Consensus {
                    msg,
                    block: block.clone(),
                },
            )
        };
        match self.strategy {
            Strategy::Silent => Vec::new(),
            Strategy::Garbage => self
                .peers()
                .into_iter()
                .filter(|_| rng.chance(700))
                .map(honest)
                .collect(),
            Strategy::ForkHunter => self.hunt_fork(rng, msg, block),
            Strategy::Equivocate => match msg {
                Message::Proposal(sp) => {
                    let (a, b) = self.split(rng);
                    let mut out: Vec<(u32, Payload)> = a.into_iter().map(honest).collect();
                    let Some(block) = block else {
                        return out;
                    };
                    let other = Arc::new(variant(&block));
                    let other_hash = other.header.hash();
                    self.alternatives
                        .insert((sp.proposal.height, sp.proposal.round), other_hash);
                    // A fresh value: no POL round, so that nobody needs a polka for it.
                    let p2 = Proposal {
                        block: other_hash,
                        pol_round: None,
                        ..sp.proposal
                    }
                    .sign(&self.chain_id, &self.key);
                    for to in b {
                        out.push((
                            to,
                            Payload::Consensus {
                                msg: Message::Proposal(p2),
                                block: Some(Arc::clone(&other)),
                            },
                        ));
                    }
                    out
                }
                Message::Vote(sv) => {
                    let v = sv.vote;
                    let (mut a, mut b) = self.split(rng);
                    if v.kind == VoteKind::Precommit && v.block.is_some() && rng.chance(500) {
                        // The real precommit to one peer only: a decision that one
                        // validator alone sees.
                        b.append(&mut a);
                        a = b.split_off(b.len().saturating_sub(1));
                    }
                    let alt = match rng.below(4) {
                        0 => None,
                        1 => Some(Hash32(rng.bytes32())),
                        _ => self
                            .alternatives
                            .get(&(v.height, v.round))
                            .copied()
                            .or(v.block.map(|_| Hash32(rng.bytes32()))),
                    };
                    let alt = if alt == v.block {
                        Some(Hash32(rng.bytes32()))
                    } else {
                        alt
                    };
                    let conflicting = self.vote(v.kind, v.height, v.round, alt);
                    let mut out = Vec::new();
                    for to in a {
                        if !rng.chance(100) {
                            out.push(honest(to));
                        }
                    }
                    for to in b {
                        if !rng.chance(100) {
                            out.push((
                                to,
                                Payload::Consensus {
                                    msg: Message::Vote(conflicting),
                                    block: None,
                                },
                            ));
                        }
                    }
                    out
                }
            },
        }
    }

    /// ForkHunter: in round r, everything about the value of round r is withheld from
    /// the proposer of round r+1 (who then has no validValue and proposes a fresh
    /// value), and the real precommit goes to one other peer only (who alone decides).
    fn hunt_fork(
        &mut self,
        rng: &mut Rng,
        msg: Message,
        block: Option<Arc<Block>>,
    ) -> Vec<(u32, Payload)> {
        let (height, round) = (msg.height(), msg.round());
        let next = self.validators.proposer(height, round.saturating_add(1));
        let mut peers = self.peers();
        rng.shuffle(&mut peers);
        let others: Vec<u32> = peers.iter().copied().filter(|p| *p != next).collect();
        let send = |to: &u32, msg: Message, block: Option<Arc<Block>>| {
            (*to, Payload::Consensus { msg, block })
        };
        match msg {
            Message::Proposal(_) => others
                .iter()
                .map(|to| send(to, msg, block.clone()))
                .collect(),
            Message::Vote(sv) => {
                let to: Vec<u32> = match (sv.vote.kind, sv.vote.block) {
                    (VoteKind::Prevote, Some(_)) => others,
                    (VoteKind::Precommit, Some(_)) => others.into_iter().take(1).collect(),
                    (_, None) => peers,
                };
                to.iter()
                    .map(|to| send(to, Message::Vote(sv), None))
                    .collect()
            }
        }
    }

    /// Another validator's proposal arrived: an equivocating adversary ignores its own
    /// lock and prevotes and precommits for it, to a random subset of the peers (it
    /// wants any value decided by some and another by others).
    pub fn on_foreign_proposal(
        &mut self,
        rng: &mut Rng,
        p: &ebill_types::SignedProposal,
    ) -> Vec<(u32, Payload)> {
        let a = match self.strategy {
            Strategy::Equivocate if rng.chance(700) => self.split(rng).0,
            // Only fresh values (no POL round): those are what locks must refuse.
            Strategy::ForkHunter if p.proposal.pol_round.is_none() && p.proposal.round > 0 => {
                self.peers()
            }
            _ => return Vec::new(),
        };
        let (height, round, block) = (p.proposal.height, p.proposal.round, p.proposal.block);
        let mut out = Vec::new();
        for kind in [VoteKind::Prevote, VoteKind::Precommit] {
            let v = self.vote(kind, height, round, Some(block));
            for to in &a {
                out.push((
                    *to,
                    Payload::Consensus {
                        msg: Message::Vote(v),
                        block: None,
                    },
                ));
            }
        }
        out
    }

    /// Garbage for a peer, made for the current `height` and `round`.
    pub fn garbage(&mut self, rng: &mut Rng, height: u64, round: u32) -> Vec<(u32, Payload)> {
        if self.strategy == Strategy::Silent {
            return Vec::new();
        }
        let peers = self.peers();
        let Some(to) = peers.get(rng.index(peers.len())).copied() else {
            return Vec::new();
        };
        let kind = if rng.chance(500) {
            VoteKind::Prevote
        } else {
            VoteKind::Precommit
        };
        let random_block = Some(Hash32(rng.bytes32()));
        let msg = match rng.below(9) {
            0 => {
                // A bad signature.
                let mut v = self.vote(kind, height, round, random_block);
                v.signature = Signature([rng.below(256) as u8; 64]);
                Message::Vote(v)
            }
            1 => Message::Vote(self.vote(kind, height + 1 + rng.below(10), round, random_block)),
            2 => {
                let absurd = if rng.chance(500) {
                    u32::MAX
                } else {
                    round.saturating_add(1_000_000)
                };
                Message::Vote(self.vote(kind, height, absurd, random_block))
            }
            3 => {
                // An unknown validator index, signed with our key.
                let v = Vote {
                    kind,
                    height,
                    round,
                    block: random_block,
                    validator: self.validators.len() as u32 + rng.below(5) as u32,
                };
                Message::Vote(v.sign(&self.chain_id, &self.key))
            }
            4 => {
                // A proposal for a round we do not propose in (or claiming another's index).
                let r = round.saturating_add(rng.below(3) as u32);
                let proposer = if rng.chance(500) {
                    self.index
                } else {
                    self.validators.proposer(height, r)
                };
                let p = Proposal {
                    height,
                    round: r,
                    block: Hash32(rng.bytes32()),
                    pol_round: None,
                    proposer,
                };
                Message::Proposal(p.sign(&self.chain_id, &self.key))
            }
            5 => {
                // A proposal with pol_round >= round, in a round we do propose in.
                let r = self.own_round_from(height, round);
                let p = Proposal {
                    height,
                    round: r,
                    block: Hash32(rng.bytes32()),
                    pol_round: Some(r.saturating_add(rng.below(2) as u32)),
                    proposer: self.index,
                };
                Message::Proposal(p.sign(&self.chain_id, &self.key))
            }
            6 => {
                Message::Vote(self.vote(kind, height.saturating_sub(1).max(1), round, random_block))
            }
            7 => {
                // A vote for a random hash at a nearby round (counts as our vote).
                Message::Vote(self.vote(
                    kind,
                    height,
                    round.saturating_add(rng.below(2) as u32),
                    random_block,
                ))
            }
            _ => {
                // A proposal whose "block" is unknown to everyone (nobody can check it).
                let r = self.own_round_from(height, round);
                let p = Proposal {
                    height,
                    round: r,
                    block: Hash32(rng.bytes32()),
                    pol_round: None,
                    proposer: self.index,
                };
                Message::Proposal(p.sign(&self.chain_id, &self.key))
            }
        };
        vec![(to, Payload::Consensus { msg, block: None })]
    }

    /// The first round at or after `round` in which this validator proposes at `height`.
    fn own_round_from(&self, height: u64, round: u32) -> u32 {
        let n = self.validators.len() as u32;
        (round..round.saturating_add(n))
            .find(|r| self.validators.proposer(height, *r) == self.index)
            .unwrap_or(round)
    }

    /// An answer to a sync request: sometimes a forged block with a certificate signed
    /// by this validator alone (or with garbage signatures), or a real certificate with
    /// other block bytes. `None`: answer honestly.
    pub fn forge_sync(&mut self, rng: &mut Rng, real: Option<CertifiedBlock>) -> Option<Payload> {
        if self.strategy == Strategy::Silent {
            return Some(Payload::SyncResponse { blocks: Vec::new() });
        }
        if rng.chance(500) {
            return None;
        }
        let CertifiedBlock {
            block,
            certificate: cert,
        } = real?;
        let fake = Arc::new(variant(&block));
        let fake_hash = fake.header.hash();
        let blocks = if rng.chance(500) {
            // A real certificate with other bytes: the hash does not match.
            vec![CertifiedBlock {
                block: fake,
                certificate: cert,
            }]
        } else {
            let round = cert.round;
            let height = cert.height;
            let mut signatures: Vec<CommitSignature> = (0..self.validators.len() as u32)
                .map(|validator| CommitSignature {
                    validator,
                    signature: Signature([rng.below(256) as u8; 64]),
                })
                .collect();
            if let Some(own) = signatures.get_mut(self.index as usize) {
                own.signature = self
                    .vote(VoteKind::Precommit, height, round, Some(fake_hash))
                    .signature;
            }
            let forged = CommitCertificate {
                height,
                round,
                block: fake_hash,
                signatures,
            };
            vec![CertifiedBlock {
                block: fake,
                certificate: forged,
            }]
        };
        Some(Payload::SyncResponse { blocks })
    }
}

/// Another valid block for the same height: one transaction fewer if it has any
/// (a prefix of a valid block is valid), otherwise a millisecond later.
pub fn variant(block: &Block) -> Block {
    let mut b = block.clone();
    if b.txs.pop().is_some() {
        b.header.tx_root = Block::tx_root(&b.txs);
        b.header.tx_count = b.txs.len() as u32;
    } else {
        b.header.time_ms += 1;
    }
    b
}
