//! Which final blocks to ask peers for while catching up. Several requests are kept in
//! flight at once, each for heights that no request in flight covers, so that the
//! peers' reads, the transfer and the decoding of the next blocks overlap this node's
//! checks and commits of the blocks it holds. Asking for one range at a time and only
//! after committing it left a quarter of a syncing observer's machine idle
//! (docs/benchmarks.md, "a profile of a syncing observer").
//!
//! A peer answers with consecutive final blocks from the first height asked for, as
//! many as fit its byte limit and at most as many as asked for, so an answer may stop
//! short of the range. The window learns from answers how many blocks one holds (its
//! span: set to what came when an answer of two or more is short, doubled up to
//! [`SYNC_BATCH_BLOCKS`] when one is full), and the heights a short answer left out are
//! no longer covered, so the next plan asks for them at once. A peer that lacks the
//! heights sends nothing: a request unanswered after the timeout is taken as lost and
//! its heights are asked for again.

use std::collections::BTreeMap;

/// Most blocks asked for in one request.
pub const SYNC_BATCH_BLOCKS: u32 = 64;
/// Requests in flight at once while catching up.
pub const SYNC_REQUESTS_IN_FLIGHT: usize = 3;

/// A request for the final blocks `from_height .. from_height + max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlocksRequest {
    /// First height wanted.
    pub from_height: u64,
    /// Most blocks wanted (at least 1).
    pub max: u32,
}

/// What an arrival of blocks was to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// No request in flight starts at its first height: an announcement, a fetch by
    /// hash, or an answer that came after its request was taken as lost and asked again.
    Unrequested,
    /// Fewer blocks than asked for: the peer's byte limit, or its tip.
    Short,
    /// As many blocks as asked for: the peer may well hold more.
    Full,
}

/// A request sent and not answered yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    /// One past the last height asked for.
    end_height: u64,
    /// When it was sent (monotonic ms).
    sent_ms: u64,
}

/// The sync requests in flight and the span of an answer.
#[derive(Debug)]
pub struct SyncWindow {
    /// Requests in flight by their first height (the first height of their answer).
    in_flight: BTreeMap<u64, Pending>,
    /// Blocks asked for in one request: 1 ..= [`SYNC_BATCH_BLOCKS`].
    span: u32,
}

impl Default for SyncWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl SyncWindow {
    /// No request in flight; the first ones ask for [`SYNC_BATCH_BLOCKS`] blocks.
    pub fn new() -> Self {
        Self {
            in_flight: BTreeMap::new(),
            span: SYNC_BATCH_BLOCKS,
        }
    }

    /// Blocks the next request asks for.
    pub fn span(&self) -> u32 {
        self.span
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// `count` consecutive blocks from `first_height` arrived: what they answer. An
    /// answer that came after its request was taken as lost and asked again elsewhere
    /// is [`Answer::Unrequested`]: the later request still waits for its own.
    pub fn answered(&mut self, first_height: u64, count: usize) -> Answer {
        let Some(pending) = self.in_flight.remove(&first_height) else {
            return Answer::Unrequested;
        };
        let asked = pending.end_height.saturating_sub(first_height);
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        if count < asked {
            // Cut short by the peer's byte limit (or its tip): ask for that many next. A
            // single block may as well be an announcement of the first height asked for,
            // which says nothing of what an answer holds.
            if count >= 2 {
                self.span = u32::try_from(count).unwrap_or(SYNC_BATCH_BLOCKS);
            }
        } else if asked >= u64::from(self.span) {
            self.span = self.span.saturating_mul(2).min(SYNC_BATCH_BLOCKS);
        }
        assert!(
            (1..=SYNC_BATCH_BLOCKS).contains(&self.span),
            "the span stays within 1 ..= SYNC_BATCH_BLOCKS"
        );
        if count < asked {
            Answer::Short
        } else {
            Answer::Full
        }
    }

    /// The requests to send at `now_ms` so that up to `requests` are in flight, for the
    /// lowest heights above `tip_height` that are neither in `held` nor covered by a
    /// request in flight, and no higher than `tip_height + max_ahead`. First forgets the
    /// requests that are answered by the tip (every height at or below it) or older than
    /// `timeout_ms`.
    pub fn plan<V>(
        &mut self,
        now_ms: u64,
        timeout_ms: u64,
        tip_height: u64,
        held: &BTreeMap<u64, V>,
        requests: usize,
        max_ahead: u64,
    ) -> Vec<BlocksRequest> {
        let next = tip_height.saturating_add(1);
        self.in_flight.retain(|_, p| {
            p.end_height > next && now_ms.saturating_sub(p.sent_ms) < timeout_ms.max(1)
        });
        let limit = next.saturating_add(max_ahead);
        let mut out = Vec::new();
        let mut h = next;
        while self.in_flight.len() < requests && h < limit {
            if held.contains_key(&h) {
                h += 1;
                continue;
            }
            if let Some((_, p)) = self.in_flight.range(..=h).next_back()
                && p.end_height > h
            {
                h = p.end_height;
                continue;
            }
            let mut end = h.saturating_add(u64::from(self.span)).min(limit);
            if let Some((&start, _)) = self.in_flight.range(h + 1..end).next() {
                end = start;
            }
            if let Some((&k, _)) = held.range(h + 1..end).next() {
                end = k;
            }
            assert!(end > h, "a request asks for at least one block");
            let max = u32::try_from(end - h).unwrap_or(SYNC_BATCH_BLOCKS);
            self.in_flight.insert(
                h,
                Pending {
                    end_height: end,
                    sent_ms: now_ms,
                },
            );
            out.push(BlocksRequest {
                from_height: h,
                max,
            });
            h = end;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> BTreeMap<u64, ()> {
        BTreeMap::new()
    }

    fn req(from_height: u64, max: u32) -> BlocksRequest {
        BlocksRequest { from_height, max }
    }

    #[test]
    fn keeps_the_asked_number_in_flight_over_consecutive_ranges() {
        let mut w = SyncWindow::new();
        let plan = w.plan(0, 1_000, 10, &none(), 3, 512);
        assert_eq!(plan, vec![req(11, 64), req(75, 64), req(139, 64)]);
        // Nothing more while all three wait.
        assert!(w.plan(5, 1_000, 10, &none(), 3, 512).is_empty());
        // The first answer, full: one more request, after the others.
        assert_eq!(w.answered(11, 64), Answer::Full);
        assert_eq!(w.plan(6, 1_000, 74, &none(), 3, 512), vec![req(203, 64)]);
    }

    #[test]
    fn a_short_answer_sets_the_span_and_its_rest_is_asked_at_once() {
        let mut w = SyncWindow::new();
        w.plan(0, 1_000, 0, &none(), 2, 512);
        // The answer to 1..65 holds 10 blocks: the tip moves to 10.
        assert_eq!(w.answered(1, 10), Answer::Short);
        assert_eq!(w.span(), 10);
        // 11..65 is no longer covered: asked for in spans of 10, below the request for
        // 65..129 that still waits.
        assert_eq!(
            w.plan(1, 1_000, 10, &none(), 3, 512),
            vec![req(11, 10), req(21, 10)]
        );
        assert_eq!(w.in_flight(), 3);
        // Full answers grow the span back.
        assert_eq!(w.answered(11, 10), Answer::Full);
        assert_eq!(w.span(), 20);
    }

    #[test]
    fn skips_held_heights_and_stops_requests_at_them() {
        let mut w = SyncWindow::new();
        let held: BTreeMap<u64, ()> = [(3, ()), (4, ()), (40, ())].into_iter().collect();
        let plan = w.plan(0, 1_000, 0, &held, 3, 512);
        assert_eq!(plan, vec![req(1, 2), req(5, 35), req(41, 64)]);
    }

    #[test]
    fn lost_requests_are_asked_again_after_the_timeout_and_late_answers_ignored() {
        let mut w = SyncWindow::new();
        assert_eq!(w.plan(0, 1_000, 0, &none(), 1, 512), vec![req(1, 64)]);
        assert!(w.plan(999, 1_000, 0, &none(), 1, 512).is_empty());
        assert_eq!(w.plan(1_000, 1_000, 0, &none(), 1, 512), vec![req(1, 64)]);
        // Both answers come: the first matches the request in flight, the second nothing.
        assert_eq!(w.answered(1, 64), Answer::Full);
        assert_eq!(w.answered(1, 64), Answer::Unrequested);
        // An announcement matches nothing either.
        assert_eq!(w.answered(200, 1), Answer::Unrequested);
    }

    #[test]
    fn requests_answered_by_the_tip_are_forgotten_and_max_ahead_bounds_the_window() {
        let mut w = SyncWindow::new();
        w.plan(0, 1_000, 0, &none(), 2, 100);
        assert_eq!(w.in_flight(), 2);
        // The blocks came another way (announcements): the tip passed both requests.
        assert_eq!(w.plan(1, 1_000, 200, &none(), 1, 10), vec![req(201, 10)]);
        assert_eq!(w.in_flight(), 1);
    }
}
