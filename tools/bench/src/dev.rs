//! The `dev` measurements: one `ebill-node --dev` over loopback.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use ebill_types::{CheckCode, SignedTx, Tx, TxBody, dev};
use serde::Serialize;

use crate::stats::{Latencies, r2};

/// The `dev` section of the report.
#[derive(Serialize, Clone, Debug, Default)]
pub struct DevReport {
    pub committed_per_s: f64,
    pub committed: usize,
    pub seconds: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub verify_per_s: f64,
    pub verify_p99_ms: f64,
    pub proofs_per_s: f64,
    pub peak_rss_mb: f64,
    /// Which client made the GET load: `wrk` or `builtin`.
    pub load_generator: &'static str,
}

/// Bills committed in a run: (code, number, check code) each.
pub type IssuedIds = Vec<(String, String, String)>;

/// A pre-signed bill: the request body of its batch and what a verifier asks with.
pub struct Presigned {
    /// `{"txs": [...]}` bodies of `batch` bills each.
    pub batches: Vec<String>,
    /// (code, number, check code) of every bill.
    pub ids: Vec<(String, String, String)>,
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Who signs the bills of a run.
#[derive(Clone)]
pub struct Signer {
    /// The issuer's key.
    pub key: ebill_types::Keypair,
    /// Its credit code.
    pub issuer: ebill_types::CreditCode,
    /// The chain.
    pub chain_id: String,
}

impl Signer {
    /// The dev chain's issuer.
    pub fn dev() -> Self {
        Self {
            key: dev::dev_issuer_key(),
            issuer: dev::dev_issuer_code(),
            chain_id: dev::DEV_CHAIN_ID.to_owned(),
        }
    }

    fn sign(&self, number: u64, amount_fen: u64, issued: i64) -> SignedTx {
        let mut bill = dev::sample_bill(number, amount_fen, issued);
        bill.issuer = self.issuer;
        Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill),
        }
        .sign_unit(&self.chain_id, &self.key)
    }
}

/// Signs `n` bills, numbered from `first`, in batches of `batch`, on every core. Done
/// before any clock starts.
pub fn presign(signer: &Signer, first: u64, n: usize, batch: usize) -> Presigned {
    let issued = now_ms();
    let cores = std::thread::available_parallelism()
        .map(|c| c.get())
        .unwrap_or(1);
    let per = n.div_ceil(cores).max(1);
    let parts: Vec<Vec<(SignedTx, CheckCode)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cores)
            .map(|c| {
                s.spawn(move || {
                    let lo = c * per;
                    let hi = ((c + 1) * per).min(n);
                    (lo..hi)
                        .map(|i| {
                            let stx = signer.sign(first + i as u64, 1250, issued);
                            let check = stx
                                .to_signed_bill()
                                .map(|b| b.check_code)
                                .unwrap_or_else(|| unreachable!("an IssueBill has a signed bill"));
                            (stx, check)
                        })
                        .collect()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let all: Vec<(SignedTx, CheckCode)> = parts.into_iter().flatten().collect();
    let mut ids = Vec::with_capacity(all.len());
    let mut batches = Vec::new();
    for chunk in all.chunks(batch) {
        let txs: Vec<&SignedTx> = chunk.iter().map(|(t, _)| t).collect();
        batches.push(
            serde_json::to_string(&serde_json::json!({ "txs": txs }))
                .unwrap_or_else(|e| unreachable!("a batch serialises: {e}")),
        );
        for (t, c) in chunk {
            if let TxBody::IssueBill(b) = &t.tx.body {
                ids.push((b.code.to_string(), b.number.to_string(), c.to_string()));
            }
        }
    }
    Presigned { batches, ids }
}

/// Submits batches from `threads` threads (thread i to `urls[i % len]`) with
/// `?wait=commit` until `seconds` pass or the batches run out. Returns (committed
/// transactions, elapsed, per-batch latency).
pub fn submit_load(
    urls: &[String],
    batches: &[String],
    threads: usize,
    seconds: f64,
) -> Result<(usize, Duration, Latencies)> {
    let next = Arc::new(AtomicUsize::new(0));
    let committed = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<Result<Latencies>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let next = Arc::clone(&next);
                let committed = Arc::clone(&committed);
                let url = urls[t % urls.len()].as_str();
                s.spawn(move || -> Result<Latencies> {
                    let agent = agent();
                    let mut lat = Latencies::default();
                    loop {
                        if Instant::now() >= deadline {
                            return Ok(lat);
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(body) = batches.get(i) else {
                            return Ok(lat);
                        };
                        let t0 = Instant::now();
                        let mut resp = agent
                            .post(&format!("{url}/v1/txs/batch?wait=commit"))
                            .header("content-type", "application/json")
                            .send(body.as_str())?;
                        let text = resp.body_mut().read_to_string()?;
                        lat.record(t0.elapsed());
                        if resp.status().as_u16() != 200 {
                            bail!(
                                "batch answered {}: {}",
                                resp.status(),
                                &text[..text.len().min(300)]
                            );
                        }
                        let v: serde_json::Value = serde_json::from_str(&text)?;
                        let ok = v["results"]
                            .as_array()
                            .map(|r| r.iter().filter(|x| x["status"] == "committed").count())
                            .unwrap_or(0);
                        committed.fetch_add(ok, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("load thread panicked")))
            })
            .collect()
    });
    let elapsed = start.elapsed();
    let mut all = Latencies::default();
    for r in results {
        all.merge(r?);
    }
    Ok((committed.load(Ordering::Relaxed), elapsed, all))
}

/// GETs `path_of(i)` from `threads` threads for `seconds`; returns (requests/s, latencies).
pub fn get_load(
    url: &str,
    threads: usize,
    seconds: f64,
    paths: &[String],
) -> Result<(f64, Latencies)> {
    anyhow::ensure!(!paths.is_empty(), "nothing to GET");
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let results: Vec<Result<(usize, Latencies)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || -> Result<(usize, Latencies)> {
                    let agent = agent();
                    let mut lat = Latencies::default();
                    let mut i = t;
                    let mut n = 0;
                    while Instant::now() < deadline {
                        let path = &paths[i % paths.len()];
                        i += threads;
                        let t0 = Instant::now();
                        let mut resp = agent.get(&format!("{url}{path}")).call()?;
                        let _ = resp.body_mut().read_to_vec()?;
                        lat.record(t0.elapsed());
                        if resp.status().as_u16() != 200 {
                            bail!("GET {path} answered {}", resp.status());
                        }
                        n += 1;
                    }
                    Ok((n, lat))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("GET thread panicked")))
            })
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    let mut total = 0;
    let mut all = Latencies::default();
    for r in results {
        let (n, l) = r?;
        total += n;
        all.merge(l);
    }
    Ok((total as f64 / secs, all))
}

/// Submits single transactions with `?wait=commit` from `threads` threads (thread i to
/// `urls[i % len]`) for `seconds`; the latency of each is submit-to-final.
pub fn single_latency(
    urls: &[String],
    txs: &[String],
    threads: usize,
    seconds: f64,
) -> Result<Latencies> {
    let next = AtomicUsize::new(0);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let results: Vec<Result<Latencies>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let next = &next;
                let url = urls[t % urls.len()].as_str();
                s.spawn(move || -> Result<Latencies> {
                    let agent = agent();
                    let mut lat = Latencies::default();
                    while Instant::now() < deadline {
                        let Some(body) = txs.get(next.fetch_add(1, Ordering::Relaxed)) else {
                            break;
                        };
                        let t0 = Instant::now();
                        let mut resp = agent
                            .post(&format!("{url}/v1/txs?wait=commit"))
                            .header("content-type", "application/json")
                            .send(body.as_str())?;
                        let text = resp.body_mut().read_to_string()?;
                        if resp.status().as_u16() != 200 {
                            bail!("tx answered {}: {text}", resp.status());
                        }
                        lat.record(t0.elapsed());
                    }
                    Ok(lat)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("latency thread panicked")))
            })
            .collect()
    });
    let mut all = Latencies::default();
    for r in results {
        all.merge(r?);
    }
    Ok(all)
}

/// Pre-signed single transactions (JSON bodies) numbered from `first`, with their ids.
pub fn presign_singles(signer: &Signer, first: u64, n: usize) -> Vec<(String, String)> {
    let issued = now_ms();
    (0..n)
        .map(|i| {
            let stx = signer.sign(first + i as u64, 300, issued);
            let id = stx.tx.id(&signer.chain_id).to_hex();
            let body = serde_json::to_string(&stx)
                .unwrap_or_else(|e| unreachable!("a tx serialises: {e}"));
            (body, id)
        })
        .collect()
}

/// Runs every dev measurement against a node at `url`; returns the report and the
/// bills committed (code, number, check code), which the `web` measurement looks up.
pub fn run(
    url: &str,
    quick: bool,
    node_rss: impl Fn() -> Result<f64>,
) -> Result<(DevReport, IssuedIds)> {
    let seconds = if quick { 8.0 } else { 30.0 };
    // Enough bills for 30 s at up to ~65,000/s (a run that uses them all up ends early
    // and says so below: it would not be "sustained for 30 s").
    let n = if quick { 600_000 } else { 2_000_000 };
    let signer = Signer::dev();
    let urls = vec![url.to_owned()];
    eprintln!("dev: pre-signing {n} bills");
    let pre = presign(&signer, 1, n, 5_000);
    eprintln!("dev: submitting batches for {seconds} s");
    let (committed, elapsed, _) = submit_load(&urls, &pre.batches, 4, seconds)?;
    let committed_per_s = committed as f64 / elapsed.as_secs_f64();
    eprintln!(
        "dev: {committed} committed in {:.1} s",
        elapsed.as_secs_f64()
    );
    if elapsed.as_secs_f64() < seconds * 0.99 {
        eprintln!(
            "dev: WARNING: every pre-signed bill was committed before {seconds} s; \
             raise the number pre-signed"
        );
    }

    eprintln!("dev: submit-to-final latency of single transactions");
    let singles: Vec<String> =
        presign_singles(&signer, 5_000_000_000, if quick { 2_000 } else { 10_000 })
            .into_iter()
            .map(|(body, _)| body)
            .collect();
    let mut lat = single_latency(&urls, &singles, 8, if quick { 4.0 } else { 10.0 })?;

    let issued = &pre.ids[..committed.min(pre.ids.len())];
    let verify_paths: Vec<String> = issued
        .iter()
        .take(100_000)
        .map(|(c, n, k)| format!("/v1/bills/{c}/{n}?check_code={k}"))
        .collect();
    let proof_paths: Vec<String> = issued
        .iter()
        .take(10_000)
        .map(|(c, n, k)| format!("/v1/bills/{c}/{n}/proof?check_code={k}"))
        .collect();
    let secs = if quick { 4 } else { 10 };
    let (verify_per_s, verify_p99_ms, proofs_per_s, load_generator) = if crate::wrk::available() {
        eprintln!("dev: verification GETs (wrk)");
        let dir = tempfile::tempdir()?;
        let (v, p99) = crate::wrk::get_load(url, &verify_paths, secs, dir.path())?;
        eprintln!("dev: proof bundles (wrk)");
        let (p, _) = crate::wrk::get_load(url, &proof_paths, secs.min(5), dir.path())?;
        (v, p99, p, "wrk")
    } else {
        eprintln!("dev: verification GETs (built-in client; install wrk for a lighter one)");
        let (v, mut vlat) = get_load(url, 8, f64::from(secs), &verify_paths)?;
        eprintln!("dev: proof bundles");
        let (p, _) = get_load(url, 4, f64::from(secs.min(5)), &proof_paths)?;
        (v, vlat.percentile_ms(99.0), p, "builtin")
    };
    let peak_rss_mb = node_rss().context("peak RSS")?;
    let issued = issued.to_vec();
    Ok((
        DevReport {
            committed_per_s: r2(committed_per_s),
            committed,
            seconds: r2(elapsed.as_secs_f64()),
            latency_p50_ms: r2(lat.percentile_ms(50.0)),
            latency_p99_ms: r2(lat.percentile_ms(99.0)),
            verify_per_s: r2(verify_per_s),
            verify_p99_ms: r2(verify_p99_ms),
            proofs_per_s: r2(proofs_per_s),
            load_generator,
            peak_rss_mb: r2(peak_rss_mb),
        },
        issued,
    ))
}
