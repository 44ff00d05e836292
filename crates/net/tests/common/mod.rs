//! Shared helpers of the network tests: genesis, keys, signed blocks and certificates,
//! and nodes on 127.0.0.1 with every wait bounded in time.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use ebill_net::libp2p::multiaddr::Protocol;
use ebill_net::{Client, Events, Multiaddr, NetConfig, NetEvent, PeerId, peer_id_of};
use ebill_types::dev::{
    DEV_GENESIS_TIME_MS, dev_genesis_with, dev_issuer_key, dev_key, sample_bill,
};
use ebill_types::genesis::Observer;
use ebill_types::tx::{Tx, TxBody};
use ebill_types::{
    Block, Canonical, CommitCertificate, CommitSignature, Genesis, Hash32, Header, Keypair,
    SignedTx, Vote, VoteKind,
};
use tokio::task::JoinHandle;

/// The chain id of every test.
pub const CHAIN: &str = "net-test";
/// The bound of every single wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// `addr` with `/p2p/<peer>` appended.
pub fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    addr.clone().with(Protocol::P2p(peer))
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Key of validator `i`.
pub fn validator_key(i: u32) -> Keypair {
    dev_key("validator", i)
}

/// Key of observer `i`.
pub fn observer_key(i: u32) -> Keypair {
    dev_key("observer", i)
}

/// A genesis of `validators` validators and `observers` observers.
pub fn genesis(validators: u32, observers: u32) -> Genesis {
    let mut g = dev_genesis_with(CHAIN, validators);
    g.observers = (0..observers)
        .map(|i| Observer {
            name: format!("observer-{i}"),
            public_key: observer_key(i).public(),
            regulator: None,
        })
        .collect();
    g.validate().expect("test genesis is valid");
    g
}

/// Runs `f` with the bound [`WAIT`], failing the test with `what` past it.
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?}: {what}"),
    }
}

/// A running node.
pub struct Node {
    pub client: Client,
    pub events: Events,
    pub handle: JoinHandle<()>,
    /// Its listen address with `/p2p/<peer id>`.
    pub addr: Multiaddr,
    pub peer: PeerId,
}

impl Node {
    /// Waits for the first event for which `f` returns `Some`, skipping the others.
    pub async fn next_matching<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(NetEvent) -> Option<T>,
    ) -> T {
        let events = &mut self.events;
        bounded(what, async move {
            loop {
                match events.recv().await {
                    Some(ev) => {
                        if let Some(v) = f(ev) {
                            return v;
                        }
                    }
                    None => panic!("event channel closed while waiting for {what}"),
                }
            }
        })
        .await
    }

    /// Stops the node and waits for its task.
    pub async fn stop(self) {
        bounded("shutdown", self.client.shutdown()).await;
        bounded("event loop end", self.handle)
            .await
            .expect("event loop task");
    }
}

/// A configuration for a node of `genesis` with key `key`, dialing `peers`.
pub fn config(genesis: &Genesis, key: &Keypair, peers: Vec<Multiaddr>) -> NetConfig {
    NetConfig::from_genesis(
        genesis,
        key.seed(),
        "/ip4/127.0.0.1/tcp/0".parse().expect("listen address"),
        peers,
    )
    .expect("config")
}

/// Starts a node with `cfg` and waits for its listen address.
pub async fn start(cfg: NetConfig) -> Node {
    let (client, mut events, handle) = ebill_net::start(cfg).await.expect("start");
    let peer = client.local_peer_id();
    let listen = bounded("listening", async {
        loop {
            match events.recv().await {
                Some(NetEvent::Listening(a)) => return a,
                Some(_) => {}
                None => panic!("event channel closed before listening"),
            }
        }
    })
    .await;
    Node {
        client,
        events,
        handle,
        addr: with_peer(&listen, peer),
        peer,
    }
}

/// Starts one node per key, each dialing all the ones before it, and waits until each
/// has every other as a gossip peer.
pub async fn cluster(genesis: &Genesis, keys: &[Keypair]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::new();
    for key in keys {
        let peers = nodes.iter().map(|n| n.addr.clone()).collect();
        nodes.push(start(config(genesis, key, peers)).await);
    }
    for n in &nodes {
        bounded(
            "gossip mesh",
            n.client.wait_for_gossip_peers(keys.len() - 1),
        )
        .await
        .expect("gossip peers");
    }
    nodes
}

/// Stops every node.
pub async fn stop_all(nodes: Vec<Node>) {
    for n in nodes {
        n.stop().await;
    }
}

/// `peer_id_of` for a key.
pub fn peer_of(key: &Keypair) -> PeerId {
    peer_id_of(&key.public())
}

/// `count` signed IssueBill transactions of the dev issuer, numbered from `first`, each
/// padded with a remark of `remark_bytes` bytes.
pub fn txs(first: u64, count: u64, remark_bytes: usize) -> Vec<SignedTx> {
    let key = dev_issuer_key();
    (first..first + count)
        .map(|n| {
            let mut bill = sample_bill(n, 1250, DEV_GENESIS_TIME_MS + 60_000);
            bill.remark = "x".repeat(remark_bytes);
            Tx {
                nonce: 0,
                body: TxBody::IssueBill(bill),
            }
            .sign_unit(CHAIN, &key)
        })
        .collect()
}

/// Transactions of about `bytes` canonical bytes in all.
pub fn txs_of_size(first: u64, bytes: usize) -> Vec<SignedTx> {
    let one = txs(first, 1, 500)[0].to_canonical_bytes().len();
    txs(first, (bytes / one + 1) as u64, 500)
}

/// A block of `genesis` at `height` on `prev_hash` with `txs`, proposed by `proposer`.
pub fn block(
    genesis: &Genesis,
    height: u64,
    prev_hash: Hash32,
    txs: Vec<SignedTx>,
    proposer: u32,
) -> Block {
    let header = Header {
        chain_id: CHAIN.into(),
        height,
        prev_hash,
        time_ms: DEV_GENESIS_TIME_MS as u64 + height * 1000,
        proposer,
        tx_root: Block::tx_root(&txs),
        tx_count: txs.len() as u32,
        validator_set_hash: genesis.validator_set().expect("set").hash(),
        state_root: Hash32::ZERO,
    };
    Block { header, txs }
}

/// A certificate of `block` with the precommits of validators `signers` (in order).
pub fn certify(block: &Block, signers: &[u32]) -> CommitCertificate {
    let hash = block.header.hash();
    CommitCertificate {
        height: block.header.height,
        round: 0,
        block: hash,
        signatures: signers
            .iter()
            .map(|&i| CommitSignature {
                validator: i,
                signature: Vote {
                    kind: VoteKind::Precommit,
                    height: block.header.height,
                    round: 0,
                    block: Some(hash),
                    validator: i,
                }
                .sign(CHAIN, &validator_key(i))
                .signature,
            })
            .collect(),
    }
}

/// A chain of `n` certified blocks from height 1 (quorum of a 4-validator set), each
/// with `txs_per_block` transactions.
pub fn chain(genesis: &Genesis, n: u64, txs_per_block: u64) -> Vec<(Block, CommitCertificate)> {
    let mut prev = genesis.hash();
    let mut out = Vec::new();
    for h in 1..=n {
        let b = block(
            genesis,
            h,
            prev,
            txs(h * 1000, txs_per_block, 10),
            (h % 4) as u32,
        );
        prev = b.header.hash();
        let c = certify(&b, &[0, 1, 2]);
        out.push((b, c));
    }
    out
}
