//! Node configuration: a TOML file and/or flags, or `--dev` for the built-in dev chain.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use clap::{Parser, ValueEnum};
use ebill_api::{ApiConfig, ServerLimits};
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
    /// A TOML config file (role, genesis, key, data_dir, api, admin_api, listen, peers, and an
    /// [http] table of API limits); paths in it are relative to the file's folder. Flags
    /// override it. With --dev it may hold only the [http] table.
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
    /// Address of the operator's API (absence proofs, which tell whether a bill exists):
    /// off unless set. Give a loopback address (127.0.0.1:PORT): anyone who reaches it
    /// can enumerate the issued bill numbers.
    #[arg(long = "admin-api")]
    pub admin_api: Option<SocketAddr>,
    /// The public base URL of this node's pages (e.g. https://fp.example.gov.cn), which
    /// QR codes and printed bills carry; default http:// and the API address. Keep it
    /// short (40 characters or less keeps a bill's QR code at version 5).
    #[arg(long = "public-url")]
    pub public_url: Option<String>,
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

/// `ebill-node reindex --data DIR`: rebuilds the audit indexes of a stopped node's
/// store from its bills (the store's lock refuses a running node's folder).
#[derive(Parser, Debug, Clone)]
#[command(
    name = "ebill-node reindex",
    about = "Rebuild the audit indexes of a node's store from its stored bills (stop the node first)"
)]
pub struct ReindexArgs {
    /// Data folder (RocksDB) of the node.
    #[arg(long = "data")]
    pub data_dir: PathBuf,
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

/// The `[http]` table of the config file: limits of the HTTP API. Every key is
/// optional; a missing one keeps the default of [`ebill_api::ServerLimits`] (or, for
/// `wait_commit_timeout_ms`, of [`ebill_api::ApiConfig`]):
///
/// ```toml
/// [http]
/// max_connections = 4096          # open at once, in total
/// max_connections_per_ip = 256    # open at once from one address
/// max_concurrent_requests = 512   # answered at once; more get 503 overloaded
/// header_read_timeout_ms = 5000   # a request's head (and an idle keep-alive)
/// body_read_timeout_ms = 10000    # a request's body, from its head; then 408
/// max_header_bytes = 16384        # request line and headers (at least 8192)
/// max_headers = 64                # header lines
/// retry_after_s = 1               # Retry-After of a 503
/// wait_commit_timeout_ms = 30000  # ?wait=commit
/// lookups_per_bill_per_day = 20   # verification pages: one bill, one UTC day
/// lookups_per_client_per_minute = 60  # verification pages: one address, one minute
/// ```
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HttpFileConfig {
    /// See [`ebill_api::ServerLimits::max_connections`].
    pub max_connections: Option<usize>,
    /// See [`ebill_api::ServerLimits::max_connections_per_ip`].
    pub max_connections_per_ip: Option<usize>,
    /// See [`ebill_api::ServerLimits::max_concurrent_requests`].
    pub max_concurrent_requests: Option<usize>,
    /// See [`ebill_api::ServerLimits::header_read_timeout_ms`].
    pub header_read_timeout_ms: Option<u64>,
    /// See [`ebill_api::ServerLimits::body_read_timeout_ms`].
    pub body_read_timeout_ms: Option<u64>,
    /// See [`ebill_api::ServerLimits::max_header_bytes`].
    pub max_header_bytes: Option<usize>,
    /// See [`ebill_api::ServerLimits::max_headers`].
    pub max_headers: Option<usize>,
    /// See [`ebill_api::ServerLimits::retry_after_s`].
    pub retry_after_s: Option<u64>,
    /// How long `?wait=commit` waits ([`ebill_api::ApiConfig::wait_commit_timeout`]).
    pub wait_commit_timeout_ms: Option<u64>,
    /// Most lookups of one bill per UTC day on the verification pages (default 20).
    pub lookups_per_bill_per_day: Option<u32>,
    /// Most lookups from one client address per minute on the verification pages
    /// (default 60).
    pub lookups_per_client_per_minute: Option<u32>,
}

impl HttpFileConfig {
    /// The server limits and API settings: the defaults with this table's keys over
    /// them, validated.
    pub fn resolve(&self) -> Result<(ServerLimits, ApiConfig)> {
        let d = ServerLimits::default();
        let limits = ServerLimits {
            max_connections: self.max_connections.unwrap_or(d.max_connections),
            max_connections_per_ip: self
                .max_connections_per_ip
                .unwrap_or(d.max_connections_per_ip),
            max_concurrent_requests: self
                .max_concurrent_requests
                .unwrap_or(d.max_concurrent_requests),
            header_read_timeout_ms: self
                .header_read_timeout_ms
                .unwrap_or(d.header_read_timeout_ms),
            body_read_timeout_ms: self.body_read_timeout_ms.unwrap_or(d.body_read_timeout_ms),
            max_header_bytes: self.max_header_bytes.unwrap_or(d.max_header_bytes),
            max_headers: self.max_headers.unwrap_or(d.max_headers),
            retry_after_s: self.retry_after_s.unwrap_or(d.retry_after_s),
        };
        limits.validate()?;
        let mut api = ApiConfig::default();
        if let Some(ms) = self.wait_commit_timeout_ms {
            if ms == 0 {
                bail!("http.wait_commit_timeout_ms: must be more than 0");
            }
            api.wait_commit_timeout = Duration::from_millis(ms);
        }
        let lookups = &mut api.web.lookups;
        if let Some(n) = self.lookups_per_bill_per_day {
            if n == 0 {
                bail!("http.lookups_per_bill_per_day: must be more than 0");
            }
            lookups.lookups_per_bill_per_day = n;
        }
        if let Some(n) = self.lookups_per_client_per_minute {
            if n == 0 {
                bail!("http.lookups_per_client_per_minute: must be more than 0");
            }
            lookups.lookups_per_client_per_minute = n;
        }
        Ok((limits, api))
    }
}

/// The `[audit]` table of the config file: thresholds of the anomaly rules of the
/// audit API (`ebill_api::audit::rules`); a missing key keeps its default:
///
/// ```toml
/// [audit]
/// locked_max_days = 30               # locked_too_long
/// reversal_rate_max_permille = 50    # reversal_rate
/// reversal_rate_min_bills = 20       # reversal_rate: fewest bills before it counts
/// numbering_max_gap = 1000           # numbering_gap
/// burst_max_bills = 10000            # numbering_burst
/// burst_window_s = 60                # numbering_burst
/// refused_max_attempts = 3           # repeated_refused_reimbursement
/// default_hours = "07:00-22:00"      # outside_hours, for issuers not declared below
/// [audit.declared_hours]
/// 12100000MB0000001X = "08:00-18:00" # outside_hours: an issuer's declared hours
/// ```
#[derive(Deserialize, Debug, Default, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AuditFileConfig {
    /// Days.
    pub locked_max_days: Option<u64>,
    /// Per mille.
    pub reversal_rate_max_permille: Option<u64>,
    /// Bills.
    pub reversal_rate_min_bills: Option<u64>,
    /// Numbers.
    pub numbering_max_gap: Option<u64>,
    /// Bills.
    pub burst_max_bills: Option<u64>,
    /// Seconds.
    pub burst_window_s: Option<u64>,
    /// Attempts.
    pub refused_max_attempts: Option<u64>,
    /// `HH:MM-HH:MM`.
    pub default_hours: Option<String>,
    /// Credit code -> `HH:MM-HH:MM`.
    #[serde(default)]
    pub declared_hours: std::collections::BTreeMap<String, String>,
}

impl AuditFileConfig {
    /// The audit settings: the defaults with this table's keys over them, validated.
    pub fn resolve(&self) -> Result<ebill_api::AuditConfig> {
        use ebill_api::audit::rules::Hours;
        let mut r = ebill_api::audit::rules::RuleConfig::default();
        let positive = |name: &str, v: Option<u64>, d: u64| -> Result<u64> {
            match v {
                Some(0) => bail!("audit.{name}: must be more than 0"),
                Some(n) => Ok(n),
                None => Ok(d),
            }
        };
        r.locked_max_days = positive("locked_max_days", self.locked_max_days, r.locked_max_days)?;
        r.reversal_rate_max_permille = self
            .reversal_rate_max_permille
            .unwrap_or(r.reversal_rate_max_permille);
        if r.reversal_rate_max_permille > 1000 {
            bail!("audit.reversal_rate_max_permille: at most 1000");
        }
        r.reversal_rate_min_bills = positive(
            "reversal_rate_min_bills",
            self.reversal_rate_min_bills,
            r.reversal_rate_min_bills,
        )?;
        r.numbering_max_gap = self.numbering_max_gap.unwrap_or(r.numbering_max_gap);
        r.burst_max_bills = positive("burst_max_bills", self.burst_max_bills, r.burst_max_bills)?;
        r.burst_window_s = positive("burst_window_s", self.burst_window_s, r.burst_window_s)?;
        r.refused_max_attempts = positive(
            "refused_max_attempts",
            self.refused_max_attempts,
            r.refused_max_attempts,
        )?;
        if let Some(h) = &self.default_hours {
            r.default_hours =
                Some(Hours::parse(h).map_err(|e| anyhow!("audit.default_hours: {e}"))?);
        }
        for (code, h) in &self.declared_hours {
            let c = ebill_types::CreditCode::parse(code)
                .map_err(|e| anyhow!("audit.declared_hours: {code:?}: {e}"))?;
            let hours = Hours::parse(h).map_err(|e| anyhow!("audit.declared_hours.{code}: {e}"))?;
            r.declared_hours.insert(c, hours);
        }
        Ok(ebill_api::AuditConfig { rules: r })
    }
}

/// The config file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    /// Limits of the HTTP API.
    #[serde(default)]
    http: HttpFileConfig,
    /// Thresholds of the audit API's anomaly rules.
    #[serde(default)]
    audit: AuditFileConfig,
    role: Option<RoleArg>,
    genesis: Option<PathBuf>,
    key: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    api: Option<SocketAddr>,
    /// Address of the operator's API (loopback); off unless set.
    admin_api: Option<SocketAddr>,
    /// Public base URL of the pages (`--public-url`).
    public_url: Option<String>,
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
    /// Address of the operator's API ([`ebill_api::admin_router`]: absence proofs), with
    /// the same `[http]` limits as the public one; `None` (the default) serves none.
    /// Meant for a loopback address: what it serves tells which bills exist.
    pub admin_api: Option<SocketAddr>,
    /// Limits of the HTTP server (`[http]` of the config file).
    pub http_limits: ServerLimits,
    /// Settings of the audit API on the operator's listener (`[audit]`).
    pub audit: ebill_api::AuditConfig,
    /// Settings of the API routes (`[http]` of the config file).
    pub api_config: ApiConfig,
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
        let admin_api = args.admin_api.or(file.admin_api);
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
        let (http_limits, mut api_config) =
            file.http.resolve().with_context(|| match &args.config {
                Some(p) => format!("{}: the [http] table", p.display()),
                None => "the HTTP limits".to_owned(),
            })?;
        let audit = file.audit.resolve().with_context(|| match &args.config {
            Some(p) => format!("{}: the [audit] table", p.display()),
            None => "the audit settings".to_owned(),
        })?;
        let public_url = args.public_url.clone().or(file.public_url.clone());
        if let Some(u) = &public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("--public-url {u:?}: give an http:// or https:// URL");
        }
        api_config.web.public_url = Some(
            public_url
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("http://{api}")),
        );
        Ok(Self {
            genesis,
            key,
            data_dir,
            api,
            admin_api,
            http_limits,
            audit,
            api_config,
            role,
            mempool_max_txs: args.mempool_max_txs,
            mempool_max_bytes: args.mempool_max_bytes,
            heartbeat_ms: args.heartbeat_ms,
            listen,
            peers,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn admin_api_is_off_unless_set() {
        let file: FileConfig = toml::from_str("").unwrap();
        assert_eq!(file.admin_api, None);
        let file: FileConfig = toml::from_str("admin_api = \"127.0.0.1:18081\"\n").unwrap();
        assert_eq!(
            file.admin_api,
            Some(SocketAddr::from(([127, 0, 0, 1], 18081)))
        );
        let args =
            Args::try_parse_from(["ebill-node", "--dev", "--admin-api", "127.0.0.1:0"]).unwrap();
        assert_eq!(args.admin_api, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
        let cfg =
            NodeConfig::from_args(&Args::try_parse_from(["ebill-node", "--dev"]).unwrap()).unwrap();
        assert_eq!(cfg.admin_api, None);
    }

    #[test]
    fn audit_table_sets_the_rules_thresholds_and_is_checked() {
        let file: FileConfig = toml::from_str(&format!(
            "[audit]\nlocked_max_days = 7\ndefault_hours = \"07:00-22:00\"\n[audit.declared_hours]\n{} = \"08:00-18:00\"\n",
            dev::dev_issuer_code().as_str()
        ))
        .unwrap();
        let a = file.audit.resolve().unwrap();
        assert_eq!(a.rules.locked_max_days, 7);
        assert_eq!(a.rules.refused_max_attempts, 3, "the default");
        assert_eq!(a.rules.declared_hours.len(), 1);
        assert!(a.rules.default_hours.is_some());
        for bad in [
            "locked_max_days = 0",
            "default_hours = \"7-22\"",
            "reversal_rate_max_permille = 1001",
        ] {
            let file: FileConfig = toml::from_str(&format!("[audit]\n{bad}\n")).unwrap();
            let e = format!("{:#}", file.audit.resolve().unwrap_err());
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
        assert!(toml::from_str::<FileConfig>("[audit]\nlocked_days = 1\n").is_err());
        let file: FileConfig =
            toml::from_str("[audit.declared_hours]\nnot-a-code = \"08:00-18:00\"\n").unwrap();
        assert!(file.audit.resolve().is_err());
    }

    #[test]
    fn http_table_overrides_defaults_and_is_checked() {
        let file: FileConfig = toml::from_str(
            "[http]\nmax_connections = 10\nheader_read_timeout_ms = 250\nwait_commit_timeout_ms = 1500\n",
        )
        .unwrap();
        let (limits, api) = file.http.resolve().unwrap();
        assert_eq!(limits.max_connections, 10);
        assert_eq!(limits.header_read_timeout_ms, 250);
        assert_eq!(
            limits.max_concurrent_requests,
            ServerLimits::default().max_concurrent_requests
        );
        assert_eq!(api.wait_commit_timeout, Duration::from_millis(1500));
        assert_eq!(api.web.lookups.lookups_per_bill_per_day, 20, "the default");

        let file: FileConfig = toml::from_str(
            "public_url = \"https://fp.example.cn\"\n[http]\nlookups_per_bill_per_day = 5\nlookups_per_client_per_minute = 7\n",
        )
        .unwrap();
        assert_eq!(file.public_url.as_deref(), Some("https://fp.example.cn"));
        let lookups = file.http.resolve().unwrap().1.web.lookups;
        assert_eq!(lookups.lookups_per_bill_per_day, 5);
        assert_eq!(lookups.lookups_per_client_per_minute, 7);

        // No table: the defaults.
        let file: FileConfig = toml::from_str("").unwrap();
        assert_eq!(file.http.resolve().unwrap().0, ServerLimits::default());

        // Unknown keys and unusable values are refused, naming the key.
        assert!(toml::from_str::<FileConfig>("[http]\nmax_conections = 1\n").is_err());
        for bad in [
            "max_connections = 0",
            "max_header_bytes = 4096",
            "wait_commit_timeout_ms = 0",
            "lookups_per_bill_per_day = 0",
            "lookups_per_client_per_minute = 0",
        ] {
            let file: FileConfig = toml::from_str(&format!("[http]\n{bad}\n")).unwrap();
            let e = file.http.resolve().unwrap_err().to_string();
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
