//! `ebill`: the command-line client of an ebill chain (docs/design.md §9.2).
//!
//! Every command prints a human summary, or with `--json` one JSON object on stdout.
//! The exit code is 0 only on success; on failure `--json` prints
//! `{"error": {"code": "...", "message": "..."}}` on stdout, and without it a message
//! goes to stderr.
//!
//! Nonces of lifecycle transactions (reverse, exchange, lock, unlock, reimburse) are a
//! fresh random `u64` from the OS: two otherwise identical transactions (lock, unlock,
//! lock again) never share an id, even when sent within the same millisecond.

use std::fs::File;
use std::io::{BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use ebill_api_types::{
    BatchAnswer, BatchItem, BlockView, Role, StatusView, TxAnswer, TxState, Verdict,
};
use ebill_client::input::{self, Format, SourceBill};
use ebill_client::network::{self, Plan};
use ebill_client::{CliError, devkeys, files, http::Node, keystore, passphrase};
use ebill_types::absence::{AbsenceProof, VerifiedAbsence, is_absence_proof, verify_absence};
use ebill_types::keyfile::{KdfCost, KeyFile};
use ebill_types::proof::{ProofBundle, ProofError, verify_bundle};
use ebill_types::{
    Bill, BillCode, BillId, BillNumber, CheckCode, CreditCode, Keypair, SignedTx, Timestamp, Tx,
    TxBody,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "ebill",
    version,
    about = "Client of an ebill chain: keys, networks, bills, verification and proofs"
)]
struct Cli {
    /// The node's API.
    #[arg(
        long,
        global = true,
        env = "EBILL_NODE",
        default_value = "http://127.0.0.1:8080"
    )]
    node: String,
    /// Print one JSON object on stdout instead of a human summary.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Make a new key (OS randomness) and write it as a key file, mode 0600: plaintext,
    /// or with --encrypt sealed with a passphrase (asked twice on the terminal, or read
    /// with --passphrase-file / --passphrase-env).
    Keygen {
        /// The key file to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// The unit this key signs for.
        #[arg(long)]
        credit_code: Option<String>,
        /// What the key is for (issuer, reimburser, regulator, validator, observer).
        #[arg(long)]
        role: Option<String>,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
        /// Seal the key with a passphrase (argon2id, 64 MiB and 3 passes, then
        /// XChaCha20-Poly1305); commands that use the key then ask for it.
        #[arg(long)]
        encrypt: bool,
        #[command(flatten)]
        passphrase: PassphraseArgs,
    },
    /// Write the dev chain's well-known keys (`ebill-node --dev`) as key files.
    DevKeys {
        /// The folder to write them into.
        #[arg(long)]
        out: PathBuf,
        /// Replace different files in the way.
        #[arg(long)]
        force: bool,
    },
    /// Genesis files.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Issue a bill (or a batch of bills) signed with the issuer's key.
    Issue(IssueArgs),
    /// Red-reverse (冲红) a bill: issuer only.
    Reverse {
        #[command(flatten)]
        target: Target,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Exchange a bill for paper (换开): issuer only.
    Exchange {
        #[command(flatten)]
        target: Target,
    },
    /// Lock a bill for reimbursement: a reimbursing unit.
    Lock {
        #[command(flatten)]
        target: Target,
    },
    /// Release a lock: the unit holding it.
    Unlock {
        #[command(flatten)]
        target: Target,
    },
    /// Confirm a bill reimbursed (final, irreversible): a reimbursing unit.
    Reimburse {
        #[command(flatten)]
        target: Target,
    },
    /// Ask the node for a bill's verdict; exit 0 only if authentic and final.
    Verify {
        /// Bill code (8 digits).
        code: String,
        /// Bill number (10 digits).
        number: String,
        /// Check code (6 characters).
        check_code: String,
    },
    /// Fetch a bill's proof bundle for offline verification.
    Proof {
        /// Bill code.
        code: String,
        /// Bill number.
        number: String,
        /// Check code.
        check_code: String,
        /// The file to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Write the compact binary form instead of JSON.
        #[arg(long)]
        binary: bool,
    },
    /// Draw the QR code of a bill's verification page (printed in the terminal, or
    /// written with -o as .svg or .png).
    Qr {
        /// Bill code.
        code: String,
        /// Bill number.
        number: String,
        /// Check code.
        check_code: String,
        /// The file to write (.svg or .png); without it the code is printed.
        #[arg(short = 'o', long = "out")]
        out: Option<PathBuf>,
        /// The node's public base URL the link is built on (`ebill-node --public-url`);
        /// default the --node URL.
        #[arg(long = "public-url")]
        public_url: Option<String>,
    },
    /// Fetch the proof that no bill CODE/NUMBER exists, from the node operator's API
    /// (`ebill-node --admin-api`: give it with --node). Fails with `bill_exists` for an
    /// issued bill.
    ProofAbsent {
        /// Bill code.
        code: String,
        /// Bill number.
        number: String,
        /// The file to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// Write the compact binary form instead of JSON.
        #[arg(long)]
        binary: bool,
    },
    /// Verify a proof bundle, or an absence proof (`ebill proof-absent`), offline
    /// against a genesis file; exit 0 only if every link holds.
    VerifyProof {
        /// The bundle or absence proof (JSON or binary).
        bundle: PathBuf,
        /// The chain's genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// Refuse a bundle (or absence proof) whose state is not proved as of at least
        /// this height (a bundle without a state proof is refused too).
        #[arg(long)]
        min_height: Option<u64>,
        /// Refuse a bundle (or absence proof) whose state proof's header is older than
        /// this many seconds by this machine's clock (a bundle without a state proof is
        /// refused too).
        #[arg(long)]
        max_age: Option<u64>,
        /// Require valid co-signatures of at least this many distinct regulators'
        /// observers (witnesses named in the genesis) on the bundle's state checkpoint:
        /// each says that observer re-executed the chain up to that block. A forged,
        /// unknown or repeated co-signature does not count and is named. A version 1 or
        /// 2 bundle, or an absence proof, carries none and is refused.
        #[arg(long, value_name = "K")]
        witnesses: Option<usize>,
    },
    /// The node's status.
    Status,
    /// A block by height, or the latest.
    Block {
        /// A height, or `latest`.
        height: String,
    },
    /// Governance: propose, approve, reject, withdraw, list, show; draft, export, sign
    /// and submit one k-of-n transaction offline.
    Gov {
        #[command(subcommand)]
        command: ebill_client::gov::GovCommand,
    },
    /// A regulator's audit of an observer (give the operator's API, --admin-api, as
    /// --node): stats, bills, one bill in full, anomalies.
    Audit {
        #[command(subcommand)]
        command: ebill_client::audit::AuditCommand,
    },
    /// Print each bill issued under a credit code as it becomes final (the operator's
    /// API as --node): a unit sees at once a bill it never issued.
    Watch {
        /// The credit code to watch.
        #[arg(long)]
        issuer: String,
        /// Replay from this height on (at most 10,000 blocks back).
        #[arg(long)]
        from_height: Option<u64>,
        /// Stop after this many bills.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Export the bills, events and units tables between two heights as CSV, Parquet or
    /// xlsx with a manifest signed by the node (the operator's API as --node): writes
    /// bills.csv, events.csv, units.csv (or .parquet, .xlsx) and manifest.json into DIR.
    Export {
        /// First height (default 1).
        #[arg(long)]
        from_height: Option<u64>,
        /// Last height (default the node's tip); at most 10,000 heights.
        #[arg(long)]
        to_height: Option<u64>,
        /// The files' format: csv, parquet or xlsx.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Only these tables (bills, events, units; repeat or separate by commas).
        #[arg(long = "table", value_delimiter = ',')]
        tables: Vec<String>,
        /// The folder to write.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Check an export: re-hash each file, count its rows, and check the manifest's
    /// signature against a validator or observer named in the genesis.
    VerifyExport {
        /// The folder `ebill export` wrote.
        dir: PathBuf,
        /// The chain's genesis file.
        #[arg(long)]
        genesis: PathBuf,
    },
    /// The registry of units, or one unit with its history and a proof of its record.
    Units {
        /// A unit's credit code.
        credit_code: Option<String>,
    },
    /// Print the shell completion script for SHELL on stdout, e.g.
    /// `ebill completions bash > /etc/bash_completion.d/ebill`, or for zsh into a
    /// directory of `$fpath` as `_ebill`, or for fish into
    /// `~/.config/fish/completions/ebill.fish`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
enum GenesisCommand {
    /// Write a whole local network: genesis, node keys and configs, unit keys.
    Init(InitArgs),
}

#[derive(Args, Debug)]
struct InitArgs {
    /// Validators.
    #[arg(long)]
    validators: u32,
    /// Observer nodes. Each is named in the genesis as a regulator's observer (observer
    /// i belongs to regulator i mod the number of regulators), so it co-signs the
    /// checkpoints it re-executes, unless `--plain-observers`.
    #[arg(long, default_value_t = 0)]
    observers: u32,
    /// Make the observers plain observers, belonging to no regulator (they co-sign
    /// nothing).
    #[arg(long)]
    plain_observers: bool,
    /// The folder to write into.
    #[arg(long)]
    out: PathBuf,
    /// The chain id.
    #[arg(long, default_value = "ebill-local")]
    chain_id: String,
    /// Issuing units (prefixes 3301, 3302, ...).
    #[arg(long, default_value_t = 1)]
    issuers: u32,
    /// Reimbursing units.
    #[arg(long, default_value_t = 1)]
    reimbursers: u32,
    /// Regulator keys.
    #[arg(long, default_value_t = 3)]
    regulators: u32,
    /// Regulator signatures needed for a registry change.
    #[arg(long, default_value_t = 2)]
    threshold: u16,
    /// Every unit's qualification (开票资格) date: YYYY-MM-DD (valid through that day,
    /// +08:00) or an RFC 3339 time. Without it, qualifications do not lapse.
    #[arg(long, value_name = "DATE")]
    valid_until: Option<String>,
    /// Replace a network already in the folder.
    #[arg(long)]
    force: bool,
}

/// Where the passphrase of a sealed key file comes from; without either flag it is asked
/// on the terminal (and refused when there is none).
#[derive(Args, Debug)]
struct PassphraseArgs {
    /// Read the key file's passphrase from the first line of this file.
    #[arg(long, value_name = "PATH", conflicts_with = "passphrase_env")]
    passphrase_file: Option<PathBuf>,
    /// Read the key file's passphrase from this environment variable (give its name).
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
}

impl PassphraseArgs {
    fn source(&self) -> passphrase::Source {
        passphrase::Source::from_flags(
            self.passphrase_file.as_deref(),
            self.passphrase_env.as_deref(),
        )
    }

    fn given(&self) -> bool {
        self.passphrase_file.is_some() || self.passphrase_env.is_some()
    }
}

#[derive(Args, Debug)]
struct IssueArgs {
    /// The issuer's key file (plaintext, or sealed with `ebill keygen --encrypt`).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// The bill (JSON, docs/design.md §2).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    bill: Option<PathBuf>,
    /// A batch: one bill per line (.jsonl) or one item per row (.csv).
    #[arg(long)]
    batch: Option<PathBuf>,
    /// Do not wait until final.
    #[arg(long)]
    no_wait: bool,
    /// Set issued_at to the current time (keeping the bill's UTC offset): the ledger
    /// accepts issued_at from 7 days before to 10 minutes after the block time.
    #[arg(long)]
    now: bool,
    /// The issuer's credit code, if the key file has none (CSV bills take it too).
    #[arg(long)]
    unit: Option<String>,
    /// Bills per request of a batch.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Also write the signed bill (bill + signature + check code) to this file.
    #[arg(long)]
    signed_out: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct Target {
    /// The unit's key file (plaintext, or sealed with `ebill keygen --encrypt`).
    #[arg(long)]
    key: PathBuf,
    #[command(flatten)]
    passphrase: PassphraseArgs,
    /// The unit's credit code, if the key file has none.
    #[arg(long)]
    unit: Option<String>,
    /// Do not wait until final.
    #[arg(long)]
    no_wait: bool,
    /// Bill code.
    code: String,
    /// Bill number.
    number: String,
    /// Check code.
    check_code: String,
}

/// How a command ended that did not fail outright.
enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1; the output is printed already.
    Failure,
}

fn main() -> ExitCode {
    let json_flag = std::env::args().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if json_flag {
                let msg = e.to_string();
                let first = msg
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                print_json(&CliError::new("usage", first).to_json());
            } else {
                let _ = e.print();
            }
            return ExitCode::from(2);
        }
    };
    match run(&cli) {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failure) => ExitCode::FAILURE,
        Err(e) => {
            let (code, message) = match e.downcast_ref::<CliError>() {
                Some(c) => (c.code.clone(), format!("{e:#}")),
                None => ("error".to_owned(), format!("{e:#}")),
            };
            if cli.json {
                print_json(&CliError::new(code, message).to_json());
            } else {
                eprintln!("ebill: {message} [{code}]");
            }
            ExitCode::FAILURE
        }
    }
}

fn print_json(v: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, v);
    let _ = writeln!(out);
}

fn run(cli: &Cli) -> Result<Outcome> {
    match &cli.command {
        Command::Keygen {
            out,
            credit_code,
            role,
            force,
            encrypt,
            passphrase,
        } => {
            if !*encrypt && passphrase.given() {
                return Err(CliError::new(
                    "usage",
                    "keygen takes --passphrase-file or --passphrase-env only with --encrypt",
                )
                .into());
            }
            keygen(
                cli,
                out,
                credit_code.as_deref(),
                role.as_deref(),
                *force,
                encrypt.then_some(passphrase),
            )
        }
        Command::DevKeys { out, force } => {
            let keys = devkeys::write_dev_keys(out, *force)?;
            if cli.json {
                print_json(&serde_json::to_value(&keys)?);
            } else {
                println!(
                    "dev keys written to {} (anyone can sign with them: dev chain only)",
                    out.display()
                );
                println!(
                    "  issuer      {}  {}",
                    keys.issuer.credit_code,
                    keys.issuer.key_file.display()
                );
                println!(
                    "  reimburser  {}  {}",
                    keys.reimburser.credit_code,
                    keys.reimburser.key_file.display()
                );
                for r in &keys.regulators {
                    println!("  regulator   {}", r.key_file.display());
                }
                println!("  validator   {}", keys.validator.key_file.display());
            }
            Ok(Outcome::Success)
        }
        Command::Genesis {
            command: GenesisCommand::Init(args),
        } => genesis_init(cli, args),
        Command::Issue(args) => {
            if args.batch.is_some() {
                issue_batch(cli, args)
            } else {
                issue_one(cli, args)
            }
        }
        Command::Reverse { target, reason } => lifecycle(cli, target, Action::Reverse(reason)),
        Command::Exchange { target } => lifecycle(cli, target, Action::Exchange),
        Command::Lock { target } => lifecycle(cli, target, Action::Lock),
        Command::Unlock { target } => lifecycle(cli, target, Action::Unlock),
        Command::Reimburse { target } => lifecycle(cli, target, Action::Reimburse),
        Command::Verify {
            code,
            number,
            check_code,
        } => verify(cli, code, number, check_code),
        Command::Proof {
            code,
            number,
            check_code,
            out,
            binary,
        } => proof(cli, code, number, check_code, out, *binary),
        Command::Qr {
            code,
            number,
            check_code,
            out,
            public_url,
        } => qr(
            cli,
            [code, number, check_code],
            out.as_deref(),
            public_url.as_deref(),
        ),
        Command::ProofAbsent {
            code,
            number,
            out,
            binary,
        } => proof_absent(cli, code, number, out, *binary),
        Command::VerifyProof {
            bundle,
            genesis,
            min_height,
            max_age,
            witnesses,
        } => verify_proof(
            cli,
            bundle,
            genesis,
            Freshness {
                min_height: *min_height,
                max_age_s: *max_age,
            },
            *witnesses,
        ),
        Command::Status => status(cli),
        Command::Block { height } => block(cli, height),
        Command::Gov { command } => Ok(outcome(ebill_client::gov::run(
            &cli.node, cli.json, command,
        )?)),
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut command, "ebill", &mut std::io::stdout());
            Ok(Outcome::Success)
        }
        Command::Audit { command } => Ok(outcome(ebill_client::audit::run(
            &cli.node, cli.json, command,
        )?)),
        Command::Watch {
            issuer,
            from_height,
            count,
        } => Ok(outcome(ebill_client::audit::watch(
            &cli.node,
            cli.json,
            issuer,
            *from_height,
            *count,
        )?)),
        Command::Export {
            from_height,
            to_height,
            format,
            tables,
            out,
        } => {
            let req = ebill_client::export::ExportRequest {
                from_height: *from_height,
                to_height: *to_height,
                format: Some(format.clone()),
                tables: tables.clone(),
            };
            let m = ebill_client::export::export(&cli.node, out, &req)?;
            if cli.json {
                print_json(&serde_json::to_value(&m)?);
            } else {
                println!(
                    "exported heights {}..={} (block {}) to {}",
                    m.body.from_height,
                    m.body.to_height,
                    m.body.block_hash,
                    out.display()
                );
                for f in &m.body.files {
                    println!(
                        "  {}.{}  {} rows  sha256 {}",
                        f.table, f.format, f.rows, f.sha256
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Command::VerifyExport { dir, genesis } => {
            match ebill_client::export::verify_export(dir, genesis) {
                Ok(v) => {
                    if cli.json {
                        print_json(&json!({
                            "valid": true,
                            "signer": v.signer,
                            "manifest": v.manifest,
                        }));
                    } else {
                        println!(
                            "export valid: heights {}..={}, block {}, signed by {}",
                            v.manifest.body.from_height,
                            v.manifest.body.to_height,
                            v.manifest.body.block_hash,
                            v.signer
                        );
                    }
                    Ok(Outcome::Success)
                }
                Err(e) => {
                    if cli.json {
                        print_json(&e.to_json());
                    } else {
                        eprintln!("ebill: export NOT valid: {} [{}]", e.message, e.code);
                    }
                    Ok(Outcome::Failure)
                }
            }
        }
        Command::Units { credit_code } => Ok(outcome(ebill_client::gov::units(
            &cli.node,
            cli.json,
            credit_code.as_deref(),
        )?)),
    }
}

fn outcome(success: bool) -> Outcome {
    if success {
        Outcome::Success
    } else {
        Outcome::Failure
    }
}

fn parse_credit_code(s: &str) -> Result<CreditCode, CliError> {
    CreditCode::parse(s).map_err(|e| CliError::argument(format!("credit code {s:?}: {e}")))
}

fn parse_target(
    code: &str,
    number: &str,
    check_code: &str,
) -> Result<(BillId, CheckCode), CliError> {
    let id = BillId {
        code: BillCode::parse(code).map_err(|e| CliError::argument(e.to_string()))?,
        number: BillNumber::parse(number).map_err(|e| CliError::argument(e.to_string()))?,
    };
    let cc = CheckCode::parse(check_code).map_err(|e| CliError::argument(e.to_string()))?;
    Ok((id, cc))
}

/// `ebill keygen`: `seal` is the passphrase's source with `--encrypt`, `None` without.
fn keygen(
    cli: &Cli,
    out: &Path,
    credit_code: Option<&str>,
    role: Option<&str>,
    force: bool,
    seal: Option<&PassphraseArgs>,
) -> Result<Outcome> {
    let code = credit_code.map(parse_credit_code).transpose()?;
    let key = Keypair::from_seed(*keystore::random_seed()?);
    match seal {
        Some(flags) => {
            // Before asking for a passphrase that could not be used.
            files::refuse_existing(out, force)?;
            let pass = flags.source().read_new(out)?;
            keystore::write_sealed_key_file(out, &key, code, role, &pass, KdfCost::DEFAULT, force)?;
        }
        None => files::write_key_file(out, &KeyFile::new(&key, code, role), force)?,
    }
    if cli.json {
        let mut v = json!({"public_key": key.public(), "key_file": out, "sealed": seal.is_some()});
        if let Some(c) = code {
            v["credit_code"] = json!(c);
        }
        if let Some(r) = role {
            v["role"] = json!(r);
        }
        print_json(&v);
    } else {
        let sealed = if seal.is_some() {
            let cost = KdfCost::DEFAULT;
            format!(
                ", sealed with a passphrase: argon2id {} MiB, {} passes",
                cost.memory_kib / 1024,
                cost.passes
            )
        } else {
            String::new()
        };
        println!("wrote {} (mode 0600{sealed})", out.display());
        println!("public key {}", key.public());
    }
    Ok(Outcome::Success)
}

fn genesis_init(cli: &Cli, a: &InitArgs) -> Result<Outcome> {
    let now = now_ms()?;
    let plan = Plan {
        chain_id: a.chain_id.clone(),
        validators: a.validators,
        observers: a.observers,
        regulator_observers: !a.plain_observers,
        issuers: a.issuers,
        reimbursers: a.reimbursers,
        regulators: a.regulators,
        threshold: a.threshold,
        genesis_time: Timestamp {
            unix_ms: now - now.rem_euclid(1000),
            offset_min: 480,
        },
        valid_until: a
            .valid_until
            .as_deref()
            .map(Timestamp::end_of_day)
            .transpose()
            .map_err(|e| CliError::argument(format!("--valid-until: {e}")))?,
    };
    let out = network::init(&a.out, &plan, a.force, files::random_seed)?;
    if cli.json {
        print_json(&serde_json::to_value(&out)?);
    } else {
        println!("network {} written to {}", a.chain_id, a.out.display());
        println!("  genesis  {}", out.genesis.display());
        for n in &out.nodes {
            println!(
                "  {:<12} {:<9} {}  ebill-node --config {}",
                n.name,
                n.role,
                n.api,
                n.config.display()
            );
        }
        for i in &out.issuers {
            let prefixes: Vec<&str> = i.code_prefixes.iter().map(|p| p.as_str()).collect();
            println!(
                "  issuer     {} prefixes {}  {}",
                i.credit_code,
                prefixes.join(","),
                i.key_file.display()
            );
        }
        for r in &out.reimbursers {
            println!("  reimburser {}  {}", r.credit_code, r.key_file.display());
        }
        for r in &out.regulators {
            println!("  regulator  {}", r.key_file.display());
        }
    }
    Ok(Outcome::Success)
}

fn now_ms() -> Result<i64, CliError> {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| CliError::new("io", format!("the clock is before 1970: {e}")))?;
    i64::try_from(d.as_millis()).map_err(|_| CliError::new("io", "the clock is out of range"))
}

/// The signing key and the unit it signs for: the key file's credit code, or `--unit`.
/// A sealed key file takes its passphrase from the flags (or the terminal); a plaintext
/// one that others can read gets a warning on stderr.
fn load_signer(
    key: &Path,
    passphrase: &PassphraseArgs,
    unit: Option<&str>,
) -> Result<(Keypair, Option<CreditCode>), CliError> {
    let flag = unit.map(parse_credit_code).transpose()?;
    let opened = keystore::open_key_file(key, &passphrase.source())?;
    if let Some(w) = &opened.warning {
        eprintln!("ebill: warning: {w}");
    }
    let keypair = opened.keypair;
    match (opened.credit_code, flag) {
        (Some(a), Some(b)) if a != b => Err(CliError::new(
            "key_mismatch",
            format!("{} is the key of {a}, not of {b}", key.display()),
        )),
        (a, b) => Ok((keypair, a.or(b))),
    }
}

fn sign_bill(chain_id: &str, key: &Keypair, bill: Bill) -> SignedTx {
    Tx {
        nonce: 0,
        body: TxBody::IssueBill(bill),
    }
    .sign_unit(chain_id, key)
}

fn check_issuer(bill: &Bill, unit: Option<CreditCode>, what: &str) -> Result<(), CliError> {
    match unit {
        Some(u) if u != bill.issuer => Err(CliError::new(
            "key_mismatch",
            format!(
                "{what}: the bill's issuer is {}, the key is {u}'s",
                bill.issuer
            ),
        )),
        _ => Ok(()),
    }
}

fn wait_query(no_wait: bool) -> &'static str {
    if no_wait { "" } else { "?wait=commit" }
}

fn issue_one(cli: &Cli, a: &IssueArgs) -> Result<Outcome> {
    let Some(path) = &a.bill else {
        return Err(CliError::new("usage", "give a bill file or --batch FILE").into());
    };
    let (key, unit) = load_signer(&a.key, &a.passphrase, a.unit.as_deref())?;
    let text = files::read_text(path)?;
    let mut bill = input::parse_bill_json(&text)
        .map_err(|e| CliError::new("invalid_bill", format!("{}: {e}", path.display())))?;
    if a.now {
        bill.issued_at.unix_ms = now_ms()?;
    }
    check_issuer(&bill, unit, &path.display().to_string())?;
    let node = Node::new(&cli.node)?;
    let chain_id = node.chain_id()?;
    let stx = sign_bill(&chain_id, &key, bill.clone());
    let signed = stx
        .to_signed_bill()
        .ok_or_else(|| CliError::new("internal", "a unit-signed IssueBill has a signed bill"))?;
    let answer: TxAnswer = node
        .post_json(&format!("/v1/txs{}", wait_query(a.no_wait)), &stx)?
        .ok_typed()?;
    if let Some(out) = &a.signed_out {
        let mut text = serde_json::to_string_pretty(&signed)?;
        text.push('\n');
        files::write_public(out, text.as_bytes(), true)?;
    }
    let status = answer.status.as_str();
    let height = json!(answer.height);
    if cli.json {
        print_json(&json!({
            "tx_id": answer.tx_id,
            "code": bill.code,
            "number": bill.number,
            "check_code": signed.check_code,
            "height": height,
            "status": status,
        }));
    } else {
        match height.as_u64() {
            Some(h) => println!(
                "issued {} check code {} — {status} at height {h}",
                bill.id(),
                signed.check_code
            ),
            None => println!(
                "issued {} check code {} — {status}",
                bill.id(),
                signed.check_code
            ),
        }
        println!("tx {}", answer.tx_id);
    }
    Ok(Outcome::Success)
}

fn open_batch(
    path: &Path,
    default_issuer: Option<CreditCode>,
) -> Result<Box<dyn Iterator<Item = Result<SourceBill, input::InputError>>>, CliError> {
    let format = Format::from_path(path).ok_or_else(|| {
        CliError::argument(format!(
            "{}: a batch is a .jsonl or a .csv file",
            path.display()
        ))
    })?;
    let file = File::open(path).map_err(|e| CliError::io(path, &e))?;
    Ok(input::reader(
        format,
        BufReader::new(file),
        &path.display().to_string(),
        default_issuer,
    ))
}

/// A batch's results, written as they come so that memory stays bounded: with
/// `--json`, `{"results": [...]` streams out and the counts close the object.
struct BatchOut {
    json: bool,
    first: bool,
    submitted: u64,
    final_: u64,
    rejected: u64,
    pending: u64,
}

impl BatchOut {
    fn start(json: bool) -> Self {
        if json {
            print!("{{\"results\":[");
        }
        Self {
            json,
            first: true,
            submitted: 0,
            final_: 0,
            rejected: 0,
            pending: 0,
        }
    }

    fn item(&mut self, v: &Value, pb: &ProgressBar) {
        if self.json {
            let sep = if self.first { "" } else { "," };
            print!("{sep}{v}");
            self.first = false;
        } else if let Some(err) = v.get("error") {
            let line = format!(
                "rejected {}/{}: {}: {}",
                v["code"].as_str().unwrap_or("?"),
                v["number"].as_str().unwrap_or("?"),
                err["code"].as_str().unwrap_or("?"),
                err["message"].as_str().unwrap_or("")
            );
            // A hidden bar (stderr is no terminal) prints nothing: write directly then.
            if pb.is_hidden() {
                eprintln!("{line}");
            } else {
                pb.println(line);
            }
        }
    }

    fn finish(&self, error: Option<&CliError>) {
        if self.json {
            let mut tail = format!(
                "],\"submitted\":{},\"final\":{},\"rejected\":{}",
                self.submitted, self.final_, self.rejected
            );
            if let Some(e) = error {
                tail.push_str(&format!(",\"error\":{}", e.to_json()["error"]));
            }
            println!("{tail}}}");
        } else {
            eprintln!(
                "submitted {}, final {}, rejected {}{}",
                self.submitted,
                self.final_,
                self.rejected,
                if self.pending > 0 {
                    format!(", still pending {}", self.pending)
                } else {
                    String::new()
                }
            );
        }
    }
}

fn issue_batch(cli: &Cli, a: &IssueArgs) -> Result<Outcome> {
    let Some(path) = &a.batch else {
        return Err(CliError::new("usage", "give --batch FILE").into());
    };
    if a.chunk == 0 || a.chunk > 10_000 {
        return Err(CliError::argument("--chunk is 1 to 10000").into());
    }
    let (key, unit) = load_signer(&a.key, &a.passphrase, a.unit.as_deref())?;
    // Pass 1: every line is read and checked before anything is sent, so that a bad
    // line is reported (by number) with nothing submitted.
    let mut total = 0u64;
    for item in open_batch(path, unit)? {
        let sb = item.map_err(|e| CliError::new(e.code(), e.to_string()))?;
        check_issuer(
            &sb.bill,
            unit,
            &format!("{}: line {}", path.display(), sb.line),
        )?;
        total += 1;
    }
    let node = Node::new(&cli.node)?;
    let chain_id = node.chain_id()?;
    let pb = if cli.json {
        ProgressBar::hidden()
    } else {
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} bills  {per_sec}  eta {eta}")
        {
            pb.set_style(style);
        }
        pb
    };
    let mut out = BatchOut::start(cli.json);
    let now = if a.now { Some(now_ms()?) } else { None };
    // Pass 2: stream, sign and submit in chunks.
    let mut bills = open_batch(path, unit)?;
    let result = (|| -> Result<(), CliError> {
        loop {
            let mut chunk: Vec<(Bill, SignedTx)> = Vec::with_capacity(a.chunk);
            for item in bills.by_ref().take(a.chunk) {
                let mut bill = item
                    .map_err(|e| CliError::new(e.code(), e.to_string()))?
                    .bill;
                if let Some(ms) = now {
                    bill.issued_at.unix_ms = ms;
                }
                let stx = sign_bill(&chain_id, &key, bill.clone());
                chunk.push((bill, stx));
            }
            if chunk.is_empty() {
                return Ok(());
            }
            let txs: Vec<&SignedTx> = chunk.iter().map(|(_, t)| t).collect();
            let answer: BatchAnswer = node
                .post_json(
                    &format!("/v1/txs/batch{}", wait_query(a.no_wait)),
                    &json!({ "txs": txs }),
                )?
                .ok_typed()?;
            let results = answer.results;
            if results.len() != chunk.len() {
                return Err(CliError::new(
                    "bad_answer",
                    format!(
                        "the node answered {} results for {} transactions",
                        results.len(),
                        chunk.len()
                    ),
                ));
            }
            for ((bill, stx), r) in chunk.iter().zip(&results) {
                out.submitted += 1;
                let item = match r {
                    BatchItem::Err { error, .. } => {
                        out.rejected += 1;
                        json!({"code": bill.code, "number": bill.number, "error": {
                            "code": error.code, "message": error.message}})
                    }
                    BatchItem::Ok(t) => {
                        if t.status == TxState::Committed {
                            out.final_ += 1;
                        } else {
                            out.pending += 1;
                        }
                        let check_code = stx.to_signed_bill().map(|s| s.check_code);
                        let mut item = json!({
                            "code": bill.code,
                            "number": bill.number,
                            "check_code": check_code,
                            "tx_id": t.tx_id,
                            "status": t.status.as_str(),
                        });
                        if let Some(h) = t.height {
                            item["height"] = json!(h);
                        }
                        item
                    }
                };
                out.item(&item, &pb);
                pb.inc(1);
            }
        }
    })();
    pb.finish_and_clear();
    out.finish(result.as_ref().err());
    match result {
        Err(e) if !cli.json => Err(e.into()),
        Err(_) => Ok(Outcome::Failure),
        Ok(()) => {
            let ok = out.rejected == 0 && (a.no_wait || out.final_ == out.submitted);
            Ok(if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            })
        }
    }
}

/// A lifecycle action.
enum Action<'a> {
    Reverse(&'a str),
    Exchange,
    Lock,
    Unlock,
    Reimburse,
}

fn lifecycle(cli: &Cli, t: &Target, action: Action<'_>) -> Result<Outcome> {
    let (bill, check_code) = parse_target(&t.code, &t.number, &t.check_code)?;
    let (key, unit) = load_signer(&t.key, &t.passphrase, t.unit.as_deref())?;
    let unit = unit.ok_or_else(|| {
        CliError::argument(format!(
            "{} has no credit_code: give --unit CODE",
            t.key.display()
        ))
    })?;
    let body = match action {
        Action::Reverse(reason) => TxBody::RedReverse {
            issuer: unit,
            bill,
            reason: reason.to_owned(),
        },
        Action::Exchange => TxBody::ExchangePaper { issuer: unit, bill },
        Action::Lock => TxBody::Lock {
            unit,
            bill,
            check_code,
        },
        Action::Unlock => TxBody::Unlock { unit, bill },
        Action::Reimburse => TxBody::ConfirmReimbursed {
            unit,
            bill,
            check_code,
        },
    };
    let node = Node::new(&cli.node)?;
    if matches!(
        body,
        TxBody::RedReverse { .. } | TxBody::ExchangePaper { .. } | TxBody::Unlock { .. }
    ) {
        // These transactions do not carry the check code: check it here, so that a
        // mistyped bill number is caught before anything is signed.
        let answer = node.get(&bill_path(&bill, &check_code, ""))?;
        if !answer.is_success() {
            return Err(answer.error().into());
        }
    }
    let chain_id = node.chain_id()?;
    let kind = body.kind();
    let stx = Tx {
        nonce: files::random_u64()?,
        body,
    }
    .sign_unit(&chain_id, &key);
    let answer: TxAnswer = node
        .post_json(&format!("/v1/txs{}", wait_query(t.no_wait)), &stx)?
        .ok_typed()?;
    let status = answer.status.as_str();
    let height = json!(answer.height);
    if cli.json {
        print_json(&json!({
            "tx_id": answer.tx_id,
            "action": kind.as_str(),
            "code": bill.code,
            "number": bill.number,
            "status": status,
            "height": height,
        }));
    } else {
        println!(
            "{} {bill} — {status}{}",
            kind.as_str(),
            height
                .as_u64()
                .map(|h| format!(" at height {h}"))
                .unwrap_or_default()
        );
        println!("tx {}", answer.tx_id);
    }
    Ok(Outcome::Success)
}

fn bill_path(bill: &BillId, check_code: &CheckCode, suffix: &str) -> String {
    format!(
        "/v1/bills/{}/{}{suffix}?check_code={check_code}",
        bill.code, bill.number
    )
}

fn verify(cli: &Cli, code: &str, number: &str, check_code: &str) -> Result<Outcome> {
    let (bill, cc) = parse_target(code, number, check_code)?;
    let node = Node::new(&cli.node)?;
    let answer = node.get(&bill_path(&bill, &cc, ""))?;
    if !answer.is_success() {
        if cli.json && answer.json().is_ok() {
            // The API's answer, unchanged.
            println!("{}", answer.text().trim_end());
            return Ok(Outcome::Failure);
        }
        return Err(answer.error().into());
    }
    let v: Verdict = answer.typed()?;
    let authentic = v.authentic;
    let final_ = v.is_final;
    if cli.json {
        println!("{}", answer.text().trim_end());
    } else {
        let verdict = match (authentic, final_) {
            (true, true) => "AUTHENTIC and FINAL",
            (true, false) => "authentic but NOT FINAL yet",
            _ => "NOT AUTHENTIC",
        };
        println!("{bill}: {verdict}");
        println!("  status    {}", v.status);
        println!("  issuer    {} {}", v.issuer.credit_code, v.issuer.name);
        println!("  total     {}", v.total);
        println!(
            "  issued at {}",
            v.issued_at.to_rfc3339().unwrap_or_default()
        );
        println!("  block     {} {}", v.height, v.block_hash);
        for step in &v.history {
            println!(
                "  - {} by {} at height {} ({})",
                step.action,
                step.by,
                step.height,
                step.time.to_rfc3339().unwrap_or_default()
            );
        }
    }
    Ok(if authentic && final_ {
        Outcome::Success
    } else {
        Outcome::Failure
    })
}

/// `ebill qr`: the wiring of [`ebill_client::qr`].
fn qr(
    cli: &Cli,
    [code, number, check_code]: [&String; 3],
    out: Option<&Path>,
    public_url: Option<&str>,
) -> Result<Outcome> {
    use ebill_client::qr as q;
    let (bill, cc) = parse_target(code, number, check_code)?;
    let node = Node::new(&cli.node)?;
    let found = q::fetch_bill(&node, &bill, &cc)?;
    let link = q::link(public_url.unwrap_or(&cli.node), &found, &cc);
    match out {
        None => {
            if cli.json {
                println!("{}", serde_json::json!({ "url": link }));
            } else {
                print!("{}", q::terminal(&link)?);
                println!("\n{link}");
            }
        }
        Some(path) => {
            let bytes = match q::QrFormat::of_path(path)? {
                q::QrFormat::Png => q::png(&link)?,
                _ => q::svg_document(&link)?.into_bytes(),
            };
            files::write_public(path, &bytes, true)?;
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({ "url": link, "file": path.display().to_string() })
                );
            } else {
                println!("wrote {} ({link})", path.display());
            }
        }
    }
    Ok(Outcome::Success)
}

fn proof(
    cli: &Cli,
    code: &str,
    number: &str,
    check_code: &str,
    out: &Path,
    binary: bool,
) -> Result<Outcome> {
    let (bill, cc) = parse_target(code, number, check_code)?;
    let node = Node::new(&cli.node)?;
    let mut path = bill_path(&bill, &cc, "/proof");
    if binary {
        path.push_str("&format=binary");
    }
    let answer = node.get(&path)?;
    if !answer.is_success() {
        return Err(answer.error().into());
    }
    // Check that it is a bundle of this bill before writing it.
    let bundle = ProofBundle::decode_any(&answer.body).map_err(|e| {
        CliError::new(
            "bad_answer",
            format!("the node's bundle does not decode: {e}"),
        )
    })?;
    if bundle.bill != bill {
        return Err(CliError::new(
            "bad_answer",
            format!("the node sent a bundle of bill {}, not {bill}", bundle.bill),
        )
        .into());
    }
    let bytes = if binary {
        bundle.to_bytes()
    } else {
        let mut text = bundle.to_json();
        text.push('\n');
        text.into_bytes()
    };
    files::write_public(out, &bytes, true)?;
    if cli.json {
        print_json(&json!({
            "file": out,
            "code": bill.code,
            "number": bill.number,
            "entries": bundle.entries.len(),
            "bytes": bytes.len(),
            "format": if binary { "binary" } else { "json" },
        }));
    } else {
        println!(
            "wrote {} ({} entries, {} bytes); check it offline with: ebill verify-proof {} --genesis GENESIS.json",
            out.display(),
            bundle.entries.len(),
            bytes.len(),
            out.display()
        );
    }
    Ok(Outcome::Success)
}

/// How fresh a bundle's proved state must be (`verify-proof --min-height --max-age`).
#[derive(Clone, Copy, Debug, Default)]
struct Freshness {
    min_height: Option<u64>,
    max_age_s: Option<u64>,
}

impl Freshness {
    /// Why a bundle's proved state `v` is not fresh enough, if it is not.
    fn refusal(&self, v: &ebill_types::proof::Verified, now_ms: u64) -> Option<String> {
        self.refusal_of(v.state_height.zip(v.state_time_ms), now_ms)
    }

    /// Why a state proved as of `state` (height, header time in Unix ms; `None` for a
    /// bundle without a state proof) is not fresh enough, if it is not.
    fn refusal_of(&self, state: Option<(u64, u64)>, now_ms: u64) -> Option<String> {
        if self.min_height.is_none() && self.max_age_s.is_none() {
            return None;
        }
        let Some((height, time_ms)) = state else {
            return Some(
                "the bundle has no state proof (version 1): it cannot show that nothing happened to the bill since".into(),
            );
        };
        if let Some(min) = self.min_height
            && height < min
        {
            return Some(format!(
                "the state is proved as of height {height}, below the required {min}"
            ));
        }
        if let Some(max_s) = self.max_age_s {
            let age_ms = now_ms.saturating_sub(time_ms);
            if age_ms > max_s.saturating_mul(1000) {
                return Some(format!(
                    "the state is proved as of {} s ago (height {height}), older than the allowed {max_s} s",
                    age_ms / 1000
                ));
            }
        }
        None
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn verify_proof(
    cli: &Cli,
    bundle_path: &Path,
    genesis_path: &Path,
    freshness: Freshness,
    witnesses: Option<usize>,
) -> Result<Outcome> {
    let genesis = files::read_genesis(genesis_path)?;
    let bytes = files::read_bounded(bundle_path)?;
    if is_absence_proof(&bytes) {
        if let Some(k) = witnesses {
            return Err(CliError::argument(format!(
                "--witnesses {k}: an absence proof carries no witnesses' co-signatures"
            ))
            .into());
        }
        let checked = AbsenceProof::decode_any(&bytes).and_then(|p| verify_absence(&p, &genesis));
        return match checked {
            Ok(v) => Ok(report_absence(cli, &v, freshness)),
            Err(e) => Ok(report_broken(cli, &e)),
        };
    }
    let checked = ProofBundle::decode_any(&bytes).and_then(|b| verify_bundle(&b, &genesis));
    let v = match checked {
        Ok(v) => v,
        Err(e) => return Ok(report_broken(cli, &e)),
    };
    if let Some(why) = freshness.refusal(&v, now_unix_ms()) {
        if cli.json {
            print_json(&json!({"error": {
                "code": "stale_state",
                "message": why,
                "state_height": v.state_height,
            }}));
        } else {
            eprintln!("ebill: proof valid but NOT accepted: {why}");
        }
        return Ok(Outcome::Failure);
    }
    if let Some(k) = witnesses
        && let Err(e) = ebill_types::proof::require_witnesses(&v, k)
    {
        return Ok(report_broken(cli, &e));
    }
    let bill = &v.bill.bill;
    if cli.json {
        print_json(&json!({
            "valid": true,
            "state_height": v.state_height,
            "state_proved": v.state_height.is_some(),
            "chain_id": v.chain_id,
            "genesis_hash": v.genesis_hash,
            "code": bill.code,
            "number": bill.number,
            "check_code": v.bill.check_code,
            "issuer": v.issuer,
            "total": bill.total,
            "issued_at": bill.issued_at,
            "status": v.status.as_str(),
            "status_detail": v.status,
            "final": v.status.is_final(),
            "height": v.height,
            "history": v.history,
            "entries": v.entries,
            "witnesses": v.witnesses,
        }));
    } else {
        println!(
            "proof VALID: every link holds ({} entries, chain {})",
            v.entries, v.chain_id
        );
        println!("  bill      {} check code {}", bill.id(), v.bill.check_code);
        println!("  issuer    {} {}", v.issuer.credit_code, v.issuer.name);
        println!("  total     {}  issued at {}", bill.total, bill.issued_at);
        match v.state_height {
            Some(h) => println!(
                "  status    {} as of height {h} (state proof: no later transaction up to {h})",
                v.status.as_str()
            ),
            None => println!(
                "  status    {} after the transactions shown, up to height {} (version 1 bundle: no state proof, later transactions are not ruled out)",
                v.status.as_str(),
                v.height
            ),
        }
        for s in &v.history {
            println!(
                "  - {} by {} at height {}",
                s.action.as_str(),
                s.by,
                s.height
            );
        }
        match &v.witnesses {
            None => println!("  witnesses none (a version 1 or 2 bundle carries no witnesses)"),
            Some(w) => {
                println!(
                    "  witnesses {} valid co-signature(s) of regulators' observers on height {}",
                    w.counted.len(),
                    w.checkpoint.height
                );
                for c in &w.counted {
                    println!("  - {} ({}), key id {}", c.observer, c.regulator, c.key_id);
                }
                for r in &w.refused {
                    println!(
                        "  - co-signature {} (key id {}) does not count: {}",
                        r.index, r.key_id, r.reason
                    );
                }
            }
        }
    }
    Ok(Outcome::Success)
}

/// Prints which link of a proof broke; the outcome is a failure.
fn report_broken(cli: &Cli, e: &ProofError) -> Outcome {
    if cli.json {
        print_json(&json!({"error": {
            "code": e.code(),
            "message": e.to_string(),
            "link": e.link,
            "entry": e.entry,
        }}));
    } else {
        eprintln!(
            "ebill: proof NOT valid: broken link {}{}: {}",
            e.link,
            e.entry.map(|i| format!(" (entry {i})")).unwrap_or_default(),
            e.reason
        );
    }
    Outcome::Failure
}

/// Prints a verified absence proof, or why it is not fresh enough.
fn report_absence(cli: &Cli, v: &VerifiedAbsence, freshness: Freshness) -> Outcome {
    if let Some(why) = freshness.refusal_of(Some((v.height, v.time_ms)), now_unix_ms()) {
        if cli.json {
            print_json(&json!({"error": {
                "code": "stale_state",
                "message": why,
                "state_height": v.height,
            }}));
        } else {
            eprintln!("ebill: absence proof valid but NOT accepted: {why}");
        }
        return Outcome::Failure;
    }
    if cli.json {
        print_json(&json!({
            "valid": true,
            "absent": true,
            "state_height": v.height,
            "state_proved": true,
            "state_time_ms": v.time_ms,
            "block_hash": v.block_hash,
            "chain_id": v.chain_id,
            "code": v.bill.code,
            "number": v.bill.number,
        }));
    } else {
        println!(
            "absence proof VALID: no bill {}/{} exists as of height {} (chain {}, block {})",
            v.bill.code, v.bill.number, v.height, v.chain_id, v.block_hash
        );
    }
    Outcome::Success
}

/// `ebill proof-absent`: fetches an absence proof from the operator's API, checks that
/// it is one of this bill before writing it.
fn proof_absent(cli: &Cli, code: &str, number: &str, out: &Path, binary: bool) -> Result<Outcome> {
    let bill = BillId {
        code: BillCode::parse(code).map_err(|e| CliError::argument(e.to_string()))?,
        number: BillNumber::parse(number).map_err(|e| CliError::argument(e.to_string()))?,
    };
    let node = Node::new(&cli.node)?;
    let mut path = format!("/admin/v1/absent/{}/{}", bill.code, bill.number);
    if binary {
        path.push_str("?format=binary");
    }
    let answer = node.get(&path)?;
    if !answer.is_success() {
        return Err(answer.error().into());
    }
    let proof = AbsenceProof::decode_any(&answer.body).map_err(|e| {
        CliError::new(
            "bad_answer",
            format!("the node's absence proof does not decode: {e}"),
        )
    })?;
    if proof.bill != bill {
        return Err(CliError::new(
            "bad_answer",
            format!(
                "the node sent an absence proof of bill {}, not {bill}",
                proof.bill
            ),
        )
        .into());
    }
    let bytes = if binary {
        proof.to_bytes()
    } else {
        let mut text = proof.to_json();
        text.push('\n');
        text.into_bytes()
    };
    files::write_public(out, &bytes, true)?;
    if cli.json {
        print_json(&json!({
            "file": out,
            "code": bill.code,
            "number": bill.number,
            "state_height": proof.header.height,
            "bytes": bytes.len(),
            "format": if binary { "binary" } else { "json" },
        }));
    } else {
        println!(
            "wrote {} (no bill {bill} as of height {}, {} bytes); check it offline with: ebill verify-proof {} --genesis GENESIS.json",
            out.display(),
            proof.header.height,
            bytes.len(),
            out.display()
        );
    }
    Ok(Outcome::Success)
}

fn status(cli: &Cli) -> Result<Outcome> {
    let node = Node::new(&cli.node)?;
    let answer = node.get("/v1/status")?;
    let v: StatusView = answer.clone().ok_typed()?;
    if cli.json {
        println!("{}", answer.text().trim_end());
    } else {
        let tip = v.tip_hash.map_or_else(|| "-".to_owned(), |h| h.to_string());
        let role = match v.role {
            Role::Validator => "validator",
            Role::Observer => "observer",
        };
        println!("node      {}", node.base());
        println!("genesis   {}", v.genesis_hash);
        println!("chain     {}", v.chain_id);
        println!("height    {}", v.height);
        println!("tip       {tip}");
        println!("role      {role}");
        println!("peers     {}", v.peers);
        println!("syncing   {}", v.syncing);
    }
    Ok(Outcome::Success)
}

fn block(cli: &Cli, height: &str) -> Result<Outcome> {
    if height != "latest" && height.parse::<u64>().is_err() {
        return Err(CliError::argument(format!("{height:?} is not a height or \"latest\"")).into());
    }
    let node = Node::new(&cli.node)?;
    let answer = node.get(&format!("/v1/blocks/{height}"))?;
    let v: BlockView = answer.clone().ok_typed()?;
    if cli.json {
        println!("{}", answer.text().trim_end());
    } else {
        println!("block     {} {}", v.height, v.hash);
        println!("time      {}", v.time.to_rfc3339().unwrap_or_default());
        println!("prev      {}", v.prev_hash);
        println!("tx root   {}", v.tx_root);
        println!("state     {}", v.state_root);
        println!("txs       {}", v.tx_count);
        for id in &v.tx_ids {
            println!("  {id}");
        }
        let signers = v.certificate.map_or(0, |c| c.signatures.len());
        println!("certified by {signers} validators");
    }
    Ok(Outcome::Success)
}
