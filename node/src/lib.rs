//! # ebill-node
//!
//! The node: it wires the crates that do I/O (the RocksDB store, libp2p, the HTTP API)
//! to the pure engine and owns the clocks, files, signals and threads (docs/design.md
//! §10). It opens the store, restores consensus from its WAL, runs the engine thread
//! (consensus + ledger + mempool + store) and the HTTP API, and stops cleanly on SIGINT
//! or SIGTERM.

pub mod alloc;
pub mod config;
pub mod engine;
pub mod network;
pub mod p2p;
pub mod shared;

use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context as _, Result, anyhow};
use ebill_api::Role;
use ebill_store::{RocksStore, Store};
use tracing::{info, warn};

use crate::config::{NodeConfig, RoleArg};
use ebill_engine::{EngineConfig, EngineSetup, Mempool};

use crate::engine::{EngineHost, ToEngine};
use crate::network::OutboundQueue;
use crate::shared::Shared;

/// `ebill-node reindex`: rebuilds the audit indexes of the store in `args.data_dir`.
pub fn reindex(args: &config::ReindexArgs) -> Result<()> {
    if !args.data_dir.is_dir() {
        return Err(anyhow!("no data folder {}", args.data_dir.display()));
    }
    let store = RocksStore::open(&args.data_dir).with_context(|| {
        format!(
            "cannot open the store in {} (is the node still running?)",
            args.data_dir.display()
        )
    })?;
    let started = std::time::Instant::now();
    let bills = store.reindex().context("rebuilding the audit indexes")?;
    let height = store.tip()?.map_or(0, |t| t.height);
    info!(
        bills,
        height,
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "audit indexes rebuilt"
    );
    println!("reindexed {bills} bills up to height {height}");
    Ok(())
}

/// Runs a node until SIGINT/SIGTERM or a fatal engine error.
pub async fn run(cfg: NodeConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data folder {}", cfg.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(
        RocksStore::open(&cfg.data_dir)
            .with_context(|| format!("cannot open the store in {}", cfg.data_dir.display()))?,
    );
    store
        .init_genesis(&cfg.genesis)
        .context("the data folder belongs to another chain")?;
    let role = match cfg.role {
        RoleArg::Validator => Role::Validator,
        RoleArg::Observer => Role::Observer,
    };
    let mempool = Arc::new(Mutex::new(Mempool::new(
        cfg.mempool_max_txs,
        cfg.mempool_max_bytes,
    )));
    let shared = Arc::new(Shared::new(
        cfg.genesis.clone(),
        Arc::clone(&store),
        role,
        Arc::clone(&mempool),
    ));

    let (engine_tx, engine_rx) = mpsc::channel::<ToEngine>();
    let (outbound, outbound_rx) = match cfg.listen {
        Some(_) => {
            let (q, rx) = OutboundQueue::new();
            let q = Arc::new(q);
            shared.connect_network(Arc::clone(&q));
            (Some(q), Some(rx))
        }
        None => (None, None),
    };
    let consensus_config = match role {
        Role::Validator => {
            let validators = cfg.genesis.validator_set()?;
            let index = validators
                .index_of(&cfg.key.public())
                .ok_or_else(|| anyhow!("this key is not a validator"))?;
            Some(ebill_consensus::Config::new(
                cfg.genesis.chain_id.clone(),
                validators,
                index,
                cfg.key.clone(),
            ))
        }
        Role::Observer => None,
    };
    let setup = EngineSetup {
        store: Arc::clone(&store),
        mempool,
        genesis: cfg.genesis.clone(),
        consensus: consensus_config,
        config: EngineConfig {
            heartbeat_ms: cfg.heartbeat_ms,
            verify_cores: ebill_engine::verify::available_cores(),
            ..EngineConfig::default()
        },
    };
    let witness = match role {
        Role::Observer => ebill_engine::witness::Witness::of(&cfg.genesis, &cfg.key),
        Role::Validator => None,
    };
    if witness.is_some() {
        info!("this observer is a regulator's witness: it co-signs the checkpoints it re-executes");
    }
    let host = EngineHost::start(setup, Arc::clone(&shared), outbound, witness)?;
    shared.connect_engine(engine_tx.clone());
    let engine_thread = Some(engine::spawn(host, engine_rx)?);

    // From here on the engine thread runs: whatever fails below, it is told to stop and
    // joined, or the process would hang on exit waiting for it.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_watch = engine_thread.map(|handle| {
        let stop_tx = stop_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = handle.join();
            let _ = stop_tx.send(true);
            result
        })
    });
    let mut p2p = None;
    let served = serve(
        &cfg,
        role,
        &shared,
        &store,
        &engine_tx,
        outbound_rx,
        &mut p2p,
        stop_tx,
        stop_rx,
    )
    .await;

    info!("stopping");
    if let Some(p) = p2p {
        p.shutdown().await;
    }
    let _ = engine_tx.send(ToEngine::Shutdown);
    let stopped = match engine_watch {
        Some(w) => match w.await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(anyhow!("engine stopped: {e}")),
            Ok(Err(_)) => Err(anyhow!("engine thread panicked")),
            Err(e) => Err(anyhow!("engine watcher failed: {e}")),
        },
        None => Ok(()),
    };
    drop(shared);
    served?;
    stopped?;
    info!("stopped");
    Ok(())
}

/// Starts the network and the API and serves until a signal or the engine's end.
#[allow(clippy::too_many_arguments)]
async fn serve(
    cfg: &NodeConfig,
    role: Role,
    shared: &Arc<Shared>,
    store: &Arc<dyn Store>,
    engine_tx: &mpsc::Sender<ToEngine>,
    outbound_rx: Option<tokio::sync::mpsc::Receiver<network::Outbound>>,
    p2p: &mut Option<p2p::P2p>,
    stop_tx: tokio::sync::watch::Sender<bool>,
    stop_rx: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    if let (Some(listen), Some(rx)) = (&cfg.listen, outbound_rx) {
        let mut net_cfg = ebill_net::NetConfig::from_genesis(
            &cfg.genesis,
            cfg.key.seed(),
            listen.clone(),
            cfg.peers.clone(),
        )?;
        net_cfg.subscribe = match role {
            Role::Validator => ebill_net::Topics::VALIDATOR,
            Role::Observer => ebill_net::Topics::OBSERVER,
        };
        *p2p = Some(
            p2p::start(
                net_cfg,
                Arc::clone(shared),
                Arc::clone(store),
                engine_tx.clone(),
                rx,
            )
            .await?,
        );
        if let Some(p) = p2p.as_ref() {
            shared.connect_net_client(p.client.clone());
        }
    }

    // Signal handlers first: a SIGTERM sent as soon as the node says it is ready must
    // stop it cleanly, not kill it by the default action.
    let signals = shutdown_signals()?;
    let listener = tokio::net::TcpListener::bind(cfg.api)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.api))?;
    let api_addr = listener.local_addr()?;
    let admin_listener = match cfg.admin_api {
        Some(addr) => {
            if !addr.ip().is_loopback() {
                warn!(
                    admin_api = %addr,
                    "the operator's API is not on a loopback address: whoever reaches it can tell which bills exist"
                );
            }
            Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} (--admin-api)"))?,
            )
        }
        None => None,
    };
    let admin_addr = match &admin_listener {
        Some(l) => Some(l.local_addr()?),
        None => None,
    };
    let tip = store.tip()?.map(|t| t.height).unwrap_or(0);
    info!(
        chain_id = %cfg.genesis.chain_id,
        height = tip,
        api = %format!("http://{api_addr}"),
        admin_api = %admin_addr.map_or_else(|| "off".to_owned(), |a| format!("http://{a}")),
        role = ?role,
        "ebill-node ready"
    );

    // Stop on a signal, or when the engine thread ends by itself (a fatal error).
    tokio::spawn(async move {
        let (mut term, mut int) = signals;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        let _ = stop_tx.send(true);
    });
    let backend: Arc<dyn ebill_api::Backend> = shared.clone();
    // The operator's API, on its own listener with the same limits, stopping with the
    // public one.
    let admin = admin_listener.map(|l| {
        let mut admin_stop = stop_rx.clone();
        let router = ebill_api::admin_router_signed(
            Arc::clone(&backend),
            cfg.audit.clone(),
            Some(cfg.key.clone()),
        );
        tokio::spawn(ebill_api::serve_with(
            l,
            router,
            cfg.http_limits.clone(),
            async move {
                let _ = admin_stop.wait_for(|s| *s).await;
            },
        ))
    });
    let mut api_stop = stop_rx;
    let router = ebill_api::router_with(backend, cfg.api_config.clone());
    let served = ebill_api::serve_with(listener, router, cfg.http_limits.clone(), async move {
        let _ = api_stop.wait_for(|s| *s).await;
    })
    .await
    .context("HTTP API failed");
    if let Some(task) = admin {
        if served.is_err() {
            // The public API failed before any stop signal: do not wait for one.
            task.abort();
            return served;
        }
        match task.await {
            Ok(r) => r.context("operator's HTTP API (--admin-api) failed")?,
            Err(e) => return Err(anyhow!("operator's HTTP API task failed: {e}")),
        }
    }
    served
}

/// SIGTERM and SIGINT, registered now.
fn shutdown_signals() -> Result<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok((term, int))
}
