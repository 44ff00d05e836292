//! GET load with `wrk` (Debian's package), when it is installed: a C load generator needs a
//! fraction of the CPU that the built-in Rust client needs, and on a 2-core machine the load
//! generator shares the cores with the node it measures. Without `wrk` the built-in
//! generator is used, and the report says which one ran.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// True if `wrk` is on the PATH.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .output()
        .map(|o| !o.stdout.is_empty() || !o.stderr.is_empty())
        .unwrap_or(false)
}

/// Runs `wrk` for `seconds` over `paths` (cycled) on 2 threads and 32 connections;
/// returns (requests/s, p99 in ms). Every answer must be 2xx.
pub fn get_load(url: &str, paths: &[String], seconds: u32, dir: &Path) -> Result<(f64, f64)> {
    anyhow::ensure!(!paths.is_empty(), "nothing to GET");
    let script = dir.join("paths.lua");
    let list: Vec<String> = paths.iter().map(|p| format!("{p:?}")).collect();
    let lua = format!(
        "paths = {{{}}}\ni = 0\nrequest = function()\n  i = (i % #paths) + 1\n  return wrk.format(\"GET\", paths[i])\nend\n\
         done = function(summary, latency, requests)\n  io.write(string.format(\"NON2XX %d\\n\", summary.errors.status))\nend\n",
        list.join(",")
    );
    std::fs::write(&script, lua)?;
    let out = Command::new("wrk")
        .args(["-t2", "-c32", &format!("-d{seconds}s"), "--latency", "-s"])
        .arg(&script)
        .arg(url)
        .output()
        .context("run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {text}");
    }
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("no Requests/sec in wrk's output")?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .and_then(|v| parse_latency_ms(v.trim()))
        .context("no 99% latency in wrk's output")?;
    let non2xx = text
        .lines()
        .find_map(|l| l.strip_prefix("NON2XX "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if non2xx > 0 || text.contains("Non-2xx") {
        bail!("wrk saw answers other than 2xx: {text}");
    }
    Ok((rate, p99))
}

/// `608.00us`, `2.09ms`, `1.20s` -> milliseconds.
fn parse_latency_ms(v: &str) -> Option<f64> {
    if let Some(x) = v.strip_suffix("us") {
        return x.parse::<f64>().ok().map(|x| x / 1000.0);
    }
    if let Some(x) = v.strip_suffix("ms") {
        return x.parse().ok();
    }
    v.strip_suffix('s')
        .and_then(|x| x.parse::<f64>().ok())
        .map(|x| x * 1000.0)
}
