//! `GET /v1/gov/proposals[?status=pending|executed|rejected|withdrawn|expired]` and
//! `GET /v1/gov/proposals/{id}`: governance proposals as the state holds them, with
//! their status at the next height, who voted, and what is still missing.

use axum::extract::State;
use axum::http::StatusCode;
use ebill_ledger::{GovState, ProposalRecord, ProposalStatus};
use ebill_types::Hash32;
use ebill_types::genesis::Regulators;
use serde::Deserialize;

use super::{AppState, blocking};
use crate::error::{ApiError, ApiResult, codes, json};
use crate::extract::{ApiPath, ApiQuery};

/// Most proposals one list answer carries (the newest first).
pub const MAX_LISTED_PROPOSALS: usize = 1_000;

/// `?status=...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Only proposals in this status.
    #[serde(default)]
    pub status: Option<String>,
}

pub use ebill_api_types::{ProposalAnswer, ProposalList, ProposalView, RegulatorView, VoteView};

fn regulator(set: &Regulators, index: u16) -> Option<RegulatorView> {
    set.keys.get(usize::from(index)).map(|r| RegulatorView {
        index,
        name: r.name.clone(),
        public_key: r.public_key,
    })
}

/// The view of `rec` for a transaction at `next_height` under `gov`.
pub fn proposal_view(rec: &ProposalRecord, next_height: u64, gov: &GovState) -> ProposalView {
    {
        let votes = |v: &[ebill_ledger::Vote]| -> Vec<VoteView> {
            v.iter()
                .filter_map(|v| {
                    Some(VoteView {
                        regulator: regulator(&rec.regulators, v.index)?,
                        height: v.height,
                        tx_id: v.tx_id,
                    })
                })
                .collect()
        };
        let status = rec.status_at(next_height);
        ProposalView {
            id: rec.id,
            kind: rec.action.kind().as_str().to_owned(),
            action: rec.action.clone(),
            status,
            stale: status == ProposalStatus::Pending && rec.base_gov_seq != gov.gov_seq,
            base_gov_seq: rec.base_gov_seq,
            expires_at_height: rec.expires_at_height,
            proposed_height: rec.proposed_height,
            proposer: regulator(&rec.regulators, rec.proposer),
            threshold: rec.regulators.threshold,
            approvals_missing: rec.approvals_missing(),
            regulators: (0..rec.regulators.keys.len())
                .filter_map(|i| regulator(&rec.regulators, u16::try_from(i).ok()?))
                .collect(),
            approvals: votes(&rec.approvals),
            rejections: votes(&rec.rejections),
            outcome: rec.outcome,
        }
    }
}

fn storage(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading the store", &e)
}

/// The tip height (0 before block 1) and the governance record in force.
pub(crate) fn governance(st: &AppState) -> Result<(u64, GovState), ApiError> {
    let store = st.backend.store();
    let height = store.tip().map_err(storage)?.map_or(0, |t| t.height);
    let gov = store
        .find_governance()
        .map_err(storage)?
        .unwrap_or_else(|| GovState::genesis(&st.backend.genesis().regulators));
    Ok((height, gov))
}

/// `GET /v1/gov/proposals[?status=...]`
pub async fn list(State(st): State<AppState>, ApiQuery(q): ApiQuery<StatusQuery>) -> ApiResult {
    let wanted = match q.status.as_deref() {
        None => None,
        Some(s) => Some(ProposalStatus::parse(s).ok_or_else(|| {
            ApiError::bad_request(
                codes::INVALID_QUERY,
                format!(
                    "status {s:?}: one of {}",
                    ProposalStatus::ALL.map(|s| s.as_str()).join(", ")
                ),
            )
        })?),
    };
    let answer = blocking(move || {
        let (height, gov) = governance(&st)?;
        let mut all = st.backend.store().proposals().map_err(storage)?;
        all.retain(|p| wanted.is_none_or(|w| p.status_at(height + 1) == w));
        all.sort_by_key(|p| std::cmp::Reverse((p.proposed_height, p.id.0)));
        let total = all.len();
        let proposals = all
            .iter()
            .take(MAX_LISTED_PROPOSALS)
            .map(|p| proposal_view(p, height + 1, &gov))
            .collect();
        Ok(ProposalList {
            height,
            gov_seq: gov.gov_seq,
            regulators: gov.regulators,
            total,
            proposals,
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &answer))
}

/// `GET /v1/gov/proposals/{id}`
pub async fn show(State(st): State<AppState>, ApiPath(id): ApiPath<String>) -> ApiResult {
    let id = Hash32::from_hex(&id).map_err(|e| {
        ApiError::bad_request(
            codes::INVALID_PATH,
            format!("a proposal id is 64 hex digits: {e}"),
        )
    })?;
    let answer = blocking(move || {
        let (height, gov) = governance(&st)?;
        let Some(rec) = st.backend.store().find_proposal(&id).map_err(storage)? else {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::PROPOSAL_NOT_FOUND,
                format!("no proposal {id}"),
            ));
        };
        Ok(ProposalAnswer {
            height,
            gov_seq: gov.gov_seq,
            proposal: proposal_view(&rec, height + 1, &gov),
        })
    })
    .await?;
    Ok(json(StatusCode::OK, &answer))
}
