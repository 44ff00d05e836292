//! `GET /v1/genesis`, `GET /v1/status`, `GET /healthz`, `GET /metrics` and
//! `GET /v1/openapi.json`.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, json};

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// `GET /v1/genesis`: the genesis document as JSON.
pub async fn genesis(State(st): State<AppState>) -> ApiResult {
    Ok(json(StatusCode::OK, st.backend.genesis()))
}

pub use ebill_api_types::StatusView;

/// `GET /v1/status`.
pub async fn status(State(st): State<AppState>) -> ApiResult {
    let backend = st.backend.clone();
    let view = blocking(move || {
        let tip = backend.store().tip().map_err(storage)?;
        let genesis = backend.genesis();
        Ok(StatusView {
            chain_id: genesis.chain_id.clone(),
            genesis_hash: genesis.hash(),
            height: tip.map_or(0, |t| t.height),
            tip_hash: tip.map(|t| t.hash),
            role: backend.role(),
            peers: backend.peers(),
            syncing: backend.syncing(),
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

#[derive(Serialize)]
struct Health {
    ok: bool,
    height: u64,
}

/// `GET /healthz`: `{"ok": true, "height"}`; 500 JSON if the store cannot be read.
pub async fn healthz(State(st): State<AppState>) -> ApiResult {
    let backend = st.backend.clone();
    let height = blocking(move || {
        Ok(backend
            .store()
            .tip()
            .map_err(storage)?
            .map_or(0, |t| t.height))
    })
    .await?;
    Ok(json(StatusCode::OK, &Health { ok: true, height }))
}

/// `GET /metrics`: the OpenMetrics text format (Prometheus scrapes it).
pub async fn metrics(State(st): State<AppState>) -> ApiResult {
    let backend = st.backend.clone();
    let node = blocking(move || Ok(backend.metrics())).await?;
    let text = crate::metrics::render(&node, &st.http);
    let mut resp = (StatusCode::OK, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
    );
    Ok(resp)
}

/// `GET /v1/openapi.json`: the OpenAPI 3.1 document of the API ([`crate::openapi`]).
pub async fn openapi() -> ApiResult {
    Ok(crate::error::json_bytes(
        StatusCode::OK,
        crate::openapi::DOCUMENT_JSON.clone(),
    ))
}
