//! The gossip message checker and the sync response checks of `ebill-net`, on the bytes a
//! peer sends. Their code is crate-private, so this target compiles the crate's own
//! `gossip.rs`, `sync.rs`, `config.rs` and `error.rs` as modules of its own (the same
//! source, not a copy); the rest of `ebill-net` is only used for `peer_id_of`.
//!
//! Input: a selector byte (transaction topic, consensus topic, block topic, block-range
//! response, block-by-hash response, sync request), a byte for the tip height or the
//! requested height, then the message. Properties: no panic; every decoder is strict
//! (what decodes encodes back to the same bytes); the checks deliver only what the
//! fuzzer could not have forged: a vote, proposal, announced or synced block that passes
//! is one of the seeds' genuinely signed ones (the fuzzer has no validator key).
#![no_main]
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../crates/net/src/config.rs"]
mod config;
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../crates/net/src/error.rs"]
mod error;
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../crates/net/src/gossip.rs"]
mod gossip;
#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../crates/net/src/sync.rs"]
mod sync;

// `config.rs` names `crate::peer_id_of`.
use ebill_net::peer_id_of;

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use ebill_fuzz::reference::{CHAIN, Reference};
use ebill_fuzz::seeds;
use ebill_types::dev::dev_key;
use ebill_types::{
    Block, CommitCertificate, Hash32, Proposal, SignedProposal, SignedVote, Vote, VoteKind,
};
use libfuzzer_sys::fuzz_target;

use gossip::{
    CONSENSUS_DOMAIN, COSIGNATURE_DOMAIN, Checked, Checker, ConsensusMsg, TopicKind,
    decode_announcement, decode_consensus, decode_cosignature, decode_tx_batch,
    encode_announcement, encode_consensus, encode_cosignature, encode_tx_batches,
};
use sync::{BlockResponder, BlocksResponder, SyncRequest};

const SELECTORS: u8 = 6;

struct World {
    checker: Checker,
    votes: Vec<SignedVote>,
    proposals: Vec<SignedProposal>,
    seeds: Vec<Vec<u8>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(build)
}

fn with_selector(sel: u8, arg: u8, msg: &[u8]) -> Vec<u8> {
    let mut out = vec![sel, arg];
    out.extend_from_slice(msg);
    out
}

fn build() -> World {
    let r = Reference::get();
    let listen = "/ip4/127.0.0.1/tcp/0".parse().expect("an address");
    let limits = config::NetConfig::from_genesis(&r.genesis, [7; 32], listen, vec![])
        .and_then(|c| c.limits())
        .expect("the reference genesis has network limits");
    let checker = Checker {
        chain_id: CHAIN.into(),
        validators: r.genesis.validator_set().expect("a validator set"),
        witnesses: ebill_types::checkpoint::Witnesses::of(&r.genesis),
        limits,
        tip_height: Arc::new(AtomicU64::new(0)),
    };
    let mut votes = Vec::new();
    let mut proposals = Vec::new();
    let mut seeds = Vec::new();
    let txs: Vec<_> = r.blocks.iter().flat_map(|b| b.txs.clone()).collect();
    for batch in encode_tx_batches(&txs, &limits).expect("the reference transactions fit") {
        seeds.push(with_selector(0, 0, &batch));
    }
    for (b, block) in r.blocks.iter().enumerate() {
        let h = block.header.height;
        let hash = block.header.hash();
        for v in 0..4u32 {
            for (kind, target) in [
                (VoteKind::Prevote, Some(hash)),
                (VoteKind::Precommit, Some(hash)),
                (VoteKind::Prevote, None),
            ] {
                let sv = Vote {
                    kind,
                    height: h,
                    round: 1,
                    block: target,
                    validator: v,
                }
                .sign(CHAIN, &dev_key("validator", v));
                votes.push(sv);
            }
        }
        let p = Proposal {
            height: h,
            round: 1,
            block: hash,
            pol_round: (b % 2 == 0).then_some(0),
            proposer: block.header.proposer,
        }
        .sign(CHAIN, &dev_key("validator", block.header.proposer));
        proposals.push(p);
        for (with_block, attempt) in [(true, 0u64), (false, 3)] {
            let msg = ConsensusMsg::Proposal {
                proposal: p,
                block: with_block.then(|| block.clone()),
            };
            seeds.push(with_selector(1, 0, &encode_consensus(&msg, attempt)));
        }
        seeds.push(with_selector(
            2,
            0,
            &encode_announcement(block, &r.certs[b]),
        ));
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        BlockResponder {
            tx,
            max_bytes: limits.max_sync_response_bytes,
        }
        .respond(Some((block.clone(), Some(r.certs[b].clone()))));
        if let Ok(bytes) = rx.try_recv() {
            seeds.push(with_selector(4, b as u8, &bytes));
        }
        seeds.push(with_selector(
            5,
            0,
            &SyncRequest::Blocks {
                from_height: h,
                max: 8,
            }
            .encode(),
        ));
        seeds.push(with_selector(5, 0, &SyncRequest::Block { hash }.encode()));
    }
    for v in votes.iter().step_by(5) {
        seeds.push(with_selector(
            1,
            0,
            &encode_consensus(&ConsensusMsg::Vote(*v), 1),
        ));
    }
    for from in [0usize, 2] {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let items: Vec<(Block, CommitCertificate)> = r
            .blocks
            .iter()
            .cloned()
            .zip(r.certs.iter().cloned())
            .skip(from)
            .collect();
        BlocksResponder {
            tx,
            max_count: 64,
            max_bytes: limits.max_sync_response_bytes,
        }
        .respond(items);
        if let Ok(bytes) = rx.try_recv() {
            seeds.push(with_selector(3, from as u8, &bytes));
        }
    }
    World {
        checker,
        votes,
        proposals,
        seeds,
    }
}

/// The certificate is a quorum of the genuine precommits of the reference block `b`.
fn genuine_cert(r: &Reference, b: usize, c: &CommitCertificate) -> bool {
    let g = &r.certs[b];
    c.height == g.height
        && c.round == g.round
        && c.block == g.block
        && c.signatures.iter().all(|s| g.signatures.contains(s))
}

fn reference_block(r: &Reference, block: &Block) -> Option<usize> {
    r.blocks.iter().position(|b| b == block)
}

fn check_topic(w: &World, topic: TopicKind, msg: &[u8]) {
    let r = Reference::get();
    let limits = &w.checker.limits;
    // Strict decoders.
    match topic {
        TopicKind::Txs => {
            if let Ok(txs) = decode_tx_batch(msg, limits) {
                assert!(!txs.is_empty() && txs.len() <= limits.max_batch_txs);
                let again = encode_tx_batches(&txs, limits)
                    .unwrap_or_else(|e| panic!("a decoded batch does not encode: {e}"));
                assert!(
                    again == [msg.to_vec()],
                    "transaction batch is not canonical"
                );
            }
        }
        TopicKind::Consensus => {
            if let Ok(m) = decode_consensus(msg, limits) {
                let at = 4 + CONSENSUS_DOMAIN.len();
                let attempt = u64::from_be_bytes(msg[at..at + 8].try_into().expect("8 bytes"));
                assert!(
                    encode_consensus(&m, attempt) == msg,
                    "consensus message is not canonical"
                );
            }
        }
        TopicKind::Blocks => {
            if let Ok((b, c)) = decode_announcement(msg, limits) {
                assert!(
                    encode_announcement(&b, &c) == msg,
                    "announcement is not canonical"
                );
            }
        }
        TopicKind::Cosignatures => {
            if let Ok((c, s)) = decode_cosignature(msg) {
                let at = 4 + COSIGNATURE_DOMAIN.len();
                let attempt = u64::from_be_bytes(msg[at..at + 8].try_into().expect("8 bytes"));
                assert!(
                    encode_cosignature(&c, &s, attempt) == msg,
                    "co-signature message is not canonical"
                );
            }
        }
    }
    // The checks deliver nothing forged.
    match w.checker.check(topic, msg) {
        Ok(Checked::Txs(txs)) => assert!(!txs.is_empty()),
        Ok(Checked::Consensus(ConsensusMsg::Vote(v))) => {
            assert!(w.votes.contains(&v), "a forged vote passed: {v:?}");
            assert!(v.vote.height > w.checker.tip_height.load(Ordering::Relaxed));
        }
        Ok(Checked::Consensus(ConsensusMsg::Proposal { proposal, block })) => {
            assert!(
                w.proposals.contains(&proposal),
                "a forged proposal passed: {proposal:?}"
            );
            if let Some(b) = block {
                assert_eq!(b.header.hash(), proposal.proposal.block);
                assert!(b.check_body().is_ok());
            }
        }
        Ok(Checked::Block(b, c)) => {
            let Some(i) = reference_block(r, &b) else {
                panic!("an announced block that is not the chain's passed: {b:?}");
            };
            assert!(genuine_cert(r, i, &c), "a forged certificate passed: {c:?}");
        }
        // The reference genesis names no regulator's observer: any co-signature that
        // passes is forged.
        Ok(Checked::Cosignature(c, s)) => panic!("a co-signature passed: {c:?} {s:?}"),
        Err(_) => {}
    }
}

fuzz_target!(
    init: {
        seeds::write(&world().seeds);
    },
    |data: &[u8]| {
        let [sel, arg, msg @ ..] = data else {
            return;
        };
        let w = world();
        let r = Reference::get();
        match sel % SELECTORS {
            s @ 0..=2 => {
                w.checker.tip_height.store(u64::from(*arg % 8), Ordering::Relaxed);
                let topic = [TopicKind::Txs, TopicKind::Consensus, TopicKind::Blocks][usize::from(s)];
                check_topic(w, topic, msg);
            }
            3 => {
                // A response to a request from a height the node would ask for (its tip
                // plus one: small, not hostile).
                let from = 1 + u64::from(*arg % 8);
                if let Ok(items) = sync::decode_blocks_response(
                    msg,
                    from,
                    64,
                    CHAIN,
                    &w.checker.validators,
                    &w.checker.limits,
                ) {
                    for (k, (b, c)) in items.iter().enumerate() {
                        assert_eq!(b.header.height, from + k as u64);
                        let Some(i) = reference_block(r, b) else {
                            panic!("a synced block that is not the chain's passed: {b:?}");
                        };
                        assert!(genuine_cert(r, i, c), "a forged certificate passed: {c:?}");
                    }
                }
            }
            4 => {
                let b = usize::from(*arg) % r.blocks.len();
                let hash: Hash32 = r.blocks[b].header.hash();
                if let Ok(Some((block, cert))) = sync::decode_block_response(
                    msg,
                    &hash,
                    CHAIN,
                    &w.checker.validators,
                    &w.checker.limits,
                ) {
                    assert!(block == r.blocks[b], "another block than the one asked for passed");
                    if let Some(c) = cert {
                        assert!(genuine_cert(r, b, &c), "a forged certificate passed: {c:?}");
                    }
                }
            }
            _ => {
                if let Ok(req) = SyncRequest::decode(msg) {
                    assert!(req.encode() == msg, "sync request is not canonical");
                }
            }
        }
    }
);
