//! An observer catching up keeps several sync requests in flight and checks the next
//! block's signatures while it commits the current one; what it ends with must not
//! depend on either.
//!
//! A source chain of one dev validator is committed straight to a `MemStore` (issues of
//! the dev issuer, and in the middle a rotation of its key followed by bills signed with
//! the new key, so that signatures checked ahead on the state before the rotation are
//! stale). Fresh observers, one checking signatures on its own thread and one on two
//! cores with the next block's checked ahead, sync it from a peer that answers at most
//! [`ANSWER_CAP`] blocks a request (a byte limit), delivers answers in the reverse order
//! of the requests, and loses the first answer for one height.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use ebill_engine::{
    CertifiedBlock, Engine, EngineConfig, EngineSetup, Input, Mempool, Outbound, Output,
};
use ebill_ledger::{Context, apply_block};
use ebill_store::{MemStore, Store};
use ebill_types::dev::{self, DEV_GENESIS_TIME_MS};
use ebill_types::{Block, Genesis, Header, Keypair, SignedTx, Tx, TxBody};

const BLOCKS: u64 = 30;
const BILLS_PER_BLOCK: u64 = 12;
/// The height whose block rotates the issuer's key.
const ROTATION_HEIGHT: u64 = 10;
/// Most blocks the source puts in one answer.
const ANSWER_CAP: u64 = 4;
/// The height whose first answer is lost.
const LOST_FROM_HEIGHT: u64 = 13;
const TICK_MS: u64 = 1_000;

fn block_time_ms(height: u64) -> u64 {
    DEV_GENESIS_TIME_MS as u64 + 3_600_000 + height * 1_000
}

fn issue(genesis: &Genesis, number: u64, height: u64, key: &Keypair) -> SignedTx {
    let bill = dev::sample_bill(number, 1_250, block_time_ms(height) as i64);
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill),
    }
    .sign_unit(&genesis.chain_id, key)
}

/// Applies `txs` as the next block of `store` and commits it with a dev certificate.
fn commit(store: &MemStore, genesis: &Genesis, txs: Vec<SignedTx>) {
    let tip = store.tip().unwrap();
    let height = tip.map_or(1, |t| t.height + 1);
    let prev_hash = tip.map_or_else(|| genesis.hash(), |t| t.hash);
    let time_ms = block_time_ms(height);
    let ctx = Context {
        genesis,
        height,
        time_ms,
    };
    let changes = apply_block(store, ctx, &txs, None).unwrap();
    let header = Header {
        chain_id: genesis.chain_id.clone(),
        height,
        prev_hash,
        time_ms,
        proposer: 0,
        tx_root: Block::tx_root(&txs),
        tx_count: u32::try_from(txs.len()).unwrap(),
        validator_set_hash: genesis.validator_set().unwrap().hash(),
        state_root: ebill_store::state_update(store, &changes).unwrap().root,
    };
    let cert = dev::dev_certificate(&genesis.chain_id, height, header.hash());
    store
        .commit_block(&Block { header, txs }, &cert, &changes)
        .unwrap();
}

fn source_chain(genesis: &Genesis) -> MemStore {
    let store = MemStore::new();
    store.init_genesis(genesis).unwrap();
    let old_key = dev::dev_issuer_key();
    let new_key = dev::dev_key("rotated-issuer", 0);
    let regulators = dev::dev_regulator_keys();
    let mut number = 1;
    for height in 1..=BLOCKS {
        let key = if height > ROTATION_HEIGHT {
            &new_key
        } else {
            &old_key
        };
        let mut txs: Vec<SignedTx> = (0..BILLS_PER_BLOCK)
            .map(|i| issue(genesis, number + i, height, key))
            .collect();
        number += BILLS_PER_BLOCK;
        if height == ROTATION_HEIGHT {
            txs.push(
                Tx {
                    nonce: 1,
                    body: TxBody::RotateKey {
                        credit_code: dev::dev_issuer_code(),
                        public_key: new_key.public(),
                    },
                }
                .sign_regulators(
                    &genesis.chain_id,
                    &[(0, &regulators[0]), (1, &regulators[1])],
                ),
            );
        }
        commit(&store, genesis, txs);
    }
    store
}

/// What one observer's sync came to.
struct Synced {
    tip_hash: ebill_types::Hash32,
    state_root: ebill_types::Hash32,
    requests: usize,
    most_in_flight: usize,
}

fn sync(genesis: &Genesis, source: &MemStore, verify_cores: usize) -> Synced {
    let store = Arc::new(MemStore::new());
    store.init_genesis(genesis).unwrap();
    let setup = EngineSetup {
        store: Arc::clone(&store) as Arc<dyn Store>,
        mempool: Arc::new(Mutex::new(Mempool::new(1_000, usize::MAX))),
        genesis: genesis.clone(),
        consensus: None,
        config: EngineConfig {
            tick_ms: TICK_MS,
            verify_cores,
            ..EngineConfig::default()
        },
    };
    let wall = |now: u64| DEV_GENESIS_TIME_MS as u64 + 7_200_000 + now;
    let (mut engine, mut out) = Engine::start(setup, 0, wall(0)).unwrap();
    let mut now = 0;
    let mut requests = 0;
    let mut most_in_flight = 0;
    let mut lost_one = false;
    for _ in 0..1_000 {
        if engine.tip().height == BLOCKS {
            break;
        }
        let asked: Vec<(u64, u32)> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send(Outbound::RequestBlocks { from_height, max }) => {
                    Some((*from_height, *max))
                }
                _ => None,
            })
            .collect();
        requests += asked.len();
        most_in_flight = most_in_flight.max(asked.len());
        out.clear();
        if asked.is_empty() {
            now += TICK_MS;
            out = engine.on_input(now, wall(now), Input::Tick).unwrap();
            continue;
        }
        for (from_height, max) in asked.into_iter().rev() {
            if from_height == LOST_FROM_HEIGHT && !lost_one {
                lost_one = true;
                continue;
            }
            let count = u64::from(max).min(ANSWER_CAP);
            let blocks: Vec<CertifiedBlock> = (from_height..from_height + count)
                .map_while(|h| {
                    Some(CertifiedBlock {
                        block: Arc::new(source.block(h).unwrap()?),
                        certificate: source.certificate(h).unwrap()?,
                    })
                })
                .collect();
            if blocks.is_empty() {
                continue;
            }
            now += 1;
            out.extend(
                engine
                    .on_input(now, wall(now), Input::Blocks(blocks))
                    .unwrap(),
            );
        }
    }
    assert_eq!(engine.tip().height, BLOCKS, "the observer caught up");
    assert!(lost_one, "the scenario lost an answer");
    Synced {
        tip_hash: engine.tip().hash,
        state_root: store.header(BLOCKS).unwrap().unwrap().state_root,
        requests,
        most_in_flight,
    }
}

#[test]
fn an_observer_syncs_the_same_chain_with_requests_and_signature_checks_ahead() {
    let genesis = dev::dev_genesis();
    let source = source_chain(&genesis);
    let source_tip = source.tip().unwrap().unwrap();
    let source_root = source.header(BLOCKS).unwrap().unwrap().state_root;
    for cores in [1, 2] {
        let synced = sync(&genesis, &source, cores);
        assert_eq!(synced.tip_hash, source_tip.hash, "{cores} cores: same tip");
        assert_eq!(synced.state_root, source_root, "{cores} cores: same state");
        assert!(
            synced.most_in_flight > 1,
            "{cores} cores: several requests went out at once"
        );
        // 30 blocks in answers of 4: at least 8 requests; a window of three spans, a
        // lost answer and the answers of a span grown past the cap cost a few more.
        assert!(
            (8..=40).contains(&synced.requests),
            "{cores} cores: {} requests",
            synced.requests
        );
    }
}
