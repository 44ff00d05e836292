//! Gossip over real swarms on 127.0.0.1: votes, a proposal with a 2 MB block and a
//! transaction batch reach every other node; messages signed by a non-validator key
//! are rejected and never delivered.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::time::Instant;

use common::*;
use ebill_net::{ConsensusMsg, NetEvent};
use ebill_types::{Canonical, Hash32, Proposal, Vote, VoteKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_gossip_votes_proposals_with_2mb_blocks_and_txs_and_refuse_forgeries() {
    init_tracing();
    let g = genesis(4, 1);
    let mut keys: Vec<_> = (0..4).map(validator_key).collect();
    keys.push(observer_key(0));
    let mut nodes = cluster(&g, &keys).await;
    let peers: Vec<_> = nodes.iter().map(|n| n.peer).collect();
    for (n, k) in nodes.iter().zip(&keys) {
        assert_eq!(
            n.peer,
            peer_of(k),
            "peer id is derived from the genesis key"
        );
        assert_eq!(n.client.connected_peers().len(), 4);
    }

    // A prevote of validator 0, published by node 0.
    let vote = Vote {
        kind: VoteKind::Prevote,
        height: 1,
        round: 0,
        block: Some(Hash32([9; 32])),
        validator: 0,
    }
    .sign(CHAIN, &validator_key(0));
    nodes[0]
        .client
        .publish_consensus(ConsensusMsg::Vote(vote))
        .await
        .unwrap();
    for n in nodes.iter_mut().skip(1) {
        let (from, got) = n
            .next_matching("vote", |e| match e {
                NetEvent::Consensus {
                    from,
                    msg: ConsensusMsg::Vote(v),
                } => Some((from, v)),
                _ => None,
            })
            .await;
        assert_eq!(got, vote);
        assert_eq!(from, peers[0]);
    }

    // A proposal of validator 1 carrying a block of at least 2 MB.
    let block_txs = txs_of_size(1, 2 * 1024 * 1024);
    let b = block(&g, 1, g.hash(), block_txs, 1);
    let block_bytes = b.to_canonical_bytes().len();
    assert!(
        block_bytes >= 2 * 1024 * 1024,
        "block is {block_bytes} bytes"
    );
    let proposal = Proposal {
        height: 1,
        round: 0,
        block: b.header.hash(),
        pol_round: None,
        proposer: 1,
    }
    .sign(CHAIN, &validator_key(1));
    let sent = Instant::now();
    nodes[1]
        .client
        .publish_consensus(ConsensusMsg::Proposal {
            proposal,
            block: Some(b.clone()),
        })
        .await
        .unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        if i == 1 {
            continue;
        }
        let (p, got) = n
            .next_matching("proposal with block", |e| match e {
                NetEvent::Consensus {
                    msg: ConsensusMsg::Proposal { proposal, block },
                    ..
                } => Some((proposal, block)),
                _ => None,
            })
            .await;
        assert_eq!(p, proposal);
        assert_eq!(got.as_ref(), Some(&b));
    }
    eprintln!(
        "a {block_bytes}-byte proposal reached 4 nodes in {:?}",
        sent.elapsed()
    );

    // A batch of transactions from node 2.
    let batch = txs(100_000, 25, 50);
    nodes[2].client.publish_txs(batch.clone()).await.unwrap();
    for (i, n) in nodes.iter_mut().enumerate() {
        if i == 2 {
            continue;
        }
        let got = n
            .next_matching("tx batch", |e| match e {
                NetEvent::Txs { txs, .. } => Some(txs),
                _ => None,
            })
            .await;
        assert_eq!(got, batch);
    }

    // The observer (allowed to connect, not a validator) forges votes: one claiming to
    // be validator 0 signed with its own key, one from an index outside the set. Then it
    // relays an honest vote of validator 3, which everybody must get.
    let forged = Vote {
        kind: VoteKind::Precommit,
        height: 1,
        round: 0,
        block: Some(Hash32([9; 32])),
        validator: 0,
    }
    .sign(CHAIN, &observer_key(0));
    let unknown = Vote {
        validator: 7,
        ..forged.vote
    }
    .sign(CHAIN, &observer_key(0));
    let honest = Vote {
        validator: 3,
        ..forged.vote
    }
    .sign(CHAIN, &validator_key(3));
    let observer = &nodes[4].client;
    observer
        .publish_consensus(ConsensusMsg::Vote(forged))
        .await
        .unwrap();
    observer
        .publish_consensus(ConsensusMsg::Vote(unknown))
        .await
        .unwrap();
    observer
        .publish_consensus(ConsensusMsg::Vote(honest))
        .await
        .unwrap();
    for n in nodes.iter_mut().take(4) {
        let got = n
            .next_matching("relayed honest vote", |e| match e {
                NetEvent::Consensus {
                    msg: ConsensusMsg::Vote(v),
                    ..
                } => {
                    assert_ne!(v, forged, "a forged vote was delivered");
                    assert_ne!(v, unknown, "a vote of an unknown validator was delivered");
                    (v == honest).then_some(v)
                }
                _ => None,
            })
            .await;
        assert_eq!(got, honest);
        // Both forgeries get the verdict Reject (checks run concurrently: wait for it).
        let client = n.client.clone();
        bounded("two rejections", async move {
            while client.stats().gossip_rejected < 2 {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        })
        .await;
        while let Ok(e) = n.events.try_recv() {
            if let NetEvent::Consensus {
                msg: ConsensusMsg::Vote(v),
                ..
            } = e
            {
                assert!(v != forged && v != unknown, "a forged vote was delivered");
            }
        }
    }
    for n in &nodes {
        let s = n.client.stats();
        assert_eq!(s.events_dropped, 0);
        assert_eq!(s.validations_dropped, 0);
    }
    stop_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_consensus_messages_are_ignored_after_set_tip_height() {
    init_tracing();
    let g = genesis(4, 0);
    let keys: Vec<_> = (0..2).map(validator_key).collect();
    let mut nodes = cluster(&g, &keys).await;
    nodes[1].client.set_tip_height(5);
    let old = Vote {
        kind: VoteKind::Prevote,
        height: 5,
        round: 0,
        block: None,
        validator: 0,
    }
    .sign(CHAIN, &validator_key(0));
    let new = Vote {
        height: 6,
        ..old.vote
    }
    .sign(CHAIN, &validator_key(0));
    nodes[0]
        .client
        .publish_consensus(ConsensusMsg::Vote(old))
        .await
        .unwrap();
    nodes[0]
        .client
        .publish_consensus(ConsensusMsg::Vote(new))
        .await
        .unwrap();
    let got = nodes[1]
        .next_matching("the vote above the tip", |e| match e {
            NetEvent::Consensus {
                msg: ConsensusMsg::Vote(v),
                ..
            } => {
                assert_ne!(v, old, "a stale vote was delivered");
                Some(v)
            }
            _ => None,
        })
        .await;
    assert_eq!(got, new);
    let client = nodes[1].client.clone();
    bounded("stale vote ignored", async move {
        while client.stats().gossip_ignored < 1 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    // Publishing the same vote again (consensus re-broadcasts to recover lost messages)
    // is a new gossip message, delivered again: the duplicate cache must not swallow it.
    nodes[0]
        .client
        .publish_consensus(ConsensusMsg::Vote(new))
        .await
        .unwrap();
    let again = nodes[1]
        .next_matching("the same vote, re-broadcast", |e| match e {
            NetEvent::Consensus {
                msg: ConsensusMsg::Vote(v),
                ..
            } => Some(v),
            _ => None,
        })
        .await;
    assert_eq!(again, new);
    assert_eq!(nodes[0].client.stats().publish_duplicates, 0);
    stop_all(nodes).await;
}
