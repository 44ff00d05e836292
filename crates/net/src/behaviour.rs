//! The composed libp2p behaviour and the settings of each part.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentityTransform, MessageAuthenticity, MessageId, ValidationMode,
    WhitelistSubscriptionFilter,
};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{StreamProtocol, allow_block_list, connection_limits, identify, identity};
use sha2::{Digest, Sha256};

use crate::codec::SyncCodec;
use crate::config::{Limits, NetConfig};
use crate::error::NetError;
use crate::gossip::TopicKind;

/// Gossipsub mesh degree D: peers a node keeps in its mesh per topic. With 4 to 20
/// peers, 6 relays every message through a good share of the network while flood
/// publishing (below) reaches every subscribed peer in one hop from the origin.
pub const MESH_N: usize = 6;
/// D_low: below this the heartbeat grafts more peers. 3 = the other nodes of a
/// 4-validator network: a 4-node network reaches it, and a mesh never looks starved.
pub const MESH_N_LOW: usize = 3;
/// D_high: above this the heartbeat prunes peers.
pub const MESH_N_HIGH: usize = 12;
/// Outbound peers kept in each mesh (at most D/2 and D_low), against eclipse by
/// inbound connections.
pub const MESH_OUTBOUND_MIN: usize = 2;
/// Gossipsub heartbeat interval.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(700);
/// Connections per peer: an inbound and an outbound one when two peers dial each other
/// at once.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 2;
/// Handshakes in progress from unknown addresses: bounds what strangers can cost before
/// the allow-list refuses them.
pub const MAX_PENDING_INCOMING: u32 = 32;
/// Concurrent sync streams per connection.
pub const MAX_CONCURRENT_SYNC_STREAMS: usize = 16;

/// The composed behaviour. The allow-list and the connection limits come first so
/// that they refuse a connection before any other part sees it.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) allow_list: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour<IdentityTransform, WhitelistSubscriptionFilter>,
    pub(crate) sync: request_response::Behaviour<SyncCodec>,
    pub(crate) identify: identify::Behaviour,
}

/// Message id: SHA-256 of the data, so that the same bytes published twice (a relayed
/// vote, a re-broadcast) are one message whoever publishes them.
pub(crate) fn content_message_id(message: &gossipsub::Message) -> MessageId {
    MessageId::from(Sha256::digest(&message.data).to_vec())
}

/// The gossipsub settings for `limits` (see the constants of this module).
pub(crate) fn gossipsub_config(
    chain_id: &str,
    limits: &Limits,
) -> Result<gossipsub::Config, NetError> {
    gossipsub::ConfigBuilder::default()
        // Every message waits for an explicit verdict (Accept / Reject / Ignore) before
        // it is forwarded; every message must be signed by its publisher.
        .validate_messages()
        .validation_mode(ValidationMode::Strict)
        .message_id_fn(content_message_id)
        .mesh_n(MESH_N)
        .mesh_n_low(MESH_N_LOW)
        .mesh_n_high(MESH_N_HIGH)
        .mesh_outbound_min(MESH_OUTBOUND_MIN)
        .gossip_lazy(MESH_N)
        // The origin sends to every subscribed peer, mesh or not: a publish never
        // depends on the mesh having formed, and consensus messages take one hop.
        .flood_publish(true)
        .heartbeat_interval(HEARTBEAT_INTERVAL)
        .heartbeat_initial_delay(Duration::from_millis(300))
        // Blocks of the largest size the genesis allows fit in one message.
        .max_transmit_size(limits.max_gossip_bytes)
        .max_transmit_size_for_topic(
            limits.max_txs_gossip_bytes,
            TopicKind::Txs.topic(chain_id).hash(),
        )
        // Large messages take longer to send than gossipsub's defaults allow.
        .publish_queue_duration(Duration::from_secs(10))
        .forward_queue_duration(Duration::from_secs(5))
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))
}

/// Builds the behaviour for `cfg` with the node's `key`.
pub(crate) fn build(
    cfg: &NetConfig,
    limits: &Limits,
    key: &identity::Keypair,
) -> Result<Behaviour, NetError> {
    let mut allow_list = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in &cfg.allowed {
        allow_list.allow_peer(*peer);
    }
    let limits_behaviour = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_established_per_peer(Some(MAX_CONNECTIONS_PER_PEER))
            .with_max_established(Some(
                u32::try_from(cfg.allowed.len().saturating_mul(2).max(8)).unwrap_or(u32::MAX),
            )),
    );
    let topics: HashSet<_> = TopicKind::ALL
        .iter()
        .map(|k| k.topic(&cfg.chain_id).hash())
        .collect();
    let gossipsub = gossipsub::Behaviour::new_with_subscription_filter(
        MessageAuthenticity::Signed(key.clone()),
        gossipsub_config(&cfg.chain_id, limits)?,
        WhitelistSubscriptionFilter(topics),
    )
    .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    let protocol = StreamProtocol::try_from_owned(format!("/ebill/{}/sync/1", cfg.chain_id))
        .map_err(|e| NetError::Config(format!("sync protocol name: {e}")))?;
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::new(limits.max_sync_response_bytes),
        [(protocol, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(cfg.request_timeout)
            .with_max_concurrent_streams(MAX_CONCURRENT_SYNC_STREAMS),
    );
    let identify = identify::Behaviour::new(identify::Config::new(
        format!("/ebill/{}/1", cfg.chain_id),
        key.public(),
    ));
    Ok(Behaviour {
        allow_list,
        limits: limits_behaviour,
        gossipsub,
        sync,
        identify,
    })
}
