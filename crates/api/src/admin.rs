//! The node operator's API, served only on its own listener (`ebill-node --admin-api`,
//! meant for a loopback address), never by [`crate::router`].
//!
//! It answers what the public API must not: whether a bill exists without its check
//! code. `GET /admin/v1/absent/{code}/{number}[?format=binary]` is an
//! [`AbsenceProof`] that no bill with this id exists as of the tip, or `409 bill_exists`.
//! On the public API that route would let anyone enumerate the issued bill numbers; so
//! the public router has no `/admin` route at all (it answers `404 not_found`).
//!
//! The regulators' audit API lives here too ([`crate::audit`]): it shows payers
//! unmasked and lets one search every bill, which the public API must never do.
//!
//! Errors have the same shape and stable codes as the rest of the API ([`ApiError`]).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Router, body::Bytes};
use ebill_store::{Store, StoreError};
use ebill_types::absence::{ABSENCE_VERSION, AbsenceKind, AbsenceProof};
use ebill_types::state_tree::StateKey;
use ebill_types::{BillId, Canonical, Genesis};
use serde::Deserialize;
use thiserror::Error;

use crate::audit::{self, AdminState, AuditConfig};
use crate::backend::Backend;
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::{ApiPath, ApiQuery};
use crate::routes::bills::{ProofFormat, parse_bill_id};
use crate::routes::{blocking, method_not_allowed, not_found};

/// Route templates of the operator's API, exactly as registered.
pub mod paths {
    /// An absence proof of a bill id.
    pub const ABSENT: &str = "/admin/v1/absent/{code}/{number}";
}

/// Reads of one absence proof that may race a commit: at most this many tries.
const ABSENCE_READ_TRIES: usize = 4;

/// Why an absence proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AbsenceError {
    /// The bill exists: no absence proof can be made for it.
    #[error("bill {0} exists: an absence proof cannot be made for an issued bill")]
    BillExists(BillId),
    /// No block is final yet, so there is no certified header to prove against.
    #[error("no block is final yet: there is no certified header to prove absence against")]
    NoFinalBlock,
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The store lacks something its own records point at.
    #[error("inconsistent store: {0}")]
    Inconsistent(String),
    /// New blocks kept coming while the proof was read; the caller may try again.
    #[error("the chain moved on while the absence proof was read {0} times; try again")]
    Busy(usize),
}

impl AbsenceError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AbsenceError::BillExists(_) => codes::BILL_EXISTS,
            AbsenceError::NoFinalBlock => codes::NODE_NOT_READY,
            AbsenceError::Store(_) | AbsenceError::Inconsistent(_) => codes::INTERNAL,
            AbsenceError::Busy(_) => codes::OVERLOADED,
        }
    }
}

impl From<&AbsenceError> for ApiError {
    fn from(e: &AbsenceError) -> Self {
        match e {
            AbsenceError::BillExists(_) => {
                ApiError::new(StatusCode::CONFLICT, codes::BILL_EXISTS, e.to_string())
            }
            AbsenceError::NoFinalBlock => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::NODE_NOT_READY,
                e.to_string(),
            ),
            AbsenceError::Busy(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                codes::OVERLOADED,
                e.to_string(),
            ),
            AbsenceError::Store(_) | AbsenceError::Inconsistent(_) => {
                ApiError::internal("building an absence proof", e)
            }
        }
    }
}

/// The absence proof of `bill` as of the tip of `store`: the tip's header and
/// certificate and the bill key's path, read so that they belong together (the store's
/// reads are not one snapshot: a commit between them shows as a path that does not lead
/// to the header's root, and the read is made again, at most [`ABSENCE_READ_TRIES`]
/// times). A bill that exists is [`AbsenceError::BillExists`].
pub fn build_absence(
    store: &dyn Store,
    genesis: &Genesis,
    bill: &BillId,
) -> Result<AbsenceProof, AbsenceError> {
    if store.find_bill(bill)?.is_some() {
        return Err(AbsenceError::BillExists(*bill));
    }
    let key = StateKey::Bill(*bill);
    let key_hash = key.hash();
    for _ in 0..ABSENCE_READ_TRIES {
        let Some(tip) = store.tip()? else {
            return Err(AbsenceError::NoFinalBlock);
        };
        let header = store.header(tip.height)?.ok_or_else(|| {
            AbsenceError::Inconsistent(format!("the tip {} has no header", tip.height))
        })?;
        let certificate = store.certificate(tip.height)?.ok_or_else(|| {
            AbsenceError::Inconsistent(format!("the tip {} has no certificate", tip.height))
        })?;
        let path = store.prove_state(&key)?;
        if path.verify_absent(&header.state_root, &key_hash).is_ok() {
            return Ok(AbsenceProof {
                kind: AbsenceKind::Absence,
                version: ABSENCE_VERSION,
                chain_id: genesis.chain_id.clone(),
                genesis_hash: genesis.hash(),
                bill: *bill,
                header,
                certificate,
                proof: path.to_canonical_bytes(),
            });
        }
        // Either the bill was issued meanwhile, or a block was committed between the
        // header and the path: look again.
        if store.find_bill(bill)?.is_some() {
            return Err(AbsenceError::BillExists(*bill));
        }
    }
    Err(AbsenceError::Busy(ABSENCE_READ_TRIES))
}

/// `?format=json|binary` of the absence route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbsenceQuery {
    /// `json` (the default) or `binary` (`AbsenceProof::to_bytes`,
    /// `application/octet-stream`).
    #[serde(default)]
    pub format: Option<ProofFormat>,
}

/// `GET /admin/v1/absent/{code}/{number}`: the absence proof, or `409 bill_exists`.
async fn absent(
    State(st): State<AdminState>,
    ApiPath((code, number)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<AbsenceQuery>,
) -> ApiResult {
    let id = parse_bill_id(&code, &number)?;
    let backend = st.backend.clone();
    let proof = blocking(move || {
        build_absence(backend.store().as_ref(), backend.genesis(), &id)
            .map_err(|e| ApiError::from(&e))
    })
    .await?;
    match q.format.unwrap_or_default() {
        ProofFormat::Json => Ok(json(StatusCode::OK, &proof)),
        ProofFormat::Binary => {
            let mut resp = (StatusCode::OK, Bytes::from(proof.to_bytes())).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            Ok(resp)
        }
    }
}

/// The operator's routes over `backend` with the default [`AuditConfig`]: serve them
/// only on the operator's own listener (loopback), with [`crate::serve_with`], never
/// next to [`crate::router`].
pub fn admin_router(backend: Arc<dyn Backend>) -> Router {
    admin_router_with(backend, AuditConfig::default())
}

/// The operator's routes (absence proofs and the audit API, [`crate::audit`]) over
/// `backend`, with the audit rules' thresholds of `audit`.
pub fn admin_router_with(backend: Arc<dyn Backend>, audit: AuditConfig) -> Router {
    admin_router_signed(backend, audit, None)
}

/// The operator's routes, with `signer` (the node's own key) signing the manifests of
/// `GET /admin/v1/export/manifest`; without it that route answers 409 `no_signing_key`.
pub fn admin_router_signed(
    backend: Arc<dyn Backend>,
    audit: AuditConfig,
    signer: Option<ebill_types::Keypair>,
) -> Router {
    Router::new()
        .route(paths::ABSENT, get(absent))
        .route(audit::paths::BILLS, get(audit::bills))
        .route(audit::paths::BILL, get(audit::bill))
        .route(audit::paths::STATS, get(audit::stats))
        .route(audit::paths::ANOMALIES, get(audit::anomalies))
        .route(audit::paths::RULES, get(audit::rule_list))
        .route(audit::paths::STREAM, get(audit::stream::stream))
        .route(audit::paths::EXPORT, get(audit::export::export))
        .route(audit::paths::EXPORT_MANIFEST, get(audit::export::manifest))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(AdminState {
            backend,
            audit: Arc::new(audit),
            signer: signer.map(Arc::new),
            exports: Arc::new(tokio::sync::Semaphore::new(
                audit::export::MAX_CONCURRENT_EXPORTS,
            )),
        })
}
