//! `/metrics` in the Prometheus text format: the node's counters (read from the
//! [`Backend`](crate::Backend) at scrape time) and a latency histogram of HTTP requests
//! per route template, kept with atomics by a middleware.
//!
//! Label cardinality is bounded: the `route` label is the matched route template (for
//! example `/v1/bills/{code}/{number}`), or `unmatched` for requests no route matched,
//! never the raw path.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

use crate::backend::NodeMetrics;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

const BUCKETS: usize = LATENCY_BUCKETS_SECONDS.len();

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// One latency histogram: a counter per bucket (not cumulative inside; cumulated when
/// rendered), the sum in nanoseconds and the count.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS_SECONDS.iter().position(|&le| secs <= le)
            && let Some(b) = self.buckets.get(i)
        {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, name: &str, route: &str, out: &mut String) {
        let route = escape_label(route);
        let mut cumulative = 0u64;
        for (le, b) in LATENCY_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            cumulative += b.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {count}");
    }
}

/// Latency histograms of the HTTP API, one per route template, all created up front
/// (so that recording needs no lock).
#[derive(Debug)]
pub struct HttpMetrics {
    by_route: BTreeMap<&'static str, Histogram>,
}

impl HttpMetrics {
    /// Histograms for `routes` and for [`UNMATCHED_ROUTE`].
    pub fn new(routes: &[&'static str]) -> Self {
        let mut by_route = BTreeMap::new();
        for r in routes.iter().copied().chain([UNMATCHED_ROUTE]) {
            by_route.insert(r, Histogram::default());
        }
        Self { by_route }
    }

    /// Records a request to `route` (a template; anything unknown counts as unmatched).
    pub fn observe(&self, route: Option<&str>, elapsed: Duration) {
        let h = route
            .and_then(|r| self.by_route.get(r))
            .or_else(|| self.by_route.get(UNMATCHED_ROUTE));
        if let Some(h) = h {
            h.observe(elapsed);
        }
    }

    fn render(&self, out: &mut String) {
        let name = "ebill_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time to answer an HTTP request, by route template."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (route, h) in &self.by_route {
            h.render(name, route, out);
        }
    }
}

/// Middleware: times every request and records it under its matched route template.
pub async fn track_latency(
    State(metrics): State<Arc<HttpMetrics>>,
    req: Request,
    next: Next,
) -> Response {
    let route = req.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let route = route.as_ref().map(MatchedPath::as_str);
    metrics.observe(route, elapsed);
    tracing::debug!(
        %method,
        route = route.unwrap_or(UNMATCHED_ROUTE),
        status = resp.status().as_u16(),
        elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "http request"
    );
    resp
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The whole exposition: node counters, then HTTP latencies.
pub fn render(node: &NodeMetrics, http: &HttpMetrics) -> String {
    let mut out = String::new();
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {v}");
    };
    gauge(
        &mut out,
        "ebill_height",
        "Height of the last final block.",
        "gauge",
        node.height,
    );
    gauge(
        &mut out,
        "ebill_committed_txs_total",
        "Transactions committed since genesis.",
        "counter",
        node.committed_txs,
    );
    gauge(
        &mut out,
        "ebill_mempool_txs",
        "Transactions waiting in the mempool.",
        "gauge",
        node.mempool_txs,
    );
    let name = "ebill_rejections_total";
    let _ = writeln!(
        out,
        "# HELP {name} Transactions rejected since start, by code."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for (code, n) in &node.rejections {
        let _ = writeln!(out, "{name}{{code=\"{}\"}} {n}", escape_label(code));
    }
    labelled(
        &mut out,
        "ebill_dropped_total",
        "Messages dropped because a queue was full, by queue.",
        "counter",
        "queue",
        &node.dropped,
    );
    labelled(
        &mut out,
        "ebill_net_total",
        "Network events since start, by kind.",
        "counter",
        "kind",
        &node.net,
    );
    labelled(
        &mut out,
        "ebill_consensus_events",
        "Consensus counters of the height in progress, by kind.",
        "gauge",
        "kind",
        &node.consensus,
    );
    http.render(&mut out);
    out
}

/// One metric family with one label, its values by label value.
fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    kind: &str,
    label: &str,
    values: &BTreeMap<&'static str, u64>,
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (value, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {n}", escape_label(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_renders_cumulative_buckets() {
        let m = HttpMetrics::new(&["/a"]);
        m.observe(Some("/a"), Duration::from_millis(3));
        m.observe(Some("/a"), Duration::from_millis(300));
        m.observe(Some("/nope"), Duration::from_secs(100));
        let text = render(&NodeMetrics::default(), &m);
        assert!(
            text.contains(
                "ebill_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 1"
            )
        );
        assert!(
            text.contains("ebill_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.5\"} 2")
        );
        assert!(text.contains("ebill_http_request_duration_seconds_count{route=\"/a\"} 2"));
        assert!(text.contains(
            "ebill_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"30\"} 0"
        ));
        assert!(text.contains(
            "ebill_http_request_duration_seconds_bucket{route=\"unmatched\",le=\"+Inf\"} 1"
        ));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
