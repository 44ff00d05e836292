//! Several real engines in one process, joined by an in-memory network that delivers
//! every message reliably: consensus across validators, transaction gossip, block
//! announcements, sync, observers, crashes and restarts. The libp2p network replaces the
//! in-memory one in a node; the engine is the same.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use ebill_api::{Backend, Role, TxOutcome};
use ebill_consensus::{TimeoutSchedule, Timeouts};
use ebill_engine::{
    CertifiedBlock, EngineConfig, EngineSetup, Input, Mempool, Outbound as EngineOut,
};
use ebill_node::engine::{EngineHost, ToEngine};
use ebill_node::network::{Outbound, OutboundQueue};
use ebill_node::shared::Shared;
use ebill_store::{MemStore, Store};
use ebill_types::{CheckCode, Genesis, SignedTx, Tx, TxBody, TxId, dev};

/// Bound on every wait in these tests.
const WAIT: Duration = Duration::from_secs(60);

struct Member {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    input: mpsc::Sender<ToEngine>,
    engine: Option<std::thread::JoinHandle<Result<(), ebill_engine::EngineError>>>,
    alive: Arc<AtomicBool>,
}

struct Cluster {
    genesis: Genesis,
    members: Arc<std::sync::Mutex<Vec<Option<MemberLink>>>>,
    nodes: Vec<Member>,
}

/// What the network needs of a member.
#[derive(Clone)]
struct MemberLink {
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    input: mpsc::Sender<ToEngine>,
    alive: Arc<AtomicBool>,
}

fn timeouts() -> Timeouts {
    Timeouts {
        propose: TimeoutSchedule::new(1_000, 500),
        prevote: TimeoutSchedule::new(500, 250),
        precommit: TimeoutSchedule::new(500, 250),
    }
}

impl Cluster {
    fn new(validators: u32) -> Self {
        Self {
            genesis: dev::dev_genesis_with("ebill-inproc", validators),
            members: Arc::new(std::sync::Mutex::new(Vec::new())),
            nodes: Vec::new(),
        }
    }

    /// Starts member `index` (a validator if `index` < validators, else an observer)
    /// over `store`.
    fn start(&mut self, index: usize, store: Arc<dyn Store>) {
        store.init_genesis(&self.genesis).unwrap();
        let validators = self.genesis.validator_set().unwrap();
        let is_validator = index < validators.len();
        let role = if is_validator {
            Role::Validator
        } else {
            Role::Observer
        };
        let mempool = Arc::new(Mutex::new(Mempool::new(100_000, 64 << 20)));
        let shared = Arc::new(Shared::new(
            self.genesis.clone(),
            Arc::clone(&store),
            role,
            Arc::clone(&mempool),
        ));
        let (out, mut out_rx) = OutboundQueue::new();
        let out = Arc::new(out);
        shared.connect_network(Arc::clone(&out));
        let config = is_validator.then(|| {
            ebill_consensus::Config::new(
                self.genesis.chain_id.clone(),
                validators.clone(),
                index as u32,
                dev::dev_key("validator", index as u32),
            )
            .with_timeouts(timeouts())
        });
        let setup = EngineSetup {
            store: Arc::clone(&store),
            mempool,
            genesis: self.genesis.clone(),
            consensus: config,
            config: EngineConfig {
                heartbeat_ms: 3_600_000,
                max_clock_drift_ms: 10_000,
                tick_ms: 200,
                verify_cores: 2,
            },
        };
        let host = EngineHost::start(setup, Arc::clone(&shared), Some(out), None).unwrap();
        let (tx, rx) = mpsc::channel();
        shared.connect_engine(tx.clone());
        let handle = ebill_node::engine::spawn(host, rx).unwrap();
        let alive = Arc::new(AtomicBool::new(true));
        let link = MemberLink {
            shared: Arc::clone(&shared),
            store: Arc::clone(&store),
            input: tx.clone(),
            alive: Arc::clone(&alive),
        };
        {
            let mut m = self.members.lock().unwrap();
            while m.len() <= index {
                m.push(None);
            }
            m[index] = Some(link);
        }
        // This member's outbound messages, delivered to the others.
        let members = Arc::clone(&self.members);
        let my_alive = Arc::clone(&alive);
        std::thread::spawn(move || {
            while let Some(msg) = out_rx.blocking_recv() {
                if !my_alive.load(Ordering::SeqCst) {
                    continue;
                }
                let peers: Vec<(usize, MemberLink)> = members
                    .lock()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| m.clone().map(|m| (i, m)))
                    .filter(|(i, m)| *i != index && m.alive.load(Ordering::SeqCst))
                    .collect();
                let me = members.lock().unwrap()[index].clone();
                deliver(msg, &peers, me.as_ref());
            }
        });
        let member = Member {
            shared,
            store,
            input: tx,
            engine: Some(handle),
            alive,
        };
        if index < self.nodes.len() {
            self.nodes[index] = member;
        } else {
            self.nodes.push(member);
        }
    }

    /// Stops member `index` abruptly: it hears and says nothing more (its store stays,
    /// as a disk would).
    fn crash(&mut self, index: usize) {
        let m = &mut self.nodes[index];
        m.alive.store(false, Ordering::SeqCst);
        let _ = m.input.send(ToEngine::Shutdown);
        if let Some(h) = m.engine.take() {
            h.join().unwrap().unwrap();
        }
    }
}

fn deliver(msg: Outbound, peers: &[(usize, MemberLink)], me: Option<&MemberLink>) {
    match msg {
        Outbound::Engine(EngineOut::Consensus { msg, block }) => {
            for (_, p) in peers {
                let _ = p.input.send(ToEngine::Input(Input::Consensus {
                    msg,
                    block: block.clone(),
                }));
            }
        }
        Outbound::Txs(txs) => {
            for (_, p) in peers {
                p.shared.admit_from_peer(txs.clone());
            }
        }
        Outbound::Cosignature(checkpoint, cosig) => {
            for (_, p) in peers {
                p.shared.on_cosignature(&checkpoint, &cosig);
            }
        }
        Outbound::Engine(EngineOut::Announce(cb)) => {
            for (_, p) in peers {
                let _ = p
                    .input
                    .send(ToEngine::Input(Input::Blocks(vec![cb.clone()])));
            }
        }
        Outbound::Engine(EngineOut::RequestBlocks { from_height, max }) => {
            let Some(me) = me else { return };
            for (_, p) in peers {
                let tip = p.store.tip().unwrap().map(|t| t.height).unwrap_or(0);
                if tip < from_height {
                    continue;
                }
                let to = tip.min(from_height + u64::from(max) - 1);
                let blocks: Vec<_> = (from_height..=to)
                    .map(|h| CertifiedBlock {
                        block: Arc::new(p.store.block(h).unwrap().unwrap()),
                        certificate: p.store.certificate(h).unwrap().unwrap(),
                    })
                    .collect();
                let _ = me.input.send(ToEngine::Input(Input::Blocks(blocks)));
                return;
            }
        }
        Outbound::Engine(EngineOut::RequestBlock { hash }) => {
            let Some(me) = me else { return };
            for (_, p) in peers {
                if let Some(h) = p.store.height_of_block(&hash).unwrap() {
                    let cb = CertifiedBlock {
                        block: Arc::new(p.store.block(h).unwrap().unwrap()),
                        certificate: p.store.certificate(h).unwrap().unwrap(),
                    };
                    let _ = me.input.send(ToEngine::Input(Input::Blocks(vec![cb])));
                    return;
                }
            }
            // Not final anywhere: a proposed block some engine holds.
            for (_, p) in peers {
                let to = me.input.clone();
                let reply: ebill_node::engine::BlockReply = Box::new(move |block| {
                    if let Some(b) = block {
                        let _ = to.send(ToEngine::Input(Input::Block(b)));
                    }
                });
                let _ = p.input.send(ToEngine::PendingBlock { hash, reply });
            }
        }
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn issue_tx(chain: &str, number: u64) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(number, 1250, now_ms())),
    }
    .sign_unit(chain, &dev::dev_issuer_key())
}

/// Submits through `node` and waits until final (or dropped) there.
fn submit_and_wait(node: &Member, txs: Vec<SignedTx>) -> Vec<Result<TxId, String>> {
    let ids = node.shared.submit(txs);
    let watches: Vec<_> = ids
        .iter()
        .map(|r| r.as_ref().ok().map(|id| node.shared.watch(*id)))
        .collect();
    ids.into_iter()
        .zip(watches)
        .map(|(r, w)| match (r, w) {
            (Err(e), _) => Err(e.code.as_str().to_owned()),
            (Ok(id), Some(w)) => match wait(w) {
                TxOutcome::Committed(_) => Ok(id),
                TxOutcome::Rejected(r) => Err(r.code.as_str().to_owned()),
            },
            (Ok(_), None) => unreachable!(),
        })
        .collect()
}

fn wait(rx: tokio::sync::oneshot::Receiver<TxOutcome>) -> TxOutcome {
    let (tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(rx.blocking_recv());
    });
    done.recv_timeout(WAIT)
        .expect("transaction not final within the bound")
        .expect("node stopped")
}

/// Waits until `node` has committed `id`.
fn wait_committed(node: &Member, id: TxId) {
    match wait(node.shared.watch(id)) {
        TxOutcome::Committed(_) => {}
        TxOutcome::Rejected(r) => panic!("{id} rejected on a peer: {r:?}"),
    }
}

/// Every pair of live members agrees on every block both hold.
fn assert_agree(nodes: &[&Member]) {
    let tips: Vec<u64> = nodes
        .iter()
        .map(|n| n.store.tip().unwrap().map(|t| t.height).unwrap_or(0))
        .collect();
    let lo = *tips.iter().min().unwrap();
    assert!(lo > 0, "no blocks at all");
    for h in 1..=lo {
        let hashes: Vec<_> = nodes
            .iter()
            .map(|n| n.store.header(h).unwrap().unwrap().hash())
            .collect();
        assert!(
            hashes.windows(2).all(|w| w[0] == w[1]),
            "fork at height {h}: {hashes:?}"
        );
    }
}

#[test]
fn four_validators_and_an_observer_agree_and_survive_a_crash() {
    let mut c = Cluster::new(4);
    for i in 0..5 {
        c.start(i, Arc::new(MemStore::new()));
    }
    let chain = c.genesis.chain_id.clone();
    // Bills submitted to different validators all become final everywhere.
    let a: Vec<SignedTx> = (1..=50).map(|n| issue_tx(&chain, n)).collect();
    let b: Vec<SignedTx> = (51..=100).map(|n| issue_tx(&chain, n)).collect();
    let ra = submit_and_wait(&c.nodes[0], a);
    let rb = submit_and_wait(&c.nodes[2], b);
    assert!(ra.iter().chain(&rb).all(Result::is_ok), "{ra:?} {rb:?}");
    let last = *rb.last().unwrap().as_ref().unwrap();
    for n in &c.nodes {
        wait_committed(n, last);
    }
    assert_agree(&c.nodes.iter().collect::<Vec<_>>());

    // The same bill reimbursed through two validators at once: exactly one succeeds.
    let bill = dev::sample_bill(1, 1250, 0).id();
    let check = c.nodes[0].store.bill(&bill).unwrap().unwrap().check_code;
    let other = dev::dev_key("inproc-reimburser", 1);
    let other_code = dev::test_credit_code('A', 1);
    let regs = dev::dev_regulator_keys();
    let reg = Tx {
        nonce: 1,
        body: TxBody::RegisterReimburser {
            credit_code: other_code,
            name: "another insurer".into(),
            public_key: other.public(),
        },
    }
    .sign_regulators(&chain, &[(0, &regs[0]), (1, &regs[1])]);
    let r = submit_and_wait(&c.nodes[1], vec![reg]);
    assert!(r[0].is_ok(), "{r:?}");
    for n in &c.nodes {
        wait_committed(n, *r[0].as_ref().unwrap());
    }
    let reimburse = |unit, key: &ebill_types::Keypair, nonce| {
        Tx {
            nonce,
            body: TxBody::ConfirmReimbursed {
                unit,
                bill,
                check_code: check,
            },
        }
        .sign_unit(&chain, key)
    };
    let t1 = reimburse(dev::dev_reimburser_code(), &dev::dev_reimburser_key(), 10);
    let t2 = reimburse(other_code, &other, 11);
    let (n1, n3) = (&c.nodes[1], &c.nodes[3]);
    let (r1, r3) = std::thread::scope(|s| {
        let h1 = s.spawn(|| submit_and_wait(n1, vec![t1]));
        let h3 = s.spawn(|| submit_and_wait(n3, vec![t2]));
        (h1.join().unwrap(), h3.join().unwrap())
    });
    let outcomes = [r1[0].clone(), r3[0].clone()];
    assert_eq!(
        outcomes.iter().filter(|r| r.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|r| r.as_ref().err().map(String::as_str) == Some("already_reimbursed")),
        "{outcomes:?}"
    );

    // Crash one validator: the other three keep finalising.
    c.crash(3);
    let more: Vec<SignedTx> = (101..=130).map(|n| issue_tx(&chain, n)).collect();
    let r = submit_and_wait(&c.nodes[0], more);
    assert!(r.iter().all(Result::is_ok), "{r:?}");
    let last = *r.last().unwrap().as_ref().unwrap();
    for i in [0, 1, 2, 4] {
        wait_committed(&c.nodes[i], last);
    }
    // Restarted on its store and WAL, it catches up and agrees.
    let store = Arc::clone(&c.nodes[3].store);
    c.start(3, store);
    let r = submit_and_wait(&c.nodes[3], vec![issue_tx(&chain, 131)]);
    assert!(r[0].is_ok(), "{r:?}");
    for n in &c.nodes {
        wait_committed(n, *r[0].as_ref().unwrap());
    }
    assert_agree(&c.nodes.iter().collect::<Vec<_>>());
    // The observer holds every bill, re-executed.
    for n in 1..=131u64 {
        let id = dev::sample_bill(n, 1250, 0).id();
        assert!(
            c.nodes[4].store.bill(&id).unwrap().is_some(),
            "observer lacks bill {n}"
        );
    }
    let _ = CheckCode::parse("000000");
    for i in 0..5 {
        c.crash(i);
    }
}

#[test]
fn a_late_observer_catches_up_from_height_zero() {
    let mut c = Cluster::new(1);
    c.start(0, Arc::new(MemStore::new()));
    let chain = c.genesis.chain_id.clone();
    for chunk in 0..5u64 {
        let txs: Vec<SignedTx> = (1..=200)
            .map(|n| issue_tx(&chain, chunk * 1000 + n))
            .collect();
        let r = submit_and_wait(&c.nodes[0], txs);
        assert!(r.iter().all(Result::is_ok));
    }
    let tip = c.nodes[0].store.tip().unwrap().unwrap();
    c.start(1, Arc::new(MemStore::new()));
    // The observer asks for blocks from height 1 on its own; wait for the tip block.
    let last_tx = c.nodes[0]
        .store
        .block(tip.height)
        .unwrap()
        .unwrap()
        .tx_ids()[0];
    wait_committed(&c.nodes[1], last_tx);
    assert_agree(&[&c.nodes[0], &c.nodes[1]]);
    assert_eq!(c.nodes[1].store.tip().unwrap().unwrap(), tip);
    for i in 0..2 {
        c.crash(i);
    }
}

/// Block 1 on `genesis`, proposed by `proposer`, with one new bill numbered `number`;
/// and that bill's transaction id.
fn first_block(
    genesis: &ebill_types::Genesis,
    proposer: u32,
    number: u64,
) -> (ebill_types::Block, TxId) {
    let chain = &genesis.chain_id;
    let tx = issue_tx(chain, number);
    let id = tx.tx.id(chain);
    let txs = vec![tx];
    let time_ms = u64::try_from(now_ms()).unwrap();
    // The state root after this block on a fresh store of the genesis.
    let fresh = MemStore::new();
    fresh.init_genesis(genesis).unwrap();
    let changes = ebill_ledger::apply_block(
        &fresh,
        ebill_ledger::Context {
            genesis,
            height: 1,
            time_ms,
        },
        &txs,
        None,
    )
    .unwrap();
    let state_root = ebill_store::state_update(&fresh, &changes).unwrap().root;
    let header = ebill_types::Header {
        chain_id: chain.clone(),
        height: 1,
        prev_hash: genesis.hash(),
        time_ms,
        proposer,
        tx_root: ebill_types::Block::tx_root(&txs),
        tx_count: 1,
        validator_set_hash: genesis.validator_set().unwrap().hash(),
        state_root,
    };
    (ebill_types::Block { header, txs }, id)
}

/// A validator that crashed after precommitting a block, before storing it, commits that
/// very block on restart: its bytes were in the WAL before the precommit left.
#[test]
fn a_block_precommitted_before_a_crash_is_committed_on_restart() {
    use ebill_engine::wal;
    use ebill_types::{Proposal, Vote, VoteKind};

    let mut c = Cluster::new(1);
    let genesis = c.genesis.clone();
    let chain = genesis.chain_id.clone();
    let key = dev::dev_key("validator", 0);
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    store.init_genesis(&genesis).unwrap();
    let (block, id) = first_block(&genesis, 0, 77);
    let hash = block.header.hash();
    // What the WAL holds after a crash right after the precommit was persisted.
    let proposal = Proposal {
        height: 1,
        round: 0,
        block: hash,
        pol_round: None,
        proposer: 0,
    }
    .sign(&chain, &key);
    let vote = |kind| {
        Vote {
            kind,
            height: 1,
            round: 0,
            block: Some(hash),
            validator: 0,
        }
        .sign(&chain, &key)
    };
    store
        .wal_append(
            1,
            &wal::encode(&ebill_consensus::Message::Proposal(proposal)),
        )
        .unwrap();
    store
        .wal_append(
            1,
            &wal::encode(&ebill_consensus::Message::Vote(vote(VoteKind::Prevote))),
        )
        .unwrap();
    store.wal_append(1, &wal::encode_block(&block)).unwrap();
    store
        .wal_append(
            1,
            &wal::encode(&ebill_consensus::Message::Vote(vote(VoteKind::Precommit))),
        )
        .unwrap();
    assert!(store.tip().unwrap().is_none());

    c.start(0, Arc::clone(&store));
    wait_committed(&c.nodes[0], id);
    let tip = store.tip().unwrap().unwrap();
    assert_eq!((tip.height, tip.hash), (1, hash));
    c.crash(0);
}

/// A validator keeps the votes it receives for the height in progress and feeds them back
/// to consensus after a restart: here it holds its own precommit and those of two others
/// for one block, and with every other validator gone it still decides and commits that
/// block from its WAL alone. Without the received votes it would wait for peers forever.
#[test]
fn received_votes_kept_in_the_wal_decide_a_height_after_a_restart() {
    use ebill_engine::wal;
    use ebill_types::{Vote, VoteKind};

    let mut c = Cluster::new(4);
    let genesis = c.genesis.clone();
    let chain = genesis.chain_id.clone();
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    store.init_genesis(&genesis).unwrap();
    let (block, id) = first_block(&genesis, 1, 78);
    let hash = block.header.hash();
    let vote = |kind, validator: u32| {
        Vote {
            kind,
            height: 1,
            round: 0,
            block: Some(hash),
            validator,
        }
        .sign(&chain, &dev::dev_key("validator", validator))
    };
    let own = |v| wal::encode(&ebill_consensus::Message::Vote(v));
    store
        .wal_append(1, &own(vote(VoteKind::Prevote, 0)))
        .unwrap();
    store.wal_append(1, &wal::encode_block(&block)).unwrap();
    store
        .wal_append(1, &own(vote(VoteKind::Precommit, 0)))
        .unwrap();
    for v in [1, 2] {
        store
            .wal_append(1, &wal::encode_received_vote(&vote(VoteKind::Prevote, v)))
            .unwrap();
        store
            .wal_append(1, &wal::encode_received_vote(&vote(VoteKind::Precommit, v)))
            .unwrap();
    }

    c.start(0, Arc::clone(&store));
    wait_committed(&c.nodes[0], id);
    let tip = store.tip().unwrap().unwrap();
    assert_eq!((tip.height, tip.hash), (1, hash));
    // The WAL of a committed height is pruned, received votes with it.
    assert!(store.wal_entries(1).unwrap().is_empty());
    c.crash(0);
}
