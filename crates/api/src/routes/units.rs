//! `GET /v1/units` (the registry) and `GET /v1/units/{credit_code}` (one unit with its
//! registry history and a proof of its record in the state tree).

use axum::extract::State;
use axum::http::StatusCode;
use ebill_ledger::{UnitRecord, UnitRole};
use ebill_types::state_tree::StateKey;
use ebill_types::{Canonical, CreditCode};

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::ApiPath;

pub use ebill_api_types::{EventView, RecordProof, UnitAnswer, UnitList, UnitView};

/// The view of `u` at block time `time_ms`; `in_genesis` from the genesis list.
pub fn unit_view(u: &UnitRecord, time_ms: u64, in_genesis: bool) -> UnitView {
    {
        let lapsed = u
            .valid_until
            .is_some_and(|v| i128::from(time_ms) > i128::from(v.unix_ms));
        UnitView {
            credit_code: u.credit_code,
            name: u.name.clone(),
            role: match u.role {
                UnitRole::Issuer { .. } => "issuer",
                UnitRole::Reimburser => "reimburser",
            }
            .to_owned(),
            code_prefixes: match &u.role {
                UnitRole::Issuer { code_prefixes } => Some(code_prefixes.clone()),
                UnitRole::Reimburser => None,
            },
            public_key: u.public_key,
            status: match (u.revoked_at, lapsed) {
                (Some(_), _) => "revoked",
                (None, true) => "qualification_expired",
                (None, false) => "active",
            }
            .to_owned(),
            revoked_at: u.revoked_at,
            valid_until: u.valid_until,
            in_genesis,
            history: u
                .events
                .iter()
                .map(|e| EventView {
                    action: e.action.as_str().to_owned(),
                    height: e.height,
                    tx_id: e.tx_id,
                })
                .collect(),
        }
    }
}

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// The tip height and block time (the genesis time before block 1).
fn tip_time(st: &AppState) -> Result<(u64, u64), ApiError> {
    let store = st.backend.store();
    let Some(tip) = store.tip().map_err(storage)? else {
        let g = st.backend.genesis().genesis_time.unix_ms;
        return Ok((0, u64::try_from(g).unwrap_or(0)));
    };
    let header = store
        .header(tip.height)
        .map_err(storage)?
        .ok_or_else(|| ApiError::internal("reading the store", &"the tip has no header"))?;
    Ok((tip.height, header.time_ms))
}

fn in_genesis(st: &AppState, code: &CreditCode) -> bool {
    let g = st.backend.genesis();
    g.issuers.iter().any(|u| u.credit_code == *code)
        || g.reimbursers.iter().any(|u| u.credit_code == *code)
}

/// `GET /v1/units`
pub async fn list(State(st): State<AppState>) -> ApiResult {
    let answer = blocking(move || {
        let (height, time_ms) = tip_time(&st)?;
        let units = st.backend.store().units().map_err(storage)?;
        Ok(UnitList {
            height,
            units: units
                .iter()
                .map(|u| unit_view(u, time_ms, in_genesis(&st, &u.credit_code)))
                .collect(),
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &answer))
}

/// `GET /v1/units/{credit_code}`
pub async fn show(State(st): State<AppState>, ApiPath(code): ApiPath<String>) -> ApiResult {
    let code = CreditCode::parse(&code)
        .map_err(|e| ApiError::bad_request(codes::INVALID_PATH, e.to_string()))?;
    let answer = blocking(move || {
        let store = st.backend.store();
        let key = StateKey::Unit(code);
        // A block committed between the reads would mix two states: read again until
        // the root did not move (twice at most in practice).
        for _ in 0..4 {
            let (height, time_ms) = tip_time(&st)?;
            let root = store.state_root().map_err(storage)?;
            let Some(unit) = store.find_unit(&code).map_err(storage)? else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    codes::UNIT_NOT_FOUND,
                    format!("{code} is not a registered unit"),
                ));
            };
            let proof = store.prove_state(&key).map_err(storage)?;
            let record = unit.to_canonical_bytes();
            let holds = proof
                .verify_member(&root, &key.hash(), &key.value_hash(&record))
                .is_ok();
            if !holds || store.state_root().map_err(storage)? != root {
                continue;
            }
            return Ok(UnitAnswer {
                height,
                unit: unit_view(&unit, time_ms, in_genesis(&st, &code)),
                state_proof: RecordProof {
                    height,
                    state_root: root,
                    record,
                    proof: proof.to_canonical_bytes(),
                },
            });
        }
        Err(ApiError::internal(
            "proving a unit record",
            &"the state moved under every read",
        ))
    })
    .await?;
    Ok(json(StatusCode::OK, &answer))
}
