//! `GET /admin/v1/stream?issuer=CODE`: every bill issued under a credit code, as its
//! block becomes final, as server-sent events. A hospital that watches its own code
//! sees at once a bill it never issued (its key was stolen).
//!
//! Each event is `event: bill` with a JSON `data:` line ([`BillEvent`]); a comment line
//! keeps the connection alive every [`KEEP_ALIVE`]. The stream starts at the tip when
//! it is opened; `?from_height=H` replays from block H on (at most
//! [`MAX_REPLAY_BLOCKS`] blocks back).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ebill_store::Store;
use ebill_types::{CreditCode, TxBody};
use serde::Deserialize;

use super::AdminState;
use super::params;
use crate::error::ApiError;
use crate::extract::ApiQuery;

/// How often an idle stream sends a comment.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the stream looks at the tip when the backend cannot tell it of commits.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Most blocks `from_height` may reach back.
pub const MAX_REPLAY_BLOCKS: u64 = 10_000;

/// `stream?issuer=CODE[&from_height=H]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    issuer: Option<String>,
    from_height: Option<String>,
}

pub use ebill_api_types::audit::BillEvent;

/// The bills of `issuer` in block `height`.
fn events_of(store: &dyn Store, issuer: &CreditCode, height: u64) -> Vec<BillEvent> {
    let block = match store.block(height) {
        Ok(Some(b)) => b,
        Ok(None) => return Vec::new(),
        Err(e) => {
            tracing::warn!(height, error = %e, "stream: cannot read a block");
            return Vec::new();
        }
    };
    let chain_id = block.header.chain_id.clone();
    block
        .txs
        .iter()
        .filter_map(|tx| match &tx.tx.body {
            TxBody::IssueBill(bill) if bill.issuer == *issuer => Some(BillEvent {
                code: bill.code.as_str().to_owned(),
                number: bill.number.as_str().to_owned(),
                issuer: bill.issuer,
                kind: bill.kind,
                total_fen: bill.total.0,
                issued_at: bill.issued_at,
                height,
                block_time_ms: block.header.time_ms,
                tx_id: tx.tx.id(&chain_id),
            }),
            _ => None,
        })
        .collect()
}

struct Cursor {
    state: AdminState,
    issuer: CreditCode,
    /// The next height to read.
    next: u64,
    watch: Option<tokio::sync::watch::Receiver<u64>>,
    queue: std::collections::VecDeque<BillEvent>,
}

impl Cursor {
    fn tip(&self) -> u64 {
        self.state
            .backend
            .store()
            .tip()
            .ok()
            .flatten()
            .map_or(0, |t| t.height)
    }

    /// The next event, waiting for blocks as needed; `None` when the node stops.
    async fn next_event(&mut self) -> Option<BillEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            let tip = self.tip();
            if self.next <= tip {
                let store = self.state.backend.store().clone();
                let issuer = self.issuer;
                let (from, to) = (self.next, tip.min(self.next + 99));
                let events = tokio::task::spawn_blocking(move || {
                    (from..=to)
                        .flat_map(|h| events_of(store.as_ref(), &issuer, h))
                        .collect::<Vec<_>>()
                })
                .await
                .ok()?;
                self.queue.extend(events);
                self.next = to + 1;
                continue;
            }
            match &mut self.watch {
                Some(w) => w.changed().await.ok()?,
                None => tokio::time::sleep(POLL_INTERVAL).await,
            }
        }
    }
}

/// `GET /admin/v1/stream?issuer=CODE`.
pub(crate) async fn stream(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let Some(issuer) = params::credit_code("issuer", &q.issuer)? else {
        return Err(ApiError::bad_request(
            params::codes::INVALID_CREDIT_CODE,
            "issuer: the credit code to watch is required (?issuer=CODE)",
        ));
    };
    let watch = st.backend.commit_watch();
    let mut cursor = Cursor {
        state: st,
        issuer,
        next: 0,
        watch,
        queue: Default::default(),
    };
    let tip = cursor.tip();
    cursor.next = match q.from_height.as_deref().filter(|s| !s.is_empty()) {
        None => tip + 1,
        Some(s) => match s.parse::<u64>() {
            Ok(h) if h >= 1 && h <= tip + 1 && tip + 1 - h <= MAX_REPLAY_BLOCKS => h,
            _ => {
                return Err(ApiError::bad_request(
                    crate::error::codes::INVALID_QUERY,
                    format!(
                        "from_height: {s:?} is not a height from {} to {}",
                        (tip + 1).saturating_sub(MAX_REPLAY_BLOCKS).max(1),
                        tip + 1
                    ),
                ));
            }
        },
    };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        let e = c.next_event().await?;
        let event = Event::default()
            .event("bill")
            .json_data(&e)
            .unwrap_or_else(|_| Event::default().comment("unencodable event"));
        Some((Ok::<Event, Infallible>(event), c))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}
