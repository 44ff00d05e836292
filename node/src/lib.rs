//! # ebill-node
//!
//! The node: the only place where ebill does I/O. It opens the store, restores consensus
//! from its WAL, runs the engine thread (consensus + ledger + mempool + store) and the
//! HTTP API, and stops cleanly on SIGINT or SIGTERM.

pub mod alloc;
pub mod config;
pub mod engine;
pub mod mempool;
pub mod network;
pub mod p2p;
pub mod shared;
pub mod wal;

use std::sync::{Arc, mpsc};

use anyhow::{Context as _, Result, anyhow};
use ebill_api::Role;
use ebill_store::{RocksStore, Store};
use tracing::info;

use crate::config::{NodeConfig, RoleArg};
use crate::engine::{Engine, EngineConfig, Input};
use crate::mempool::Mempool;
use crate::network::OutboundQueue;
use crate::shared::Shared;

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
    let shared = Arc::new(Shared::new(
        cfg.genesis.clone(),
        Arc::clone(&store),
        role,
        Mempool::new(cfg.mempool_max_txs, cfg.mempool_max_bytes),
    ));

    let (engine_tx, engine_rx) = mpsc::channel::<Input>();
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
    let engine_cfg = EngineConfig {
        heartbeat_ms: cfg.heartbeat_ms,
        ..EngineConfig::default()
    };
    let (engine, first) = Engine::new(
        Arc::clone(&shared),
        Arc::clone(&store),
        cfg.genesis.clone(),
        consensus_config,
        engine_cfg,
        outbound,
    )?;
    shared.connect_engine(engine_tx.clone());
    let engine_thread = Some(engine::spawn(engine, engine_rx, first)?);

    let p2p = match (&cfg.listen, outbound_rx) {
        (Some(listen), Some(rx)) => {
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
            Some(
                p2p::start(
                    net_cfg,
                    Arc::clone(&shared),
                    Arc::clone(&store),
                    engine_tx.clone(),
                    rx,
                )
                .await?,
            )
        }
        _ => None,
    };

    let listener = tokio::net::TcpListener::bind(cfg.api)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.api))?;
    let api_addr = listener.local_addr()?;
    let tip = store.tip()?.map(|t| t.height).unwrap_or(0);
    info!(
        chain_id = %cfg.genesis.chain_id,
        height = tip,
        api = %format!("http://{api_addr}"),
        role = ?role,
        "ebill-node ready"
    );

    // Stop on a signal, or when the engine thread ends by itself (a fatal error).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let engine_watch = engine_thread.map(|handle| {
        let stop_tx = stop_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = handle.join();
            let _ = stop_tx.send(true);
            result
        })
    });
    let signal_stop = stop_tx.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = signal_stop.send(true);
    });
    let mut api_stop = stop_rx.clone();
    let backend: Arc<dyn ebill_api::Backend> = shared.clone();
    ebill_api::serve(listener, backend, async move {
        let _ = api_stop.wait_for(|s| *s).await;
    })
    .await
    .context("HTTP API failed")?;

    info!("stopping");
    if let Some(p) = p2p {
        p.shutdown().await;
    }
    let _ = engine_tx.send(Input::Shutdown);
    if let Some(w) = engine_watch {
        match w.await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => return Err(anyhow!("engine stopped: {e}")),
            Ok(Err(_)) => return Err(anyhow!("engine thread panicked")),
            Err(e) => return Err(anyhow!("engine watcher failed: {e}")),
        }
    }
    drop(shared);
    info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
