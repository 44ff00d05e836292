//! The `web` measurement: the taxpayers' result page (`GET /b/{code}/{number}/{check}`,
//! HTML) of bills on the dev chain, with `wrk` when installed, else the built-in client.
//! The node runs with its lookup limits raised (node::start_dev writes them), since the
//! load comes from one address.

use anyhow::Result;
use serde::Serialize;

use crate::stats::r2;

/// The `web` section of the report.
#[derive(Serialize, Clone, Debug, Default)]
pub struct WebReport {
    /// Result pages answered per second.
    pub pages_per_s: f64,
    /// Their 99th percentile latency.
    pub pages_p99_ms: f64,
    /// Which client made the load: `wrk` or `builtin`.
    pub load_generator: &'static str,
}

/// Loads the result pages of `issued` (code, number, check code) at `url`.
pub fn run(url: &str, issued: &[(String, String, String)], quick: bool) -> Result<WebReport> {
    let paths: Vec<String> = issued
        .iter()
        .take(100_000)
        .map(|(c, n, k)| format!("/b/{c}/{n}/{k}"))
        .collect();
    let secs = if quick { 4 } else { 10 };
    let (pages_per_s, pages_p99_ms, load_generator) = if crate::wrk::available() {
        eprintln!("web: result pages (wrk)");
        let dir = tempfile::tempdir()?;
        let (v, p99) = crate::wrk::get_load(url, &paths, secs, dir.path())?;
        (v, p99, "wrk")
    } else {
        eprintln!("web: result pages (built-in client; install wrk for a lighter one)");
        let (v, mut lat) = crate::dev::get_load(url, 8, f64::from(secs), &paths)?;
        (v, lat.percentile_ms(99.0), "builtin")
    };
    Ok(WebReport {
        pages_per_s: r2(pages_per_s),
        pages_p99_ms: r2(pages_p99_ms),
        load_generator,
    })
}
