//! `ebill-sim`: runs the deterministic cluster simulator over many seeds and reports.
//!
//! ```text
//! cargo run --release -p ebill-sim -- --seeds 10000 --validators 4 --byzantine 1 --json
//! cargo run --release -p ebill-sim -- --seeds 1 --first-seed 1234      # replay one seed
//! cargo run --release -p ebill-sim --features bugs -- --seeds 200 --bug no-lock
//! ```
//!
//! Exit status: 0 if no run had a violation or a stall; 1 otherwise. With `--bug`, the
//! point is to see violations: the exit status is then 0 if at least one run found a
//! violation (the planted bug was caught) and 1 if none did. 2: bad arguments.

use std::process::ExitCode;

use clap::Parser;
use ebill_sim::{PlantedBug, RunConfig, describe_failure, run_seeds};

/// Deterministic simulator of an ebill cluster (consensus + ledger + store).
#[derive(Parser, Debug)]
#[command(name = "ebill-sim", version)]
struct Args {
    /// Number of seeds (runs).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed; runs use first-seed .. first-seed + seeds.
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Validators (n).
    #[arg(long, default_value_t = 4)]
    validators: u32,
    /// Byzantine validators among them (at most (n-1)/3 for the guarantees to hold).
    #[arg(long, default_value_t = 1)]
    byzantine: u32,
    /// Heights every honest validator must make final in each run.
    #[arg(long, default_value_t = 8)]
    heights: u64,
    /// Liveness bound after GST, in simulated milliseconds.
    #[arg(long, default_value_t = 30_000)]
    liveness_bound_ms: u64,
    /// Plant a bug in the honest validators: no-lock, small-quorum, no-wal (consensus),
    /// skip-state-update (one validator's store forgets a state-tree update)
    /// (needs the cargo feature `bugs`).
    #[arg(long)]
    bug: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Print one line per run.
    #[arg(long)]
    verbose: bool,
    /// Print every event of every run (use with --seeds 1 --first-seed S to replay S).
    #[arg(long)]
    log: bool,
    /// Chance (per mille, up to 1000) that a message sent before GST has a bit flipped;
    /// drawn per seed from 0 to 19 when not given.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1000))]
    corrupt_per_mille: Option<u32>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let bug = match args.bug.as_deref() {
        None => None,
        Some(name) => match PlantedBug::parse(name) {
            Some(b) if PlantedBug::available() => Some(b),
            Some(_) => {
                eprintln!(
                    "--bug needs the cargo feature `bugs`: cargo run --release -p ebill-sim --features bugs -- ..."
                );
                return ExitCode::from(2);
            }
            None => {
                eprintln!("unknown bug {name:?}: use no-lock, small-quorum or no-wal");
                return ExitCode::from(2);
            }
        },
    };
    if args.validators == 0 || args.byzantine >= args.validators {
        eprintln!("need at least one validator and fewer Byzantine ones than validators");
        return ExitCode::from(2);
    }
    let config = RunConfig {
        validators: args.validators,
        byzantine: args.byzantine,
        heights: args.heights.max(1),
        bug,
        liveness_bound_ms: args.liveness_bound_ms,
        log: args.log,
        corrupt_per_mille: args.corrupt_per_mille,
        ..RunConfig::default()
    };
    let verbose = args.verbose;
    let json = args.json;
    let summary = run_seeds(&config, args.first_seed, args.seeds, |r| {
        for line in &r.log {
            println!("{line}");
        }
        if !r.ok() && !json {
            eprintln!("FAIL {}", describe_failure(r));
        } else if verbose {
            eprintln!(
                "seed {}: ok, {} blocks, {} ms simulated (GST {} ms), {} messages, trace {:016x}",
                r.seed, r.final_blocks, r.sim_time_ms, r.gst_ms, r.messages, r.trace_digest
            );
        }
    });
    if json {
        println!("{}", summary.to_json(&config, args.first_seed));
    } else {
        println!(
            "runs {} final_blocks {} violations {} stalls {} sim_time_ms {} messages {} max_post_gst_gap_ms {} (bound {})",
            summary.runs,
            summary.final_blocks,
            summary.violations,
            summary.stalls,
            summary.sim_time_ms,
            summary.messages,
            summary.max_post_gst_gap_ms,
            config.liveness_bound_ms
        );
        if !summary.failing_seeds.is_empty() {
            println!("failing seeds: {:?}", summary.failing_seeds);
        }
    }
    let failed = summary.violations > 0 || summary.stalls > 0;
    match (config.bug, failed) {
        (None, false) => ExitCode::SUCCESS,
        (None, true) => ExitCode::FAILURE,
        (Some(_), _) if summary.violations > 0 => ExitCode::SUCCESS,
        (Some(_), _) => ExitCode::FAILURE,
    }
}
