//! Block sync over real swarms: ranges of blocks with certificates, limits on the
//! response, blocks by hash, and responses that do not verify.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Duration;

use common::*;
use ebill_net::{NetError, NetEvent};
use ebill_types::Hash32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_block_ranges_with_certificates_within_its_limits() {
    init_tracing();
    let g = genesis(4, 0);
    let blocks = chain(&g, 6, 3);
    let mut cfg_a = config(&g, &validator_key(0), vec![]);
    cfg_a.max_sync_blocks = 4;
    let mut a = start(cfg_a).await;
    let b = start(config(&g, &validator_key(1), vec![a.addr.clone()])).await;

    // B asks for 10 blocks from height 2; A's application answers with everything it
    // has from there; A's responder cuts the answer to its limit of 4 blocks.
    let request = {
        let client = b.client.clone();
        let peer = a.peer;
        tokio::spawn(async move { client.request_blocks(peer, 2, 10).await })
    };
    let (from, from_height, max, respond) = a
        .next_matching("blocks request", |e| match e {
            NetEvent::BlocksRequested {
                from,
                from_height,
                max,
                respond,
            } => Some((from, from_height, max, respond)),
            _ => None,
        })
        .await;
    assert_eq!((from, from_height, max), (b.peer, 2, 4));
    assert_eq!(respond.respond(blocks[1..].to_vec()), 4);
    let got = bounded("blocks response", request).await.unwrap().unwrap();
    assert_eq!(got, blocks[1..5].to_vec());

    // Past the tip: an empty answer.
    let request = {
        let client = b.client.clone();
        let peer = a.peer;
        tokio::spawn(async move { client.request_blocks(peer, 7, 3).await })
    };
    let respond = a
        .next_matching("blocks request past the tip", |e| match e {
            NetEvent::BlocksRequested { respond, .. } => Some(respond),
            _ => None,
        })
        .await;
    respond.respond(vec![]);
    assert_eq!(
        bounded("empty response", request).await.unwrap().unwrap(),
        vec![]
    );

    // A faulty server: blocks from the wrong height, then a certificate with too few
    // signatures, then blocks that do not link. Each is refused by the requester.
    let mut weak = blocks[0].clone();
    weak.1 = certify(&weak.0, &[0, 1]);
    let stray = block(&g, 2, Hash32([5; 32]), txs(9_000, 1, 10), 2);
    let stray_cert = certify(&stray, &[1, 2, 3]);
    let unlinked = vec![blocks[0].clone(), (stray, stray_cert)];
    for (from_height, answer, what) in [
        (1, blocks[1..3].to_vec(), "height"),
        (1, vec![weak], "precommits"),
        (1, unlinked, "follow"),
    ] {
        let request = {
            let client = b.client.clone();
            let peer = a.peer;
            tokio::spawn(async move { client.request_blocks(peer, from_height, 3).await })
        };
        let respond = a
            .next_matching("blocks request", |e| match e {
                NetEvent::BlocksRequested { respond, .. } => Some(respond),
                _ => None,
            })
            .await;
        respond.respond(answer);
        match bounded("bad response", request).await.unwrap() {
            Err(NetError::BadResponse { reason, .. }) => assert!(reason.contains(what), "{reason}"),
            other => panic!("a bad response was accepted: {other:?}"),
        }
    }

    // A dropped responder fails the request at once.
    let request = {
        let client = b.client.clone();
        let peer = a.peer;
        tokio::spawn(async move { client.request_blocks(peer, 1, 3).await })
    };
    let respond = a
        .next_matching("blocks request", |e| match e {
            NetEvent::BlocksRequested { respond, .. } => Some(respond),
            _ => None,
        })
        .await;
    drop(respond);
    assert!(matches!(
        bounded("dropped responder", request).await.unwrap(),
        Err(NetError::Request { .. })
    ));
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_a_block_by_hash_and_requests_time_out() {
    init_tracing();
    let g = genesis(4, 0);
    let blocks = chain(&g, 3, 2);
    let mut a = start(config(&g, &validator_key(0), vec![])).await;
    let mut cfg_b = config(&g, &validator_key(1), vec![a.addr.clone()]);
    cfg_b.request_timeout = Duration::from_millis(800);
    let b = start(cfg_b).await;
    let (block, cert) = blocks[2].clone();
    let hash = block.header.hash();

    let (b_client, a_peer) = (b.client.clone(), a.peer);
    let ask = move |h: Hash32| {
        let client = b_client.clone();
        let peer = a_peer;
        tokio::spawn(async move { client.request_block(peer, h).await })
    };

    // Committed: block and certificate.
    let request = ask(hash);
    let (asked, respond) = a
        .next_matching("block request", |e| match e {
            NetEvent::BlockRequested { hash, respond, .. } => Some((hash, respond)),
            _ => None,
        })
        .await;
    assert_eq!(asked, hash);
    assert!(respond.respond(Some((block.clone(), Some(cert.clone())))));
    assert_eq!(
        bounded("block response", request).await.unwrap().unwrap(),
        Some((block.clone(), Some(cert.clone())))
    );

    // Unknown here.
    let request = ask(Hash32([1; 32]));
    let respond = a
        .next_matching("block request", |e| match e {
            NetEvent::BlockRequested { respond, .. } => Some(respond),
            _ => None,
        })
        .await;
    assert!(!respond.respond(None));
    assert_eq!(
        bounded("none response", request).await.unwrap().unwrap(),
        None
    );

    // Another block than the one asked for.
    let request = ask(hash);
    let respond = a
        .next_matching("block request", |e| match e {
            NetEvent::BlockRequested { respond, .. } => Some(respond),
            _ => None,
        })
        .await;
    respond.respond(Some((blocks[0].0.clone(), None)));
    assert!(matches!(
        bounded("wrong block", request).await.unwrap(),
        Err(NetError::BadResponse { .. })
    ));

    // An application that never answers: B's request times out after its 800 ms.
    let request = ask(hash);
    let _held = a
        .next_matching("block request", |e| match e {
            NetEvent::BlockRequested { respond, .. } => Some(respond),
            _ => None,
        })
        .await;
    match bounded("request timeout", request).await.unwrap() {
        Err(NetError::Request { reason, .. }) => assert!(
            reason.contains("Timeout") || reason.contains("timed out"),
            "{reason}"
        ),
        other => panic!("expected a timeout, got {other:?}"),
    }
    a.stop().await;
    b.stop().await;
}
