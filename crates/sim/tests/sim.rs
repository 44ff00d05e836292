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

/// Runs seeds until one finds a violation; returns how many seeds that took.
fn seeds_to_catch(bug: PlantedBug, validators: u32, byzantine: u32, max_seeds: u64) -> u64 {
    let c = RunConfig {
        bug: Some(bug),
        ..config(validators, byzantine, 8)
    };
    for seed in 0..max_seeds {
        let r = run_seed(&c, seed);
        if !r.violations.is_empty() {
            return seed + 1;
        }
    }
    panic!("planted bug {bug:?} not caught in {max_seeds} seeds");
}

#[test]
fn planted_small_quorum_is_caught() {
    let n = seeds_to_catch(PlantedBug::SmallQuorum, 4, 1, 200);
    eprintln!("small-quorum caught after {n} seed(s)");
}

#[test]
fn planted_no_wal_is_caught() {
    let n = seeds_to_catch(PlantedBug::NoWal, 4, 1, 200);
    eprintln!("no-wal caught after {n} seed(s)");
}

#[test]
fn planted_no_lock_is_caught() {
    // Rare by nature (a decision one validator alone sees, then a fresh value from a
    // proposer without validValue): with the node's engine, 4 seeds in 2,000 of 4/1
    // (`ebill-sim --seeds 2000 --bug no-lock`); the first is seed 560.
    let n = seeds_to_catch(PlantedBug::NoLock, 4, 1, 1_000);
    eprintln!("no-lock caught after {n} seed(s)");
}
