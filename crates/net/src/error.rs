//! Errors of the network layer.

use thiserror::Error;

/// Why a network operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetError {
    /// The configuration cannot work (bad chain id, key seed, limits, listen address).
    #[error("network configuration: {0}")]
    Config(String),
    /// The transport could not be built or could not listen.
    #[error("network transport: {0}")]
    Transport(String),
    /// The event loop has stopped (after `shutdown`, or because it failed).
    #[error("the network event loop has stopped")]
    Closed,
    /// No connected peer is subscribed to the topic: nobody would receive the message.
    #[error("no peer is subscribed to the {0} topic")]
    NoPeers(&'static str),
    /// A message or one of its parts is over a limit.
    #[error("{what} is {bytes} bytes, over the limit of {max_bytes}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// Gossipsub refused to publish for another reason (all send queues full, signing).
    #[error("publish failed: {0}")]
    Publish(String),
    /// A request to a peer failed: dial failure, timeout, stream reset, unsupported protocol.
    #[error("request to {peer} failed: {reason}")]
    Request {
        /// The peer asked.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A peer answered with bytes that do not decode, or with blocks or certificates
    /// that do not verify: the peer is faulty or hostile.
    #[error("bad response from {peer}: {reason}")]
    BadResponse {
        /// The peer that answered.
        peer: String,
        /// What was wrong.
        reason: String,
    },
}
