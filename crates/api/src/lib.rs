//! # ebill-api
//!
//! The HTTP API of an ebill node (docs/design.md §9.3): axum routes under `/v1` over a
//! [`Backend`] that the node implements. Every route, status code and error code is
//! documented in the crate's `README.md`.
//!
//! - [`router`] builds the routes; [`serve`] and [`serve_with`] run them on a listener,
//!   within connection, timeout and concurrency limits ([`ServerLimits`], module
//!   [`server`]), until a shutdown future resolves, then drain open requests (graceful
//!   shutdown).
//! - Every failure answers `{"error": {"code": "...", "message": "..."}}` ([`ApiError`]),
//!   including malformed JSON, a wrong content type, a body over the limit, an unknown
//!   route and a wrong method.
//! - [`openapi`] is the OpenAPI 3.1 document of the routes, served at
//!   `GET /v1/openapi.json` and held against the router by its tests.
//! - [`web`] serves the taxpayers' pages on the same router: the verification form, the
//!   result page, QR codes, a printable bill and an in-browser proof check.
//! - [`admin_router`] builds the node operator's routes (absence proofs, module
//!   [`admin`]) and the regulators' audit API (search, statistics, anomaly rules, a
//!   credit code's new bills as they become final: module [`audit`]): served only on the
//!   operator's own listener, never by [`router`].
//! - Bodies are parsed strictly: unknown fields are refused by the types, money as a
//!   JSON number is refused, and bodies are size-limited per route ([`limits`]).

pub mod admin;
pub mod audit;
pub mod backend;
pub mod decode;
pub mod error;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod proof;
pub mod routes;
pub mod server;
pub mod verdict;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use admin::{admin_router, admin_router_signed, admin_router_with};
pub use audit::AuditConfig;
pub use backend::{
    AdmissionCode, Backend, CheckpointsView, NodeMetrics, RejectCode, Rejection, Role, TxOutcome,
    TxStatus,
};
pub use error::ApiError;
pub use server::{LimitError, ServerLimits, serve_with};

/// Settings of the API that a node may change.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// How long `?wait=commit` waits for a transaction (or a whole batch) to become
    /// final before answering 504 `timeout` (single) or leaving items `pending` (batch).
    pub wait_commit_timeout: Duration,
    /// Settings of the taxpayers' pages (public URL, lookup limits).
    pub web: web::WebConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            wait_commit_timeout: limits::WAIT_COMMIT_TIMEOUT_DEFAULT,
            web: web::WebConfig::default(),
        }
    }
}

/// All routes of the API over `backend`, with the default [`ApiConfig`].
pub fn router(backend: Arc<dyn Backend>) -> axum::Router {
    router_with(backend, ApiConfig::default())
}

/// All routes of the API over `backend`, with `config`.
pub fn router_with(backend: Arc<dyn Backend>, config: ApiConfig) -> axum::Router {
    routes::build(backend, config)
}

/// Serves the API on `listener` with the default [`ApiConfig`] and [`ServerLimits`]
/// until `shutdown` resolves, then stops accepting and lets open requests finish
/// (graceful shutdown). [`serve_with`] takes a router and limits of one's own.
pub async fn serve(
    listener: tokio::net::TcpListener,
    backend: Arc<dyn Backend>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, router(backend), ServerLimits::default(), shutdown).await
}
