//! `GET /v1/bills/{code}/{number}?check_code=...` (the verdict) and
//! `GET /v1/bills/{code}/{number}/proof?check_code=...` (the proof bundle).

use axum::extract::State;
use axum::http::StatusCode;
use ebill_types::{BillCode, BillId, BillNumber, CheckCode};
use serde::Deserialize;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::{ApiPath, ApiQuery};
use crate::verdict::{Verdict, find_bill};

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
    let backend = st.backend.clone();
    let verdict = blocking(move || {
        let store = backend.store().as_ref();
        match find_bill(store, &id, &check_code)? {
            Some(found) => Verdict::build(store, backend.genesis(), &found),
            None => Err(ApiError::bill_not_found()),
        }
    })
    .await?;
    Ok(json(StatusCode::OK, &verdict))
}

/// `GET /v1/bills/{code}/{number}/proof?check_code=...`: the proof bundle.
///
/// TODO: wire to `crate::proof::build_bundle` once `crates/api/src/proof.rs` and
/// `crates/types/src/proof.rs` land; until then 501 `not_implemented` (after the same
/// checks as the verdict, so that it is no oracle either).
pub async fn proof(
    State(st): State<AppState>,
    ApiPath((code, number)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<CheckCodeQuery>,
) -> ApiResult {
    let id = parse_bill_id(&code, &number)?;
    let check_code = parse_check_code(&q)?;
    let backend = st.backend.clone();
    blocking(move || {
        let store = backend.store().as_ref();
        match find_bill(store, &id, &check_code)? {
            Some(_) => Ok(()),
            None => Err(ApiError::bill_not_found()),
        }
    })
    .await?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        codes::NOT_IMPLEMENTED,
        "proof bundles are not served by this build yet",
    ))
}
