//! `GET /v1/bills/{code}/{number}?check_code=...` (the verdict) and
//! `GET /v1/bills/{code}/{number}/proof?check_code=...[&format=binary]` (the proof
//! bundle).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use ebill_types::checkpoint::Checkpoint;
use ebill_types::proof::{BUNDLE_VERSION, BUNDLE_VERSION_2, MAX_BUNDLE_WITNESSES};
use ebill_types::{BillCode, BillId, BillNumber, CheckCode};
use serde::Deserialize;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::{ApiPath, ApiQuery};
use crate::proof::{BundleError, build_bundle_with};
use crate::verdict::find_bill;

/// `?check_code=...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckCodeQuery {
    /// The bill's check code (required).
    #[serde(default)]
    pub check_code: Option<String>,
}

/// Parses the path's code and number: 400 `invalid_path` if malformed (the format is
/// public: this tells nothing about which bills exist).
pub(crate) fn parse_bill_id(code: &str, number: &str) -> Result<BillId, ApiError> {
    let code = BillCode::parse(code)
        .map_err(|e| ApiError::bad_request(codes::INVALID_PATH, e.to_string()))?;
    let number = BillNumber::parse(number)
        .map_err(|e| ApiError::bad_request(codes::INVALID_PATH, e.to_string()))?;
    Ok(BillId { code, number })
}

/// The check code of the query: 400 `missing_check_code` or `invalid_check_code`.
pub(crate) fn parse_check_code(q: &CheckCodeQuery) -> Result<CheckCode, ApiError> {
    let Some(s) = q.check_code.as_deref() else {
        return Err(ApiError::bad_request(
            codes::MISSING_CHECK_CODE,
            "the check code is required: ?check_code=xxxxxx",
        ));
    };
    CheckCode::parse(s).map_err(|_| {
        ApiError::bad_request(
            codes::INVALID_CHECK_CODE,
            "a check code is 6 characters of 0-9 and a-z",
        )
    })
}

/// `GET /v1/bills/{code}/{number}?check_code=...`: the verdict, or the one 404 for an
/// unknown bill and a wrong check code.
pub async fn verdict(
    State(st): State<AppState>,
    ApiPath((code, number)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<CheckCodeQuery>,
) -> ApiResult {
    let id = parse_bill_id(&code, &number)?;
    let check_code = parse_check_code(&q)?;
    // A verdict is a handful of point reads, mostly from RocksDB's block cache: cheaper
    // on this worker than the hand-off to the blocking pool and back.
    let backend = &st.backend;
    let store = backend.store().as_ref();
    let verdict = match find_bill(store, &st.decoys, &id, &check_code)? {
        Some(found) => crate::verdict::build_verdict(store, backend.genesis(), &found)?,
        None => return Err(ApiError::bill_not_found()),
    };
    Ok(json(StatusCode::OK, &verdict))
}

/// `?check_code=...&format=json|binary` of the proof route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofQuery {
    /// The bill's check code (required).
    #[serde(default)]
    pub check_code: Option<String>,
    /// `json` (the default) or `binary` (the compact canonical form,
    /// `application/octet-stream`).
    #[serde(default)]
    pub format: Option<ProofFormat>,
    /// `3` (the default: with the witnesses' co-signatures of the state checkpoint) or
    /// `2` (the same bundle without them, for verifiers that read only versions 1 and 2).
    #[serde(default)]
    pub version: Option<u32>,
}

/// The form of a proof bundle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProofFormat {
    /// JSON.
    #[default]
    Json,
    /// The compact binary form (`ProofBundle::to_bytes`).
    Binary,
}

fn bundle_error(e: &BundleError) -> ApiError {
    match e {
        BundleError::UnknownBill(_) => ApiError::bill_not_found(),
        BundleError::TooLarge(_) => {
            tracing::warn!(error = %e, "proof bundle over its limit");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::BUNDLE_TOO_LARGE,
                e.to_string(),
            )
        }
        BundleError::Busy(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            codes::OVERLOADED,
            e.to_string(),
        ),
        BundleError::Store(_) | BundleError::Inconsistent(_) => {
            ApiError::internal("building a proof bundle", e)
        }
    }
}

/// `GET /v1/bills/{code}/{number}/proof?check_code=...`: the proof bundle
/// ([`crate::proof::build_bundle`]), after the same check-code test as the verdict (the
/// same 404 for an unknown bill and a wrong check code).
pub async fn proof(
    State(st): State<AppState>,
    ApiPath((code, number)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<ProofQuery>,
) -> ApiResult {
    let id = parse_bill_id(&code, &number)?;
    let check_code = parse_check_code(&CheckCodeQuery {
        check_code: q.check_code,
    })?;
    let version = match q.version {
        None | Some(BUNDLE_VERSION) => BUNDLE_VERSION,
        Some(BUNDLE_VERSION_2) => BUNDLE_VERSION_2,
        Some(v) => {
            return Err(ApiError::bad_request(
                codes::INVALID_QUERY,
                format!("version is {BUNDLE_VERSION_2} or {BUNDLE_VERSION}, not {v}"),
            ));
        }
    };
    let backend = st.backend.clone();
    let trees = st.trees.clone();
    let decoys = st.decoys.clone();
    let bundle = blocking(move || {
        let store = backend.store().as_ref();
        if find_bill(store, &decoys, &id, &check_code)?.is_none() {
            return Err(ApiError::bill_not_found());
        }
        let mut bundle = build_bundle_with(store, backend.genesis(), &id, &trees)
            .map_err(|e| bundle_error(&e))?;
        bundle.version = version;
        if version == BUNDLE_VERSION
            && let Some(state) = &bundle.state
        {
            bundle.witnesses = backend.cosignatures(&Checkpoint::of(&state.header));
            bundle.witnesses.truncate(MAX_BUNDLE_WITNESSES);
        }
        Ok(bundle)
    })
    .await?;
    match q.format.unwrap_or_default() {
        ProofFormat::Json => Ok(json(StatusCode::OK, &bundle)),
        ProofFormat::Binary => {
            let mut resp = (StatusCode::OK, bundle.to_bytes()).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            Ok(resp)
        }
    }
}
