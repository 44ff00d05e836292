//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), encoded by
//! `prometheus-client`: the node's counters (read from the [`Backend`](crate::Backend)
//! at scrape time) and a latency histogram of HTTP requests per route template.
//!
//! Label cardinality is bounded: the `route` label is the matched route template (for
//! example `/v1/bills/{code}/{number}`), or `unmatched` for requests no route matched,
//! never the raw path; every route's histogram exists from the start.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::backend::NodeMetrics;

/// Upper bounds of the latency buckets, in seconds.
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The `route` label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One label and its value.
type Label = [(&'static str, String); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS_SECONDS.iter().copied())
}

/// Latency histograms of the HTTP API, one per route template, all created up front.
#[derive(Debug)]
pub struct HttpMetrics {
    routes: Vec<&'static str>,
    by_route: Family<Label, Histogram, fn() -> Histogram>,
}

impl HttpMetrics {
    /// Histograms for `routes` and for [`UNMATCHED_ROUTE`].
    pub fn new(routes: &[&'static str]) -> Self {
        let by_route: Family<Label, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        let routes: Vec<&'static str> = routes.iter().copied().chain([UNMATCHED_ROUTE]).collect();
        for r in &routes {
            // Created now, so that every route is exposed before its first request.
            let _created = by_route.get_or_create(&[("route", (*r).to_owned())]);
        }
        Self { routes, by_route }
    }

    /// Records a request to `route` (a template; anything unknown counts as unmatched).
    pub fn observe(&self, route: Option<&str>, elapsed: Duration) {
        let route = route
            .and_then(|r| self.routes.iter().find(|known| **known == r))
            .copied()
            .unwrap_or(UNMATCHED_ROUTE);
        self.by_route
            .get_or_create(&[("route", route.to_owned())])
            .observe(elapsed.as_secs_f64());
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

fn gauge(registry: &mut Registry, name: &str, help: &str, value: u64) {
    let g = Gauge::<u64, AtomicU64>::default();
    g.set(value);
    registry.register(name, help, g);
}

/// A counter family with one label, its values by label value. `name` is without the
/// `_total` suffix, which the encoding adds to every counter sample.
fn counters<'a>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) {
    let family = Family::<Label, Counter>::default();
    for (value, n) in values {
        family.get_or_create(&[(label, value.to_owned())]).inc_by(n);
    }
    registry.register(name, help, family);
}

/// The whole exposition: node counters, then HTTP latencies. (The encoder ends each
/// help text with a period, and leaves out a family that has no sample yet.)
pub fn render(node: &NodeMetrics, http: &HttpMetrics) -> String {
    let mut registry = Registry::default();
    gauge(
        &mut registry,
        "ebill_height",
        "Height of the last final block",
        node.height,
    );
    let committed = Counter::<u64>::default();
    committed.inc_by(node.committed_txs);
    registry.register(
        "ebill_committed_txs",
        "Transactions committed since genesis",
        committed,
    );
    gauge(
        &mut registry,
        "ebill_mempool_txs",
        "Transactions waiting in the mempool",
        node.mempool_txs,
    );
    counters(
        &mut registry,
        "ebill_rejections",
        "Transactions rejected since start, by code",
        "code",
        node.rejections.iter().map(|(k, v)| (k.as_str(), *v)),
    );
    counters(
        &mut registry,
        "ebill_dropped",
        "Messages dropped because a queue was full, by queue",
        "queue",
        node.dropped.iter().map(|(k, v)| (*k, *v)),
    );
    counters(
        &mut registry,
        "ebill_net",
        "Network events since start, by kind",
        "kind",
        node.net.iter().map(|(k, v)| (*k, *v)),
    );
    let consensus = Family::<Label, Gauge<u64, AtomicU64>>::default();
    for (kind, n) in &node.consensus {
        consensus
            .get_or_create(&[("kind", (*kind).to_owned())])
            .set(*n);
    }
    registry.register(
        "ebill_consensus_events",
        "Consensus counters of the height in progress, by kind",
        consensus,
    );
    registry.register(
        "ebill_http_request_duration_seconds",
        "Time to answer an HTTP request, by route template",
        http.by_route.clone(),
    );
    let mut out = String::new();
    // Writing to a String does not fail; a failure would be a bug of the encoder.
    if let Err(e) = encode(&mut out, &registry) {
        tracing::error!(error = %e, "encoding the metrics");
    }
    out
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
        for needle in [
            "ebill_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/a\"} 1",
            "ebill_http_request_duration_seconds_bucket{le=\"0.5\",route=\"/a\"} 2",
            "ebill_http_request_duration_seconds_count{route=\"/a\"} 2",
            "ebill_http_request_duration_seconds_bucket{le=\"30.0\",route=\"unmatched\"} 0",
            "ebill_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"unmatched\"} 1",
        ] {
            assert!(text.contains(needle), "no {needle:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let node = NodeMetrics {
            rejections: [("a\"b\\c\nd".to_owned(), 1)].into_iter().collect(),
            ..NodeMetrics::default()
        };
        let text = render(&node, &HttpMetrics::new(&[]));
        assert!(
            text.contains("ebill_rejections_total{code=\"a\\\"b\\\\c\\nd\"} 1"),
            "{text}"
        );
    }
}
