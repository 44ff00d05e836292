//! `ebill genesis init`: a whole local network, ready to start — the genesis, a key and
//! a config file per node on free loopback ports, and the key files of the issuing and
//! reimbursing units and of the regulators.
//!
//! Layout under the output folder:
//!
//! ```text
//! genesis.json
//! validator-0/node.key   validator-0/config.toml   (ebill-node --config validator-0/config.toml)
//! observer-0/node.key    observer-0/config.toml
//! keys/issuer-0.key  keys/reimburser-0.key  keys/regulator-0.key ...
//! ```
//!
//! A node's config (TOML; paths relative to the config file's folder):
//!
//! ```toml
//! role = "validator"
//! genesis = "../genesis.json"
//! key = "node.key"
//! data_dir = "data"
//! api = "127.0.0.1:18080"
//! listen = "/ip4/127.0.0.1/tcp/19080"
//! peers = ["/ip4/127.0.0.1/tcp/19081"]
//! ```
//!
//! Ports are picked by binding `127.0.0.1:0`; every listener is held until all ports
//! are picked, so that no two are the same. They are free when written, and may be
//! taken by something else later.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use ebill_types::genesis::{IssuerEntry, Observer, Regulator, Regulators, ReimburserEntry};
use ebill_types::keyfile::KeyFile;
use ebill_types::{CodePrefix, CreditCode, Genesis, Keypair, Params, Timestamp, Validator, dev};
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::files;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Chain id.
    pub chain_id: String,
    /// Validators (n = 3f + 1 tolerates f faults).
    pub validators: u32,
    /// Observer nodes.
    pub observers: u32,
    /// Whether each observer belongs to a regulator (observer i to regulator i mod the
    /// number of regulators) and so co-signs checkpoints.
    pub regulator_observers: bool,
    /// Issuing units.
    pub issuers: u32,
    /// Reimbursing units.
    pub reimbursers: u32,
    /// Regulator keys.
    pub regulators: u32,
    /// Regulator signatures needed.
    pub threshold: u16,
    /// Genesis time.
    pub genesis_time: Timestamp,
    /// The qualification date of every unit (`None`: it does not lapse).
    pub valid_until: Option<Timestamp>,
}

/// A node's config file (the format `ebill-node --config` reads).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfigFile {
    /// `validator` or `observer`.
    pub role: String,
    /// The genesis file, relative to the config's folder.
    pub genesis: String,
    /// The node's key file.
    pub key: String,
    /// Its data folder.
    pub data_dir: String,
    /// HTTP API address.
    pub api: String,
    /// Listen multiaddr for peers.
    pub listen: String,
    /// The other nodes' listen addresses.
    pub peers: Vec<String>,
}

/// A node written (`--json`: `{"name", "role", "config", "api"}`).
#[derive(Clone, Debug, Serialize)]
pub struct NodeOut {
    /// Its name (its folder).
    pub name: String,
    /// `validator` or `observer`.
    pub role: String,
    /// Its config file.
    pub config: PathBuf,
    /// Its API's URL, `http://127.0.0.1:PORT`.
    pub api: String,
}

/// An issuing unit written.
#[derive(Clone, Debug, Serialize)]
pub struct IssuerOut {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Code prefixes.
    pub code_prefixes: Vec<CodePrefix>,
    /// Key file.
    pub key_file: PathBuf,
}

/// A reimbursing unit written.
#[derive(Clone, Debug, Serialize)]
pub struct ReimburserOut {
    /// Credit code.
    pub credit_code: CreditCode,
    /// Key file.
    pub key_file: PathBuf,
}

/// A regulator key written.
#[derive(Clone, Debug, Serialize)]
pub struct RegulatorOut {
    /// Key file.
    pub key_file: PathBuf,
}

/// Everything written (the `--json` output of `genesis init`).
#[derive(Clone, Debug, Serialize)]
pub struct NetworkOut {
    /// The genesis file.
    pub genesis: PathBuf,
    /// The nodes.
    pub nodes: Vec<NodeOut>,
    /// Issuing units.
    pub issuers: Vec<IssuerOut>,
    /// Reimbursing units.
    pub reimbursers: Vec<ReimburserOut>,
    /// Regulators.
    pub regulators: Vec<RegulatorOut>,
}

fn check(cond: bool, message: impl Into<String>) -> Result<(), CliError> {
    if cond {
        Ok(())
    } else {
        Err(CliError::argument(message))
    }
}

/// The code prefix of issuer `i`: `3301`, `3302`, ... (Zhejiang, category 01..99).
pub fn issuer_prefix(i: u32) -> Result<CodePrefix, CliError> {
    CodePrefix::parse(&format!("33{:02}", i + 1)).map_err(|e| CliError::argument(e.to_string()))
}

fn free_port(held: &mut Vec<TcpListener>) -> Result<u16, CliError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| CliError::new("io", format!("cannot bind a loopback port: {e}")))?;
    let port = l
        .local_addr()
        .map_err(|e| CliError::new("io", format!("cannot read a bound port: {e}")))?
        .port();
    held.push(l);
    Ok(port)
}

/// Writes the network of `plan` into `out` (created if missing). Keys come from
/// `seed()` (the OS's randomness in the binary). Refuses a folder that holds a
/// `genesis.json` already unless `force`.
pub fn init(
    out: &Path,
    plan: &Plan,
    force: bool,
    mut seed: impl FnMut() -> Result<[u8; 32], CliError>,
) -> Result<NetworkOut, CliError> {
    check(
        (1..=ebill_types::limits::MAX_VALIDATORS as u32).contains(&plan.validators),
        format!(
            "--validators is 1 to {}",
            ebill_types::limits::MAX_VALIDATORS
        ),
    )?;
    check(plan.observers <= 64, "--observers is at most 64")?;
    check(plan.issuers <= 99, "--issuers is at most 99")?;
    check(plan.reimbursers <= 9_999, "--reimbursers is at most 9999")?;
    check(
        (1..=ebill_types::limits::MAX_REGULATORS as u32).contains(&plan.regulators),
        format!(
            "--regulators is 1 to {}",
            ebill_types::limits::MAX_REGULATORS
        ),
    )?;
    check(
        plan.threshold >= 1 && u32::from(plan.threshold) <= plan.regulators,
        "--threshold is 1 to the number of regulators",
    )?;
    if out.join("genesis.json").exists() && !force {
        return Err(CliError::new(
            "file_exists",
            format!(
                "{} exists already; give --force to replace the network",
                out.join("genesis.json").display()
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| CliError::io(out, &e))?;
    let out = out.canonicalize().map_err(|e| CliError::io(out, &e))?;
    let genesis_path = out.join("genesis.json");
    let keys_dir = out.join("keys");
    std::fs::create_dir_all(&keys_dir).map_err(|e| CliError::io(&keys_dir, &e))?;

    // Nodes: names, roles, keys and ports.
    struct NodePlan {
        name: String,
        role: &'static str,
        key: Keypair,
        api_port: u16,
        p2p_port: u16,
    }
    let mut held = Vec::new();
    let mut nodes = Vec::new();
    for (role, count) in [("validator", plan.validators), ("observer", plan.observers)] {
        for i in 0..count {
            nodes.push(NodePlan {
                name: format!("{role}-{i}"),
                role,
                key: Keypair::from_seed(seed()?),
                api_port: free_port(&mut held)?,
                p2p_port: free_port(&mut held)?,
            });
        }
    }
    drop(held);

    let issuers: Vec<(IssuerEntry, Keypair)> = (0..plan.issuers)
        .map(|i| {
            let key = Keypair::from_seed(seed()?);
            Ok((
                IssuerEntry {
                    credit_code: dev::test_credit_code('B', i + 1),
                    name: format!("Issuing unit {i}"),
                    public_key: key.public(),
                    code_prefixes: vec![issuer_prefix(i)?],
                    valid_until: plan.valid_until,
                },
                key,
            ))
        })
        .collect::<Result<_, CliError>>()?;
    let reimbursers: Vec<(ReimburserEntry, Keypair)> = (0..plan.reimbursers)
        .map(|i| {
            let key = Keypair::from_seed(seed()?);
            Ok((
                ReimburserEntry {
                    credit_code: dev::test_credit_code('A', i + 1),
                    name: format!("Reimbursing unit {i}"),
                    public_key: key.public(),
                    valid_until: plan.valid_until,
                },
                key,
            ))
        })
        .collect::<Result<_, CliError>>()?;
    let regulators: Vec<Keypair> = (0..plan.regulators)
        .map(|_| seed().map(Keypair::from_seed))
        .collect::<Result<_, CliError>>()?;

    let genesis = Genesis {
        chain_id: plan.chain_id.clone(),
        genesis_time: plan.genesis_time,
        params: Params::default(),
        validators: nodes
            .iter()
            .filter(|n| n.role == "validator")
            .map(|n| Validator {
                name: n.name.clone(),
                public_key: n.key.public(),
            })
            .collect(),
        observers: nodes
            .iter()
            .filter(|n| n.role == "observer")
            .enumerate()
            .map(|(i, n)| Observer {
                name: n.name.clone(),
                public_key: n.key.public(),
                regulator: plan
                    .regulator_observers
                    .then(|| regulators.get(i % regulators.len().max(1)))
                    .flatten()
                    .map(Keypair::public),
            })
            .collect(),
        regulators: Regulators {
            threshold: plan.threshold,
            keys: regulators
                .iter()
                .enumerate()
                .map(|(i, k)| Regulator {
                    name: format!("regulator-{i}"),
                    public_key: k.public(),
                })
                .collect(),
        },
        issuers: issuers.iter().map(|(e, _)| e.clone()).collect(),
        reimbursers: reimbursers.iter().map(|(e, _)| e.clone()).collect(),
    };
    genesis
        .validate()
        .map_err(|e| CliError::argument(e.to_string()))?;
    let mut text = genesis.to_json();
    text.push('\n');
    files::write_public(&genesis_path, text.as_bytes(), force)?;

    let listen = |port: u16| format!("/ip4/127.0.0.1/tcp/{port}");
    let mut nodes_out = Vec::new();
    for n in &nodes {
        let dir = out.join(&n.name);
        std::fs::create_dir_all(&dir).map_err(|e| CliError::io(&dir, &e))?;
        files::write_key_file(
            &dir.join("node.key"),
            &KeyFile::new(&n.key, None, Some(n.role)),
            force,
        )?;
        let config = NodeConfigFile {
            role: n.role.to_owned(),
            genesis: "../genesis.json".into(),
            key: "node.key".into(),
            data_dir: "data".into(),
            api: format!("127.0.0.1:{}", n.api_port),
            listen: listen(n.p2p_port),
            peers: nodes
                .iter()
                .filter(|o| o.name != n.name)
                .map(|o| listen(o.p2p_port))
                .collect(),
        };
        let text = toml::to_string(&config)
            .map_err(|e| CliError::new("internal", format!("config of {}: {e}", n.name)))?;
        let config_path = dir.join("config.toml");
        files::write_public(&config_path, text.as_bytes(), force)?;
        nodes_out.push(NodeOut {
            name: n.name.clone(),
            role: n.role.to_owned(),
            config: config_path,
            api: format!("http://127.0.0.1:{}", n.api_port),
        });
    }

    let mut issuers_out = Vec::new();
    for (i, (entry, key)) in issuers.iter().enumerate() {
        let path = keys_dir.join(format!("issuer-{i}.key"));
        files::write_key_file(
            &path,
            &KeyFile::new(key, Some(entry.credit_code), Some("issuer")),
            force,
        )?;
        issuers_out.push(IssuerOut {
            credit_code: entry.credit_code,
            code_prefixes: entry.code_prefixes.clone(),
            key_file: path,
        });
    }
    let mut reimbursers_out = Vec::new();
    for (i, (entry, key)) in reimbursers.iter().enumerate() {
        let path = keys_dir.join(format!("reimburser-{i}.key"));
        files::write_key_file(
            &path,
            &KeyFile::new(key, Some(entry.credit_code), Some("reimburser")),
            force,
        )?;
        reimbursers_out.push(ReimburserOut {
            credit_code: entry.credit_code,
            key_file: path,
        });
    }
    let mut regulators_out = Vec::new();
    for (i, key) in regulators.iter().enumerate() {
        let path = keys_dir.join(format!("regulator-{i}.key"));
        files::write_key_file(&path, &KeyFile::new(key, None, Some("regulator")), force)?;
        regulators_out.push(RegulatorOut { key_file: path });
    }
    Ok(NetworkOut {
        genesis: genesis_path,
        nodes: nodes_out,
        issuers: issuers_out,
        reimbursers: reimbursers_out,
        regulators: regulators_out,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::BTreeSet;

    use super::*;

    fn plan(validators: u32, observers: u32) -> Plan {
        Plan {
            chain_id: "ebill-local".into(),
            validators,
            observers,
            regulator_observers: true,
            issuers: 2,
            reimbursers: 1,
            regulators: 3,
            threshold: 2,
            genesis_time: Timestamp {
                unix_ms: dev::DEV_GENESIS_TIME_MS,
                offset_min: 480,
            },
            valid_until: Some(ebill_types::dev::dev_valid_until()),
        }
    }

    #[test]
    fn init_writes_a_valid_genesis_and_parsable_configs() {
        let dir = tempfile::tempdir().unwrap();
        let out = init(dir.path(), &plan(4, 1), false, files::random_seed).unwrap();
        assert!(out.genesis.is_absolute());
        let genesis = files::read_genesis(&out.genesis).unwrap();
        assert_eq!(genesis.chain_id, "ebill-local");
        assert_eq!(genesis.validators.len(), 4);
        assert_eq!(genesis.observers.len(), 1);
        // Observers are regulators' observers by default.
        assert_eq!(
            genesis.observers[0].regulator,
            Some(genesis.regulators.keys[0].public_key)
        );
        assert_eq!(ebill_types::checkpoint::Witnesses::of(&genesis).len(), 1);
        assert_eq!(genesis.issuers.len(), 2);
        assert_eq!(genesis.regulators.threshold, 2);
        assert_eq!(out.nodes.len(), 5);

        let mut ports = BTreeSet::new();
        for node in &out.nodes {
            let text = std::fs::read_to_string(&node.config).unwrap();
            let config: NodeConfigFile = toml::from_str(&text).unwrap();
            assert_eq!(config.role, node.role);
            assert_eq!(node.api, format!("http://{}", config.api));
            assert_eq!(config.peers.len(), 4);
            assert!(!config.peers.contains(&config.listen));
            assert!(ports.insert(config.api.clone()));
            assert!(ports.insert(config.listen.clone()));
            let base = node.config.parent().unwrap();
            let g = files::read_genesis(&base.join(&config.genesis)).unwrap();
            assert_eq!(g.hash(), genesis.hash());
            let (file, key) = files::read_key_file(&base.join(&config.key)).unwrap();
            assert_eq!(file.role.as_deref(), Some(node.role.as_str()));
            let in_genesis = if node.role == "validator" {
                genesis
                    .validators
                    .iter()
                    .any(|v| v.public_key == key.public())
            } else {
                genesis
                    .observers
                    .iter()
                    .any(|o| o.public_key == key.public())
            };
            assert!(in_genesis, "{} key in the genesis", node.name);
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(base.join(&config.key))
                    .unwrap()
                    .permissions(),
            );
            assert_eq!(mode & 0o777, 0o600);
        }
        for (i, issuer) in out.issuers.iter().enumerate() {
            let (file, key) = files::read_key_file(&issuer.key_file).unwrap();
            assert_eq!(file.credit_code, Some(issuer.credit_code));
            assert_eq!(genesis.issuers[i].public_key, key.public());
            assert_eq!(genesis.issuers[i].code_prefixes, issuer.code_prefixes);
        }
        assert_eq!(out.issuers[0].code_prefixes[0].as_str(), "3301");
        assert_eq!(out.issuers[1].code_prefixes[0].as_str(), "3302");
        let (_, key) = files::read_key_file(&out.reimbursers[0].key_file).unwrap();
        assert_eq!(genesis.reimbursers[0].public_key, key.public());
        for (i, r) in out.regulators.iter().enumerate() {
            let (_, key) = files::read_key_file(&r.key_file).unwrap();
            assert_eq!(genesis.regulators.keys[i].public_key, key.public());
        }

        // The --json shape.
        let v = serde_json::to_value(&out).unwrap();
        assert!(v["genesis"].is_string());
        for k in ["name", "role", "config", "api"] {
            assert!(v["nodes"][0][k].is_string(), "nodes[].{k}");
        }
        assert!(v["issuers"][0]["code_prefixes"].is_array());
        assert!(v["reimbursers"][0]["credit_code"].is_string());
        assert!(v["regulators"][0]["key_file"].is_string());

        // Not twice without --force.
        let again = init(dir.path(), &plan(4, 1), false, files::random_seed).unwrap_err();
        assert_eq!(again.code, "file_exists");
        init(dir.path(), &plan(1, 0), true, files::random_seed).unwrap();
        assert_eq!(
            files::read_genesis(&out.genesis).unwrap().validators.len(),
            1
        );
    }

    #[test]
    fn bad_plans_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = plan(0, 0);
        assert_eq!(
            init(dir.path(), &p, false, files::random_seed)
                .unwrap_err()
                .code,
            "invalid_argument"
        );
        p.validators = 1;
        p.threshold = 4;
        assert!(init(dir.path(), &p, false, files::random_seed).is_err());
        p.threshold = 2;
        p.chain_id = "Bad Chain".into();
        assert!(init(dir.path(), &p, false, files::random_seed).is_err());
    }
}
