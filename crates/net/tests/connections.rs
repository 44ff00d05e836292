//! Connections: the allow-list, re-dialing a configured peer after its connection
//! drops, and the idle-connection timeout.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use ebill_net::{NetError, NetEvent, config::DEFAULT_IDLE_CONNECTION_TIMEOUT};
use ebill_types::dev::dev_key;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_off_the_allow_list_cannot_connect_nor_inject_gossip() {
    init_tracing();
    let g = genesis(4, 0);
    let mut a = start(config(&g, &validator_key(0), vec![])).await;

    // The intruder trusts A and dials it; A does not know it.
    let intruder_key = dev_key("intruder", 0);
    let mut cfg = config(&g, &intruder_key, vec![a.addr.clone()]);
    cfg.allowed.push(a.peer);
    let intruder = start(cfg).await;
    let denied = a
        .next_matching("the intruder denied", |e| match e {
            NetEvent::PeerConnected(p) if p == intruder.peer => panic!("the intruder connected"),
            NetEvent::PeerDenied(p) => Some(p),
            _ => None,
        })
        .await;
    assert_eq!(denied, intruder.peer);
    assert!(a.client.stats().connections_denied >= 1);
    assert!(!a.client.connected_peers().contains(&intruder.peer));

    // It has nobody to gossip to.
    assert_eq!(
        intruder.client.publish_txs(txs(1, 1, 10)).await,
        Err(NetError::NoPeers("txs"))
    );

    // An allowed validator connects and gossips; A gets its batch and nothing else.
    let b = start(config(&g, &validator_key(1), vec![a.addr.clone()])).await;
    bounded("gossip peer", a.client.wait_for_gossip_peers(1))
        .await
        .unwrap();
    bounded("gossip peer", b.client.wait_for_gossip_peers(1))
        .await
        .unwrap();
    let _ = intruder.client.publish_txs(txs(50, 1, 10)).await;
    let batch = txs(100, 3, 10);
    b.client.publish_txs(batch.clone()).await.unwrap();
    let (from, got) = a
        .next_matching("b's batch", |e| match e {
            NetEvent::Txs { from, txs } => Some((from, txs)),
            NetEvent::PeerConnected(p) if p == intruder.peer => panic!("the intruder connected"),
            _ => None,
        })
        .await;
    assert_eq!((from, got), (b.peer, batch));
    assert_eq!(a.client.gossip_peers(), vec![b.peer]);
    a.stop().await;
    b.stop().await;
    intruder.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_peer_is_dialed_again_after_its_connection_drops() {
    init_tracing();
    let g = genesis(4, 0);
    let a = start(config(&g, &validator_key(0), vec![])).await;
    let a_addr = a.addr.clone();
    let mut b = start(config(&g, &validator_key(1), vec![a_addr.clone()])).await;
    let a_peer = a.peer;
    b.next_matching("first connection", |e| match e {
        NetEvent::PeerConnected(p) => (p == a_peer).then_some(()),
        _ => None,
    })
    .await;

    // A goes away, and comes back on the same address.
    a.stop().await;
    b.next_matching("disconnection", |e| match e {
        NetEvent::PeerDisconnected(p) => (p == a_peer).then_some(()),
        _ => None,
    })
    .await;
    let mut cfg = config(&g, &validator_key(0), vec![]);
    cfg.listen = a_addr
        .iter()
        .filter(|p| !matches!(p, ebill_net::libp2p::multiaddr::Protocol::P2p(_)))
        .collect();
    let a = start(cfg).await;
    b.next_matching("re-dialed connection", |e| match e {
        NetEvent::PeerConnected(p) => (p == a_peer).then_some(()),
        _ => None,
    })
    .await;
    bounded("gossip again", b.client.wait_for_gossip_peers(1))
        .await
        .unwrap();
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn idle_connections_are_kept_for_an_hour() {
    let g = genesis(4, 0);
    let cfg = config(&g, &validator_key(0), vec![]);
    assert_eq!(cfg.idle_connection_timeout, Duration::from_secs(3600));
    assert_eq!(DEFAULT_IDLE_CONNECTION_TIMEOUT, Duration::from_secs(3600));
    let node = start(cfg).await;
    assert_eq!(
        node.client.idle_connection_timeout(),
        Duration::from_secs(3600)
    );
    node.stop().await;
}
