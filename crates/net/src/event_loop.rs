//! The task that owns the swarm: it carries out commands, checks gossip, serves and
//! sends sync requests, and keeps the configured peers connected.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::futures::future::BoxFuture;
use libp2p::futures::stream::FuturesUnordered;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError, TopicHash};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::client::Command;
use crate::codec::SyncResponse;
use crate::error::NetError;
use crate::event::{EventSender, NetEvent};
use crate::gossip::{Checked, Checker, Refusal, TopicKind};
use crate::stats::{Counters, bump};
use crate::sync::{BlockResponder, BlocksResponder, SyncRequest};

/// Gossip checks running at once; beyond this a message is ignored (and counted).
pub const MAX_CHECKS_IN_FLIGHT: usize = 256;
/// Inbound sync requests waiting for the application's answer at once; beyond this a
/// request is dropped (the requester sees a failure).
pub const MAX_PENDING_INBOUND_REQUESTS: usize = 64;
/// First delay before re-dialing a configured peer; doubled after each failure.
pub const REDIAL_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
/// Longest delay between two dials of a configured peer.
pub const REDIAL_MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the configured peers are looked at.
const REDIAL_TICK: Duration = Duration::from_millis(250);

/// The verdict of a gossip check, back from the blocking pool.
struct Verdict {
    message_id: MessageId,
    propagation_source: PeerId,
    from: PeerId,
    /// Size of the gossip message, counted against `max_event_bytes` while delivered.
    bytes: usize,
    result: Result<Checked, Refusal>,
}

/// A configured peer that is kept connected.
struct DialTarget {
    addr: Multiaddr,
    peer: Option<PeerId>,
    backoff: Duration,
    next_attempt: Instant,
    dialing: Option<ConnectionId>,
}

impl DialTarget {
    fn new(addr: Multiaddr) -> Self {
        let peer = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        Self {
            addr,
            peer,
            backoff: REDIAL_INITIAL_BACKOFF,
            next_attempt: Instant::now(),
            dialing: None,
        }
    }

    fn failed(&mut self, now: Instant) {
        self.dialing = None;
        self.next_attempt = now + self.backoff;
        self.backoff = (self.backoff * 2).min(REDIAL_MAX_BACKOFF);
    }
}

/// Where the raw bytes of a sync response (or the failure) go.
type RequestReply = oneshot::Sender<Result<Vec<u8>, NetError>>;

type PendingResponse = BoxFuture<'static, (Option<Vec<u8>>, ResponseChannel<SyncResponse>)>;

/// The event loop. Built by [`crate::start`], run as a tokio task.
pub(crate) struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: EventSender,
    checker: Arc<Checker>,
    counters: Arc<Counters>,
    connected: watch::Sender<BTreeSet<PeerId>>,
    gossip_peers: watch::Sender<BTreeSet<PeerId>>,
    request_timeout: Duration,
    targets: Vec<DialTarget>,
    topics: [(TopicHash, TopicKind); 4],
    verdict_tx: mpsc::Sender<Verdict>,
    verdict_rx: mpsc::Receiver<Verdict>,
    checks_in_flight: usize,
    pending_requests: HashMap<OutboundRequestId, (PeerId, RequestReply)>,
    pending_responses: FuturesUnordered<PendingResponse>,
    subscriptions: HashMap<PeerId, u8>,
}

impl EventLoop {
    /// An event loop over `swarm` that dials `peers`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: EventSender,
        checker: Arc<Checker>,
        counters: Arc<Counters>,
        connected: watch::Sender<BTreeSet<PeerId>>,
        gossip_peers: watch::Sender<BTreeSet<PeerId>>,
        request_timeout: Duration,
        peers: Vec<Multiaddr>,
    ) -> Self {
        let chain_id = checker.chain_id.clone();
        let topics = TopicKind::ALL.map(|k| (k.topic(&chain_id).hash(), k));
        let (verdict_tx, verdict_rx) = mpsc::channel(MAX_CHECKS_IN_FLIGHT);
        Self {
            swarm,
            commands,
            events,
            checker,
            counters,
            connected,
            gossip_peers,
            request_timeout,
            targets: peers.into_iter().map(DialTarget::new).collect(),
            topics,
            verdict_tx,
            verdict_rx,
            checks_in_flight: 0,
            pending_requests: HashMap::new(),
            pending_responses: FuturesUnordered::new(),
            subscriptions: HashMap::new(),
        }
    }

    /// Runs until [`Command::Shutdown`] or until every [`crate::Client`] is dropped.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(REDIAL_TICK);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.redial();
        let ack = loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                cmd = self.commands.recv() => match cmd {
                    None => break None,
                    Some(Command::Shutdown { ack }) => break Some(ack),
                    Some(cmd) => self.on_command(cmd),
                },
                Some(verdict) = self.verdict_rx.recv() => self.on_verdict(verdict),
                Some((answer, channel)) = self.pending_responses.next(),
                    if !self.pending_responses.is_empty() => self.on_answer(answer, channel),
                _ = tick.tick() => self.redial(),
            }
        };
        info!(peer = %self.swarm.local_peer_id(), "network stopping");
        let EventLoop { swarm, .. } = self;
        drop(swarm);
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }

    /// Sends an event to the application, or drops and counts it if the channel is full.
    fn emit(&self, event: NetEvent) {
        match self.events.try_reserve(0) {
            Some(permit) => permit.send(event),
            None => bump(&self.counters.events_dropped),
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { topic, data, reply } => {
                let hash = topic.topic(&self.checker.chain_id).hash();
                let result = match self.swarm.behaviour_mut().gossipsub.publish(hash, data) {
                    Ok(_) => Ok(()),
                    Err(PublishError::Duplicate) => {
                        bump(&self.counters.publish_duplicates);
                        Ok(())
                    }
                    Err(PublishError::NoPeersSubscribedToTopic) => {
                        Err(NetError::NoPeers(topic.name()))
                    }
                    Err(PublishError::MessageTooLarge) => Err(NetError::TooLarge {
                        what: "gossip message",
                        bytes: 0,
                        max_bytes: self.checker.limits.max_gossip_bytes,
                    }),
                    Err(e) => Err(NetError::Publish(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending_requests.insert(id, (peer, reply));
            }
            Command::AddPeer { addr } => {
                self.targets.push(DialTarget::new(addr));
                self.redial();
            }
            Command::Shutdown { .. } => {}
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(e)) => self.on_sync(e),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(_)) => {}
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                self.emit(NetEvent::Listening(address));
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                if let Some(t) = self
                    .targets
                    .iter_mut()
                    .find(|t| t.dialing == Some(connection_id))
                {
                    t.dialing = None;
                    t.peer = Some(peer_id);
                    t.backoff = REDIAL_INITIAL_BACKOFF;
                }
                if num_established.get() == 1 {
                    debug!(peer = %peer_id, "connected");
                    self.connected.send_modify(|s| {
                        s.insert(peer_id);
                    });
                    self.emit(NetEvent::PeerConnected(peer_id));
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, "disconnected");
                self.connected.send_modify(|s| {
                    s.remove(&peer_id);
                });
                self.subscriptions.remove(&peer_id);
                self.gossip_peers.send_modify(|s| {
                    s.remove(&peer_id);
                });
                let now = Instant::now();
                for t in self.targets.iter_mut().filter(|t| t.peer == Some(peer_id)) {
                    t.next_attempt = now + t.backoff;
                }
                self.emit(NetEvent::PeerDisconnected(peer_id));
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                if let Some(t) = self
                    .targets
                    .iter_mut()
                    .find(|t| t.dialing == Some(connection_id))
                {
                    t.failed(Instant::now());
                }
                if let DialError::Denied { cause } = &error {
                    bump(&self.counters.connections_denied);
                    warn!(peer = ?peer_id, %cause, "outgoing connection denied");
                } else {
                    debug!(peer = ?peer_id, %error, "dial failed");
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                error,
                send_back_addr,
                ..
            } => {
                if let ListenError::Denied { cause } = &error {
                    bump(&self.counters.connections_denied);
                    warn!(peer = ?peer_id, %send_back_addr, %cause, "incoming connection denied");
                    if let Some(peer) = peer_id {
                        self.emit(NetEvent::PeerDenied(peer));
                    }
                } else {
                    debug!(peer = ?peer_id, %error, "incoming connection failed");
                }
            }
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => self.check(propagation_source, message_id, message),
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                if let Some(kind) = self.topic_kind(&topic) {
                    let mask = self.subscriptions.entry(peer_id).or_default();
                    *mask |= kind.bit();
                    self.gossip_peers.send_modify(|s| {
                        s.insert(peer_id);
                    });
                }
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(kind) = self.topic_kind(&topic)
                    && let Some(mask) = self.subscriptions.get_mut(&peer_id)
                {
                    *mask &= !kind.bit();
                    if *mask == 0 {
                        self.gossip_peers.send_modify(|s| {
                            s.remove(&peer_id);
                        });
                    }
                }
            }
            gossipsub::Event::SlowPeer { peer_id, .. } => {
                debug!(peer = %peer_id, "slow gossip peer");
            }
            _ => {}
        }
    }

    fn topic_kind(&self, hash: &TopicHash) -> Option<TopicKind> {
        self.topics.iter().find(|(h, _)| h == hash).map(|(_, k)| *k)
    }

    fn report(&mut self, id: &MessageId, source: &PeerId, verdict: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, verdict);
    }

    /// Starts the check of a gossip message on the blocking pool.
    fn check(
        &mut self,
        propagation_source: PeerId,
        message_id: MessageId,
        message: gossipsub::Message,
    ) {
        let Some(topic) = self.topic_kind(&message.topic) else {
            bump(&self.counters.gossip_rejected);
            self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
            return;
        };
        if self.checks_in_flight >= MAX_CHECKS_IN_FLIGHT {
            bump(&self.counters.validations_dropped);
            self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
            return;
        }
        self.checks_in_flight += 1;
        let checker = Arc::clone(&self.checker);
        let tx = self.verdict_tx.clone();
        let from = message.source.unwrap_or(propagation_source);
        tokio::task::spawn_blocking(move || {
            let result = checker.check(topic, &message.data);
            // Only fails when the event loop is gone.
            let _ = tx.blocking_send(Verdict {
                message_id,
                propagation_source,
                from,
                bytes: message.data.len(),
                result,
            });
        });
    }

    /// Reports a verdict to gossipsub and delivers accepted messages.
    fn on_verdict(&mut self, v: Verdict) {
        self.checks_in_flight = self.checks_in_flight.saturating_sub(1);
        let Verdict {
            message_id,
            propagation_source,
            from,
            bytes,
            result,
        } = v;
        match result {
            Ok(checked) => {
                // Accept only what the application has room for: a message it would
                // never see is not forwarded either.
                let Some(permit) = self.events.try_reserve(bytes) else {
                    bump(&self.counters.events_dropped);
                    self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                };
                bump(&self.counters.gossip_accepted);
                // Delivered either way; `Ignore` keeps gossipsub from relaying it.
                let verdict = if checked.relayed() {
                    MessageAcceptance::Accept
                } else {
                    bump(&self.counters.gossip_not_relayed);
                    MessageAcceptance::Ignore
                };
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&message_id, &propagation_source, verdict);
                permit.send(match checked {
                    Checked::Txs(txs) => NetEvent::Txs { from, txs },
                    Checked::Consensus(msg) => NetEvent::Consensus { from, msg },
                    Checked::Block(block, cert) => NetEvent::BlockAnnounced { from, block, cert },
                    Checked::Cosignature(checkpoint, cosignature) => NetEvent::Cosignature {
                        from,
                        checkpoint,
                        cosignature,
                    },
                });
            }
            Err(Refusal::Reject(reason)) => {
                bump(&self.counters.gossip_rejected);
                warn!(%from, via = %propagation_source, %reason, "gossip message rejected");
                self.report(&message_id, &propagation_source, MessageAcceptance::Reject);
            }
            Err(Refusal::Ignore(reason)) => {
                bump(&self.counters.gossip_ignored);
                debug!(%from, %reason, "gossip message ignored");
                self.report(&message_id, &propagation_source, MessageAcceptance::Ignore);
            }
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_inbound_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some((_, reply)) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response.0));
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(NetError::Request {
                        peer: peer.to_string(),
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Hands a sync request to the application with a responder, and waits (without
    /// blocking the loop) for its answer, at most the request timeout.
    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: ResponseChannel<SyncResponse>,
    ) {
        if self.pending_responses.len() >= MAX_PENDING_INBOUND_REQUESTS {
            bump(&self.counters.inbound_requests_dropped);
            return;
        }
        let Some(permit) = self.events.try_reserve(0) else {
            bump(&self.counters.inbound_requests_dropped);
            bump(&self.counters.events_dropped);
            return;
        };
        let limits = self.checker.limits;
        let (tx, rx) = oneshot::channel();
        permit.send(match request {
            SyncRequest::Blocks { from_height, max } => {
                let max = max.min(limits.max_sync_blocks);
                NetEvent::BlocksRequested {
                    from: peer,
                    from_height,
                    max,
                    respond: BlocksResponder {
                        tx,
                        max_count: max,
                        max_bytes: limits.max_sync_response_bytes,
                    },
                }
            }
            SyncRequest::Block { hash } => NetEvent::BlockRequested {
                from: peer,
                hash,
                respond: BlockResponder {
                    tx,
                    max_bytes: limits.max_sync_response_bytes,
                },
            },
        });
        let timeout = self.request_timeout;
        self.pending_responses.push(Box::pin(async move {
            let answer = tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok);
            (answer, channel)
        }));
    }

    fn on_answer(&mut self, answer: Option<Vec<u8>>, channel: ResponseChannel<SyncResponse>) {
        // No answer (responder dropped or too slow): dropping the channel fails the
        // request on the requester's side.
        if let Some(bytes) = answer
            && self
                .swarm
                .behaviour_mut()
                .sync
                .send_response(channel, SyncResponse(bytes))
                .is_err()
        {
            debug!("sync requester gone before the answer");
        }
    }

    /// Dials every configured peer that is neither connected nor being dialed, once its
    /// backoff has passed.
    fn redial(&mut self) {
        let now = Instant::now();
        let swarm = &mut self.swarm;
        for t in &mut self.targets {
            if t.dialing.is_some() || now < t.next_attempt {
                continue;
            }
            if let Some(p) = t.peer
                && swarm.is_connected(&p)
            {
                continue;
            }
            let opts = match t.peer {
                Some(p) => DialOpts::peer_id(p)
                    .addresses(vec![t.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(t.addr.clone()).build(),
            };
            let id = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => t.dialing = Some(id),
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    debug!(addr = %t.addr, %e, "dial refused");
                    t.failed(now);
                }
            }
        }
    }
}
