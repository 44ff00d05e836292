//! `GET /v1/blocks/latest` and `GET /v1/blocks/{height}`: header fields, block hash,
//! transaction ids and commit certificate.

use axum::extract::State;
use axum::http::StatusCode;
use ebill_types::Timestamp;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::ApiPath;

/// A block as answered (shared with the client).
pub use ebill_api_types::BlockView;

fn block_not_found(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, codes::BLOCK_NOT_FOUND, message)
}

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// Loads the block at `height` (`None` for the tip).
async fn load(st: &AppState, height: Option<u64>) -> ApiResult {
    let backend = st.backend.clone();
    let view = blocking(move || {
        let store = backend.store();
        let height = match height {
            Some(h) => h,
            None => match store.tip().map_err(storage)? {
                Some(tip) => tip.height,
                None => return Err(block_not_found("no block has been committed yet".into())),
            },
        };
        let Some(block) = store.block(height).map_err(storage)? else {
            return Err(block_not_found(format!("no block at height {height}")));
        };
        let certificate = store.certificate(height).map_err(storage)?;
        let h = &block.header;
        Ok(BlockView {
            height: h.height,
            hash: h.hash(),
            chain_id: h.chain_id.clone(),
            prev_hash: h.prev_hash,
            time: Timestamp::from_unix_ms(i64::try_from(h.time_ms).unwrap_or(i64::MAX)),
            proposer: h.proposer,
            tx_root: h.tx_root,
            tx_count: h.tx_count,
            validator_set_hash: h.validator_set_hash,
            state_root: h.state_root,
            tx_ids: block.tx_ids(),
            certificate,
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}

/// `GET /v1/blocks/latest`: the last committed block; 404 before block 1.
pub async fn latest(State(st): State<AppState>) -> ApiResult {
    load(&st, None).await
}

/// `GET /v1/blocks/{height}`: 400 `invalid_path` unless the height is decimal digits,
/// 404 `block_not_found` for height 0 (see `/v1/genesis`) or past the tip.
pub async fn by_height(State(st): State<AppState>, ApiPath(height): ApiPath<String>) -> ApiResult {
    let parsed =
        if !height.is_empty() && height.len() <= 20 && height.bytes().all(|b| b.is_ascii_digit()) {
            height.parse::<u64>().ok()
        } else {
            None
        };
    let Some(h) = parsed else {
        return Err(ApiError::bad_request(
            codes::INVALID_PATH,
            format!("a block height is a decimal number, not {height:?}"),
        ));
    };
    if h == 0 {
        return Err(block_not_found(
            "height 0 is the genesis, not a block: GET /v1/genesis".into(),
        ));
    }
    load(&st, Some(h)).await
}
