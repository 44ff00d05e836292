//! Hosts the engine (`ebill-engine`, sans-I/O) on its own thread: it gives the engine
//! its inputs from a channel and the system clocks' time, wakes it at its deadlines,
//! and carries out what it asks: messages to the network, commits to the API's watchers,
//! dropped transactions to their waiters. Every decision is the engine's; this module
//! only joins it to the node's threads, channels and clocks.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use ebill_api::Backend as _;
use ebill_api::Rejection;
use ebill_engine::witness::Witness;
use ebill_engine::{Engine, EngineError, EngineSetup, Input, Output};
use ebill_types::checkpoint::Checkpoint;
use ebill_types::{Block, Hash32};
use tracing::{error, info};

use crate::network::{Outbound, OutboundQueue};
use crate::shared::{Shared, wall_ms};

/// Answers a peer's request for a block of the height in progress.
pub type BlockReply = Box<dyn FnOnce(Option<Arc<Block>>) + Send>;

/// What the engine thread is sent.
pub enum ToEngine {
    /// An input for the engine.
    Input(Input),
    /// A peer asks for a block by hash that the store does not hold: the engine may
    /// hold it (proposed or built for the height in progress).
    PendingBlock {
        /// The block's hash.
        hash: Hash32,
        /// Where the answer goes.
        reply: BlockReply,
    },
    /// Stop after the current step.
    Shutdown,
}

/// The engine with what it needs to carry out its outputs.
pub struct EngineHost {
    engine: Engine,
    shared: Arc<Shared>,
    out: Option<Arc<OutboundQueue>>,
    epoch: Instant,
    /// This observer's co-signing key, if the genesis names it a regulator's observer.
    witness: Option<Witness>,
}

impl EngineHost {
    /// Starts the engine at the store's tip (restoring consensus from the WAL on a
    /// validator) and carries out what starting asks.
    pub fn start(
        setup: EngineSetup,
        shared: Arc<Shared>,
        out: Option<Arc<OutboundQueue>>,
        witness: Option<Witness>,
    ) -> Result<Self, EngineError> {
        let epoch = Instant::now();
        let (engine, first) = Engine::start(setup, 0, wall_ms())?;
        let host = Self {
            engine,
            shared,
            out,
            epoch,
            witness,
        };
        host.carry_out(first);
        Ok(host)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Runs until [`ToEngine::Shutdown`], a closed channel or a fatal error.
    pub fn run(mut self, rx: Receiver<ToEngine>) -> Result<(), EngineError> {
        loop {
            let wait_ms = self.engine.next_deadline_ms().saturating_sub(self.now_ms());
            let input = match rx.recv_timeout(Duration::from_millis(wait_ms)) {
                Ok(ToEngine::Input(i)) => i,
                Ok(ToEngine::PendingBlock { hash, reply }) => {
                    reply(self.engine.pending_block(&hash));
                    Input::Tick
                }
                Ok(ToEngine::Shutdown) => {
                    info!("engine stopping");
                    return Ok(());
                }
                Err(RecvTimeoutError::Timeout) => Input::Tick,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            let outputs = self.engine.on_input(self.now_ms(), wall_ms(), input)?;
            self.carry_out(outputs);
            self.shared
                .set_consensus_stats(self.engine.consensus().map(|c| *c.stats()));
        }
    }

    fn carry_out(&self, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Send(m) => {
                    if let Some(out) = &self.out {
                        out.send(Outbound::Engine(m));
                    }
                }
                Output::Committed(c) => {
                    let header = &c.certified.block.header;
                    self.shared.on_committed(header.height, &c.changes.txs);
                    self.shared.note_final(&Checkpoint::of(header));
                    self.cosign(header);
                }
                Output::Dropped { id, error } => self.shared.on_dropped(id, Rejection::from(error)),
                // Logged by the engine; nothing else acts on it yet.
                Output::Evidence(_) => {}
            }
        }
    }
}

impl EngineHost {
    /// A witness co-signs a block it committed (so re-executed to its state root): the
    /// record of what it signs is in the store before the co-signature leaves.
    fn cosign(&self, header: &ebill_types::Header) {
        let Some(w) = &self.witness else { return };
        match w.cosign(self.shared.store().as_ref(), header) {
            Ok((checkpoint, cosig)) => {
                self.shared.on_own_cosignature(checkpoint.clone(), cosig);
                if let Some(out) = &self.out {
                    out.send(Outbound::Cosignature(checkpoint, cosig));
                }
            }
            Err(e) => error!(height = header.height, "not co-signing: {e}"),
        }
    }
}

/// Runs an engine on its own thread; a fatal error is logged and ends the thread.
pub fn spawn(
    host: EngineHost,
    rx: Receiver<ToEngine>,
) -> std::io::Result<std::thread::JoinHandle<Result<(), EngineError>>> {
    std::thread::Builder::new()
        .name("ebill-engine".into())
        .spawn(move || {
            let result = host.run(rx);
            if let Err(e) = &result {
                error!("engine stopped: {e}");
            }
            result
        })
}
