//! `ebill-bench`: measures ebill against this machine's own limits, in one run, and prints
//! a table and JSON (`--out FILE`). Every throughput is reported next to the limit that
//! bounds it, measured in the same run, because numbers on shared machines drift.
//!
//! Sections: `limits` (ed25519 single and batch on one core, synced RocksDB writes,
//! SHA-256, cores), `dev` (one `ebill-node --dev` over loopback), `storage` (bytes on disk
//! per bill after compaction), `cluster` (4 validators and an observer over libp2p),
//! `sync` (a fresh observer catching up), `web` (the taxpayers' result page), `state`
//! (the state tree in RocksDB at 10^7 keys, 10^6 with `--quick`), `audit` (statistics,
//! exports and reindexing of the audit API over 10^6 bills, 10^5 with `--quick`),
//! `ratios`.

mod audit;
mod cluster;
mod dev;
mod limits;
mod node;
mod state;
mod stats;
mod web;
mod wrk;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use ebill_store::{RocksStore, Store};
use serde::Serialize;

use crate::stats::r2;

#[derive(Parser, Debug)]
#[command(
    name = "ebill-bench",
    about = "Measure ebill against this machine's limits"
)]
struct Args {
    /// A short run (under 3 minutes).
    #[arg(long)]
    quick: bool,
    /// Write the JSON report here too.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The ebill-node binary (default: next to this one).
    #[arg(long)]
    node_bin: Option<PathBuf>,
    /// The ebill client binary (default: next to this one).
    #[arg(long)]
    ebill_bin: Option<PathBuf>,
    /// Measure the dev chain only.
    #[arg(long)]
    skip_cluster: bool,
    /// Measure the limits, the cluster and the sync only (no dev chain, no storage).
    #[arg(long, conflicts_with = "skip_cluster")]
    cluster_only: bool,
    /// Measure the limits and the state tree only.
    #[arg(long, conflicts_with_all = ["skip_cluster", "cluster_only"])]
    state_only: bool,
    /// Leaves in the state tree when it is timed (default 10,000,000; 1,000,000 with
    /// `--quick`).
    #[arg(long)]
    state_keys: Option<u64>,
    /// The state section's store: depth of its tree's buckets (default: the store's,
    /// `ebill_store::TREE_CUT`).
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=24))]
    state_cut: Option<u8>,
    /// The state section's store: its RocksDB block cache, MiB (default: the store's).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    state_cache_mib: Option<u32>,
    /// Measure the limits and the audit API only.
    #[arg(long, conflicts_with_all = ["skip_cluster", "cluster_only", "state_only"])]
    audit_only: bool,
    /// Bills in the audit section's store (default 1,000,000; 100,000 with `--quick`).
    #[arg(long)]
    audit_bills: Option<u64>,
}

#[derive(Serialize)]
struct Storage {
    bytes_per_bill: f64,
    bills: u64,
    sst_bytes: u64,
}

#[derive(Serialize)]
struct Ratios {
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<f64>,
    cluster: Option<f64>,
    sync: Option<f64>,
    /// What the audit indexes add to a commit, per bill, times the dev chain's rate: the
    /// share of the dev chain's time per bill that writing them takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    audit_index_share_of_dev: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    machine: String,
    quick: bool,
    limits: limits::Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<dev::DevReport>,
    cluster: Option<cluster::ClusterReport>,
    sync: Option<cluster::SyncReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<Storage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web: Option<web::WebReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<state::StateReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    audit: Option<audit::AuditReport>,
    ratios: Ratios,
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// The node's allocator, set as the node sets it: the sections that run the node's code
/// in this process (`limits`, `state`, `audit`) then measure it as a node runs it (under
/// glibc's allocator the same Parquet export of 10^6 bills took 9.7 s against 3.1 s:
/// docs/benchmarks.md, "The audit section with the node's allocator").
#[global_allocator]
static ALLOCATOR: ebill_node::alloc::Allocator = mimalloc::MiMalloc;

fn main() -> Result<()> {
    ebill_node::alloc::keep_freed_memory();
    let args = Args::parse();
    let bin = node::sibling_bin(args.node_bin.clone(), "ebill-node")?;
    eprintln!("limits: measuring");
    let limits = limits::measure(args.quick)?;

    let state = if args.cluster_only || args.audit_only {
        None
    } else {
        let keys = args
            .state_keys
            .unwrap_or(if args.quick { 1_000_000 } else { 10_000_000 });
        eprintln!("state: filling a tree of {keys} keys");
        let mut store = ebill_store::RocksConfig::default();
        if let Some(cut) = args.state_cut {
            store.tree_cut = usize::from(cut);
        }
        if let Some(mib) = args.state_cache_mib {
            store.block_cache_bytes = mib as usize * 1024 * 1024;
        }
        Some(state::run(keys, &store)?)
    };

    let audit = if args.cluster_only || args.state_only {
        None
    } else {
        let bills = args
            .audit_bills
            .unwrap_or(if args.quick { 100_000 } else { 1_000_000 });
        eprintln!("audit: filling a store of {bills} bills");
        Some(audit::run(bills)?)
    };

    let (dev, storage, web) = if args.cluster_only || args.state_only || args.audit_only {
        (None, None, None)
    } else {
        let (d, st, w) = measure_dev(&bin, args.quick)?;
        (Some(d), Some(st), Some(w))
    };

    let (cluster, sync) = if args.skip_cluster || args.state_only || args.audit_only {
        (None, None)
    } else {
        let ebill = node::sibling_bin(args.ebill_bin.clone(), "ebill")?;
        let (c, s) = cluster::run(&ebill, &bin, args.quick)?;
        (Some(c), Some(s))
    };

    // Each throughput over the limit that bounds it: every transaction's signature is
    // checked once per node, so a node's ceiling is batch verification on its cores.
    let bound = limits.batch_verify_per_s_one_core * limits.cores as f64;
    let ratios = Ratios {
        dev: dev.as_ref().map(|d| r2(d.committed_per_s / bound)),
        cluster: cluster
            .as_ref()
            .map(|c| r2(c.committed_per_s / (bound / c.nodes as f64))),
        sync: sync.as_ref().map(|s| r2(s.bills_per_s / bound)),
        audit_index_share_of_dev: dev
            .as_ref()
            .zip(audit.as_ref())
            .map(|(d, a)| r2(d.committed_per_s * a.index_us_per_bill / 1e6)),
    };
    let report = Report {
        machine: machine(),
        quick: args.quick,
        limits,
        dev,
        cluster,
        sync,
        storage,
        web,
        state,
        audit,
        ratios,
    };
    print_table(&report);
    let json = serde_json::to_string_pretty(&report)?;
    println!("{json}");
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{json}\n"))
            .with_context(|| format!("write {}", out.display()))?;
    }
    Ok(())
}

/// The dev chain, then its store compacted for the bytes per bill.
fn measure_dev(
    bin: &std::path::Path,
    quick: bool,
) -> Result<(dev::DevReport, Storage, web::WebReport)> {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("dev-data");
    let running = node::start_dev(bin, &data)?;
    let (dev, issued) = dev::run(&running.url, quick, || running.peak_rss_mb())?;
    let web = web::run(&running.url, &issued, quick)?;
    running.stop()?;

    eprintln!("storage: compacting");
    let store = RocksStore::open(&data).context("reopen the dev store")?;
    let tip = store.tip()?.map(|t| t.height).unwrap_or(0);
    let mut bills = 0u64;
    for h in 1..=tip {
        bills += store.header(h)?.map(|h| u64::from(h.tx_count)).unwrap_or(0);
    }
    store.compact()?;
    let sst_bytes = store.disk_size_bytes()?;
    drop(store);
    let storage = Storage {
        bytes_per_bill: if bills == 0 {
            0.0
        } else {
            r2(sst_bytes as f64 / bills as f64)
        },
        bills,
        sst_bytes,
    };
    Ok((dev, storage, web))
}

fn print_table(r: &Report) {
    let l = &r.limits;
    eprintln!();
    eprintln!("machine: {}", r.machine);
    eprintln!("{:<44} {:>14}", "measure", "value");
    let mut rows: Vec<(&str, String)> = vec![
        (
            "limits.verify_per_s_one_core",
            format!("{:.0}", l.verify_per_s_one_core),
        ),
        (
            "limits.batch_verify_per_s_one_core",
            format!("{:.0}", l.batch_verify_per_s_one_core),
        ),
        (
            "limits.rocksdb_sync_writes_per_s",
            format!("{:.0}", l.rocksdb_sync_writes_per_s),
        ),
        (
            "limits.sha256_mb_per_s",
            format!("{:.0}", l.sha256_mb_per_s),
        ),
        ("limits.cores", l.cores.to_string()),
    ];
    if let Some(d) = &r.dev {
        rows.extend([
            ("dev.committed_per_s", format!("{:.0}", d.committed_per_s)),
            ("dev.latency_p50_ms", format!("{:.1}", d.latency_p50_ms)),
            ("dev.latency_p99_ms", format!("{:.1}", d.latency_p99_ms)),
            ("dev.verify_per_s", format!("{:.0}", d.verify_per_s)),
            ("dev.verify_p99_ms", format!("{:.2}", d.verify_p99_ms)),
            ("dev.proofs_per_s", format!("{:.0}", d.proofs_per_s)),
            ("dev.peak_rss_mb", format!("{:.0}", d.peak_rss_mb)),
        ]);
    }
    if let Some(c) = &r.cluster {
        rows.extend([
            ("cluster.nodes", c.nodes.to_string()),
            (
                "cluster.committed_per_s",
                format!("{:.0}", c.committed_per_s),
            ),
            ("cluster.latency_p50_ms", format!("{:.1}", c.latency_p50_ms)),
            ("cluster.latency_p99_ms", format!("{:.1}", c.latency_p99_ms)),
            (
                "cluster.observer_lag_ms",
                format!("{:.1}", c.observer_lag_ms),
            ),
        ]);
    }
    if let Some(w) = &r.web {
        rows.push(("web.pages_per_s", format!("{:.0}", w.pages_per_s)));
        rows.push(("web.pages_p99_ms", format!("{:.2}", w.pages_p99_ms)));
    }
    if let Some(s) = &r.sync {
        rows.push(("sync.bills_per_s", format!("{:.0}", s.bills_per_s)));
        rows.push(("sync.ready_s", format!("{:.2}", s.ready_s)));
        rows.push(("sync.first_block_s", format!("{:.2}", s.first_block_s)));
    }
    if let Some(s) = &r.storage {
        rows.push(("storage.bytes_per_bill", format!("{:.0}", s.bytes_per_bill)));
    }
    if let Some(s) = &r.state {
        rows.extend([
            ("state.keys", s.keys.to_string()),
            ("state.updates_per_s", format!("{:.0}", s.updates_per_s)),
            ("state.changes_per_s", format!("{:.0}", s.changes_per_s)),
            ("state.proof_bytes", format!("{:.0}", s.proof_bytes)),
            (
                "state.proof_bytes_at_1e9",
                format!("{:.0}", s.proof_bytes_at_1e9),
            ),
        ]);
    }
    if let Some(a) = &r.audit {
        rows.extend([
            ("audit.bills", a.bills.to_string()),
            ("audit.stats_ms", format!("{:.1}", a.stats_ms)),
            ("audit.export_csv_s", format!("{:.2}", a.export_csv_s)),
            (
                "audit.export_parquet_s",
                format!("{:.2}", a.export_parquet_s),
            ),
            (
                "audit.reindex_bills_per_s",
                format!("{:.0}", a.reindex_bills_per_s),
            ),
            (
                "audit.commit_us_per_bill_indexed",
                format!("{:.2}", a.commit_us_per_bill_indexed),
            ),
            (
                "audit.commit_us_per_bill_unindexed",
                format!("{:.2}", a.commit_us_per_bill_unindexed),
            ),
            (
                "audit.index_us_per_bill",
                format!("{:.2}", a.index_us_per_bill),
            ),
        ]);
    }
    for (k, v) in [
        ("ratios.dev", r.ratios.dev),
        ("ratios.cluster", r.ratios.cluster),
        ("ratios.sync", r.ratios.sync),
        (
            "ratios.audit_index_share_of_dev",
            r.ratios.audit_index_share_of_dev,
        ),
    ] {
        if let Some(v) = v {
            rows.push((k, format!("{v:.2}")));
        }
    }
    for (k, v) in rows {
        eprintln!("{k:<44} {v:>14}");
    }
}
