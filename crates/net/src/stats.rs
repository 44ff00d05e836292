//! Counters of what the network layer refused or dropped.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the counters of one node's network layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Gossip messages accepted and delivered to the application.
    pub gossip_accepted: u64,
    /// Of those, the ones not relayed to the mesh (large messages every peer gets from
    /// the publisher itself; see `Checked::relayed`).
    pub gossip_not_relayed: u64,
    /// Gossip messages rejected as invalid (bad encoding, signature, block or
    /// certificate): neither delivered nor forwarded.
    pub gossip_rejected: u64,
    /// Gossip messages ignored as stale: neither delivered nor forwarded.
    pub gossip_ignored: u64,
    /// Gossip messages not checked because too many checks were already under way.
    pub validations_dropped: u64,
    /// Events dropped because the application's event channel was full.
    pub events_dropped: u64,
    /// Connections refused: peers not on the allow-list, or over the connection limits.
    pub connections_denied: u64,
    /// Inbound sync requests dropped (too many pending, or no room for the event).
    pub inbound_requests_dropped: u64,
    /// Publications of bytes already published within gossipsub's duplicate window
    /// (not an error: the peers have them).
    pub publish_duplicates: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) gossip_accepted: AtomicU64,
    pub(crate) gossip_not_relayed: AtomicU64,
    pub(crate) gossip_rejected: AtomicU64,
    pub(crate) gossip_ignored: AtomicU64,
    pub(crate) validations_dropped: AtomicU64,
    pub(crate) events_dropped: AtomicU64,
    pub(crate) connections_denied: AtomicU64,
    pub(crate) inbound_requests_dropped: AtomicU64,
    pub(crate) publish_duplicates: AtomicU64,
}

/// Adds one to a counter.
pub(crate) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self) -> NetStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetStats {
            gossip_accepted: get(&self.gossip_accepted),
            gossip_not_relayed: get(&self.gossip_not_relayed),
            gossip_rejected: get(&self.gossip_rejected),
            gossip_ignored: get(&self.gossip_ignored),
            validations_dropped: get(&self.validations_dropped),
            events_dropped: get(&self.events_dropped),
            connections_denied: get(&self.connections_denied),
            inbound_requests_dropped: get(&self.inbound_requests_dropped),
            publish_duplicates: get(&self.publish_duplicates),
        }
    }
}
