//! The `audit` section: the regulators' audit API over a RocksDB store of `bills` bills,
//! in process, on the functions the routes call (`ebill_api::audit`).
//!
//! A scratch store is filled (untimed) the way a node commits: signed bills in blocks of
//! 4,500, each block's signatures checked, applied by the ledger and committed with its
//! audit indexes; block times 12 hours apart, so that the bills span months. A tenth of
//! the bills are red-reversed in the block after their issue, so that the statistics
//! have reversals to count. Then, timed:
//!
//! - `stats` over the whole chain, grouped by issuer, kind, day and month (what
//!   `GET /admin/v1/stats` answers), timed once the fill's compactions have settled;
//!   each grouping's time is the median of three answers, `stats_ms` the slowest;
//! - exporting the `bills` table (every bill, one file) as CSV and as Parquet (what
//!   `GET /admin/v1/export` answers, before the bytes go on the wire);
//! - `reindex`: the audit indexes rebuilt from the stored bills;
//! - what the indexes add to a commit: two stores of 100,000 bills filled with the
//!   indexes and two without (`RocksStore::bench_write_indexes`), alternating, the
//!   commit time per bill of each side's best; `ratios.audit_index_share_of_dev` is that
//!   difference times the dev chain's rate, the share of the dev chain's time per bill
//!   that writing the indexes takes.
//!
//! At 1,000,000 bills (the default, not with `--quick`) the report also carries the keys
//! the audit issue names, `stats_ms_1m` and `export_parquet_s_1m`.

use std::time::Instant;

use anyhow::{Context as _, Result};
use ebill_api::audit::export::{Table, export_range, write_table};
use ebill_api::audit::format::Format;
use ebill_api::audit::params::Window;
use ebill_api::audit::query::{GroupBy, stats};
use ebill_ledger::{Context, apply_block, preverify};
use ebill_store::{RocksStore, Store};
use ebill_types::dev::{DEV_GENESIS_TIME_MS, dev_genesis, dev_issuer_code, dev_issuer_key};
use ebill_types::{Block, Header, SignedTx, Tx, TxBody};
use serde::Serialize;

use crate::stats::r2;

/// Bills issued per block: with the reversals of a tenth of the block before, a block
/// stays within the genesis limit of 5,000 transactions.
const BILLS_PER_BLOCK: u64 = 4_500;
/// Block times are this far apart, so that the bills span months.
const BLOCK_SPACING_MS: u64 = 12 * 3_600_000;
/// One bill in this many is red-reversed in the next block.
const REVERSED_ONE_IN: u64 = 10;

/// The `audit` section of the report.
#[derive(Serialize, Clone, Debug)]
pub struct AuditReport {
    /// Bills in the store.
    pub bills: u64,
    /// `stats` over the whole chain, by grouping, ms.
    pub stats_ms_by_group: std::collections::BTreeMap<&'static str, f64>,
    /// The slowest of them.
    pub stats_ms: f64,
    /// Every bill as one CSV file, s.
    pub export_csv_s: f64,
    /// Every bill as one Parquet file, s.
    pub export_parquet_s: f64,
    /// Size of that Parquet file.
    pub parquet_bytes: u64,
    /// Size of the CSV file.
    pub csv_bytes: u64,
    /// Bills per second that `reindex` rebuilds the audit indexes at.
    pub reindex_bills_per_s: f64,
    /// Mean time of one block's `commit_block` while filling (4,500 bills and the
    /// reversals), ms.
    pub commit_ms_per_block: f64,
    /// Commit time per bill with the audit indexes, µs, on stores of 100,000 bills.
    pub commit_us_per_bill_indexed: f64,
    /// The same commits without them.
    pub commit_us_per_bill_unindexed: f64,
    /// The difference: what the indexes add to a commit, per bill.
    pub index_us_per_bill: f64,
    /// `stats_ms` when `bills` is 1,000,000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats_ms_1m: Option<f64>,
    /// `export_parquet_s` when `bills` is 1,000,000.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub export_parquet_s_1m: Option<f64>,
    /// Seconds the fill took (untimed).
    pub fill_s: f64,
    /// Seconds waited after the fill for RocksDB's flushes and compactions to end,
    /// before anything is timed.
    pub settle_s: f64,
}

fn block_time_ms(height: u64) -> u64 {
    u64::try_from(DEV_GENESIS_TIME_MS).unwrap_or(0) + height * BLOCK_SPACING_MS
}

/// The signed transactions of block `height`: the bills `first..first+count` issued, and
/// the reversals of every tenth bill of the block before.
fn block_txs(
    chain_id: &str,
    height: u64,
    first: u64,
    count: u64,
    reverse: &[u64],
) -> Vec<SignedTx> {
    let issuer = dev_issuer_key();
    let time = i64::try_from(block_time_ms(height)).unwrap_or(i64::MAX);
    let mut txs: Vec<SignedTx> = (first..first + count)
        .map(|number| {
            let bill = ebill_types::dev::sample_bill(number, 1_000 + number % 10_000, time);
            Tx {
                nonce: 0,
                body: TxBody::IssueBill(bill),
            }
            .sign_unit(chain_id, &issuer)
        })
        .collect();
    txs.extend(reverse.iter().map(|number| {
        Tx {
            nonce: 0,
            body: TxBody::RedReverse {
                issuer: dev_issuer_code(),
                bill: ebill_types::dev::sample_bill(*number, 0, 0).id(),
                reason: "开错了".to_owned(),
            },
        }
        .sign_unit(chain_id, &issuer)
    }));
    txs
}

/// A filled store, and the time its commits took.
struct Filled {
    store: RocksStore,
    /// Blocks committed.
    blocks: u64,
    /// Seconds in `commit_block`, every block summed.
    commit_s: f64,
}

/// Fills a store at `dir` with `bills` bills, its commits writing the audit indexes or
/// not.
fn fill(dir: &std::path::Path, bills: u64, indexes: bool) -> Result<Filled> {
    let genesis = dev_genesis();
    let chain = genesis.chain_id.as_str();
    let validators = genesis.validator_set()?;
    let store = RocksStore::open(dir).context("open the audit store")?;
    store.init_genesis(&genesis)?;
    store.bench_write_indexes(indexes);
    let mut commit_s = 0.0;
    let mut prev = genesis.hash();
    let mut next_bill = 1;
    let mut height = 0;
    let mut reverse = Vec::new();
    while next_bill <= bills || !reverse.is_empty() {
        height += 1;
        let count = BILLS_PER_BLOCK.min(bills + 1 - next_bill);
        let txs = block_txs(chain, height, next_bill, count, &reverse);
        let verified = preverify(&store, &genesis, &txs)?;
        let ctx = Context {
            genesis: &genesis,
            height,
            time_ms: block_time_ms(height),
        };
        let changes = apply_block(&store, ctx, &txs, Some(&verified))
            .map_err(|e| anyhow::anyhow!("block {height} does not apply: {e:?}"))?;
        reverse = txs
            .iter()
            .filter_map(|stx| match &stx.tx.body {
                TxBody::IssueBill(b) => {
                    let n: u64 = b.number.as_str().parse().ok()?;
                    n.is_multiple_of(REVERSED_ONE_IN).then_some(n)
                }
                _ => None,
            })
            .collect();
        let header = Header {
            chain_id: chain.to_owned(),
            height,
            prev_hash: prev,
            time_ms: block_time_ms(height),
            proposer: validators.proposer(height, 0),
            tx_root: Block::tx_root(&txs),
            tx_count: u32::try_from(txs.len())?,
            validator_set_hash: validators.hash(),
            state_root: ebill_store::state_update(&store, &changes)?.root,
        };
        let hash = header.hash();
        let cert = ebill_types::dev::dev_certificate(chain, height, hash);
        let block = Block { header, txs };
        let t = Instant::now();
        store.commit_block(&block, &cert, &changes)?;
        commit_s += t.elapsed().as_secs_f64();
        prev = hash;
        next_bill += count;
    }
    Ok(Filled {
        store,
        blocks: height,
        commit_s,
    })
}

/// Bills of each of the two stores that time the indexes' cost to a commit.
const INDEX_AB_BILLS: u64 = 100_000;

/// The commits of the same blocks with and without the audit indexes, alternating
/// twice so that neither side always runs on a warmer machine: the extra commit time
/// per bill, in µs (the best of each side).
fn index_cost_us_per_bill(dir: &std::path::Path) -> Result<(f64, f64, f64)> {
    let mut with = f64::MAX;
    let mut without = f64::MAX;
    for round in 0..2 {
        for indexes in [true, false] {
            let d = dir.join(format!("ab-{round}-{indexes}"));
            let f = fill(&d, INDEX_AB_BILLS, indexes)?;
            let per_bill_us = f.commit_s * 1e6 / INDEX_AB_BILLS as f64;
            if indexes {
                with = with.min(per_bill_us);
            } else {
                without = without.min(per_bill_us);
            }
            drop(f);
            std::fs::remove_dir_all(&d)?;
        }
    }
    Ok((r2(with), r2(without), r2((with - without).max(0.0))))
}

/// Answers timed per grouping of `stats`; the median is reported.
const STATS_REPEATS: usize = 3;

/// Runs the section over `bills` bills.
pub fn run(bills: u64) -> Result<AuditReport> {
    let tmp = tempfile::tempdir()?;
    let t = Instant::now();
    let filled = fill(&tmp.path().join("audit-db"), bills, true)?;
    let fill_s = r2(t.elapsed().as_secs_f64());
    let commit_ms_per_block = r2(filled.commit_s * 1e3 / filled.blocks.max(1) as f64);
    let store = filled.store;
    // The fill leaves compactions behind; a regulator's queries meet a store at rest.
    let t = Instant::now();
    store.bench_settle()?;
    let settle_s = r2(t.elapsed().as_secs_f64());
    eprintln!(
        "audit: {bills} bills stored in {fill_s} s, compactions settled in {settle_s} s; timing"
    );
    let whole = Window {
        from_ms: 0,
        to_ms: u64::MAX,
    };
    let mut stats_ms_by_group = std::collections::BTreeMap::new();
    for (name, by) in [
        ("issuer", GroupBy::Issuer),
        ("kind", GroupBy::Kind),
        ("day", GroupBy::Day),
        ("month", GroupBy::Month),
    ] {
        // The median of three answers: one answer's time moves by half on a shared
        // machine.
        let mut times_ms = Vec::new();
        for _ in 0..STATS_REPEATS {
            let t = Instant::now();
            let report = stats(&store, by, whole).map_err(|e| anyhow::anyhow!("stats: {e:?}"))?;
            times_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let issued: u64 = report.groups.iter().map(|g| g.issued.count).sum();
            anyhow::ensure!(
                issued == bills,
                "stats by {name} counted {issued} bills of {bills}"
            );
        }
        times_ms.sort_by(f64::total_cmp);
        stats_ms_by_group.insert(name, r2(times_ms[times_ms.len() / 2]));
    }
    let stats_ms = stats_ms_by_group.values().copied().fold(0.0, f64::max);
    let export = |format| -> Result<(f64, u64)> {
        let t = Instant::now();
        let mut bytes = Vec::new();
        let rows = export_range(&store, format, None, None)
            .and_then(|range| write_table(&store, Table::Bills, format, &range, &mut bytes))
            .map_err(|e| anyhow::anyhow!("export: {e:?}"))?;
        let s = r2(t.elapsed().as_secs_f64());
        anyhow::ensure!(rows == bills, "exported {rows} rows of {bills}");
        Ok((s, u64::try_from(bytes.len())?))
    };
    let (export_csv_s, csv_bytes) = export(Format::Csv)?;
    let (export_parquet_s, parquet_bytes) = export(Format::Parquet)?;
    let t = Instant::now();
    let indexed = store.reindex()?;
    let reindex_bills_per_s = r2(indexed as f64 / t.elapsed().as_secs_f64());
    drop(store);
    eprintln!(
        "audit: timing commits with and without the indexes ({INDEX_AB_BILLS} bills, 4 fills)"
    );
    let (commit_us_per_bill_indexed, commit_us_per_bill_unindexed, index_us_per_bill) =
        index_cost_us_per_bill(tmp.path())?;
    let at_1m = bills == 1_000_000;
    Ok(AuditReport {
        bills,
        stats_ms_by_group,
        stats_ms,
        export_csv_s,
        export_parquet_s,
        parquet_bytes,
        csv_bytes,
        reindex_bills_per_s,
        commit_ms_per_block,
        commit_us_per_bill_indexed,
        commit_us_per_bill_unindexed,
        index_us_per_bill,
        stats_ms_1m: at_1m.then_some(stats_ms),
        export_parquet_s_1m: at_1m.then_some(export_parquet_s),
        fill_s,
        settle_s,
    })
}
