//! Joins the engine to the libp2p network of `ebill-net`: outbound messages are
//! published or turned into sync requests; gossip and answers come back as engine
//! inputs; peers' sync requests are served from the store, and requests for a block of
//! the height in progress from the engine. Nothing here decides anything: it only
//! carries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;

use ebill_consensus::Message;
use ebill_net::{Client, ConsensusMsg, Events, NetConfig, NetEvent, PeerId};
use ebill_store::Store;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use ebill_engine::{CertifiedBlock, Input, Outbound as EngineOut};

use crate::engine::ToEngine;
use crate::network::Outbound;
use crate::shared::Shared;

/// Gossiped transaction batches being admitted at once.
const ADMISSION_BATCHES_IN_FLIGHT: usize = 4;

/// The running network: its client and the tasks that carry messages.
pub struct P2p {
    /// The libp2p client.
    pub client: Client,
    tasks: Vec<JoinHandle<()>>,
    event_loop: JoinHandle<()>,
}

impl P2p {
    /// Stops the carrying tasks and the swarm.
    pub async fn shutdown(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.client.shutdown().await;
        let _ = self.event_loop.await;
    }
}

/// Starts the network and the tasks that join it to the engine and the store.
pub async fn start(
    cfg: NetConfig,
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    engine: std_mpsc::Sender<ToEngine>,
    outbound: mpsc::Receiver<Outbound>,
) -> Result<P2p, ebill_net::NetError> {
    let (client, events, event_loop) = ebill_net::start(cfg).await?;
    info!(peer_id = %client.local_peer_id(), "p2p started");
    let connected = Arc::new(Notify::new());
    let out_task = tokio::spawn(carry_out(
        client.clone(),
        outbound,
        engine.clone(),
        Arc::clone(&connected),
    ));
    let resend_task = tokio::spawn(resend_cosignature(client.clone(), Arc::clone(&shared)));
    let in_task = tokio::spawn(carry_in(
        client.clone(),
        events,
        shared,
        store,
        engine,
        connected,
    ));
    Ok(P2p {
        client,
        tasks: vec![out_task, in_task, resend_task],
        event_loop,
    })
}

/// A block and certificate from the network, as the engine takes them.
fn certified(
    (block, certificate): (ebill_types::Block, ebill_types::CommitCertificate),
) -> CertifiedBlock {
    CertifiedBlock {
        block: Arc::new(block),
        certificate,
    }
}

/// Picks peers for requests in turn.
fn pick_peer(client: &Client, turn: &AtomicUsize) -> Option<PeerId> {
    let peers = client.connected_peers();
    if peers.is_empty() {
        return None;
    }
    let i = turn.fetch_add(1, Ordering::Relaxed) % peers.len();
    peers.get(i).copied()
}

/// How long a request of the engine waits for a peer when none is connected (a node
/// that has just started): the engine asks again a tick after, so longer is no use.
const PEER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A peer for a request, in turn; if none is connected, the first to connect within
/// [`PEER_WAIT`]. Without the wait, the first requests of a node that has just started
/// went nowhere and its sync began a tick late (a second of a five-second sync in the
/// benchmark).
async fn peer_for_request(
    client: &Client,
    turn: &AtomicUsize,
    connected: &Notify,
) -> Option<PeerId> {
    let wait = connected.notified();
    tokio::pin!(wait);
    // Registered before the check, so a peer that connects in between is not missed.
    wait.as_mut().enable();
    if let Some(peer) = pick_peer(client, turn) {
        return Some(peer);
    }
    tokio::time::timeout(PEER_WAIT, wait).await.ok()?;
    pick_peer(client, turn)
}

/// How often a witness re-sends its latest co-signature, for nodes that missed it
/// (started later, or restarted: a node keeps co-signatures in memory only).
const COSIGNATURE_RESEND_MS: u64 = 2_000;

async fn resend_cosignature(client: Client, shared: Arc<Shared>) {
    let mut every = tokio::time::interval(std::time::Duration::from_millis(COSIGNATURE_RESEND_MS));
    loop {
        every.tick().await;
        if let Some((checkpoint, cosig)) = shared.own_cosignature()
            && let Err(e) = client.publish_cosignature(&checkpoint, &cosig).await
        {
            debug!("re-send co-signature: {e}");
        }
    }
}

async fn carry_out(
    client: Client,
    mut outbound: mpsc::Receiver<Outbound>,
    engine: std_mpsc::Sender<ToEngine>,
    connected: Arc<Notify>,
) {
    let turn = Arc::new(AtomicUsize::new(0));
    while let Some(o) = outbound.recv().await {
        match o {
            Outbound::Engine(EngineOut::Consensus { msg, block }) => {
                let m = match msg {
                    Message::Proposal(proposal) => ConsensusMsg::Proposal {
                        proposal,
                        block: block.map(|b| (*b).clone()),
                    },
                    Message::Vote(v) => ConsensusMsg::Vote(v),
                };
                if let Err(e) = client.publish_consensus(m).await {
                    debug!("publish consensus: {e}");
                }
            }
            Outbound::Cosignature(checkpoint, cosig) => {
                if let Err(e) = client.publish_cosignature(&checkpoint, &cosig).await {
                    debug!("publish co-signature: {e}");
                }
            }
            Outbound::Txs(txs) => {
                if let Err(e) = client.publish_txs(txs).await {
                    debug!("publish transactions: {e}");
                }
            }
            Outbound::Engine(EngineOut::Announce(cb)) => {
                let block = (*cb.block).clone();
                if let Err(e) = client.announce_block(block, cb.certificate).await {
                    debug!("announce block: {e}");
                }
            }
            Outbound::Engine(EngineOut::RequestBlocks { from_height, max }) => {
                let client = client.clone();
                let engine = engine.clone();
                let turn = Arc::clone(&turn);
                let connected = Arc::clone(&connected);
                tokio::spawn(async move {
                    let Some(peer) = peer_for_request(&client, &turn, &connected).await else {
                        return;
                    };
                    match client.request_blocks(peer, from_height, max).await {
                        Ok(blocks) if !blocks.is_empty() => {
                            let _ = engine.send(ToEngine::Input(Input::Blocks(
                                blocks.into_iter().map(certified).collect(),
                            )));
                        }
                        Ok(_) => {}
                        Err(e) => debug!(%peer, "block sync request: {e}"),
                    }
                });
            }
            Outbound::Engine(EngineOut::RequestBlock { hash }) => {
                let client = client.clone();
                let engine = engine.clone();
                let turn = Arc::clone(&turn);
                let connected = Arc::clone(&connected);
                tokio::spawn(async move {
                    let Some(peer) = peer_for_request(&client, &turn, &connected).await else {
                        return;
                    };
                    match client.request_block(peer, hash).await {
                        Ok(Some((block, Some(cert)))) => {
                            let _ = engine.send(ToEngine::Input(Input::Blocks(vec![certified((
                                block, cert,
                            ))])));
                        }
                        Ok(Some((block, None))) => {
                            let _ = engine.send(ToEngine::Input(Input::Block(Arc::new(block))));
                        }
                        Ok(None) => {}
                        Err(e) => debug!(%peer, "block request: {e}"),
                    }
                });
            }
        }
    }
}

async fn carry_in(
    client: Client,
    mut events: Events,
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    engine: std_mpsc::Sender<ToEngine>,
    connected: Arc<Notify>,
) {
    let admission = Arc::new(tokio::sync::Semaphore::new(ADMISSION_BATCHES_IN_FLIGHT));
    while let Some(event) = events.recv().await {
        client.set_tip_height(shared.height());
        match event {
            NetEvent::Txs { txs, .. } => {
                let shared = Arc::clone(&shared);
                // Signature checks are CPU work: off the async threads, and at most as
                // many batches at once as there are permits. Waiting for a permit stops
                // this loop, so the network's bounded event queue fills and drops (and
                // counts) rather than piling up admission work here.
                let Ok(permit) = Arc::clone(&admission).acquire_owned().await else {
                    break;
                };
                tokio::task::spawn_blocking(move || {
                    shared.admit_from_peer(txs);
                    drop(permit);
                });
            }
            NetEvent::Consensus { msg, .. } => {
                let (msg, block) = match msg {
                    ConsensusMsg::Proposal { proposal, block } => {
                        (Message::Proposal(proposal), block.map(Arc::new))
                    }
                    ConsensusMsg::Vote(v) => (Message::Vote(v), None),
                };
                let _ = engine.send(ToEngine::Input(Input::Consensus { msg, block }));
            }
            NetEvent::Cosignature {
                checkpoint,
                cosignature,
                ..
            } => shared.on_cosignature(&checkpoint, &cosignature),
            NetEvent::BlockAnnounced { block, cert, .. } => {
                let _ = engine.send(ToEngine::Input(Input::Blocks(vec![certified((
                    block, cert,
                ))])));
            }
            NetEvent::BlocksRequested {
                from_height,
                max,
                respond,
                ..
            } => {
                let store = Arc::clone(&store);
                tokio::task::spawn_blocking(move || {
                    let mut blocks = Vec::new();
                    for h in from_height..from_height.saturating_add(u64::from(max)) {
                        match (store.block(h), store.certificate(h)) {
                            (Ok(Some(b)), Ok(Some(c))) => blocks.push((b, c)),
                            _ => break,
                        }
                    }
                    respond.respond(blocks);
                });
            }
            NetEvent::BlockRequested { hash, respond, .. } => {
                let store = Arc::clone(&store);
                let engine = engine.clone();
                tokio::task::spawn_blocking(move || {
                    let found = store.height_of_block(&hash).ok().flatten().and_then(|h| {
                        match (store.block(h), store.certificate(h)) {
                            (Ok(Some(b)), Ok(c)) => Some((b, c)),
                            _ => None,
                        }
                    });
                    if found.is_some() {
                        respond.respond(found);
                        return;
                    }
                    // Not final yet: the engine may hold it (a proposal a peer missed).
                    let reply: crate::engine::BlockReply = Box::new(move |block| {
                        respond.respond(block.map(|b| ((*b).clone(), None)));
                    });
                    let _ = engine.send(ToEngine::PendingBlock { hash, reply });
                });
            }
            NetEvent::PeerConnected(peer) => {
                info!(%peer, "peer connected");
                shared.set_peers(client.connected_peers().len());
                connected.notify_waiters();
            }
            NetEvent::PeerDisconnected(peer) => {
                info!(%peer, "peer disconnected");
                shared.set_peers(client.connected_peers().len());
            }
            NetEvent::PeerDenied(peer) => warn!(%peer, "refused a peer that is not allowed"),
            NetEvent::Listening(addr) => info!(%addr, "p2p listening"),
        }
    }
}
