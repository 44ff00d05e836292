//! `POST /v1/verify`: a signed bill file as the payer received it (the bill's JSON plus
//! `signature` and `check_code`).
//!
//! - code, number and check code not on chain (or a wrong check code): the same 404
//!   `bill_not_found` as `GET /v1/bills/...`, byte for byte (no oracle);
//! - on chain, and the file is exactly the committed bill (same IssueBill transaction id,
//!   i.e. the same canonical bytes) with the committed signature: 200 with the verdict;
//! - on chain, but the file differs (tampered contents or another signature): 200 with
//!   `{"authentic": false, "final": false, "reason", "message", "differing_fields", ...}`.
//!   Whoever gets this answer already proved knowledge of the check code, so telling them
//!   what differs reveals nothing the verdict would not.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use ebill_types::{CheckCode, SignedBill, SignedTx};

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, json};
use crate::extract::StrictJson;
use crate::verdict::{NotAuthentic, differing_fields, find_bill};

/// `POST /v1/verify`.
pub async fn verify(
    State(st): State<AppState>,
    StrictJson(file): StrictJson<SignedBill>,
) -> ApiResult {
    let backend = st.backend.clone();
    let decoys = st.decoys.clone();
    blocking(move || {
        let store = backend.store().as_ref();
        let genesis = backend.genesis();
        let id = file.bill.id();
        let Some(found) = find_bill(store, &decoys, &id, &file.check_code)? else {
            return Err(ApiError::bill_not_found());
        };
        let file_tx = SignedTx::from_signed_bill(&file);
        let on_chain_tx_id = found.record.issue_tx();
        let not_authentic = |reason: &'static str, message: String, fields: Vec<&'static str>| -> Response {
            json(
                StatusCode::OK,
                &NotAuthentic {
                    authentic: false,
                    is_final: false,
                    code: id.code,
                    number: id.number,
                    reason,
                    message,
                    differing_fields: fields,
                    on_chain_tx_id,
                },
            )
        };
        if file_tx.tx.id(&genesis.chain_id) != on_chain_tx_id {
            let fields = differing_fields(&file.bill, &found.bill);
            let message = if fields.is_empty() {
                "this file's bill is not the bill committed under this code and number".to_owned()
            } else {
                format!(
                    "this file's bill differs from the bill committed under this code and number in: {}",
                    fields.join(", ")
                )
            };
            return Ok(not_authentic("content_mismatch", message, fields));
        }
        if file_tx.auth != found.issue_tx.auth {
            return Ok(not_authentic(
                "signature_mismatch",
                "this file's signature is not the issuer's signature committed with this bill".to_owned(),
                vec!["signature"],
            ));
        }
        if !CheckCode::derive(&file.signature).ct_eq(&file.check_code) {
            return Ok(not_authentic(
                "check_code_mismatch",
                "this file's check code is not derived from its signature".to_owned(),
                vec!["check_code"],
            ));
        }
        let verdict = crate::verdict::build_verdict(store, genesis, &found)?;
        Ok(json(StatusCode::OK, &verdict))
    })
    .await
}
