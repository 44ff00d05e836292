//! `POST /v1/txs`, `POST /v1/txs/batch` and `GET /v1/txs/{id}`.

use std::fmt;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use ebill_ledger::TxLocation;
use ebill_types::{Hash32, SignedTx, TxId};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use tokio::time::Instant;

use super::{AppState, blocking};
use crate::backend::{Rejection, TxOutcome, TxStatus};
use crate::decode::{RequestBody, decode_at};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::{ApiPath, ApiQuery, StrictJson};
use crate::limits::MAX_BATCH_TXS;

/// `?wait=...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// `commit`: answer only once final (bounded by the wait timeout).
    #[serde(default)]
    pub wait: Option<Wait>,
}

/// What to wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Until the transaction is in a final block, or dropped.
    Commit,
}

use ebill_api_types::ErrorObject;
pub use ebill_api_types::{BatchAnswer, BatchItem, TxAnswer, TxState};

fn answer_pending(tx_id: TxId) -> TxAnswer {
    TxAnswer {
        tx_id,
        status: TxState::Pending,
        height: None,
        index: None,
        code: None,
        message: None,
    }
}

fn answer_committed(tx_id: TxId, loc: TxLocation) -> TxAnswer {
    TxAnswer {
        status: TxState::Committed,
        height: Some(loc.height),
        index: Some(loc.index),
        ..answer_pending(tx_id)
    }
}

fn answer_rejected(tx_id: TxId, r: Rejection) -> TxAnswer {
    TxAnswer {
        status: TxState::Rejected,
        code: Some(r.code.as_str().to_owned()),
        message: Some(r.message),
        ..answer_pending(tx_id)
    }
}

fn timeout_error(id: TxId, config: &crate::ApiConfig) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        codes::TIMEOUT,
        format!(
            "transaction {id} was admitted but is not final after {} ms; it may still commit \
             (GET /v1/txs/{id})",
            config.wait_commit_timeout.as_millis()
        ),
    )
    .with_tx(id)
}

fn shutting_down(id: TxId) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        codes::SHUTTING_DOWN,
        format!("the node stopped before transaction {id} was final"),
    )
    .with_tx(id)
}

/// `POST /v1/txs`: one signed transaction. 202 pending, or with `?wait=commit` 200
/// committed; a rejection answers its code with the mapped status.
pub async fn submit(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    StrictJson(tx): StrictJson<SignedTx>,
) -> ApiResult {
    let id = tx.tx.id(&st.backend.genesis().chain_id);
    let backend = st.backend.clone();
    let mut results = blocking(move || Ok(backend.submit(vec![tx]))).await?;
    let result = match (results.pop(), results.is_empty()) {
        (Some(r), true) => r,
        _ => {
            return Err(ApiError::internal(
                "submit answered the wrong number of results",
                &id,
            ));
        }
    };
    let id = match result {
        Ok(id) => id,
        Err(rejection) => {
            tracing::debug!(%id, code = %rejection.code, "transaction rejected");
            return Err(ApiError::rejection(&rejection).with_tx(id));
        }
    };
    if q.wait != Some(Wait::Commit) {
        return Ok(json(StatusCode::ACCEPTED, &answer_pending(id)));
    }
    let rx = st.backend.watch(id);
    match tokio::time::timeout(st.config.wait_commit_timeout, rx).await {
        Err(_) => Err(timeout_error(id, &st.config)),
        Ok(Err(_)) => Err(shutting_down(id)),
        Ok(Ok(TxOutcome::Committed(loc))) => Ok(json(StatusCode::OK, &answer_committed(id, loc))),
        Ok(Ok(TxOutcome::Rejected(r))) => Err(ApiError::rejection(&r).with_tx(id)),
    }
}

/// `GET /v1/txs/{id}`: pending, committed (height, index), rejected (code, message), or
/// 404 `tx_not_found`.
pub async fn status(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult {
    let id = Hash32::from_hex(&id).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_PATH,
            format!("a transaction id is 64 lowercase hex digits: {e}"),
        )
    })?;
    let backend = st.backend.clone();
    let answer = blocking(move || {
        Ok(match backend.tx_status(&id) {
            TxStatus::Pending => Some(answer_pending(id)),
            TxStatus::Committed(loc) => Some(answer_committed(id, loc)),
            TxStatus::Rejected(r) => Some(answer_rejected(id, r)),
            TxStatus::Unknown => backend
                .store()
                .find_tx_location(&id)
                .map_err(|e| ApiError::internal("reading the store", &e))?
                .map(|loc| answer_committed(id, loc)),
        })
    })
    .await?;
    match answer {
        Some(a) => Ok(json(StatusCode::OK, &a)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            codes::TX_NOT_FOUND,
            format!("transaction {id} is not known to this node"),
        )),
    }
}

/// The items of a batch, each parsed on its own so that one bad item does not sink the
/// others; items past [`MAX_BATCH_TXS`] are only counted.
#[derive(Debug)]
struct BatchItems {
    parsed: Vec<Result<SignedTx, ApiError>>,
    total: usize,
}

impl<'de> Deserialize<'de> for BatchItems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BatchItems;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of signed transactions")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BatchItems, A::Error> {
                let mut parsed = Vec::new();
                let mut total = 0usize;
                loop {
                    if parsed.len() < MAX_BATCH_TXS {
                        // Each item's own text, decoded as strictly as a single
                        // transaction: a generic JSON value would keep the last of a
                        // key given twice and would refuse the whole batch for one
                        // item's lone surrogate escape.
                        let Some(raw) = seq.next_element::<Box<RawValue>>()? else {
                            break;
                        };
                        let index = parsed.len();
                        parsed.push(decode_at::<SignedTx>(
                            raw.get().as_bytes(),
                            &format!("txs[{index}]"),
                        ));
                    } else if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                    total += 1;
                }
                Ok(BatchItems { parsed, total })
            }
        }
        d.deserialize_seq(V)
    }
}

/// The body of `POST /v1/txs/batch`: `{"txs": [SignedTx, ...]}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    txs: BatchItems,
}

/// Items carry their own errors; the batch itself is only its `txs` key.
impl RequestBody for BatchRequest {}

/// The error of one batch item.
fn batch_error(tx_id: Option<TxId>, e: &ApiError) -> BatchItem {
    BatchItem::Err {
        tx_id,
        error: ErrorObject {
            code: e.code.to_string(),
            message: e.message.clone(),
            tx_id: None,
        },
    }
}

/// `POST /v1/txs/batch`: `{"txs": [...]}`, per-item results in order. 202, or 200 with
/// `?wait=commit` (items not final in time stay `pending`).
pub async fn submit_batch(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<WaitQuery>,
    StrictJson(req): StrictJson<BatchRequest>,
) -> ApiResult {
    let BatchItems { parsed, total } = req.txs;
    if total > MAX_BATCH_TXS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::BATCH_TOO_LARGE,
            format!("{total} transactions in one batch, at most {MAX_BATCH_TXS}"),
        ));
    }
    let chain_id = st.backend.genesis().chain_id.clone();
    // Item i is either an error already or the j-th transaction submitted.
    let mut results: Vec<Option<BatchItem>> = Vec::with_capacity(parsed.len());
    let mut to_submit = Vec::new();
    let mut ids = Vec::new();
    for item in parsed {
        match item {
            Ok(tx) => {
                ids.push(tx.tx.id(&chain_id));
                to_submit.push(tx);
                results.push(None);
            }
            Err(e) => results.push(Some(batch_error(None, &e))),
        }
    }
    let backend = st.backend.clone();
    let n = to_submit.len();
    let answers = blocking(move || Ok(backend.submit(to_submit))).await?;
    if answers.len() != n {
        return Err(ApiError::internal(
            "submit answered the wrong number of results",
            &format!("{} for {n}", answers.len()),
        ));
    }
    let wait = q.wait == Some(Wait::Commit);
    let mut accepted_ids = Vec::new();
    let mut answers = answers.into_iter().zip(ids);
    for slot in results.iter_mut().filter(|s| s.is_none()) {
        let Some((answer, id)) = answers.next() else {
            break;
        };
        match answer {
            Ok(id) => {
                accepted_ids.push(id);
                *slot = Some(BatchItem::Ok(answer_pending(id)));
            }
            Err(r) => *slot = Some(batch_error(Some(id), &ApiError::rejection(&r))),
        }
    }
    // Watch every accepted transaction before waiting on any, so that none is missed
    // (on the blocking pool: a watch may read the store).
    let watched = if wait {
        let backend = st.backend.clone();
        blocking(move || {
            Ok(accepted_ids
                .into_iter()
                .map(|id| (id, backend.watch(id)))
                .collect::<Vec<_>>())
        })
        .await?
    } else {
        Vec::new()
    };
    let mut results: Vec<BatchItem> = results.into_iter().flatten().collect();
    let (mut committed, mut pending) = (None, None);
    if wait {
        let deadline = Instant::now() + st.config.wait_commit_timeout;
        let mut outcomes = std::collections::HashMap::new();
        for (id, rx) in watched {
            if let Ok(Ok(outcome)) = tokio::time::timeout_at(deadline, rx).await {
                outcomes.insert(id, outcome);
            }
        }
        let (mut c, mut p) = (0, 0);
        for item in &mut results {
            let BatchItem::Ok(answer) = item else {
                continue;
            };
            let id = answer.tx_id;
            match outcomes.get(&id).cloned() {
                Some(TxOutcome::Committed(loc)) => {
                    c += 1;
                    *item = BatchItem::Ok(answer_committed(id, loc));
                }
                Some(TxOutcome::Rejected(r)) => {
                    *item = batch_error(Some(id), &ApiError::rejection(&r));
                }
                None => p += 1,
            }
        }
        committed = Some(c);
        pending = Some(p);
    }
    let rejected = results
        .iter()
        .filter(|r| matches!(r, BatchItem::Err { .. }))
        .count();
    let answer = BatchAnswer {
        accepted: results.len() - rejected,
        rejected,
        results,
        committed,
        pending,
    };
    let status = if wait {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json(status, &answer).into_response())
}
