//! The `cluster` and `sync` measurements: 4 validators and an observer over libp2p on
//! loopback (from `ebill genesis init`), then a fresh observer catching up.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ebill_types::keyfile::KeyFile;
use serde::Serialize;

use crate::dev::{Signer, agent, presign, presign_singles, single_latency, submit_load};
use crate::node::{RunningNode, start_config};
use crate::stats::{Latencies, r2};

/// The `cluster` section.
#[derive(Serialize, Clone, Debug, Default)]
pub struct ClusterReport {
    pub nodes: usize,
    pub committed_per_s: f64,
    pub committed: usize,
    pub seconds: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_load_per_s: f64,
    pub observer_lag_ms: f64,
    pub observer_lag_p99_ms: f64,
}

/// The `sync` section.
#[derive(Serialize, Clone, Debug, Default)]
pub struct SyncReport {
    pub bills: u64,
    pub seconds: f64,
    pub bills_per_s: f64,
    /// From the start of the fresh observer's process to its ready line (part of
    /// `seconds`).
    pub ready_s: f64,
    /// From the start of its process until it holds its first block (part of
    /// `seconds`): start-up, connecting to peers and the first answer.
    pub first_block_s: f64,
}

struct NodeInfo {
    name: String,
    role: String,
    config: PathBuf,
    api: String,
}

fn status(url: &str) -> Result<serde_json::Value> {
    let mut r = agent().get(&format!("{url}/v1/status")).call()?;
    Ok(serde_json::from_str(&r.body_mut().read_to_string()?)?)
}

fn height(url: &str) -> Result<u64> {
    status(url)?["height"]
        .as_u64()
        .context("status without height")
}

/// Waits (bounded) until `f` holds, checking every 20 ms.
fn wait_until(what: &str, bound: Duration, mut f: impl FnMut() -> Result<bool>) -> Result<()> {
    let end = Instant::now() + bound;
    while Instant::now() < end {
        if f()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("{what}: not within {bound:?}")
}

/// Runs both measurements. `ebill` makes the network; `node_bin` runs it.
pub fn run(ebill: &Path, node_bin: &Path, quick: bool) -> Result<(ClusterReport, SyncReport)> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("net");
    let out = Command::new(ebill)
        .args([
            "--json",
            "genesis",
            "init",
            "--validators",
            "4",
            "--observers",
            "2",
            "--out",
        ])
        .arg(&dir)
        .output()
        .context("run ebill genesis init")?;
    if !out.status.success() {
        bail!(
            "genesis init failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let net: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let nodes: Vec<NodeInfo> = net["nodes"]
        .as_array()
        .context("nodes")?
        .iter()
        .map(|n| NodeInfo {
            name: n["name"].as_str().unwrap_or_default().to_owned(),
            role: n["role"].as_str().unwrap_or_default().to_owned(),
            config: PathBuf::from(n["config"].as_str().unwrap_or_default()),
            api: n["api"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    let key_file = net["issuers"][0]["key_file"]
        .as_str()
        .context("issuer key")?;
    let key = KeyFile::from_json(&std::fs::read_to_string(key_file)?)?;
    let genesis = ebill_types::Genesis::from_json(&std::fs::read_to_string(
        net["genesis"].as_str().context("genesis path")?,
    )?)?;
    let signer = Signer {
        key: key.keypair()?,
        issuer: key.credit_code.context("issuer key without credit code")?,
        chain_id: genesis.chain_id.clone(),
    };
    let validators: Vec<&NodeInfo> = nodes.iter().filter(|n| n.role == "validator").collect();
    let observers: Vec<&NodeInfo> = nodes.iter().filter(|n| n.role == "observer").collect();
    anyhow::ensure!(
        validators.len() == 4 && observers.len() == 2,
        "unexpected network"
    );

    let mut running: Vec<RunningNode> = Vec::new();
    for n in validators.iter().chain(observers.iter().take(1)) {
        eprintln!("cluster: starting {}", n.name);
        running.push(start_config(node_bin, &n.config, &n.api)?);
    }
    let urls: Vec<String> = validators.iter().map(|n| n.api.clone()).collect();
    for u in urls.iter().chain(std::iter::once(&observers[0].api)) {
        wait_until("peers connected", Duration::from_secs(60), || {
            Ok(status(u)?["peers"].as_u64().unwrap_or(0) >= 4)
        })?;
    }

    let seconds = if quick { 10.0 } else { 60.0 };
    let n = if quick { 150_000 } else { 1_200_000 };
    eprintln!("cluster: pre-signing {n} bills");
    let pre = presign(&signer, 1, n, 2_000);
    eprintln!("cluster: submitting to 4 validators for {seconds} s");
    let (committed, elapsed, _) = submit_load(&urls, &pre.batches, 8, seconds)?;
    let committed_per_s = committed as f64 / elapsed.as_secs_f64();
    eprintln!(
        "cluster: {committed} committed in {:.1} s",
        elapsed.as_secs_f64()
    );
    if elapsed.as_secs_f64() < seconds * 0.99 {
        eprintln!(
            "cluster: WARNING: every pre-signed bill was committed before {seconds} s; \
             raise the number pre-signed"
        );
    }

    // Latency at half the load: a background load at half the measured rate, and single
    // transactions timed from submit to final.
    let half_rate = committed_per_s / 2.0;
    let lat_secs = if quick { 6.0 } else { 20.0 };
    let rest = &pre.batches[(committed / 2_000 + 1).min(pre.batches.len())..];
    let singles: Vec<(String, String)> =
        presign_singles(&signer, 7_000_000_000, if quick { 3_000 } else { 20_000 });
    let single_bodies: Vec<String> = singles.iter().map(|(b, _)| b.clone()).collect();
    eprintln!("cluster: latency at {half_rate:.0} bills/s of background load");
    let (mut lat, load_per_s) = std::thread::scope(|s| -> Result<(Latencies, f64)> {
        let bg = s.spawn(|| paced_load(&urls, rest, half_rate, lat_secs));
        let lat = single_latency(&urls, &single_bodies, 4, lat_secs)?;
        let load = bg
            .join()
            .map_err(|_| anyhow::anyhow!("load thread panicked"))??;
        Ok((lat, load))
    })?;

    eprintln!("cluster: observer lag");
    let probes = presign_singles(&signer, 8_000_000_000, 60);
    let mut lag = observer_lag(&urls[0], &observers[0].api, &probes)?;

    let cluster = ClusterReport {
        nodes: 5,
        committed_per_s: r2(committed_per_s),
        committed,
        seconds: r2(elapsed.as_secs_f64()),
        latency_p50_ms: r2(lat.percentile_ms(50.0)),
        latency_p99_ms: r2(lat.percentile_ms(99.0)),
        latency_load_per_s: r2(load_per_s),
        observer_lag_ms: r2(lag.percentile_ms(50.0)),
        observer_lag_p99_ms: r2(lag.percentile_ms(99.0)),
    };

    // A fresh observer catches up on the whole chain.
    let target = height(&urls[0])?;
    let mut bills = 0u64;
    for h in 1..=target {
        let mut r = agent().get(&format!("{}/v1/blocks/{h}", urls[0])).call()?;
        let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
        bills += v["tx_count"].as_u64().unwrap_or(0);
    }
    eprintln!("cluster: a fresh observer syncs {bills} bills in {target} blocks");
    let t0 = Instant::now();
    let fresh = start_config(node_bin, &observers[1].config, &observers[1].api)?;
    let ready_s = t0.elapsed().as_secs_f64();
    let mut first_block_s = None;
    wait_until(
        "fresh observer at the tip",
        Duration::from_secs(1800),
        || {
            let h = height(&observers[1].api)?;
            if h > 0 && first_block_s.is_none() {
                first_block_s = Some(t0.elapsed().as_secs_f64());
            }
            Ok(h >= target)
        },
    )?;
    let secs = t0.elapsed().as_secs_f64();
    let sync = SyncReport {
        bills,
        seconds: r2(secs),
        bills_per_s: r2(bills as f64 / secs),
        ready_s: r2(ready_s),
        first_block_s: r2(first_block_s.unwrap_or(secs)),
    };
    fresh.stop()?;
    for r in running {
        r.stop()?;
    }
    Ok((cluster, sync))
}

/// Submits `batches` at about `rate` bills/s for `seconds`; returns the rate achieved.
fn paced_load(urls: &[String], batches: &[String], rate: f64, seconds: f64) -> Result<f64> {
    let agent = agent();
    let start = Instant::now();
    let mut sent = 0usize;
    let mut i = 0usize;
    while start.elapsed().as_secs_f64() < seconds && i < batches.len() {
        let due = sent as f64 / rate.max(1.0);
        let now = start.elapsed().as_secs_f64();
        if due > now {
            std::thread::sleep(Duration::from_secs_f64(due - now));
        }
        let url = &urls[i % urls.len()];
        let mut r = agent
            .post(&format!("{url}/v1/txs/batch"))
            .header("content-type", "application/json")
            .send(batches[i].as_str())?;
        let _ = r.body_mut().read_to_vec()?;
        sent += 2_000;
        i += 1;
    }
    Ok(sent as f64 / start.elapsed().as_secs_f64())
}

/// For each probe: submit to a validator and wait until final there, then time until
/// the observer has it too.
fn observer_lag(validator: &str, observer: &str, probes: &[(String, String)]) -> Result<Latencies> {
    let agent = agent();
    let mut lag = Latencies::default();
    for (body, id) in probes {
        let mut r = agent
            .post(&format!("{validator}/v1/txs?wait=commit"))
            .header("content-type", "application/json")
            .send(body.as_str())?;
        let text = r.body_mut().read_to_string()?;
        if r.status().as_u16() != 200 {
            bail!("probe answered {}: {text}", r.status());
        }
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(30);
        loop {
            let mut r = agent.get(&format!("{observer}/v1/txs/{id}")).call()?;
            let v: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
            if v["status"] == "committed" {
                lag.record(t0.elapsed());
                break;
            }
            if Instant::now() > end {
                bail!("observer did not get {id} within 30 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    Ok(lag)
}
