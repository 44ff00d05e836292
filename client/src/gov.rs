//! `ebill gov ...` and `ebill units`: regulators propose, vote on and inspect governance
//! actions, or sign one direct k-of-n transaction offline; anyone reads the registry.
//!
//! Online path: `propose` (one regulator), `approve` / `reject` / `withdraw`, `list`,
//! `show`. Offline path, for keys that never touch a networked machine: `draft` (or
//! `export` of a proposal) writes a draft file with the transaction, the chain id and
//! the regulators; `sign` signs it on any machine and writes a `.sig` file; `submit`
//! puts the draft and k `.sig` files together into one transaction. Every refusal names
//! the mismatch (the ledger's own code when the node refuses).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use ebill_api_types::{
    BlockView, ProposalAnswer, ProposalList, RecordProof, TxAnswer, UnitAnswer, UnitList,
};
use ebill_types::genesis::Regulators;
use ebill_types::state_tree::{StateKey, StateProof};
use ebill_types::{
    Auth, Canonical, CodePrefix, CreditCode, Hash32, Keypair, PublicKey, RegulatorSignature,
    Signature, SignedTx, Timestamp, Tx, TxBody,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::Node;
use crate::{CliError, files, keystore, passphrase};

/// Seconds per block assumed when `--expires-in` is a duration: one block a second,
/// the fastest a chain is configured to make them, so the proposal stays open at least
/// about that long in blocks (heights start only when there is work: ADR 0004).
pub const ASSUMED_BLOCK_S: u64 = 1;

/// `ebill gov ...`
#[derive(Subcommand, Debug)]
pub enum GovCommand {
    /// Propose a governance action (signed by one regulator; it counts as the first
    /// approval). Prints the proposal id and exactly what it will change.
    Propose {
        /// The action.
        #[command(subcommand)]
        action: ActionCmd,
        /// The regulator's key.
        #[command(flatten)]
        signer: SignerArgs,
        /// How long it stays open: blocks (`500b`) or a duration (`7d`, `12h`, `30m`,
        /// counted at one block a second).
        #[arg(long, global = true, default_value = "7d")]
        expires_in: String,
        /// Do not wait until final.
        #[arg(long, global = true)]
        no_wait: bool,
    },
    /// Write a draft of one direct k-of-n transaction, for signing offline.
    Draft {
        /// The action.
        #[command(subcommand)]
        action: ActionCmd,
        /// The draft file to write.
        #[arg(short = 'o', long = "out", global = true)]
        out: Option<PathBuf>,
        /// Read chain id and regulators from this genesis file instead of the node.
        #[arg(long, global = true)]
        genesis: Option<PathBuf>,
        /// Replace an existing file.
        #[arg(long, global = true)]
        force: bool,
    },
    /// The proposals, newest first.
    List {
        /// Only pending, executed, expired, rejected or withdrawn ones.
        #[arg(long)]
        status: Option<String>,
    },
    /// One proposal: its action, who approved and rejected, what is missing, its expiry.
    Show {
        /// The proposal id (64 hex digits).
        id: String,
    },
    /// Approve a proposal.
    Approve(VoteArgs),
    /// Reject a proposal.
    Reject(VoteArgs),
    /// Withdraw your own proposal.
    Withdraw(VoteArgs),
    /// Write a proposal's action as a draft of a direct k-of-n transaction.
    Export {
        /// The proposal id.
        id: String,
        /// The draft file to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Sign a draft (no network needed): prints what it signs, writes a `.sig` file.
    Sign {
        /// The draft file.
        draft: PathBuf,
        /// The regulator's key.
        #[command(flatten)]
        signer: SignerArgs,
        /// The signature file to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Submit a draft with k signature files as one transaction.
    Submit {
        /// The draft file.
        draft: PathBuf,
        /// The signature files.
        #[arg(required = true)]
        sigs: Vec<PathBuf>,
        /// Do not wait until final.
        #[arg(long)]
        no_wait: bool,
    },
}

/// A regulator's key.
#[derive(Args, Debug)]
pub struct SignerArgs {
    /// The regulator's key file (plaintext, or sealed with `ebill keygen --encrypt`).
    #[arg(long, global = true)]
    pub key: Option<PathBuf>,
    /// Read the key file's passphrase from the first line of this file.
    #[arg(long, value_name = "PATH", global = true)]
    pub passphrase_file: Option<PathBuf>,
    /// Read the key file's passphrase from this environment variable (give its name).
    #[arg(long, value_name = "VAR", global = true)]
    pub passphrase_env: Option<String>,
}

/// A vote.
#[derive(Args, Debug)]
pub struct VoteArgs {
    /// The proposal id (64 hex digits).
    pub id: String,
    /// The regulator's key.
    #[command(flatten)]
    pub signer: SignerArgs,
    /// Do not wait until final.
    #[arg(long)]
    pub no_wait: bool,
}

/// A unit's key: hex, or the public key of a key file.
#[derive(Args, Debug, Clone)]
pub struct UnitKeyArgs {
    /// The key, 64 hex digits.
    #[arg(long, conflicts_with = "key_file")]
    pub public_key: Option<String>,
    /// Or the key file whose public key it is.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
}

/// The governance actions.
#[derive(Subcommand, Debug, Clone)]
pub enum ActionCmd {
    /// Register an issuing unit.
    RegisterIssuer {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// The key.
        #[command(flatten)]
        key: UnitKeyArgs,
        /// Bill-code prefixes, comma-separated (3301,3302).
        #[arg(long)]
        prefixes: String,
        /// Qualification valid until: YYYY-MM-DD (through that day, +08:00) or RFC 3339.
        #[arg(long)]
        valid_until: String,
    },
    /// Register a reimbursing unit.
    RegisterReimburser {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// Name.
        #[arg(long)]
        name: String,
        /// The key.
        #[command(flatten)]
        key: UnitKeyArgs,
    },
    /// Revoke a unit: it signs nothing new; what it signed stays valid.
    Revoke {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Replace a unit's key.
    RotateKey {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// The key.
        #[command(flatten)]
        key: UnitKeyArgs,
    },
    /// Replace an issuer's code prefixes.
    SetPrefixes {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// The new prefixes, comma-separated.
        #[arg(long)]
        prefixes: String,
    },
    /// Renew a unit's qualification.
    Renew {
        /// Credit code.
        #[arg(long)]
        credit_code: String,
        /// The new date.
        #[arg(long)]
        valid_until: String,
    },
    /// Add a regulator.
    AddRegulator {
        /// Its name.
        #[arg(long)]
        name: String,
        /// The key.
        #[command(flatten)]
        key: UnitKeyArgs,
    },
    /// Remove a regulator.
    RemoveRegulator {
        /// The key.
        #[command(flatten)]
        key: UnitKeyArgs,
    },
    /// Change the threshold.
    SetThreshold {
        /// The new threshold.
        #[arg(long)]
        threshold: u16,
    },
}

fn credit_code(s: &str) -> Result<CreditCode, CliError> {
    CreditCode::parse(s).map_err(|e| CliError::argument(format!("credit code {s:?}: {e}")))
}

fn date(s: &str) -> Result<Timestamp, CliError> {
    Timestamp::end_of_day(s).map_err(|e| CliError::argument(format!("--valid-until: {e}")))
}

fn prefixes(s: &str) -> Result<Vec<CodePrefix>, CliError> {
    s.split(',')
        .map(|p| {
            CodePrefix::parse(p.trim())
                .map_err(|e| CliError::argument(format!("prefix {p:?}: {e}")))
        })
        .collect()
}

fn unit_key(k: &UnitKeyArgs) -> Result<PublicKey, CliError> {
    match (&k.public_key, &k.key_file) {
        (Some(hex), _) => {
            PublicKey::from_hex(hex).map_err(|e| CliError::argument(format!("--public-key: {e}")))
        }
        (None, Some(path)) => {
            let opened = keystore::open_key_file(path, &passphrase::Source::Terminal)?;
            Ok(opened.keypair.public())
        }
        (None, None) => Err(CliError::argument(
            "give --public-key HEX or --key-file FILE",
        )),
    }
}

impl ActionCmd {
    /// The transaction body of the action.
    pub fn body(&self) -> Result<TxBody, CliError> {
        Ok(match self {
            ActionCmd::RegisterIssuer {
                credit_code: c,
                name,
                key,
                prefixes: p,
                valid_until,
            } => TxBody::RegisterIssuer {
                credit_code: credit_code(c)?,
                name: name.clone(),
                public_key: unit_key(key)?,
                code_prefixes: prefixes(p)?,
                valid_until: date(valid_until)?,
            },
            ActionCmd::RegisterReimburser {
                credit_code: c,
                name,
                key,
            } => TxBody::RegisterReimburser {
                credit_code: credit_code(c)?,
                name: name.clone(),
                public_key: unit_key(key)?,
            },
            ActionCmd::Revoke {
                credit_code: c,
                reason,
            } => TxBody::RevokeUnit {
                credit_code: credit_code(c)?,
                reason: reason.clone(),
            },
            ActionCmd::RotateKey {
                credit_code: c,
                key,
            } => TxBody::RotateKey {
                credit_code: credit_code(c)?,
                public_key: unit_key(key)?,
            },
            ActionCmd::SetPrefixes {
                credit_code: c,
                prefixes: p,
            } => TxBody::SetPrefixes {
                credit_code: credit_code(c)?,
                code_prefixes: prefixes(p)?,
            },
            ActionCmd::Renew {
                credit_code: c,
                valid_until,
            } => TxBody::RenewQualification {
                credit_code: credit_code(c)?,
                valid_until: date(valid_until)?,
            },
            ActionCmd::AddRegulator { name, key } => TxBody::AddRegulator {
                name: name.clone(),
                public_key: unit_key(key)?,
            },
            ActionCmd::RemoveRegulator { key } => TxBody::RemoveRegulator {
                public_key: unit_key(key)?,
            },
            ActionCmd::SetThreshold { threshold } => TxBody::SetThreshold {
                threshold: *threshold,
            },
        })
    }
}

/// A one-line account of exactly what an action changes.
pub fn describe(action: &TxBody) -> String {
    let list = |p: &[CodePrefix]| {
        p.iter()
            .map(CodePrefix::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    match action {
        TxBody::RegisterIssuer {
            credit_code,
            name,
            public_key,
            code_prefixes,
            valid_until,
        } => format!(
            "register issuing unit {credit_code} \"{name}\" with key {public_key}, prefixes {}, qualified until {valid_until}",
            list(code_prefixes)
        ),
        TxBody::RegisterReimburser {
            credit_code,
            name,
            public_key,
        } => format!("register reimbursing unit {credit_code} \"{name}\" with key {public_key}"),
        TxBody::RevokeUnit {
            credit_code,
            reason,
        } => format!("revoke unit {credit_code} (reason: {reason}): it signs nothing new"),
        TxBody::RotateKey {
            credit_code,
            public_key,
        } => format!("replace the key of {credit_code} by {public_key}"),
        TxBody::SetPrefixes {
            credit_code,
            code_prefixes,
        } => format!(
            "set the prefixes of {credit_code} to {}",
            list(code_prefixes)
        ),
        TxBody::RenewQualification {
            credit_code,
            valid_until,
        } => format!("renew the qualification of {credit_code} until {valid_until}"),
        TxBody::AddRegulator { name, public_key } => {
            format!("add regulator \"{name}\" with key {public_key}")
        }
        TxBody::RemoveRegulator { public_key } => {
            format!("remove the regulator with key {public_key}")
        }
        TxBody::SetThreshold { threshold } => {
            format!("require {threshold} regulators for every governance action")
        }
        other => format!("{} (not a governance action)", other.kind().as_str()),
    }
}

/// Reads `--expires-in` as a number of blocks.
pub fn expires_in_blocks(s: &str) -> Result<u64, CliError> {
    let bad = || {
        CliError::argument(format!(
            "--expires-in {s:?}: blocks (500b) or a duration (7d, 12h, 30m, 90s)"
        ))
    };
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let s_per = match unit {
        "b" => return Ok(n),
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(s_per)
        .map(|secs| secs / ASSUMED_BLOCK_S)
        .filter(|b| *b > 0)
        .ok_or_else(bad)
}

fn open_signer(s: &SignerArgs) -> Result<Keypair, CliError> {
    let Some(path) = &s.key else {
        return Err(CliError::new("usage", "give --key REGULATOR.key"));
    };
    let source =
        passphrase::Source::from_flags(s.passphrase_file.as_deref(), s.passphrase_env.as_deref());
    let opened = keystore::open_key_file(path, &source)?;
    if let Some(w) = &opened.warning {
        eprintln!("ebill: warning: {w}");
    }
    Ok(opened.keypair)
}

/// The index of `key` in `set`, or `not_a_regulator` naming the key and the set.
fn index_in(set: &Regulators, key: &PublicKey, what: &str) -> Result<u16, CliError> {
    set.keys
        .iter()
        .position(|r| r.public_key == *key)
        .and_then(|i| u16::try_from(i).ok())
        .ok_or_else(|| {
            let names: Vec<String> = set
                .keys
                .iter()
                .enumerate()
                .map(|(i, r)| format!("{i} {} {}", r.name, r.public_key))
                .collect();
            CliError::new(
                "not_a_regulator",
                format!(
                    "key {key} is not a regulator of {what} (they are: {})",
                    names.join("; ")
                ),
            )
        })
}

fn proposal_id(s: &str) -> Result<Hash32, CliError> {
    Hash32::from_hex(s)
        .map_err(|e| CliError::argument(format!("proposal id {s:?}: 64 hex digits ({e})")))
}

/// The chain's governance state as the node answers it: tip height, sequence, regulators.
struct ChainGov {
    height: u64,
    gov_seq: u64,
    regulators: Regulators,
}

fn chain_gov(node: &Node) -> Result<ChainGov, CliError> {
    let v: ProposalList = node.get("/v1/gov/proposals?status=pending")?.ok_typed()?;
    Ok(ChainGov {
        height: v.height,
        gov_seq: v.gov_seq,
        regulators: v.regulators,
    })
}

fn wait_query(no_wait: bool) -> &'static str {
    if no_wait { "" } else { "?wait=commit" }
}

/// Posts a transaction; returns the node's answer (`tx_id`, `status`, `height`).
fn post(node: &Node, stx: &SignedTx, no_wait: bool) -> Result<TxAnswer, CliError> {
    node.post_json(&format!("/v1/txs{}", wait_query(no_wait)), stx)?
        .ok_typed()
}

fn print_json(v: &Value) {
    println!("{v}");
}

/// Runs `ebill gov ...`; `Ok(true)` is success (exit 0).
pub fn run(node_url: &str, json_out: bool, cmd: &GovCommand) -> Result<bool, CliError> {
    match cmd {
        GovCommand::Propose {
            action,
            signer,
            expires_in,
            no_wait,
        } => {
            let action = action.body()?;
            let blocks = expires_in_blocks(expires_in)?;
            let key = open_signer(signer)?;
            let node = Node::new(node_url)?;
            let chain_id = node.chain_id()?;
            let gov = chain_gov(&node)?;
            let index = index_in(&gov.regulators, &key.public(), "the set in force")?;
            let body = TxBody::Propose {
                action: Box::new(action.clone()),
                expires_at_height: gov.height + 1 + blocks,
                base_gov_seq: gov.gov_seq,
            };
            let Some(id) = body.proposal_id(&chain_id) else {
                unreachable!("a Propose has an id")
            };
            let stx = Tx {
                nonce: files::random_u64()?,
                body,
            }
            .sign_regulator(&chain_id, index, &key);
            let answer = post(&node, &stx, *no_wait)?;
            let summary = describe(&action);
            let needed = gov.regulators.threshold;
            if json_out {
                print_json(&json!({
                    "proposal_id": id,
                    "tx_id": answer.tx_id,
                    "status": answer.status.as_str(),
                    "height": answer.height,
                    "action": action,
                    "summary": summary,
                    "expires_at_height": gov.height + 1 + blocks,
                    "base_gov_seq": gov.gov_seq,
                    "threshold": needed,
                }));
            } else {
                println!("proposal {id}");
                println!("  will {summary}");
                println!(
                    "  proposed by regulator {index}; {needed} of {} approvals needed (yours counts); open until height {}",
                    gov.regulators.keys.len(),
                    gov.height + 1 + blocks
                );
                println!("  tx {} {}", answer.tx_id, answer.status.as_str());
            }
            Ok(true)
        }
        GovCommand::Draft {
            action,
            out,
            genesis,
            force,
        } => {
            let Some(out) = out else {
                return Err(CliError::new("usage", "give -o DRAFT.json"));
            };
            let action = action.body()?;
            let (chain_id, gov_seq, regulators) = match genesis {
                Some(path) => {
                    let g = files::read_genesis(path)?;
                    (g.chain_id, None, g.regulators)
                }
                None => {
                    let node = Node::new(node_url)?;
                    let gov = chain_gov(&node)?;
                    (node.chain_id()?, Some(gov.gov_seq), gov.regulators)
                }
            };
            write_draft(json_out, out, *force, chain_id, gov_seq, regulators, action)
        }
        GovCommand::Export { id, out, force } => {
            let id = proposal_id(id)?;
            let node = Node::new(node_url)?;
            let v: ProposalAnswer = node
                .get(&format!("/v1/gov/proposals/{}", id.to_hex()))?
                .ok_typed()?;
            let action = v.proposal.action;
            let gov = chain_gov(&node)?;
            write_draft(
                json_out,
                out,
                *force,
                node.chain_id()?,
                Some(gov.gov_seq),
                gov.regulators,
                action,
            )
        }
        GovCommand::List { status } => list(node_url, json_out, status.as_deref()),
        GovCommand::Show { id } => show(node_url, json_out, id),
        GovCommand::Approve(v) => vote(node_url, json_out, v, VoteKind::Approve),
        GovCommand::Reject(v) => vote(node_url, json_out, v, VoteKind::Reject),
        GovCommand::Withdraw(v) => vote(node_url, json_out, v, VoteKind::Withdraw),
        GovCommand::Sign {
            draft,
            signer,
            out,
            force,
        } => sign(json_out, draft, signer, out, *force),
        GovCommand::Submit {
            draft,
            sigs,
            no_wait,
        } => submit(node_url, json_out, draft, sigs, *no_wait),
    }
}

/// A draft of a direct k-of-n transaction, as written for offline signing.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Draft {
    /// Always `ebill-gov-draft`.
    pub format: String,
    /// The chain id the signatures are for.
    pub chain_id: String,
    /// The governance sequence when drafted (for reading; the direct path has none).
    pub gov_seq: Option<u64>,
    /// The regulators whose signatures count (the set in force when drafted).
    pub regulators: Regulators,
    /// The transaction.
    pub tx: Tx,
    /// Its id.
    pub tx_id: Hash32,
    /// What it changes.
    pub summary: String,
}

/// One regulator's signature of a draft.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigFile {
    /// Always `ebill-gov-signature`.
    pub format: String,
    /// The transaction signed.
    pub tx_id: Hash32,
    /// The regulator's index in the draft's set.
    pub regulator_index: u16,
    /// Its key.
    pub public_key: PublicKey,
    /// The signature of the transaction's signing bytes.
    pub signature: Signature,
}

const DRAFT_FORMAT: &str = "ebill-gov-draft";
const SIG_FORMAT: &str = "ebill-gov-signature";

fn write_draft(
    json_out: bool,
    out: &Path,
    force: bool,
    chain_id: String,
    gov_seq: Option<u64>,
    regulators: Regulators,
    action: TxBody,
) -> Result<bool, CliError> {
    if !action.kind().is_gov_action() {
        return Err(CliError::argument("not a governance action"));
    }
    let tx = Tx {
        nonce: files::random_u64()?,
        body: action,
    };
    let draft = Draft {
        format: DRAFT_FORMAT.into(),
        tx_id: tx.id(&chain_id),
        summary: describe(&tx.body),
        chain_id,
        gov_seq,
        regulators,
        tx,
    };
    let text = serde_json::to_string_pretty(&draft)
        .map_err(|e| CliError::new("internal", e.to_string()))?
        + "\n";
    files::write_public(out, text.as_bytes(), force)?;
    if json_out {
        print_json(&json!({"draft": out, "tx_id": draft.tx_id, "summary": draft.summary}));
    } else {
        println!("draft {} written to {}", draft.tx_id, out.display());
        println!("  will {}", draft.summary);
        println!(
            "  needs {} of these {} regulators to sign it with `ebill gov sign`",
            draft.regulators.threshold,
            draft.regulators.keys.len()
        );
    }
    Ok(true)
}

fn read_draft(path: &Path) -> Result<Draft, CliError> {
    let text = files::read_text(path)?;
    let d: Draft = serde_json::from_str(&text)
        .map_err(|e| CliError::new("invalid_draft", format!("{}: {e}", path.display())))?;
    if d.format != DRAFT_FORMAT || d.tx.id(&d.chain_id) != d.tx_id {
        return Err(CliError::new(
            "invalid_draft",
            format!(
                "{}: not an ebill draft, or its tx_id is not its transaction's",
                path.display()
            ),
        ));
    }
    if !d.tx.body.kind().is_gov_action() {
        return Err(CliError::new(
            "invalid_draft",
            format!("{}: not a governance action", path.display()),
        ));
    }
    Ok(d)
}

fn sign(
    json_out: bool,
    draft: &Path,
    signer: &SignerArgs,
    out: &Path,
    force: bool,
) -> Result<bool, CliError> {
    let d = read_draft(draft)?;
    let key = open_signer(signer)?;
    let index = index_in(&d.regulators, &key.public(), "the draft's regulator set")?;
    let signature = key.sign(&d.tx.signing_bytes(&d.chain_id));
    let sig = SigFile {
        format: SIG_FORMAT.into(),
        tx_id: d.tx_id,
        regulator_index: index,
        public_key: key.public(),
        signature,
    };
    let text = serde_json::to_string_pretty(&sig)
        .map_err(|e| CliError::new("internal", e.to_string()))?
        + "\n";
    files::write_public(out, text.as_bytes(), force)?;
    if json_out {
        print_json(
            &json!({"signature": out, "tx_id": d.tx_id, "regulator_index": index, "summary": d.summary}),
        );
    } else {
        println!("signed on chain {}: {}", d.chain_id, d.summary);
        println!(
            "  as regulator {index} ({}); signature written to {}",
            d.regulators.keys[usize::from(index)].name,
            out.display()
        );
    }
    Ok(true)
}

fn submit(
    node_url: &str,
    json_out: bool,
    draft: &Path,
    sig_paths: &[PathBuf],
    no_wait: bool,
) -> Result<bool, CliError> {
    let d = read_draft(draft)?;
    let msg = d.tx.signing_bytes(&d.chain_id);
    let mut sigs: Vec<RegulatorSignature> = Vec::new();
    for path in sig_paths {
        let text = files::read_text(path)?;
        let s: SigFile = serde_json::from_str(&text).map_err(|e| {
            CliError::new("invalid_signature_file", format!("{}: {e}", path.display()))
        })?;
        if s.format != SIG_FORMAT || s.tx_id != d.tx_id {
            return Err(CliError::new(
                "signature_mismatch",
                format!(
                    "{} signs transaction {}, the draft is {}",
                    path.display(),
                    s.tx_id,
                    d.tx_id
                ),
            ));
        }
        let Some(r) = d.regulators.keys.get(usize::from(s.regulator_index)) else {
            return Err(CliError::new(
                "not_a_regulator",
                format!(
                    "{} names regulator {}, the draft has {}",
                    path.display(),
                    s.regulator_index,
                    d.regulators.keys.len()
                ),
            ));
        };
        if r.public_key != s.public_key || r.public_key.verify(&msg, &s.signature).is_err() {
            return Err(CliError::new(
                "bad_signature",
                format!(
                    "{} is not a signature of regulator {} ({}, key {})",
                    path.display(),
                    s.regulator_index,
                    r.name,
                    r.public_key
                ),
            ));
        }
        if sigs.iter().any(|x| x.index == s.regulator_index) {
            return Err(CliError::new(
                "already_voted",
                format!(
                    "{} is a second signature of regulator {}",
                    path.display(),
                    s.regulator_index
                ),
            ));
        }
        sigs.push(RegulatorSignature {
            index: s.regulator_index,
            signature: s.signature,
        });
    }
    if sigs.len() < usize::from(d.regulators.threshold) {
        return Err(CliError::new(
            "insufficient_signatures",
            format!(
                "{} signatures, {} needed",
                sigs.len(),
                d.regulators.threshold
            ),
        ));
    }
    sigs.sort_by_key(|s| s.index);
    let node = Node::new(node_url)?;
    let chain_id = node.chain_id()?;
    if chain_id != d.chain_id {
        return Err(CliError::new(
            "chain_mismatch",
            format!(
                "the draft is for chain {}, the node is {chain_id}",
                d.chain_id
            ),
        ));
    }
    let stx = SignedTx {
        tx: d.tx,
        auth: Auth::Regulators(sigs),
    };
    let answer = post(&node, &stx, no_wait)?;
    if json_out {
        print_json(
            &json!({"tx_id": answer.tx_id, "status": answer.status.as_str(), "height": answer.height, "summary": d.summary}),
        );
    } else {
        println!("{} — {}", d.summary, answer.status.as_str());
        println!("tx {}", answer.tx_id);
    }
    Ok(true)
}

#[derive(Clone, Copy)]
enum VoteKind {
    Approve,
    Reject,
    Withdraw,
}

fn vote(node_url: &str, json_out: bool, v: &VoteArgs, kind: VoteKind) -> Result<bool, CliError> {
    let id = proposal_id(&v.id)?;
    let key = open_signer(&v.signer)?;
    let node = Node::new(node_url)?;
    let chain_id = node.chain_id()?;
    let p: ProposalAnswer = node
        .get(&format!("/v1/gov/proposals/{}", id.to_hex()))?
        .ok_typed()?;
    let regulators: Regulators = Regulators {
        threshold: p.proposal.threshold,
        keys: p
            .proposal
            .regulators
            .into_iter()
            .map(|r| ebill_types::genesis::Regulator {
                name: r.name,
                public_key: r.public_key,
            })
            .collect(),
    };
    let index = index_in(&regulators, &key.public(), &format!("proposal {id}"))?;
    let body = match kind {
        VoteKind::Approve => TxBody::Approve { proposal: id },
        VoteKind::Reject => TxBody::Reject { proposal: id },
        VoteKind::Withdraw => TxBody::Withdraw { proposal: id },
    };
    let what = body.kind().as_str();
    let stx = Tx {
        nonce: files::random_u64()?,
        body,
    }
    .sign_regulator(&chain_id, index, &key);
    let answer = post(&node, &stx, v.no_wait)?;
    // The proposal after the vote.
    let after: ProposalAnswer = node
        .get(&format!("/v1/gov/proposals/{}", id.to_hex()))?
        .ok_typed()?;
    let status = after.proposal.status.as_str();
    if json_out {
        print_json(&json!({
            "proposal_id": id,
            "vote": what,
            "tx_id": answer.tx_id,
            "height": answer.height,
            "proposal_status": status,
            "approvals_missing": after.proposal.approvals_missing,
        }));
    } else {
        println!("{what} of proposal {id} by regulator {index}: recorded");
        println!(
            "  proposal is {status}; approvals missing: {}",
            after.proposal.approvals_missing
        );
    }
    Ok(true)
}

fn list(node_url: &str, json_out: bool, status: Option<&str>) -> Result<bool, CliError> {
    const STATUSES: [&str; 5] = ["pending", "executed", "expired", "rejected", "withdrawn"];
    if let Some(s) = status
        && !STATUSES.contains(&s)
    {
        return Err(CliError::argument(format!(
            "--status {s:?}: one of {}",
            STATUSES.join(", ")
        )));
    }
    let node = Node::new(node_url)?;
    let path = match status {
        Some(s) => format!("/v1/gov/proposals?status={s}"),
        None => "/v1/gov/proposals".to_owned(),
    };
    let answer = node.get(&path)?;
    let v: ProposalList = answer.clone().ok_typed()?;
    if json_out {
        println!("{}", answer.text().trim_end());
        return Ok(true);
    }
    println!(
        "governance sequence {}, {} of {} regulators needed, height {}",
        v.gov_seq,
        v.regulators.threshold,
        v.regulators.keys.len(),
        v.height
    );
    for p in &v.proposals {
        println!(
            "{}  {:<9}{}  {}",
            p.id,
            p.status.as_str(),
            if p.stale { " (stale)" } else { "" },
            describe(&p.action)
        );
    }
    if v.proposals.is_empty() {
        println!("no proposals");
    }
    Ok(true)
}

fn show(node_url: &str, json_out: bool, id: &str) -> Result<bool, CliError> {
    let id = proposal_id(id)?;
    let node = Node::new(node_url)?;
    let answer = node.get(&format!("/v1/gov/proposals/{}", id.to_hex()))?;
    let v: ProposalAnswer = answer.clone().ok_typed()?;
    if json_out {
        println!("{}", answer.text().trim_end());
        return Ok(true);
    }
    let p = &v.proposal;
    println!("proposal {id}: {}", p.status.as_str());
    println!("  will {}", describe(&p.action));
    println!(
        "  proposed at height {} by {}; open until height {} (now {})",
        p.proposed_height,
        p.proposer.as_ref().map_or("?", |r| r.name.as_str()),
        p.expires_at_height,
        v.height
    );
    if p.stale {
        println!(
            "  STALE: written against governance sequence {}, it is {} now; it can no longer pass",
            p.base_gov_seq, v.gov_seq
        );
    }
    for (what, list) in [("approved", &p.approvals), ("rejected", &p.rejections)] {
        for vote in list {
            println!(
                "  {what} by {} ({}) at height {}",
                vote.regulator.name, vote.regulator.index, vote.height
            );
        }
    }
    println!(
        "  {} of {} approvals; missing {}",
        p.approvals.len(),
        p.threshold,
        p.approvals_missing
    );
    Ok(true)
}

/// `ebill units [CREDIT_CODE]`: the registry, or one unit with its history and the
/// proof of its record checked against the state root of the block it names.
pub fn units(node_url: &str, json_out: bool, code: Option<&str>) -> Result<bool, CliError> {
    let node = Node::new(node_url)?;
    let Some(code) = code else {
        let answer = node.get("/v1/units")?;
        let v: UnitList = answer.clone().ok_typed()?;
        if json_out {
            println!("{}", answer.text().trim_end());
            return Ok(true);
        }
        for u in &v.units {
            println!(
                "{}  {:<10} {:<22} until {}  {}",
                u.credit_code,
                u.role,
                u.status,
                u.valid_until
                    .and_then(|t| t.to_rfc3339().ok())
                    .unwrap_or_else(|| "-".to_owned()),
                u.name
            );
        }
        return Ok(true);
    };
    let code = credit_code(code)?;
    let answer = node.get(&format!("/v1/units/{code}"))?;
    let v: UnitAnswer = answer.clone().ok_typed()?;
    let proved = check_unit_proof(&node, &code, &v.state_proof);
    if json_out {
        // The node's answer as it is, with what this client found of its proof.
        let mut out = answer.json()?;
        out["proof_checked"] = json!(proved.is_ok());
        print_json(&out);
        return Ok(proved.is_ok());
    }
    let u = &v.unit;
    println!("{} {} — {} {}", code, u.name, u.role, u.status);
    println!("  key          {}", u.public_key);
    if let Some(p) = &u.code_prefixes {
        let p: Vec<&str> = p.iter().map(|p| p.as_str()).collect();
        println!("  prefixes     {}", p.join(","));
    }
    println!(
        "  valid until  {}",
        u.valid_until
            .and_then(|t| t.to_rfc3339().ok())
            .unwrap_or_else(|| "does not lapse".to_owned())
    );
    if let Some(h) = u.revoked_at {
        println!("  revoked at   height {h}");
    }
    if u.in_genesis {
        println!("  registered by the genesis");
    }
    for e in &u.history {
        println!("  - {} at height {} (tx {})", e.action, e.height, e.tx_id);
    }
    match proved {
        Ok(h) => println!("  record proved against the state root of block {h}"),
        Err(e) => println!("  record NOT proved: {}", e.message),
    }
    Ok(true)
}

/// Checks the unit's record proof against the state root of the header it names.
fn check_unit_proof(node: &Node, code: &CreditCode, p: &RecordProof) -> Result<u64, CliError> {
    let bad = |m: String| CliError::new("bad_proof", m);
    let proof = StateProof::from_canonical_bytes(&p.proof).map_err(|e| bad(e.to_string()))?;
    let key = StateKey::Unit(*code);
    proof
        .verify_member(&p.state_root, &key.hash(), &key.value_hash(&p.record))
        .map_err(|e| bad(e.to_string()))?;
    if p.height > 0 {
        let b: BlockView = node.get(&format!("/v1/blocks/{}", p.height))?.ok_typed()?;
        if b.state_root != p.state_root {
            return Err(bad(format!(
                "block {} has state root {}, the proof leads to {}",
                p.height, b.state_root, p.state_root
            )));
        }
    }
    Ok(p.height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_reads_blocks_and_durations() {
        assert_eq!(expires_in_blocks("500b").ok(), Some(500));
        assert_eq!(expires_in_blocks("7d").ok(), Some(604_800));
        assert_eq!(expires_in_blocks("2h").ok(), Some(7_200));
        for bad in ["", "d", "7w", "-1d", "0b0"] {
            assert!(expires_in_blocks(bad).is_err(), "{bad}");
        }
    }
}
