//! The simulator's CI tests: determinism, seeds of honest and Byzantine clusters, and
//! the planted bugs (the dev-dependency on this crate with feature `bugs` makes
//! `cargo test --workspace` run them too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use ebill_sim::{PlantedBug, RunConfig, describe_failure, run_seed, run_seeds};

fn config(validators: u32, byzantine: u32, heights: u64) -> RunConfig {
    RunConfig {
        validators,
        byzantine,
        heights,
        ..RunConfig::default()
    }
}

fn assert_clean(config: &RunConfig, first_seed: u64, seeds: u64) {
    let summary = run_seeds(config, first_seed, seeds, |r| {
        assert!(r.ok(), "{}", describe_failure(r));
    });
    assert_eq!(summary.runs, seeds);
    assert!(summary.final_blocks >= seeds * config.heights);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let c = config(4, 1, 4);
    for seed in [3, 17, 42] {
        let a = run_seed(&c, seed);
        let b = run_seed(&c, seed);
        assert_eq!(a.trace_digest, b.trace_digest, "seed {seed}");
        assert_eq!(a.messages, b.messages);
        assert_eq!(a.sim_time_ms, b.sim_time_ms);
        assert_eq!(a.final_blocks, b.final_blocks);
    }
    assert_ne!(run_seed(&c, 1).trace_digest, run_seed(&c, 2).trace_digest);
}

#[test]
fn four_validators_no_byzantine() {
    assert_clean(&config(4, 0, 5), 0, 100);
}

#[test]
fn four_validators_one_byzantine() {
    assert_clean(&config(4, 1, 5), 0, 200);
}

#[test]
fn seven_validators_two_byzantine() {
    assert_clean(&config(7, 2, 4), 0, 100);
}

/// Many corrupted messages (a bit flipped in 1 of 20 before GST: votes, proposals,
/// blocks, certificates, transactions, sync requests) are refused by the engine, never
/// taken as valid and never fatal: a peer's bad copy of a certified block is fetched
/// again rather than halting the validator (seed 101 of the default 4/1 runs halted a
/// validator that way before the engine told the two apart).
#[test]
fn corrupted_messages_are_refused_and_never_fatal() {
    let c = RunConfig {
        corrupt_per_mille: Some(50),
        ..config(4, 1, 5)
    };
    let summary = run_seeds(&c, 0, 150, |r| {
        assert!(r.ok(), "{}", describe_failure(r));
    });
    assert!(
        summary.corrupted_messages > 1_000,
        "only {} corrupted",
        summary.corrupted_messages
    );
}

/// Runs seeds from `first_seed` until one finds a violation; returns that seed and the
/// kind of every violation it found, the first being the checker that caught the bug
/// (a run stops at the first step with a violation; one step may break several).
fn seed_that_catches(
    bug: PlantedBug,
    validators: u32,
    byzantine: u32,
    first_seed: u64,
    max_seeds: u64,
) -> (u64, Vec<&'static str>) {
    let c = RunConfig {
        bug: Some(bug),
        ..config(validators, byzantine, 8)
    };
    for seed in first_seed..first_seed + max_seeds {
        let r = run_seed(&c, seed);
        if !r.violations.is_empty() {
            return (seed, r.violations.iter().map(|v| v.kind).collect());
        }
    }
    panic!(
        "planted bug {bug:?} not caught in seeds {first_seed}..{}",
        first_seed + max_seeds
    );
}

#[test]
fn planted_small_quorum_is_caught_by_the_certificate_checker() {
    // f+1 precommits make a "decision": the certificate checker refuses it at once.
    let (seed, kinds) = seed_that_catches(PlantedBug::SmallQuorum, 4, 1, 0, 200);
    eprintln!("small-quorum caught at seed {seed}: {kinds:?}");
    assert_eq!(kinds.first(), Some(&"certificate"), "{kinds:?}");
}

#[test]
fn planted_no_wal_is_caught_by_the_equivocation_checker() {
    // A validator that forgets what it signed signs again after a restart.
    let (seed, kinds) = seed_that_catches(PlantedBug::NoWal, 4, 1, 0, 200);
    eprintln!("no-wal caught at seed {seed}: {kinds:?}");
    assert_eq!(kinds.first(), Some(&"honest_equivocation"), "{kinds:?}");
}

#[test]
fn planted_no_lock_is_caught_by_the_agreement_checker() {
    // Rare by nature (a decision one validator alone sees, then a fresh value from a
    // proposer without validValue): with the node's engine, the state tree, disk faults
    // and drifting clocks, 6 seeds in 3,000 of 4/1 (`ebill-sim --seeds 3000 --bug
    // no-lock`: 57, 616, 719, 971, 1576, 1708). Any change that reshuffles runs (a
    // block's bytes, a draw of the scenario) moves them; the command finds them again.
    let (seed, kinds) = seed_that_catches(PlantedBug::NoLock, 4, 1, 0, 1_000);
    eprintln!("no-lock caught at seed {seed}: {kinds:?}");
    assert_eq!(kinds.first(), Some(&"agreement"), "{kinds:?}");
}

#[test]
fn planted_skipped_state_update_is_caught_by_the_state_root_checker() {
    // One honest validator's store forgets the tree update of its first commit: its
    // own tree no longer has the root its header carries.
    let (seed, kinds) = seed_that_catches(PlantedBug::SkipStateUpdate, 4, 1, 0, 20);
    eprintln!("skip-state-update caught at seed {seed}: {kinds:?}");
    assert_eq!(kinds.first(), Some(&"state_root"), "{kinds:?}");
}
