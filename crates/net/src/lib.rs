//! # ebill-net
//!
//! The libp2p layer of an ebill node (docs/design.md §6): TCP + noise + yamux,
//! gossipsub for transactions, consensus messages and committed-block announcements,
//! request-response for block sync, identify, and an allow-list of the genesis
//! validators and observers (plus any the node's config names).
//!
//! The shape follows rust-libp2p's file-sharing example: [`start`] builds the swarm,
//! spawns the [`EventLoop`](event_loop) task that owns it, and returns a [`Client`] (async
//! methods over a command channel) and a bounded receiver of [`NetEvent`]s.
//!
//! Every gossip message gets an explicit verdict before it is forwarded: it is decoded
//! with the bounded canonical decoders of `ebill-types`, votes and proposals must be
//! signed by a genesis validator, a proposal's block must match it, an announcement's
//! certificate must verify. Nothing a peer sends can panic the node, and every queue is
//! bounded: what does not fit is dropped and counted ([`NetStats`]). Only small messages
//! (votes, proposals without a block) are relayed after their check; transaction
//! batches, proposal blocks and announcements reach every peer from their publisher and
//! are delivered without a relay (docs/adr/0005). Each node takes in only the topics of
//! its role ([`Topics`], docs/adr/0007).
//!
//! A node's libp2p identity is its validator or observer key (the same 32-byte ed25519
//! seed), so every genesis member's peer id is known in advance: [`peer_id_of`].

pub mod behaviour;
pub mod client;
pub mod codec;
pub mod config;
pub mod error;
pub mod event;
pub mod event_loop;
pub mod gossip;
pub mod stats;
pub mod sync;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use libp2p::multihash::Multihash;
use libp2p::{SwarmBuilder, identity, noise, tcp, yamux};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use client::Client;
pub use config::{Limits, NetConfig, Topics};
pub use error::NetError;
pub use event::{Events, NetEvent};
pub use gossip::ConsensusMsg;
pub use libp2p;
pub use libp2p::{Multiaddr, PeerId};
pub use stats::NetStats;
pub use sync::{BlockResponder, BlocksResponder};

use crate::client::Shared;
use crate::event::EventSender;
use crate::event_loop::EventLoop;
use crate::gossip::{Checker, TopicKind};

/// Capacity of the command channel from clients to the event loop.
pub const COMMAND_CAPACITY: usize = 256;

/// The peer id of the node whose ed25519 key is `public_key` (a genesis validator or
/// observer): the identity multihash of the protobuf encoding of the key, exactly what
/// `libp2p::identity` computes for a keypair made from the same seed.
pub fn peer_id_of(public_key: &ebill_types::PublicKey) -> PeerId {
    // libp2p's PublicKey protobuf: field 1 (key type) = 1 (Ed25519), field 2 (data) =
    // the 32 key bytes.
    let mut encoded = [0u8; 36];
    encoded[..4].copy_from_slice(&[0x08, 0x01, 0x12, 0x20]);
    encoded[4..].copy_from_slice(&public_key.0);
    match Multihash::<64>::wrap(0x00, &encoded)
        .ok()
        .and_then(|mh| PeerId::from_multihash(mh).ok())
    {
        Some(peer) => peer,
        None => unreachable!("a 36-byte identity multihash is always a valid peer id"),
    }
}

/// Builds the swarm for `cfg`, starts listening, subscribes to the chain's topics and
/// spawns the event loop on the current tokio runtime. The listen address actually
/// bound arrives as [`NetEvent::Listening`].
pub async fn start(cfg: NetConfig) -> Result<(Client, Events, JoinHandle<()>), NetError> {
    let limits = cfg.limits()?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|e| NetError::Config(format!("start needs a tokio runtime: {e}")))?;
    let mut seed = cfg.seed;
    let key = identity::Keypair::ed25519_from_bytes(&mut seed)
        .map_err(|e| NetError::Config(format!("key seed: {e}")))?;
    let local_peer_id = key.public().to_peer_id();
    let behaviour = behaviour::build(&cfg, &limits, &key)?;
    let idle = cfg.idle_connection_timeout;
    let builder = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetError::Transport(e.to_string()))?;
    let Ok(builder) = builder.with_behaviour(move |_| behaviour);
    let mut swarm = builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build();
    for kind in TopicKind::ALL
        .into_iter()
        .filter(|k| k.is_in(&cfg.subscribe))
    {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&kind.topic(&cfg.chain_id))
            .map_err(|e| NetError::Config(format!("subscribe to {}: {e}", kind.name())))?;
    }
    swarm
        .listen_on(cfg.listen.clone())
        .map_err(|e| NetError::Transport(format!("listen on {}: {e}", cfg.listen)))?;

    let checker = Arc::new(Checker {
        chain_id: cfg.chain_id.clone(),
        validators: cfg.validators.clone(),
        witnesses: cfg.witnesses.clone(),
        limits,
        tip_height: Arc::new(AtomicU64::new(0)),
    });
    let counters = Arc::new(stats::Counters::default());
    let (connected_tx, connected_rx) = watch::channel(BTreeSet::new());
    let (gossip_tx, gossip_rx) = watch::channel(BTreeSet::new());
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (event_tx, events) = EventSender::channel(cfg.event_capacity, limits.max_event_bytes);
    let event_loop = EventLoop::new(
        swarm,
        cmd_rx,
        event_tx,
        Arc::clone(&checker),
        Arc::clone(&counters),
        connected_tx,
        gossip_tx,
        cfg.request_timeout,
        cfg.peers.clone(),
    );
    let handle = runtime.spawn(event_loop.run());
    let client = Client {
        commands: cmd_tx,
        shared: Arc::new(Shared {
            local_peer_id,
            checker,
            counters,
            connected: connected_rx,
            gossip_peers: gossip_rx,
            idle_connection_timeout: idle,
            publish_attempt: AtomicU64::new(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                    .unwrap_or(0),
            ),
        }),
    };
    Ok((client, events, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_of_a_public_key_is_that_of_the_libp2p_key_from_the_same_seed() {
        for i in 0..8 {
            let key = ebill_types::dev::dev_key("validator", i);
            let mut seed = key.seed();
            let libp2p_key = identity::Keypair::ed25519_from_bytes(&mut seed)
                .unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(peer_id_of(&key.public()), libp2p_key.public().to_peer_id());
        }
    }
}
