//! The routes, one module per resource, and what they share: the state, the route
//! templates (also the `route` label of the latency histogram) and running store reads
//! off the async threads.

pub mod bills;
pub mod blocks;
pub mod checkpoints;
pub mod gov;
pub mod node;
pub mod txs;
pub mod units;
pub mod verify;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode, Uri};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Router};

use crate::ApiConfig;
use crate::backend::Backend;
use crate::error::{ApiError, codes};
use crate::extract::BodyLimit;
use crate::limits::{MAX_BATCH_BODY_BYTES, MAX_TX_BODY_BYTES};
use crate::metrics::{HttpMetrics, track_latency};

/// Route templates, exactly as registered.
pub mod paths {
    /// Submit one transaction.
    pub const TXS: &str = "/v1/txs";
    /// Submit many.
    pub const TXS_BATCH: &str = "/v1/txs/batch";
    /// A transaction's status.
    pub const TX: &str = "/v1/txs/{id}";
    /// A bill's verdict.
    pub const BILL: &str = "/v1/bills/{code}/{number}";
    /// A bill's proof bundle.
    pub const BILL_PROOF: &str = "/v1/bills/{code}/{number}/proof";
    /// Verify a bill file.
    pub const VERIFY: &str = "/v1/verify";
    /// The last block.
    pub const BLOCK_LATEST: &str = "/v1/blocks/latest";
    /// A block by height.
    pub const BLOCK: &str = "/v1/blocks/{height}";
    /// The newest co-signed checkpoint.
    pub const CHECKPOINT_LATEST: &str = "/v1/checkpoints/latest";
    /// The genesis document.
    pub const GENESIS: &str = "/v1/genesis";
    /// Node status.
    pub const STATUS: &str = "/v1/status";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// Governance proposals.
    pub const GOV_PROPOSALS: &str = "/v1/gov/proposals";
    /// One proposal.
    pub const GOV_PROPOSAL: &str = "/v1/gov/proposals/{id}";
    /// The registry of units.
    pub const UNITS: &str = "/v1/units";
    /// One unit, with its history and a state proof.
    pub const UNIT: &str = "/v1/units/{credit_code}";

    /// The OpenAPI document of these routes.
    pub const OPENAPI: &str = "/v1/openapi.json";

    /// Every template.
    pub const ALL: &[&str] = &[
        TXS,
        TXS_BATCH,
        TX,
        BILL,
        BILL_PROOF,
        VERIFY,
        BLOCK_LATEST,
        BLOCK,
        CHECKPOINT_LATEST,
        GENESIS,
        STATUS,
        HEALTHZ,
        METRICS,
        GOV_PROPOSALS,
        GOV_PROPOSAL,
        UNITS,
        UNIT,
        OPENAPI,
    ];
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    /// The node.
    pub backend: Arc<dyn Backend>,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Latency histograms.
    pub http: Arc<HttpMetrics>,
    /// Merkle trees of recently proved blocks.
    pub trees: Arc<crate::proof::TreeCache>,
    /// What bill lookups read besides the bill asked for ([`crate::verdict::Decoys`]).
    pub decoys: Arc<crate::verdict::Decoys>,
    /// The pages' state (lookup counters).
    pub web: Arc<crate::web::WebState>,
}

/// Runs `f` (store reads, signature checks) on the blocking pool; a panic in it is a
/// 500 JSON answer, not a dropped connection.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(ApiError::internal("a request task failed", &e)),
    }
}

pub(crate) async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("no route for {method} {}", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        codes::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}

/// `route` with a body limit of `max_bytes`: axum's, which cuts a body off when it
/// grows past the limit, and [`BodyLimit`] for [`crate::extract::read_body`], which
/// refuses a body whose declared length is over it before waiting for any of it.
fn with_body_limit(route: MethodRouter<AppState>, max_bytes: usize) -> MethodRouter<AppState> {
    let route: MethodRouter<AppState> = route.layer(DefaultBodyLimit::max(max_bytes));
    route.layer(Extension(BodyLimit(max_bytes)))
}

/// One route of the API (not a page): its template, its one method and its handler.
struct ApiRoute {
    path: &'static str,
    method: Method,
    handler: MethodRouter<AppState>,
}

fn route(path: &'static str, method: Method, handler: MethodRouter<AppState>) -> ApiRoute {
    ApiRoute {
        path,
        method,
        handler,
    }
}

/// Every route of the API besides the pages: what [`build`] registers and
/// [`served`] lists, so that the two cannot differ.
fn api_routes() -> Vec<ApiRoute> {
    vec![
        route(
            paths::TXS,
            Method::POST,
            with_body_limit(post(txs::submit), MAX_TX_BODY_BYTES),
        ),
        route(
            paths::TXS_BATCH,
            Method::POST,
            with_body_limit(post(txs::submit_batch), MAX_BATCH_BODY_BYTES),
        ),
        route(paths::TX, Method::GET, get(txs::status)),
        route(paths::BILL, Method::GET, get(bills::verdict)),
        route(paths::BILL_PROOF, Method::GET, get(bills::proof)),
        route(
            paths::VERIFY,
            Method::POST,
            with_body_limit(post(verify::verify), MAX_TX_BODY_BYTES),
        ),
        route(paths::BLOCK_LATEST, Method::GET, get(blocks::latest)),
        route(paths::BLOCK, Method::GET, get(blocks::by_height)),
        route(
            paths::CHECKPOINT_LATEST,
            Method::GET,
            get(checkpoints::latest),
        ),
        route(paths::GENESIS, Method::GET, get(node::genesis)),
        route(paths::STATUS, Method::GET, get(node::status)),
        route(paths::HEALTHZ, Method::GET, get(node::healthz)),
        route(paths::METRICS, Method::GET, get(node::metrics)),
        route(paths::OPENAPI, Method::GET, get(node::openapi)),
        route(paths::GOV_PROPOSALS, Method::GET, get(gov::list)),
        route(paths::GOV_PROPOSAL, Method::GET, get(gov::show)),
        route(paths::UNITS, Method::GET, get(units::list)),
        route(paths::UNIT, Method::GET, get(units::show)),
    ]
}

/// The (template, method) of every route of the API besides the pages
/// ([`crate::web::paths`]): what the OpenAPI document must describe.
pub fn served() -> Vec<(&'static str, Method)> {
    api_routes()
        .into_iter()
        .map(|r| (r.path, r.method))
        .collect()
}

/// Builds the router.
pub(crate) fn build(backend: Arc<dyn Backend>, config: ApiConfig) -> Router {
    let all_paths: Vec<&'static str> = paths::ALL
        .iter()
        .chain(crate::web::paths::ALL)
        .copied()
        .collect();
    let http = Arc::new(HttpMetrics::new(&all_paths));
    let web = crate::web::state(config.web.clone(), backend.genesis().hash());
    let state = AppState {
        web,
        backend,
        config: Arc::new(config),
        http: http.clone(),
        trees: Arc::new(crate::proof::TreeCache::new(
            crate::limits::PROOF_TREE_CACHE_BLOCKS,
        )),
        decoys: Arc::new(crate::verdict::Decoys::new()),
    };
    let mut router = Router::new();
    for route in api_routes() {
        router = router.route(route.path, route.handler);
    }
    router
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(http, track_latency))
        .with_state(state)
}
