//! One instance (validator 0 of 4) driven by hand with messages the test signs.

use ebill_types::{Hash32, SignedVote, VoteKind};

use super::harness::*;
use crate::{
    ConfigError, Consensus, Effect, Event, Evidence, Message, Step, TimeoutStep, ValueRound,
};

use VoteKind::{Precommit, Prevote};

fn votes_of(effects: &[Effect]) -> Vec<SignedVote> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Broadcast(Message::Vote(v)) => Some(*v),
            _ => None,
        })
        .collect()
}

fn persisted(effects: &[Effect]) -> usize {
    effects
        .iter()
        .filter(|e| matches!(e, Effect::PersistVote(_) | Effect::PersistProposal(_)))
        .count()
}

/// Validator 0 of 4 at height 1, with the keys of all four.
fn setup() -> (Vec<ebill_types::Keypair>, Consensus) {
    let keys = keys(4);
    let (c, effects) = Consensus::new(config(&keys, 0), 1, 0).unwrap();
    // Not the proposer of round 0 (validator 1 is): just timeoutPropose.
    assert_eq!(
        effects,
        vec![Effect::ScheduleTimeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
            at_ms: 3_000
        }]
    );
    (keys, c)
}

/// Delivers a proposal and the ledger's "valid" for it; returns all effects.
fn propose_valid(
    c: &mut Consensus,
    keys: &[ebill_types::Keypair],
    round: u32,
    block: Hash32,
    pol: Option<u32>,
) -> Vec<Effect> {
    let proposer = c.config().validators.proposer(1, round) as usize;
    let mut effects = c.on_event(
        0,
        Event::Proposal(proposal(keys, proposer, 1, round, block, pol)),
    );
    if effects
        .iter()
        .any(|e| matches!(e, Effect::CheckBlock { block: b, .. } if *b == block))
    {
        effects.extend(c.on_event(
            0,
            Event::BlockChecked {
                height: 1,
                block,
                valid: true,
            },
        ));
    }
    effects
}

fn deliver(c: &mut Consensus, votes: impl IntoIterator<Item = SignedVote>) -> Vec<Effect> {
    votes
        .into_iter()
        .flat_map(|v| c.on_event(0, Event::Vote(v)))
        .collect()
}

/// Ends the current round: precommits nil from 1..=3 then timeoutPrecommit.
fn end_round(c: &mut Consensus, keys: &[ebill_types::Keypair]) {
    let r = c.round();
    let effects = deliver(c, (1..=3).map(|i| vote(keys, i, Precommit, 1, r, None)));
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ScheduleTimeout {
            step: TimeoutStep::Precommit,
            ..
        }
    )));
    c.on_event(
        0,
        Event::Timeout {
            height: 1,
            round: r,
            step: TimeoutStep::Precommit,
        },
    );
    assert_eq!(c.round(), r + 1);
}

/// Locks validator 0 on `block` in round 0.
fn lock_in_round_0(c: &mut Consensus, keys: &[ebill_types::Keypair], block: Hash32) {
    let effects = propose_valid(c, keys, 0, block, None);
    let v = votes_of(&effects);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].vote.kind, v[0].vote.block), (Prevote, Some(block)));
    assert_eq!(persisted(&effects), 1, "persisted before broadcast");
    let effects = deliver(
        c,
        (1..=2).map(|i| vote(keys, i, Prevote, 1, 0, Some(block))),
    );
    let v = votes_of(&effects);
    assert_eq!((v[0].vote.kind, v[0].vote.block), (Precommit, Some(block)));
    assert_eq!(c.locked(), Some(ValueRound { block, round: 0 }));
    assert_eq!(c.step(), Step::Precommit);
}

#[test]
fn persist_precedes_broadcast() {
    let (keys, mut c) = setup();
    let effects = propose_valid(&mut c, &keys, 0, named("A"), None);
    let p = effects
        .iter()
        .position(|e| matches!(e, Effect::PersistVote(_)))
        .unwrap();
    let b = effects
        .iter()
        .position(|e| matches!(e, Effect::Broadcast(_)))
        .unwrap();
    assert!(p < b);
}

#[test]
fn locked_value_is_the_only_one_prevoted_without_a_newer_polka() {
    let (keys, mut c) = setup();
    let a = named("A");
    let b = named("B");
    lock_in_round_0(&mut c, &keys, a);
    end_round(&mut c, &keys);
    // Round 1: a fresh proposal of B (no POL): locked on A, so prevote nil (line 26).
    let effects = propose_valid(&mut c, &keys, 1, b, None);
    let v = votes_of(&effects);
    assert_eq!((v[0].vote.round, v[0].vote.block), (1, None));
    // A polka for B in round 1 that this validator sees only later.
    deliver(
        &mut c,
        (1..=3).map(|i| vote(&keys, i, Prevote, 1, 1, Some(b))),
    );
    // A polka in the current round for its proposal B: line 36 relocks on B (step is
    // prevote, so it precommits B).
    assert_eq!(c.locked(), Some(ValueRound { block: b, round: 1 }));
    end_round(&mut c, &keys);
    // Round 2: B with POL round 1 and the lock on B: prevote B (line 29, lockedValue = v).
    let effects = propose_valid(&mut c, &keys, 2, b, Some(1));
    let v = votes_of(&effects);
    assert_eq!((v[0].vote.round, v[0].vote.block), (2, Some(b)));
}

fn vote_for(effects: &[Effect], kind: VoteKind) -> Option<Option<Hash32>> {
    votes_of(effects)
        .into_iter()
        .find(|v| v.vote.kind == kind)
        .map(|v| v.vote.block)
}

#[test]
fn newer_polka_unlocks_older_does_not() {
    let (keys, mut c) = setup();
    let a = named("A");
    let b = named("B");
    lock_in_round_0(&mut c, &keys, a);
    end_round(&mut c, &keys);
    // Round 1: a polka for B happens without us (we got no proposal, prevote nil on timeout).
    let effects = c.on_event(
        0,
        Event::Timeout {
            height: 1,
            round: 1,
            step: TimeoutStep::Propose,
        },
    );
    assert_eq!(vote_for(&effects, Prevote), Some(None));
    end_round(&mut c, &keys);
    // Round 2: B proposed with POL round 1, but the polka has not reached us: wait.
    let effects = propose_valid(&mut c, &keys, 2, b, Some(1));
    assert_eq!(vote_for(&effects, Prevote), None);
    assert_eq!(c.step(), Step::Propose);
    // The polka of round 1 arrives: lockedRound 0 ≤ vr 1, so prevote B (line 30).
    let effects = deliver(
        &mut c,
        (1..=3).map(|i| vote(&keys, i, Prevote, 1, 1, Some(b))),
    );
    assert_eq!(vote_for(&effects, Prevote), Some(Some(b)));
    assert_eq!(
        c.locked().unwrap().block,
        a,
        "prevoting does not move the lock"
    );

    // Another validator 0, locked on A in round 1, shown B with a POL of round 0.
    let (keys, mut c) = setup();
    // Round 0: B gets a polka we prevoted nil in (the proposal came late / not at all).
    c.on_event(
        0,
        Event::Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
        },
    );
    deliver(
        &mut c,
        (1..=3).map(|i| vote(&keys, i, Prevote, 1, 0, Some(b))),
    );
    end_round(&mut c, &keys);
    // Round 1: lock A.
    let effects = propose_valid(&mut c, &keys, 1, a, None);
    assert_eq!(vote_for(&effects, Prevote), Some(Some(a)));
    let effects = deliver(
        &mut c,
        (1..=2).map(|i| vote(&keys, i, Prevote, 1, 1, Some(a))),
    );
    assert_eq!(vote_for(&effects, Precommit), Some(Some(a)));
    assert_eq!(c.locked(), Some(ValueRound { block: a, round: 1 }));
    end_round(&mut c, &keys);
    // Round 2: B with POL round 0 < lockedRound 1: prevote nil (line 32).
    let effects = propose_valid(&mut c, &keys, 2, b, Some(0));
    assert_eq!(vote_for(&effects, Prevote), Some(None));
}

#[test]
fn equivocating_proposer_and_voter_yield_evidence() {
    let (keys, mut c) = setup();
    let a = named("A");
    let b = named("B");
    let effects = propose_valid(&mut c, &keys, 0, a, None);
    assert_eq!(vote_for(&effects, Prevote), Some(Some(a)));
    let effects = c.on_event(0, Event::Proposal(proposal(&keys, 1, 1, 0, b, None)));
    assert!(matches!(
        effects.as_slice(),
        [Effect::Evidence(Evidence::ConflictingProposals { first, second })]
            if first.proposal.block == a && second.proposal.block == b
    ));
    // Reported once only.
    let effects = c.on_event(
        0,
        Event::Proposal(proposal(&keys, 1, 1, 0, named("C"), None)),
    );
    assert!(effects.is_empty());
    // A double prevote by validator 2.
    assert!(deliver(&mut c, [vote(&keys, 2, Prevote, 1, 0, Some(a))]).is_empty());
    let effects = deliver(&mut c, [vote(&keys, 2, Prevote, 1, 0, Some(b))]);
    assert!(matches!(
        effects.as_slice(),
        [Effect::Evidence(Evidence::ConflictingVotes { first, second })]
            if first.vote.block == Some(a) && second.vote.block == Some(b)
    ));
    // The second vote does not count: one more prevote for B makes no polka.
    deliver(&mut c, [vote(&keys, 3, Prevote, 1, 0, Some(b))]);
    assert_eq!(c.step(), Step::Prevote);
    assert_eq!(c.stats().equivocations, 2);
}

#[test]
fn hostile_messages_are_dropped_without_panic() {
    let (keys, mut c) = setup();
    let a = named("A");
    // Bad signature.
    let mut v = vote(&keys, 1, Prevote, 1, 0, Some(a));
    v.signature.0[5] ^= 1;
    assert!(c.on_event(0, Event::Vote(v)).is_empty());
    assert_eq!(c.stats().bad_signatures, 1);
    // Signed by someone else than the claimed validator.
    let mut v = vote(&keys, 1, Prevote, 1, 0, Some(a));
    v.vote.validator = 2;
    assert!(c.on_event(0, Event::Vote(v)).is_empty());
    assert_eq!(c.stats().bad_signatures, 2);
    // Unknown validator index.
    let mut v = vote(&keys, 1, Prevote, 1, 0, Some(a));
    v.vote.validator = 99;
    assert!(c.on_event(0, Event::Vote(v)).is_empty());
    v.vote.validator = u32::MAX;
    assert!(c.on_event(0, Event::Vote(v)).is_empty());
    assert_eq!(c.stats().unknown_validators, 2);
    // A proposal by someone who is not the proposer of the round.
    let p = proposal(&keys, 2, 1, 0, a, None);
    assert!(c.on_event(0, Event::Proposal(p)).is_empty());
    assert_eq!(c.stats().wrong_proposer, 1);
    // A proposal with a bad signature.
    let mut p = proposal(&keys, 1, 1, 0, a, None);
    p.signature.0[0] ^= 0x80;
    assert!(c.on_event(0, Event::Proposal(p)).is_empty());
    // A POL round not below the round.
    let p = proposal(&keys, 1, 1, 0, a, Some(0));
    assert!(c.on_event(0, Event::Proposal(p)).is_empty());
    assert_eq!(c.stats().invalid_pol_round, 1);
    // Old height, and a height far ahead.
    assert!(
        c.on_event(0, Event::Vote(vote(&keys, 1, Prevote, 0, 0, None)))
            .is_empty()
    );
    assert!(
        c.on_event(0, Event::Vote(vote(&keys, 1, Prevote, u64::MAX, 0, None)))
            .is_empty()
    );
    assert_eq!(c.stats().old_height, 1);
    // An absurd round from one validator: not stored, no round change.
    let far = vote(&keys, 1, Precommit, 1, u32::MAX, Some(a));
    assert!(c.on_event(0, Event::Vote(far)).is_empty());
    assert_eq!(c.stats().far_round, 1);
    assert_eq!(c.round(), 0);
    // Stray answers and timeouts.
    for e in [
        Event::BlockChecked {
            height: 1,
            block: a,
            valid: true,
        },
        Event::ProposalValue {
            height: 1,
            round: 0,
            block: a,
        },
        Event::Timeout {
            height: 1,
            round: 7,
            step: TimeoutStep::Precommit,
        },
        Event::Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Prevote,
        },
        Event::StartHeight { height: 1 },
    ] {
        assert!(c.on_event(0, e).is_empty());
    }
    // A certificate with too few signatures (f+1), or for another height.
    let weak = ebill_types::CommitCertificate {
        height: 1,
        round: 0,
        block: a,
        signatures: [1u32, 2]
            .iter()
            .map(|i| {
                let v = vote(&keys, *i as usize, Precommit, 1, 0, Some(a));
                ebill_types::CommitSignature {
                    validator: *i,
                    signature: v.signature,
                }
            })
            .collect(),
    };
    assert!(c.on_event(0, Event::Certificate(weak.clone())).is_empty());
    assert_eq!(c.stats().bad_certificates, 1);
    let mut other = weak;
    other.height = 7;
    assert!(c.on_event(0, Event::Certificate(other)).is_empty());
    // Nothing was signed, nothing stored for validator 1 at round 0.
    assert_eq!(c.step(), Step::Propose);
    assert!(c.own_vote(0, Prevote).is_none());
}

#[test]
fn f_plus_1_messages_of_a_higher_round_skip_to_it() {
    let (keys, mut c) = setup();
    // One validator at round 5: not enough (f = 1).
    c.on_event(0, Event::Vote(vote(&keys, 1, Prevote, 1, 5, None)));
    assert_eq!(c.round(), 0);
    // A second one at round 9: f+1 validators are at round ≥ 5 -> start round 5 (line 55).
    let effects = c.on_event(0, Event::Vote(vote(&keys, 2, Precommit, 1, 9, None)));
    assert_eq!(c.round(), 5);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ScheduleTimeout {
            round: 5,
            step: TimeoutStep::Propose,
            ..
        }
    )));
    // Absurd rounds from f+1 validators: jump there, and no overflow at the end.
    c.on_event(0, Event::Vote(vote(&keys, 1, Prevote, 1, u32::MAX, None)));
    c.on_event(0, Event::Vote(vote(&keys, 3, Prevote, 1, u32::MAX, None)));
    assert_eq!(c.round(), u32::MAX);
    assert!(
        c.on_event(
            0,
            Event::Timeout {
                height: 1,
                round: u32::MAX,
                step: TimeoutStep::Precommit
            }
        )
        .is_empty()
    );
    assert_eq!(c.round(), u32::MAX);
}

#[test]
fn proposer_proposes_its_valid_value() {
    // Validator 1 is the proposer of height 1 round 0, and of round 4.
    let keys = keys(4);
    let (mut c, effects) = Consensus::new(config(&keys, 1), 1, 0).unwrap();
    assert_eq!(
        effects[0],
        Effect::RequestProposalValue {
            height: 1,
            round: 0
        }
    );
    let x = named("X");
    let effects = c.on_event(
        1,
        Event::ProposalValue {
            height: 1,
            round: 0,
            block: x,
        },
    );
    // PersistProposal, Broadcast proposal, PersistVote, Broadcast prevote.
    assert!(matches!(effects[0], Effect::PersistProposal(p) if p.proposal.block == x));
    assert!(matches!(
        effects[1],
        Effect::Broadcast(Message::Proposal(_))
    ));
    assert_eq!(vote_for(&effects, Prevote), Some(Some(x)));
    // Polka for X: validValue = X (and locked).
    deliver(
        &mut c,
        [0, 2].map(|i| vote(&keys, i, Prevote, 1, 0, Some(x))),
    );
    assert_eq!(c.valid(), Some(ValueRound { block: x, round: 0 }));
    // Skip to round 4 (f+1 at round 4): it proposes X again with POL round 0.
    let effects = deliver(&mut c, [0, 2].map(|i| vote(&keys, i, Prevote, 1, 4, None)));
    let p = effects
        .iter()
        .find_map(|e| match e {
            Effect::Broadcast(Message::Proposal(p)) => Some(p.proposal),
            _ => None,
        })
        .unwrap();
    assert_eq!((p.round, p.block, p.pol_round), (4, x, Some(0)));
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::RequestProposalValue { .. }))
    );
}

#[test]
fn a_valid_certificate_decides_even_far_ahead() {
    let (keys, mut c) = setup();
    let a = named("A");
    let round = 1_000;
    let certificate = ebill_types::CommitCertificate {
        height: 1,
        round,
        block: a,
        signatures: [1u32, 2, 3]
            .iter()
            .map(|i| ebill_types::CommitSignature {
                validator: *i,
                signature: vote(&keys, *i as usize, Precommit, 1, round, Some(a)).signature,
            })
            .collect(),
    };
    let effects = c.on_event(0, Event::Certificate(certificate.clone()));
    assert_eq!(
        effects,
        vec![Effect::Commit {
            height: 1,
            block: a,
            certificate
        }]
    );
    assert_eq!(c.step(), Step::Decided);
    // Late messages of the decided height are ignored.
    assert!(
        c.on_event(0, Event::Vote(vote(&keys, 1, Precommit, 1, 0, None)))
            .is_empty()
    );
    assert_eq!(c.stats().old_height, 1);
}

// ----- restart -----

#[test]
fn restore_resumes_at_the_highest_wal_round_with_its_lock() {
    let keys = keys(4);
    let a = named("A");
    let b = named("B");
    let mut wal: Vec<Message> = Vec::new();
    for r in 0..3 {
        wal.push(Message::Vote(vote(&keys, 0, Prevote, 1, r, None)));
        wal.push(Message::Vote(vote(&keys, 0, Precommit, 1, r, None)));
    }
    wal.push(Message::Vote(vote(&keys, 0, Prevote, 1, 3, Some(a))));
    wal.push(Message::Vote(vote(&keys, 0, Precommit, 1, 3, Some(a))));
    // An older height's entries are skipped.
    wal.insert(0, Message::Vote(vote(&keys, 0, Precommit, 0, 9, Some(b))));
    let (mut c, effects) = Consensus::restore(config(&keys, 0), 1, &wal, 100).unwrap();
    assert_eq!(c.round(), 3, "resumes at the highest round, not 0");
    assert_eq!(c.step(), Step::Precommit);
    assert_eq!(c.locked(), Some(ValueRound { block: a, round: 3 }));
    assert_eq!(persisted(&effects), 0, "nothing new signed");
    let re = votes_of(&effects);
    assert_eq!(re.len(), 2, "re-broadcasts its round-3 votes: {effects:?}");
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ScheduleTimeout {
            round: 3,
            step: TimeoutStep::Precommit,
            ..
        }
    )));
    // Round 3 again: a proposal of B, timeouts of earlier steps: nothing new is signed.
    let mut effects = propose_valid(&mut c, &keys, 3, b, None);
    for step in [TimeoutStep::Propose, TimeoutStep::Prevote] {
        effects.extend(c.on_event(
            200,
            Event::Timeout {
                height: 1,
                round: 3,
                step,
            },
        ));
    }
    effects.extend(deliver(
        &mut c,
        (1..=3).map(|i| vote(&keys, i, Prevote, 1, 3, None)),
    ));
    assert_eq!(persisted(&effects), 0);
    assert!(votes_of(&effects).is_empty());
    // On to round 4: a fresh proposal of B is refused, since locked on A.
    c.on_event(
        300,
        Event::Timeout {
            height: 1,
            round: 3,
            step: TimeoutStep::Precommit,
        },
    );
    assert_eq!(c.round(), 4);
    let effects = propose_valid(&mut c, &keys, 4, b, None);
    assert_eq!(vote_for(&effects, Prevote), Some(None));
    assert_eq!(c.stats().refused_conflicting_signatures, 0);
}

#[test]
fn restore_after_prevote_only_ends_the_round_safely() {
    let keys = keys(4);
    let a = named("A");
    let wal = [Message::Vote(vote(&keys, 0, Prevote, 1, 2, Some(a)))];
    let (mut c, effects) = Consensus::restore(config(&keys, 0), 1, &wal, 0).unwrap();
    assert_eq!((c.round(), c.step()), (2, Step::Prevote));
    assert_eq!(c.locked(), None);
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::ScheduleTimeout {
            round: 2,
            step: TimeoutStep::Prevote,
            ..
        }
    )));
    // timeoutPropose of round 2 would prevote nil: it must not.
    let e = c.on_event(
        1,
        Event::Timeout {
            height: 1,
            round: 2,
            step: TimeoutStep::Propose,
        },
    );
    assert!(e.is_empty());
    // timeoutPrevote: precommit nil, a new (non-conflicting) vote, persisted first.
    let e = c.on_event(
        2,
        Event::Timeout {
            height: 1,
            round: 2,
            step: TimeoutStep::Prevote,
        },
    );
    assert_eq!(persisted(&e), 1);
    assert_eq!(vote_for(&e, Precommit), Some(None));
}

#[test]
fn restored_proposer_resends_the_same_proposal() {
    let keys = keys(4);
    // Validator 1 proposes at height 1 round 0.
    let (mut c, _) = Consensus::new(config(&keys, 1), 1, 0).unwrap();
    let mut wal = Vec::new();
    let effects = c.on_event(
        0,
        Event::ProposalValue {
            height: 1,
            round: 0,
            block: named("X"),
        },
    );
    for e in &effects {
        match e {
            Effect::PersistProposal(p) => wal.push(Message::Proposal(*p)),
            Effect::PersistVote(v) => wal.push(Message::Vote(*v)),
            _ => {}
        }
    }
    // Crash after persisting only the proposal.
    wal.truncate(1);
    let (_, effects) = Consensus::restore(config(&keys, 1), 1, &wal, 10).unwrap();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::RequestProposalValue { .. }))
    );
    assert!(effects.contains(&Effect::Broadcast(wal[0])));
    // It prevotes its own proposal (a new vote, persisted).
    assert_eq!(vote_for(&effects, Prevote), Some(Some(named("X"))));
    assert_eq!(persisted(&effects), 1);
}

#[test]
fn restore_refuses_a_corrupt_or_foreign_wal() {
    let keys = keys(4);
    let a = named("A");
    let cfg = || config(&keys, 0);
    let foreign = [Message::Vote(vote(&keys, 1, Prevote, 1, 0, Some(a)))];
    assert!(matches!(
        Consensus::restore(cfg(), 1, &foreign, 0),
        Err(ConfigError::WalForeignEntry { signer: 1, .. })
    ));
    let mut bad = vote(&keys, 0, Prevote, 1, 0, Some(a));
    bad.signature.0[1] ^= 1;
    assert!(matches!(
        Consensus::restore(cfg(), 1, &[Message::Vote(bad)], 0),
        Err(ConfigError::WalBadSignature { .. })
    ));
    let conflict = [
        Message::Vote(vote(&keys, 0, Prevote, 1, 0, Some(a))),
        Message::Vote(vote(&keys, 0, Prevote, 1, 0, None)),
    ];
    assert!(matches!(
        Consensus::restore(cfg(), 1, &conflict, 0),
        Err(ConfigError::WalConflict { round: 0, .. })
    ));
    let ahead = [Message::Vote(vote(&keys, 0, Prevote, 2, 0, Some(a)))];
    assert!(matches!(
        Consensus::restore(cfg(), 1, &ahead, 0),
        Err(ConfigError::WalAhead { wal_height: 2, .. })
    ));
    assert!(matches!(
        Consensus::new(config(&keys, 0), 0, 0),
        Err(ConfigError::ZeroHeight)
    ));
    let mut wrong_key = config(&keys, 0);
    wrong_key.keypair = keys[1].clone();
    assert!(matches!(
        Consensus::new(wrong_key, 1, 0),
        Err(ConfigError::KeyMismatch { index: 0 })
    ));
    let mut wrong_index = config(&keys, 0);
    wrong_index.validator_index = 4;
    assert!(matches!(
        Consensus::new(wrong_index, 1, 0),
        Err(ConfigError::UnknownValidator { index: 4, n: 4 })
    ));
}

// ----- planted bugs -----

#[cfg(feature = "bugs")]
mod bugs {
    use super::*;
    use crate::Bug;

    #[test]
    fn no_wal_restart_signs_a_conflicting_vote() {
        let keys = keys(4);
        let cfg = || config(&keys, 0).with_bug(Some(Bug::NoWal));
        let (mut c, _) = Consensus::new(cfg(), 1, 0).unwrap();
        let effects = propose_valid(&mut c, &keys, 0, named("A"), None);
        assert_eq!(persisted(&effects), 0, "NoWal persists nothing");
        let first = votes_of(&effects)[0];
        // Even given the WAL, restore ignores it: fresh round 0, timeout -> prevote nil.
        let (mut c, _) = Consensus::restore(cfg(), 1, &[Message::Vote(first)], 0).unwrap();
        let effects = c.on_event(
            0,
            Event::Timeout {
                height: 1,
                round: 0,
                step: TimeoutStep::Propose,
            },
        );
        let second = votes_of(&effects)[0];
        assert_eq!(second.vote.round, 0);
        assert_ne!(
            first.vote.block, second.vote.block,
            "the planted equivocation"
        );
    }

    #[test]
    fn no_lock_prevotes_a_fresh_value_while_locked() {
        let keys = keys(4);
        let (mut c, _) =
            Consensus::new(config(&keys, 0).with_bug(Some(Bug::NoLock)), 1, 0).unwrap();
        lock_in_round_0(&mut c, &keys, named("A"));
        end_round(&mut c, &keys);
        let effects = propose_valid(&mut c, &keys, 1, named("B"), None);
        assert_eq!(vote_for(&effects, Prevote), Some(Some(named("B"))));
    }

    #[test]
    fn small_quorum_commits_on_f_plus_1() {
        let keys = keys(4);
        let cfg = config(&keys, 0).with_bug(Some(Bug::SmallQuorum));
        let validators = cfg.validators.clone();
        let (mut c, _) = Consensus::new(cfg, 1, 0).unwrap();
        let a = named("A");
        let effects = deliver(
            &mut c,
            [1, 2].map(|i| vote(&keys, i, Precommit, 1, 0, Some(a))),
        );
        let cert = effects
            .iter()
            .find_map(|e| match e {
                Effect::Commit { certificate, .. } => Some(certificate.clone()),
                _ => None,
            })
            .unwrap();
        assert_eq!(cert.signatures.len(), 2);
        assert!(cert.verify(CHAIN, 1, &a, &validators).is_err());
    }
}
