//! `GET /v1/checkpoints/latest`: the newest checkpoint final here that a regulator's
//! observer (a witness) co-signed, with the header, the validators' commit certificate
//! and every co-signature this node holds for it (each with the witness and regulator it
//! belongs to), and the conflicting checkpoints on record.

use axum::extract::State;
use axum::http::StatusCode;
use ebill_types::checkpoint::{Checkpoint, Conflict, Cosignature, KeyId};
use ebill_types::{CommitCertificate, Header, PublicKey};
use serde::Serialize;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};

/// A co-signature with who made it.
#[derive(Debug, Serialize)]
pub struct CosignatureView {
    /// The witness key id.
    pub key_id: KeyId,
    /// The signature over the checkpoint's signed bytes.
    pub signature: ebill_types::Signature,
    /// The observer's name in the genesis.
    pub observer: String,
    /// The observer's node key.
    pub observer_key: PublicKey,
    /// The regulator it belongs to (name in the genesis).
    pub regulator: String,
    /// That regulator's key.
    pub regulator_key: PublicKey,
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct CheckpointView {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Its block's header.
    pub header: Header,
    /// The validators' commit certificate of that block.
    pub certificate: CommitCertificate,
    /// Every co-signature held for it, by key id.
    pub cosignatures: Vec<CosignatureView>,
    /// How many regulators' observers the genesis names.
    pub witnesses_in_genesis: usize,
    /// This node's last final height (the checkpoint may be a little older: witnesses
    /// co-sign after they re-execute).
    pub tip_height: u64,
    /// Conflicting checkpoints on record: two blocks at one height, each co-signed or
    /// final here. Empty on a sound chain.
    pub conflicts: Vec<Conflict>,
    /// Conflicts seen after the record was full.
    pub conflicts_dropped: u64,
}

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// `GET /v1/checkpoints/latest`: 404 `checkpoint_not_found` while no witness has
/// co-signed a block final here (no witness in the genesis, or none heard from yet).
pub async fn latest(State(st): State<AppState>) -> ApiResult {
    let backend = st.backend.clone();
    let view = blocking(move || {
        let held = backend.checkpoints();
        let store = backend.store();
        let tip_height = store.tip().map_err(storage)?.map_or(0, |t| t.height);
        let Some(latest) = held.latest else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::CHECKPOINT_NOT_FOUND,
                "no checkpoint final here is co-signed by a regulator's observer yet",
            ));
        };
        let height = latest.checkpoint.height;
        let missing = || {
            ApiError::internal(
                "reading the store",
                &format!("block {height} is co-signed but not stored"),
            )
        };
        let header = store.header(height).map_err(storage)?.ok_or_else(missing)?;
        let certificate = store
            .certificate(height)
            .map_err(storage)?
            .ok_or_else(missing)?;
        let witnesses = ebill_types::checkpoint::Witnesses::of(backend.genesis());
        let cosignatures = latest
            .cosignatures
            .iter()
            .filter_map(|c: &Cosignature| {
                witnesses.get(&c.key_id).map(|w| CosignatureView {
                    key_id: c.key_id,
                    signature: c.signature,
                    observer: w.name.clone(),
                    observer_key: w.observer_key,
                    regulator: w.regulator_name.clone(),
                    regulator_key: w.regulator_key,
                })
            })
            .collect();
        Ok(CheckpointView {
            checkpoint: latest.checkpoint,
            header,
            certificate,
            cosignatures,
            witnesses_in_genesis: witnesses.len(),
            tip_height,
            conflicts: held.conflicts,
            conflicts_dropped: held.conflicts_dropped,
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &view))
}
