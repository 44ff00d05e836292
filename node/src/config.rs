//! Node configuration: a TOML file and/or flags, or `--dev` for the built-in dev chain.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use ebill_types::{Genesis, Keypair, dev};
use serde::Deserialize;

/// Most bytes read from a genesis, config or key file.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Command-line flags of `ebill-node`.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ebill-node",
    version,
    about = "A validator or observer node of an ebill chain"
)]
pub struct Args {
    /// Run the built-in one-validator dev chain (chain id ebill-dev, well-known dev keys).
    #[arg(long)]
    pub dev: bool,
    /// A TOML config file (role, genesis, key, data_dir, api, listen, peers); paths in it
    /// are relative to the file's folder. Flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The genesis file.
    #[arg(long)]
    pub genesis: Option<PathBuf>,
    /// This node's key file.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Data folder (RocksDB).
    #[arg(long = "data")]
    pub data_dir: Option<PathBuf>,
    /// Address of the HTTP API.
    #[arg(long)]
    pub api: Option<SocketAddr>,
    /// Role of this node.
    #[arg(long, value_enum)]
    pub role: Option<RoleArg>,
    /// Most transactions waiting in the mempool.
    #[arg(long, default_value_t = 200_000)]
    pub mempool_max_txs: usize,
    /// Most bytes waiting in the mempool.
    #[arg(long, default_value_t = 256 * 1024 * 1024)]
    pub mempool_max_bytes: usize,
    /// An empty block at least this often when no transaction comes.
    #[arg(long, default_value_t = 60_000)]
    pub heartbeat_ms: u64,
    /// Listen for peers on this multiaddr (e.g. /ip4/127.0.0.1/tcp/19080).
    #[arg(long)]
    pub listen: Option<String>,
    /// A peer to dial (multiaddr); repeat for more.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

/// Role flag.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleArg {
    /// Runs consensus.
    Validator,
    /// Follows and re-verifies.
    Observer,
}

/// The config file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    role: Option<RoleArg>,
    genesis: Option<PathBuf>,
    key: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    api: Option<SocketAddr>,
    /// Listen address for peers (a multiaddr).
    listen: Option<String>,
    /// Peers' addresses (multiaddrs) to dial.
    #[serde(default)]
    peers: Vec<String>,
}

/// Everything a node needs to start.
#[derive(Debug)]
pub struct NodeConfig {
    /// The chain.
    pub genesis: Genesis,
    /// This node's key.
    pub key: Keypair,
    /// Data folder.
    pub data_dir: PathBuf,
    /// API address.
    pub api: SocketAddr,
    /// Role.
    pub role: RoleArg,
    /// Mempool limits.
    pub mempool_max_txs: usize,
    /// Mempool byte limit.
    pub mempool_max_bytes: usize,
    /// Heartbeat.
    pub heartbeat_ms: u64,
    /// Where to listen for peers; `None` runs without a network (one validator).
    pub listen: Option<ebill_net::Multiaddr>,
    /// Peers to dial.
    pub peers: Vec<ebill_net::Multiaddr>,
}

/// Reads a file of at most [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> Result<String> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        bail!(
            "{} is {} bytes, over the limit of {MAX_FILE_BYTES}",
            path.display(),
            meta.len()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a key file (`{"seed": hex, "public_key": hex, ...}`), checking that the public
/// key matches the seed.
pub fn load_key(path: &Path) -> Result<Keypair> {
    let text = read_bounded(path)?;
    let file: ebill_types::keyfile::KeyFile = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an ebill key file", path.display()))?;
    file.keypair()
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Reads and validates a genesis file.
pub fn load_genesis(path: &Path) -> Result<Genesis> {
    let text = read_bounded(path)?;
    Genesis::from_json(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

impl NodeConfig {
    /// Resolves flags, the config file and `--dev` into a config.
    pub fn from_args(args: &Args) -> Result<Self> {
        let (file, base) = match &args.config {
            Some(p) => {
                let text = read_bounded(p)?;
                let file: FileConfig = toml::from_str(&text)
                    .with_context(|| format!("{} is not a valid node config", p.display()))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                (file, base)
            }
            None => (FileConfig::default(), PathBuf::new()),
        };
        let rel = |p: &PathBuf| {
            if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }
        };
        let genesis_path = args
            .genesis
            .clone()
            .or_else(|| file.genesis.as_ref().map(rel));
        let key_path = args.key.clone().or_else(|| file.key.as_ref().map(rel));
        let data_dir = args
            .data_dir
            .clone()
            .or_else(|| file.data_dir.as_ref().map(rel));
        let api = args.api.or(file.api);
        let role = args.role.or(file.role).unwrap_or(RoleArg::Validator);
        let (genesis, key, data_dir, api) = if args.dev {
            if genesis_path.is_some() || key_path.is_some() {
                bail!("--dev uses the built-in dev genesis and key; drop --genesis/--key");
            }
            (
                dev::dev_genesis(),
                dev::dev_validator_key(),
                data_dir.unwrap_or_else(|| PathBuf::from("ebill-data")),
                api.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            )
        } else {
            let genesis_path = genesis_path.ok_or_else(|| {
                anyhow!("no genesis: give --dev, --config FILE or --genesis FILE")
            })?;
            let key_path =
                key_path.ok_or_else(|| anyhow!("no key: give --key FILE or key in the config"))?;
            (
                load_genesis(&genesis_path)?,
                load_key(&key_path)?,
                data_dir.ok_or_else(|| {
                    anyhow!("no data folder: give --data DIR or data_dir in the config")
                })?,
                api.ok_or_else(|| anyhow!("no API address: give --api ADDR or api in the config"))?,
            )
        };
        let listen = match args.listen.clone().or(file.listen.clone()) {
            Some(l) => Some(
                l.parse::<ebill_net::Multiaddr>()
                    .map_err(|e| anyhow!("listen address {l:?}: {e}"))?,
            ),
            None => None,
        };
        let mut peers = Vec::new();
        for p in args.peers.iter().chain(&file.peers) {
            peers.push(
                p.parse::<ebill_net::Multiaddr>()
                    .map_err(|e| anyhow!("peer address {p:?}: {e}"))?,
            );
        }
        if listen.is_none() && (genesis.validators.len() > 1 || role == RoleArg::Observer) {
            bail!(
                "chain {} has {} validators (or this is an observer): give a listen address for peers (--listen or listen in the config)",
                genesis.chain_id,
                genesis.validators.len()
            );
        }
        if role == RoleArg::Validator && genesis.validator_set()?.index_of(&key.public()).is_none()
        {
            bail!(
                "key {} is not a validator of chain {}: run as --role observer or use a validator key",
                key.public(),
                genesis.chain_id
            );
        }
        Ok(Self {
            genesis,
            key,
            data_dir,
            api,
            role,
            mempool_max_txs: args.mempool_max_txs,
            mempool_max_bytes: args.mempool_max_bytes,
            heartbeat_ms: args.heartbeat_ms,
            listen,
            peers,
        })
    }
}
