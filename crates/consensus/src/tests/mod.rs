#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod harness;
mod single;

use harness::*;

use crate::{Effect, Event, Evidence, Message, TimeoutStep};

const N4: [usize; 4] = [0, 1, 2, 3];

#[test]
fn four_validators_decide_in_round_0() {
    let mut cluster = Cluster::new(4);
    cluster.max_height = 3;
    cluster.start(&[]);
    cluster.run_until(10_000, |c| c.committed(&N4, 3));
    cluster.check_agreement();
    cluster.check_no_equivocation();
    assert_eq!(cluster.now_ms, 0, "no timeout was needed");
    for node in &cluster.nodes {
        for (h, cert) in &node.commits {
            assert_eq!(cert.round, 0);
            let proposer = node.config.validators.proposer(*h, 0) as usize;
            assert_eq!(cert.block, block_of(proposer, *h, 0));
        }
        let c = node.consensus.as_ref().unwrap();
        assert_eq!(c.stats().refused_conflicting_signatures, 0);
        assert_eq!(c.stats().bad_signatures, 0);
        assert!(node.evidence.is_empty());
    }
}

#[test]
fn proposer_down_next_proposer_decides_in_round_1() {
    let mut cluster = Cluster::new(4);
    // Height 1, round 0: proposer is validator 1; round 1: validator 2.
    assert_eq!(cluster.nodes[0].config.validators.proposer(1, 0), 1);
    assert_eq!(cluster.nodes[0].config.validators.proposer(1, 1), 2);
    cluster.start(&[1]);
    let live = [0, 2, 3];
    cluster.run_until(10_000, |c| c.committed(&live, 1));
    cluster.check_agreement();
    cluster.check_no_equivocation();
    for i in live {
        let cert = &cluster.nodes[i].commits[&1];
        assert_eq!(cert.round, 1);
        assert_eq!(cert.block, block_of(2, 1, 1));
    }
    // Round 0 ended by timeoutPropose(0) then timeoutPrecommit(0).
    let t = crate::Timeouts::default();
    assert!(cluster.now_ms >= t.propose.duration_ms(0));
}

#[test]
fn dev_chain_of_one_validator_decides_alone() {
    let mut cluster = Cluster::new(1);
    cluster.max_height = 5;
    cluster.start(&[]);
    cluster.run_until(1_000, |c| c.committed(&[0], 5));
    assert_eq!(cluster.now_ms, 0);
}

#[test]
fn n_not_3f_plus_1_uses_the_real_bounds() {
    // n = 5: f = 1, quorum = 4. n = 7: f = 2, quorum = 5; two down still decide.
    for (n, down) in [(5usize, vec![4usize]), (7, vec![1, 5]), (6, vec![0])] {
        let mut cluster = Cluster::new(n);
        cluster.max_height = 3;
        cluster.start(&down);
        let live: Vec<usize> = (0..n).filter(|i| !down.contains(i)).collect();
        cluster.run_until(100_000, |c| c.committed(&live, 3));
        cluster.check_agreement();
        cluster.check_no_equivocation();
        for i in &live {
            for cert in cluster.nodes[*i].commits.values() {
                assert!(cert.signatures.len() > n * 2 / 3, "floor(2n/3)+1");
            }
        }
    }
}

#[test]
fn invalid_block_is_not_decided() {
    let mut cluster = Cluster::new(4);
    // The proposer of round 0 (validator 1) proposes a block the ledger refuses.
    cluster.invalid_blocks.insert(block_of(1, 1, 0));
    cluster.start(&[]);
    cluster.run_until(10_000, |c| c.committed(&N4, 1));
    cluster.check_agreement();
    for node in &cluster.nodes {
        // Validator 1 built it and considers it valid; the others prevote nil.
        assert_ne!(node.commits[&1].block, block_of(1, 1, 0));
        assert_eq!(node.commits[&1].round, 1);
    }
}

#[test]
fn equivocating_proposer_is_reported_and_cannot_split_the_honest() {
    let keys = keys(4);
    let mut cluster = Cluster::new(4);
    // Validator 1 is the (Byzantine) proposer of height 1 round 0 and is not run; the
    // test sends its two conflicting proposals by hand.
    cluster.start(&[1]);
    let a = proposal(&keys, 1, 1, 0, named("A"), None);
    let b = proposal(&keys, 1, 1, 0, named("B"), None);
    cluster.inject(0, Event::Proposal(a));
    cluster.inject(2, Event::Proposal(a));
    cluster.inject(3, Event::Proposal(b));
    cluster.inject(0, Event::Proposal(b));
    // And it prevotes and precommits both ways.
    for (to, block) in [(0, "A"), (2, "A"), (3, "B")] {
        for kind in [
            ebill_types::VoteKind::Prevote,
            ebill_types::VoteKind::Precommit,
        ] {
            let v = vote(&keys, 1, kind, 1, 0, Some(named(block)));
            cluster.inject(to, Event::Vote(v));
        }
    }
    // Validators 0 and 2 decide A with validator 1's precommit; validator 3 never gets
    // a third precommit for A (only 1's B), so it needs the certificate (block sync).
    cluster.run_until(10_000, |c| c.committed(&[0, 2], 1));
    let cert = cluster.nodes[0].commits[&1].clone();
    assert_eq!(cert.block, named("A"));
    cluster.inject(3, Event::Certificate(cert));
    cluster.run_until(10_000, |c| c.committed(&[3], 1));
    cluster.check_agreement();
    cluster.check_no_equivocation();
    let ev = &cluster.nodes[0].evidence;
    assert!(
        ev.iter()
            .any(|e| matches!(e, Evidence::ConflictingProposals { .. }) && e.offender() == 1),
        "node 0 saw both proposals: {ev:?}"
    );
}

/// Validator 0 alone sees the round-0 precommits and decides A, then crashes. Validators
/// 1 and 2 are locked on A; validator 3 saw no proposal. Round 1's proposal (A again) is
/// lost; round 2's proposer, validator 3, proposes a fresh B. Only the locks of 1 and 2
/// keep B from being decided. Returns the cluster once 1, 2 and 3 have decided height 1.
fn decision_seen_by_one_validator(adjust: impl Fn(crate::Config) -> crate::Config) -> Cluster {
    use ebill_types::VoteKind::Precommit;
    use std::cell::Cell;
    use std::rc::Rc;
    let released = Rc::new(Cell::new(false));
    let r = released.clone();
    let mut cluster = Cluster::with_configs(keys(4), adjust);
    cluster.link = Box::new(move |from, to, m| match m {
        Message::Proposal(p) if p.proposal.round == 0 => to != 3,
        Message::Proposal(p) if p.proposal.round == 1 => false,
        Message::Vote(v) if v.vote.kind == Precommit && v.vote.round == 0 => {
            to == 0 || (from != 0 && r.get())
        }
        _ => true,
    });
    cluster.start(&[]);
    cluster.run_until(10_000, |c| c.committed(&[0], 1));
    assert_eq!(cluster.nodes[0].commits[&1].block, block_of(1, 1, 0));
    cluster.crash(0);
    released.set(true);
    for i in 1..4 {
        let effects = cluster.nodes[i]
            .consensus
            .as_mut()
            .unwrap()
            .on_event(cluster.now_ms, Event::Rebroadcast);
        cluster.apply(i, effects);
    }
    cluster.run_until(100_000, |c| c.committed(&[1, 2, 3], 1));
    cluster
}

#[test]
fn locks_preserve_a_decision_seen_by_one_validator_only() {
    let cluster = decision_seen_by_one_validator(|c| c);
    cluster.check_agreement();
    cluster.check_no_equivocation();
    // Decided again in round 4, when validator 1 re-proposes its validValue A.
    assert_eq!(cluster.nodes[1].commits[&1].round, 4);
}

#[cfg(feature = "bugs")]
#[test]
fn planted_no_lock_breaks_agreement() {
    let cluster = decision_seen_by_one_validator(|c| c.with_bug(Some(crate::Bug::NoLock)));
    assert!(!cluster.agree(), "NoLock must let B be decided after A");
    assert_eq!(cluster.nodes[1].commits[&1].block, block_of(3, 1, 2));
}

#[test]
fn random_delivery_orders_agree_and_decide() {
    for seed in 1..=12u64 {
        let mut cluster = Cluster::new(4).shuffled(seed);
        cluster.max_height = 3;
        cluster.start(&[]);
        cluster.run_until(100_000, |c| c.committed(&N4, 3));
        cluster.check_agreement();
        cluster.check_no_equivocation();
    }
}

#[test]
fn partitioned_then_healed_cluster_agrees() {
    // Messages between {0,1} and {2,3} are lost for the first rounds, then the network heals.
    use std::cell::Cell;
    use std::rc::Rc;
    let healed = Rc::new(Cell::new(false));
    let h = healed.clone();
    let mut cluster = Cluster::new(4);
    cluster.link = Box::new(move |from, to, _| h.get() || (from < 2) == (to < 2));
    cluster.max_height = 2;
    cluster.start(&[]);
    for _ in 0..2_000 {
        cluster.step();
    }
    assert!(cluster.nodes.iter().all(|n| n.commits.is_empty()));
    healed.set(true);
    // Lost messages are gone: the nodes re-send their current round on request.
    for i in 0..4 {
        let effects = cluster.nodes[i]
            .consensus
            .as_mut()
            .unwrap()
            .on_event(cluster.now_ms, Event::Rebroadcast);
        cluster.apply(i, effects);
    }
    cluster.run_until(100_000, |c| c.committed(&N4, 2));
    cluster.check_agreement();
    cluster.check_no_equivocation();
}

#[test]
fn crash_and_restart_from_wal_never_equivocates() {
    // Crash validator 0 after every possible number of its own events (up to a bound),
    // restart it from its WAL a little later, and check that nothing it signs conflicts
    // with what it signed before, under several delivery orders.
    for seed in 0..6u64 {
        for crash_at in (5..80).step_by(5) {
            let mut cluster = Cluster::new(4);
            if seed > 0 {
                cluster = cluster.shuffled(seed);
            }
            cluster.max_height = 3;
            cluster.start(&[]);
            for _ in 0..crash_at {
                cluster.step();
            }
            cluster.crash(0);
            for _ in 0..20 {
                cluster.step();
            }
            cluster.restart(0);
            cluster.run_until(200_000, |c| c.committed(&[1, 2, 3], 3));
            cluster.check_agreement();
            cluster.check_no_equivocation();
            let c = cluster.nodes[0].consensus.as_ref().unwrap();
            assert_eq!(c.stats().refused_conflicting_signatures, 0);
        }
    }
}

#[test]
fn lossy_network_with_crashes_stays_safe_and_live() {
    // 40% of messages lost during the first 60 s of virtual time, one validator crashed
    // and restarted from its WAL; rebroadcast and certificate catch-up every 4 s (more
    // than timeoutPropose, so rounds change).
    // EBILL_CONSENSUS_SEEDS=1000 runs a deeper search.
    let seeds: u64 = std::env::var("EBILL_CONSENSUS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let mut max_round = 0;
    for seed in 1..=seeds {
        let mut cluster = Cluster::new(4).shuffled(seed);
        let mut state = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let clock = std::rc::Rc::new(std::cell::Cell::new(0u64));
        let seen = clock.clone();
        cluster.link = Box::new(move |_, _, _| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            seen.get() > 60_000 || state % 100 >= 40
        });
        cluster.rebroadcast_every_ms = Some(4_000);
        cluster.max_height = 4;
        cluster.start(&[]);
        let victim = (seed % 4) as usize;
        let crash_at = 50 + seed * 37;
        let mut rounds_seen = 0;
        for step in 0..400_000u64 {
            clock.set(cluster.now_ms);
            if step == crash_at {
                cluster.crash(victim);
            }
            if step == crash_at + 300 {
                cluster.restart(victim);
            }
            if step > crash_at + 300 && cluster.committed(&N4, 4) {
                break;
            }
            cluster.step();
            rounds_seen = rounds_seen.max(
                cluster
                    .nodes
                    .iter()
                    .filter_map(|n| n.consensus.as_ref().map(|c| c.round()))
                    .max()
                    .unwrap_or(0),
            );
        }
        if !cluster.committed(&N4, 4) {
            for (i, n) in cluster.nodes.iter().enumerate() {
                let c = n.consensus.as_ref().unwrap();
                eprintln!(
                    "node {i}: h{} r{} {:?} locked {:?} valid {:?} commits {:?} {:?}",
                    c.height(),
                    c.round(),
                    c.step(),
                    c.locked(),
                    c.valid(),
                    n.commits.keys().collect::<Vec<_>>(),
                    c.stats()
                );
            }
            eprintln!("now {} steps {}", cluster.now_ms, cluster.steps);
        }
        assert!(cluster.committed(&N4, 4), "seed {seed}: not live");
        cluster.check_agreement();
        cluster.check_no_equivocation();
        for node in &cluster.nodes {
            let c = node.consensus.as_ref().unwrap();
            assert_eq!(c.stats().refused_conflicting_signatures, 0);
        }
        max_round = max_round.max(rounds_seen);
    }
    assert!(max_round > 0, "losses should force round changes");
}

#[test]
fn next_height_messages_are_buffered_and_replayed() {
    let keys = keys(4);
    let (mut c, _) = crate::Consensus::new(config(&keys, 0), 1, 0).unwrap();
    // Height 2's round-0 proposer is validator 2; its proposal arrives before we decide 1.
    let p = proposal(&keys, 2, 2, 0, named("H2"), None);
    assert!(c.on_event(0, Event::Proposal(p)).is_empty());
    assert_eq!(c.stats().next_height_buffered, 1);
    assert_eq!(c.highest_height_seen(), 2);
    // Height 3 is too far ahead: dropped (but remembered as a hint).
    let far = proposal(&keys, 3, 3, 0, named("H3"), None);
    assert!(c.on_event(0, Event::Proposal(far)).is_empty());
    assert_eq!(c.stats().future_dropped, 1);
    assert_eq!(c.highest_height_seen(), 3);
    let effects = c.on_event(5, Event::StartHeight { height: 2 });
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::CheckBlock { height: 2, round: 0, block } if *block == named("H2")
    )));
    let effects = c.on_event(
        6,
        Event::BlockChecked {
            height: 2,
            block: named("H2"),
            valid: true,
        },
    );
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Broadcast(Message::Vote(v)) if v.vote.height == 2 && v.vote.block == Some(named("H2"))
    )));
}

#[test]
fn timeouts_grow_per_round() {
    let t = crate::Timeouts::default();
    for step in [
        TimeoutStep::Propose,
        TimeoutStep::Prevote,
        TimeoutStep::Precommit,
    ] {
        assert!(t.duration_ms(step, 1) > t.duration_ms(step, 0));
        assert!(t.duration_ms(step, 10) > t.duration_ms(step, 1));
        assert_eq!(t.duration_ms(step, u32::MAX), t.duration_ms(step, u32::MAX));
    }
    let s = crate::TimeoutSchedule::new(u64::MAX - 1, 10);
    assert_eq!(s.duration_ms(3), u64::MAX, "saturates");
}

/// Regression (found by crates/sim, seed 186 of 4 validators / 1 Byzantine): an
/// equivocator's vote that completes a polka must count even when its other vote came
/// first. Validator 0 prevoted nil (timeout); v1 and v2 prevote the proposal A; the
/// Byzantine v3 first sends v0 a prevote for another value, then (relayed by a peer)
/// its prevote for A. With only the first vote counted, v0 never saw the polka for A
/// that v1 and v2 locked on, refused their later proposals of A with that POL round
/// forever, and the height stalled.
#[test]
fn an_equivocators_vote_for_a_proposed_value_completes_a_polka() {
    use crate::Consensus;
    use ebill_types::VoteKind::{Precommit, Prevote};
    let keys = keys(4);
    let (mut c, _) = Consensus::new(config(&keys, 0), 1, 0).unwrap();
    let a = block_of(1, 1, 0);
    c.on_event(
        1_000_000,
        Event::Timeout {
            height: 1,
            round: 0,
            step: TimeoutStep::Propose,
        },
    );
    assert_eq!(c.own_vote(0, Prevote).unwrap().vote.block, None);
    c.on_event(
        0,
        Event::Vote(vote(&keys, 3, Prevote, 1, 0, Some(named("other")))),
    );
    let effects = c.on_event(0, Event::Proposal(proposal(&keys, 1, 1, 0, a, None)));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::CheckBlock { .. }))
    );
    c.on_event(
        0,
        Event::BlockChecked {
            height: 1,
            block: a,
            valid: true,
        },
    );
    c.on_event(0, Event::Vote(vote(&keys, 1, Prevote, 1, 0, Some(a))));
    c.on_event(0, Event::Vote(vote(&keys, 2, Prevote, 1, 0, Some(a))));
    assert!(
        c.own_vote(0, Precommit).is_none(),
        "two prevotes for A are no polka"
    );
    let effects = c.on_event(0, Event::Vote(vote(&keys, 3, Prevote, 1, 0, Some(a))));
    assert!(
        effects
            .iter()
            .any(|e| matches!(e, Effect::Evidence(Evidence::ConflictingVotes { .. })))
    );
    assert_eq!(
        c.own_vote(0, Precommit).unwrap().vote.block,
        Some(a),
        "the polka counts v3"
    );
    assert_eq!(c.locked().map(|l| l.block), Some(a));
    // A vote for a value nobody proposed still does not count (memory stays bounded).
    c.on_event(
        0,
        Event::Vote(vote(&keys, 2, Precommit, 1, 0, Some(named("x")))),
    );
    c.on_event(
        0,
        Event::Vote(vote(&keys, 2, Precommit, 1, 0, Some(named("y")))),
    );
    c.on_event(0, Event::Vote(vote(&keys, 1, Precommit, 1, 0, Some(a))));
    c.on_event(
        0,
        Event::Vote(vote(&keys, 3, Precommit, 1, 0, Some(named("z")))),
    );
    assert!(
        c.decision().is_none(),
        "A has only the precommits of v0 and v1"
    );
    let effects = c.on_event(0, Event::Vote(vote(&keys, 3, Precommit, 1, 0, Some(a))));
    let cert = effects
        .iter()
        .find_map(|e| match e {
            Effect::Commit { certificate, .. } => Some(certificate.clone()),
            _ => None,
        })
        .expect("decided with v3's extra precommit");
    assert_eq!(
        cert.signatures
            .iter()
            .map(|s| s.validator)
            .collect::<Vec<_>>(),
        vec![0, 1, 3]
    );
    cert.verify(CHAIN, 1, &a, &validator_set(&keys)).unwrap();
}
