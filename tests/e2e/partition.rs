//! Real processes, real network faults (issue 14, item 5).
//!
//! Four validators and an observer run as `ebill-node` processes, each in a network
//! namespace of its own, joined by veth pairs to a bridge in a "hub" namespace; the test
//! makes all of them and removes them afterwards (`support::netns::Lab`, also on a panic).
//! Between the nodes it makes weather and partitions that heal, all out of cuts of
//! directed links (a node's packets to one peer dropped at the bridge, as by a cut
//! cable: see `support::netns`):
//!
//! - **weather**, from the start to the final heal: bursts of loss on every directed link
//!   (a Markov chain per link, drawn from the seed; a burst is a cut), and,
//!   where the kernel has `sch_netem`, `tc netem` delay with jitter, loss and reordering
//!   on every node's interface (where it has not, the test says so loudly and goes on,
//!   or fails with `EBILL_PARTITION_REQUIRE_NETEM=1`);
//! - **minority cut off**: one validator and the observer from the other three;
//! - **2/2 split**: two validators | two validators, the observer on one side;
//! - **flapping link**: one validator cut from everyone and back, at intervals of
//!   0.2–1.5 s;
//!
//! (which nodes, and every interval, drawn from the seed). Meanwhile one client thread
//! per node submits new bills over HTTP with `?wait=commit`, alone and in batches, and
//! in each fault one bill is reimbursed by two different reimbursing units through
//! validators on the two sides at once (with the `ebill` client, `--no-wait`). Every
//! client operation on a transaction or a bill (a submission, a status or bill query,
//! an `ebill` run) goes to a history of JSON lines with its answer, its node and when
//! it was sent and answered; after healing the test checks:
//!
//! - the chain moves again within [`HEAL_BOUND`] after each heal, on every node, and
//!   within [`LIVENESS_BOUND`] wherever the network works;
//! - while a fault leaves no quorum (the split, the cut-off minority) nothing moves more
//!   than the one block that may have been decided as it began; the majority does move;
//! - no fork: the same block hash at every height on all five nodes;
//! - every transaction acknowledged as committed (an answer said so, with its height and
//!   position) is at that height and position on every node; none answered as refused is
//!   in any block; no transaction is in two blocks;
//! - every bill reimbursed on both sides is reimbursed at most once (exactly once after
//!   healing), the same on every node, by the transaction that committed.
//!
//! The test is two processes: the outer run (in the namespace the test was started in)
//! makes the namespaces, runs this same test binary again inside the hub namespace with
//! `ip netns exec`, waits for it (bounded by [`RUN_DEADLINE`]), then kills by pid
//! whatever is left in the namespaces and deletes them, whether the inner run passed,
//! failed or was killed. The inner run does the work; it reaches every node's API at
//! `10.77.0.(i+1):8080` through the bridge. Nothing outside the namespaces the test
//! made is touched.
//!
//! Where namespaces cannot be made (not root, no `ip`): with `CI=true` the test fails,
//! otherwise it says so on stderr and passes without running. `EBILL_PARTITION_SEED`
//! replays a fault schedule; `EBILL_PARTITION_KEEP=1` keeps the history and node logs
//! of a passing run (a failing run always keeps them and prints where).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ebill_types::keyfile::KeyFile;
use ebill_types::{Bill, CreditCode, Keypair, SignedTx, Tx, TxBody, dev};
use serde_json::{Value, json};
use support::netns::{Lab, node_ip};
use support::{Http, Node, ebill, json_of};

/// This test's name, for the inner run's `--exact` filter.
const TEST_NAME: &str = "partitions_heal_without_fork_loss_or_double_reimbursement";
/// Set (to the lab's names) in the inner run.
const LAB_ENV: &str = "EBILL_PARTITION_LAB";
const SEED_ENV: &str = "EBILL_PARTITION_SEED";
const REQUIRE_NETEM_ENV: &str = "EBILL_PARTITION_REQUIRE_NETEM";
const KEEP_ENV: &str = "EBILL_PARTITION_KEEP";

const VALIDATORS: usize = 4;
const NODES: usize = 5;
const OBSERVER: usize = 4;
const ALL: [usize; NODES] = [0, 1, 2, 3, 4];
const API_PORT: u16 = 8080;
const P2P_PORT: u16 = 26656;
/// The nodes' `?wait=commit` bound (`[http] wait_commit_timeout_ms`), so that a client
/// whose transaction cannot commit (its node is cut off) hears so and goes on.
const WAIT_COMMIT_MS: u64 = 8_000;
/// Where the network works (the majority's side of a cut, the weather alone, the
/// calm), a new block must be final within this: the simulator's liveness bound after
/// GST.
const LIVENESS_BOUND: Duration = Duration::from_secs(30);
/// After a fault heals, every node must have a block decided after the heal, and every
/// bill reimbursed on both sides be final once, within this. A TCP connection that went
/// unanswered through a cut of T seconds backs off and retransmits only up to about T
/// after the cut ends (measured: 11.7 s after a 15 s cut, between two namespaces); from
/// then on the network works and [`LIVENESS_BOUND`] applies. Counted from the longest
/// cut, the split.
const HEAL_BOUND: Duration = LIVENESS_BOUND.saturating_add(SPLIT_HOLD);
/// Bound on every other wait for a state (peers, convergence, a commit).
const WAIT: Duration = Duration::from_secs(60);
/// Bound on the whole inner run, enforced by the outer one.
const RUN_DEADLINE: Duration = Duration::from_secs(600);
/// Pause between two polls of a state.
const POLL: Duration = Duration::from_millis(50);
/// How long each fault is held.
const WEATHER_ONLY: Duration = Duration::from_secs(8);
const MINORITY_HOLD: Duration = Duration::from_secs(15);
const SPLIT_HOLD: Duration = Duration::from_secs(15);
const FLAP_HOLD: Duration = Duration::from_secs(12);
// The split is the longest cut: HEAL_BOUND is counted from it.
const _: () = assert!(
    MINORITY_HOLD.as_secs() <= SPLIT_HOLD.as_secs() && FLAP_HOLD.as_secs() <= SPLIT_HOLD.as_secs()
);
/// Each client thread sends at most one request per this interval.
const LOAD_PACE: Duration = Duration::from_millis(150);
/// Bills in every other request of a client thread.
const LOAD_BATCH: u64 = 5;
/// The weather's tick, and its bursts of loss: a good link turns bad with this chance
/// per mille per tick, a bad one good again with the other (about 5% of the time bad,
/// bursts of 125 ms on average).
const WEATHER_TICK: Duration = Duration::from_millis(50);
const BURST_START_PERMILLE: u64 = 20;
const BURST_END_PERMILLE: u64 = 400;
/// The netem weather, where the kernel has netem.
const NETEM: &str = "delay 15ms 10ms loss 1% reorder 10% 50%";
/// The bill code of every bill here (prefix 3301, the generated issuer's).
const BILL_CODE: &str = "33010126";

#[test]
fn partitions_heal_without_fork_loss_or_double_reimbursement() {
    match std::env::var(LAB_ENV) {
        Ok(names) => inner(&Lab::attach(&names)),
        Err(_) => outer(),
    }
}

// ---------------------------------------------------------------------------------
// The outer run: make the namespaces, run the inner run in the hub, remove everything.

fn outer() {
    let started = Instant::now();
    let prefix = format!("ebp{}", std::process::id());
    let mut lab = match Lab::create(&prefix, NODES) {
        Ok(lab) => lab,
        Err(e) => return cannot_make_namespaces(&e),
    };
    eprintln!(
        "partition test: namespaces {} made in {:?}",
        lab.describe(),
        started.elapsed()
    );
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("ip")
        .args(lab.exec_in_hub().iter().skip(1))
        .arg(&exe)
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(LAB_ENV, lab.describe())
        .stdin(Stdio::null())
        .spawn()
        .expect("start the inner run with ip netns exec");
    let end = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let problems = lab.teardown();
    eprintln!(
        "partition test: {:?} in all, namespaces removed{}",
        started.elapsed(),
        if problems.is_empty() {
            String::new()
        } else {
            format!(" with problems: {problems:?}")
        }
    );
    match status {
        Some(s) if s.success() => {}
        Some(s) => panic!("the run inside the namespaces failed ({s}); its output is above"),
        None => panic!("the run inside the namespaces did not end within {RUN_DEADLINE:?}"),
    }
    assert!(problems.is_empty(), "teardown: {problems:?}");
}

fn cannot_make_namespaces(e: &str) {
    let what = format!(
        "the partition test needs to make network namespaces (root, iproute2's `ip`), \
         and could not: {e}"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what} (CI=true: this test must run in CI)");
    }
    eprintln!(
        "\n{bar}\nSKIPPED partitions_heal_without_fork_loss_or_double_reimbursement:\n{what}\n{bar}\n",
        bar = "!".repeat(78)
    );
}

// ---------------------------------------------------------------------------------
// A seeded generator for the fault schedule (SplitMix64, as the simulator's).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

// ---------------------------------------------------------------------------------
// The network: generated by `ebill genesis init`, one config per node on lab addresses.

struct Net {
    _tmp: tempfile::TempDir,
    chain_id: String,
    configs: Vec<PathBuf>,
    issuer_code: CreditCode,
    issuer: Keypair,
    reimburser_keys: Vec<PathBuf>,
    reimburser_codes: Vec<CreditCode>,
}

fn read_key(path: &Path) -> (Keypair, CreditCode) {
    let kf = KeyFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    (
        kf.keypair().unwrap(),
        kf.credit_code.expect("a unit key file names its unit"),
    )
}

fn now_ms() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn url(i: usize) -> String {
    format!("http://{}:{API_PORT}", node_ip(i))
}

impl Net {
    fn init() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("net");
        let support::GenesisInit {
            answer: v,
            genesis_path: genesis,
            genesis: g,
        } = support::genesis_init(
            &dir,
            &[
                "--validators",
                &VALIDATORS.to_string(),
                "--observers",
                "1",
                "--reimbursers",
                "2",
            ],
        );
        let nodes = v["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), NODES);
        let mut configs = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            // Validators first, then the observer.
            let role = n["role"].as_str().unwrap();
            assert_eq!(role == "observer", i == OBSERVER, "{n}");
            let generated = PathBuf::from(n["config"].as_str().unwrap());
            let folder = generated.parent().unwrap().to_path_buf();
            let text = std::fs::read_to_string(&generated).unwrap();
            let t: toml::Table = toml::from_str(&text).unwrap();
            let mut c = toml::Table::new();
            c.insert("role".into(), role.into());
            c.insert(
                "genesis".into(),
                genesis.display().to_string().as_str().into(),
            );
            let key = folder.join(t["key"].as_str().unwrap());
            c.insert("key".into(), key.display().to_string().as_str().into());
            let data = folder.join("lab-data");
            c.insert(
                "data_dir".into(),
                data.display().to_string().as_str().into(),
            );
            c.insert(
                "api".into(),
                format!("{}:{API_PORT}", node_ip(i)).as_str().into(),
            );
            c.insert("listen".into(), multiaddr(i).as_str().into());
            let peers: Vec<toml::Value> = (0..NODES)
                .filter(|&j| j != i)
                .map(|j| multiaddr(j).as_str().into())
                .collect();
            c.insert("peers".into(), toml::Value::Array(peers));
            let mut http = toml::Table::new();
            http.insert(
                "wait_commit_timeout_ms".into(),
                i64::try_from(WAIT_COMMIT_MS).unwrap().into(),
            );
            c.insert("http".into(), toml::Value::Table(http));
            let path = folder.join("lab.toml");
            std::fs::write(&path, toml::to_string(&c).unwrap()).unwrap();
            configs.push(path);
        }
        let issuer_key = PathBuf::from(v["issuers"][0]["key_file"].as_str().unwrap());
        let (issuer, issuer_code) = read_key(&issuer_key);
        let reimburser_keys: Vec<PathBuf> = v["reimbursers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| PathBuf::from(r["key_file"].as_str().unwrap()))
            .collect();
        assert_eq!(reimburser_keys.len(), 2);
        let reimburser_codes = reimburser_keys.iter().map(|k| read_key(k).1).collect();
        Self {
            _tmp: tmp,
            chain_id: g["chain_id"].as_str().unwrap().to_owned(),
            configs,
            issuer_code,
            issuer,
            reimburser_keys,
            reimburser_codes,
        }
    }

    fn bill(&self, number: u64) -> Bill {
        let mut b = dev::sample_bill(number, 1250, now_ms());
        b.issuer = self.issuer_code;
        b
    }

    fn issue_tx(&self, number: u64) -> SignedTx {
        Tx {
            nonce: 0,
            body: TxBody::IssueBill(self.bill(number)),
        }
        .sign_unit(&self.chain_id, &self.issuer)
    }

    fn id(&self, stx: &SignedTx) -> String {
        stx.tx.id(&self.chain_id).to_string()
    }
}

fn multiaddr(i: usize) -> String {
    format!("/ip4/{}/tcp/{P2P_PORT}", node_ip(i))
}

fn bill_path(number: u64, check_code: &str) -> String {
    format!("/v1/bills/{BILL_CODE}/{number:010}?check_code={check_code}")
}

// ---------------------------------------------------------------------------------
// The history of client operations.

/// What an answer says about a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fate {
    /// Final at this height and position.
    Committed { height: u64, index: u64 },
    /// Admitted, not final (202, or 504 when `?wait=commit` ran out).
    Pending,
    /// Refused for good, with the ledger's code.
    Refused(String),
    /// Not taken for a reason that may pass (overload, a full mempool, ...).
    Unavailable(String),
    /// The node does not know it (404 `tx_not_found`).
    Unknown,
    /// No answer at all.
    Transport(String),
}

/// Codes that do not say the transaction is invalid: it may still be taken elsewhere.
const TRANSIENT: &[&str] = &[
    "mempool_full",
    "node_not_ready",
    "not_a_validator",
    "overloaded",
    "too_many_connections",
    "shutting_down",
    "internal",
    "body_timeout",
];

fn fate_of(result: &Result<(u16, String), String>) -> (Fate, Value) {
    let (code, text) = match result {
        Ok(r) => r,
        Err(e) => return (Fate::Transport(e.clone()), Value::Null),
    };
    let v: Value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
    (fate_of_value(*code, &v), v)
}

/// What one answer (or one item of a batch answer) says, given the HTTP status.
fn fate_of_value(code: u16, v: &Value) -> Fate {
    let definite = |c: &str| {
        if TRANSIENT.contains(&c) || code >= 500 {
            Fate::Unavailable(c.to_owned())
        } else {
            Fate::Refused(c.to_owned())
        }
    };
    if let Some(err) = v.get("error") {
        match err["code"].as_str().unwrap_or("?") {
            "timeout" => Fate::Pending,
            "tx_not_found" => Fate::Unknown,
            c => definite(c),
        }
    } else {
        match v["status"].as_str() {
            Some("committed") => Fate::Committed {
                height: v["height"].as_u64().unwrap(),
                index: v["index"].as_u64().unwrap(),
            },
            Some("pending") => Fate::Pending,
            Some("rejected") => definite(v["code"].as_str().unwrap_or("?")),
            _ => Fate::Unavailable(format!("status {code}")),
        }
    }
}

/// One answer about one transaction, from one node.
#[derive(Clone, Debug)]
struct Heard {
    seq: u64,
    node: usize,
    tx_id: String,
    fate: Fate,
}

struct History {
    start: Instant,
    phase: Mutex<&'static str>,
    seq: AtomicU64,
    file: Mutex<std::io::BufWriter<std::fs::File>>,
    /// Every answer about a transaction, in order.
    heard: Mutex<Vec<Heard>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl History {
    fn new(path: &Path) -> Self {
        Self {
            start: Instant::now(),
            phase: Mutex::new("setup"),
            seq: AtomicU64::new(0),
            file: Mutex::new(std::io::BufWriter::new(
                std::fs::File::create(path).unwrap(),
            )),
            heard: Mutex::new(Vec::new()),
        }
    }

    fn set_phase(&self, phase: &'static str) {
        *lock(&self.phase) = phase;
        self.note(json!({ "phase_begins": phase }));
    }

    fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.duration_since(self.start).as_millis()).unwrap()
    }

    /// Writes one line: `entry` with a sequence number, the time and the phase.
    fn note(&self, mut entry: Value) -> u64 {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        entry["seq"] = seq.into();
        entry["t_ms"] = self.ms(Instant::now()).into();
        entry["phase"] = (*lock(&self.phase)).into();
        let mut f = lock(&self.file);
        serde_json::to_writer(&mut *f, &entry).unwrap();
        f.write_all(b"\n").unwrap();
        seq
    }

    /// Records an HTTP operation about a transaction and returns what it says.
    fn tx_op(
        &self,
        client: &str,
        node: usize,
        op: &str,
        tx_id: &str,
        sent: Instant,
        result: &Result<(u16, String), String>,
    ) -> Fate {
        let (fate, answer) = fate_of(result);
        let seq = self.note(json!({
            "client": client,
            "node": node,
            "op": op,
            "tx_id": tx_id,
            "sent_ms": self.ms(sent),
            "http_status": result.as_ref().ok().map(|r| r.0),
            "transport_error": result.as_ref().err(),
            "answer": answer,
            "fate": format!("{fate:?}"),
        }));
        lock(&self.heard).push(Heard {
            seq,
            node,
            tx_id: tx_id.to_owned(),
            fate: fate.clone(),
        });
        fate
    }

    /// Records a `POST /v1/txs/batch` of the transactions `ids` and returns what its
    /// answer says of each (a failure of the whole request says it of all).
    fn batch_op(
        &self,
        client: &str,
        node: usize,
        ids: &[String],
        sent: Instant,
        result: &Result<(u16, String), String>,
    ) -> Vec<Fate> {
        let (whole, answer) = fate_of(result);
        let fates: Vec<Fate> = match (result, answer["results"].as_array()) {
            (Ok((code, _)), Some(items)) if items.len() == ids.len() => items
                .iter()
                .map(|item| fate_of_value(*code, item))
                .collect(),
            _ => vec![whole; ids.len()],
        };
        let seq = self.note(json!({
            "client": client,
            "node": node,
            "op": "submit issue batch",
            "tx_ids": ids,
            "sent_ms": self.ms(sent),
            "http_status": result.as_ref().ok().map(|r| r.0),
            "transport_error": result.as_ref().err(),
            "answer": answer,
            "fates": fates.iter().map(|f| format!("{f:?}")).collect::<Vec<_>>(),
        }));
        let mut heard = lock(&self.heard);
        for (id, fate) in ids.iter().zip(&fates) {
            heard.push(Heard {
                seq,
                node,
                tx_id: id.clone(),
                fate: fate.clone(),
            });
        }
        fates
    }

    /// Records a run of the `ebill` client.
    fn cli_op(&self, client: &str, node: usize, args: &[&str], sent: Instant, out: &Output) {
        let answer: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| String::from_utf8_lossy(&out.stdout).into_owned().into());
        self.note(json!({
            "client": client,
            "node": node,
            "op": "ebill",
            "args": args,
            "sent_ms": self.ms(sent),
            "exit": out.status.code(),
            "answer": answer,
            "stderr": String::from_utf8_lossy(&out.stderr),
        }));
    }

    fn heard(&self) -> Vec<Heard> {
        lock(&self.heard).clone()
    }

    fn flush(&self) {
        lock(&self.file).flush().unwrap();
    }
}

// ---------------------------------------------------------------------------------
// The nodes.

struct Cluster {
    nodes: Vec<Node>,
    https: Vec<Http>,
    logs_dir: PathBuf,
}

impl Cluster {
    fn start(lab: &Lab, net: &Net, logs_dir: &Path) -> Self {
        let nodes: Vec<Node> = std::thread::scope(|s| {
            let started: Vec<_> = (0..NODES)
                .map(|i| {
                    let wrapper = lab.exec_in(i);
                    let args = vec!["--config".to_string(), net.configs[i].display().to_string()];
                    s.spawn(move || Node::spawn_under(&wrapper, &args, url(i)))
                })
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let https = (0..NODES)
            .map(|i| Http::with_timeout(&url(i), Duration::from_secs(30)))
            .collect();
        Self {
            nodes,
            https,
            logs_dir: logs_dir.to_path_buf(),
        }
    }

    /// Every node's `/v1/status` (height, tip hash); a node that does not answer fails
    /// the test (it must be running, and the client's own traffic is never cut).
    fn statuses(&self) -> Vec<(u64, String)> {
        self.https
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let (code, text) = h.try_get("/v1/status").unwrap_or_else(|e| {
                    panic!(
                        "node {i} does not answer /v1/status ({e}): did it stop? node logs in {}",
                        self.logs_dir.display()
                    )
                });
                assert_eq!(code, 200, "node {i}: {text}");
                let v: Value = serde_json::from_str(&text).unwrap();
                (
                    v["height"].as_u64().unwrap(),
                    v["tip_hash"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    fn heights(&self) -> Vec<u64> {
        self.statuses().into_iter().map(|s| s.0).collect()
    }

    fn wait_peers(&self, n: u64) {
        let end = Instant::now() + WAIT;
        for (i, http) in self.https.iter().enumerate() {
            loop {
                let (_, text) = http.try_get("/v1/status").unwrap();
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["peers"].as_u64().unwrap() >= n {
                    break;
                }
                assert!(Instant::now() < end, "node {i}: {v}, not {n} peers");
                std::thread::sleep(POLL);
            }
        }
    }

    /// Waits until every node in `who` is at `min` or above, within `bound` of `from`;
    /// returns how long after `from` that was.
    fn wait_all_at(
        &self,
        who: &[usize],
        min: u64,
        from: Instant,
        bound: Duration,
        what: &str,
    ) -> Duration {
        loop {
            let h = self.heights();
            if who.iter().all(|&i| h[i] >= min) {
                return from.elapsed();
            }
            assert!(
                from.elapsed() < bound,
                "{what}: heights {h:?}, nodes {who:?} not all at {min} within {bound:?}; node logs in {}",
                self.logs_dir.display()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until all nodes are at one height at least `min` with one tip, and returns
    /// the height. One height with two tips is a fork: it fails at once.
    fn converge(&self, min: u64) -> u64 {
        let end = Instant::now() + WAIT;
        loop {
            let st = self.statuses();
            let h0 = st[0].0;
            if h0 >= min && st.iter().all(|s| s.0 == h0) {
                assert!(
                    st.iter().all(|s| s.1 == st[0].1),
                    "fork at height {h0}: {st:?}"
                );
                return h0;
            }
            assert!(
                Instant::now() < end,
                "no convergence on a height >= {min} within {WAIT:?}: {st:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// No node stopped, equivocated or halted.
    fn assert_healthy(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            assert!(n.running(), "node {i} stopped");
            for bad in ["equivocation evidence", "HALT", "engine stopped"] {
                let hits = n.lines_with(bad);
                assert!(hits.is_empty(), "node {i} logged {bad:?}: {hits:?}");
            }
        }
    }
}

impl Drop for Cluster {
    /// Writes every node's log next to the history (the nodes themselves are killed
    /// and waited for by `Node`'s own drop, right after).
    fn drop(&mut self) {
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.drain();
            let _ = std::fs::write(
                self.logs_dir.join(format!("node-{i}.log")),
                n.log.join("\n") + "\n",
            );
        }
    }
}

// ---------------------------------------------------------------------------------
// The links between nodes: cuts (partitions) and bursts of loss (weather); a directed
// link is cut while either asks for it.

struct LinkState {
    cut: [[bool; NODES]; NODES],
    burst: [[bool; NODES]; NODES],
    applied: [[bool; NODES]; NODES],
    cut_changes: u64,
}

struct Links<'a> {
    lab: &'a Lab,
    state: Mutex<LinkState>,
}

impl<'a> Links<'a> {
    fn new(lab: &'a Lab) -> Self {
        Self {
            lab,
            state: Mutex::new(LinkState {
                cut: [[false; NODES]; NODES],
                burst: [[false; NODES]; NODES],
                applied: [[false; NODES]; NODES],
                cut_changes: 0,
            }),
        }
    }

    fn apply(&self, st: &mut LinkState) {
        for i in 0..NODES {
            for j in 0..NODES {
                if i == j {
                    continue;
                }
                let want = st.cut[i][j] || st.burst[i][j];
                if want != st.applied[i][j] {
                    self.lab.cut(i, j, want).unwrap();
                    st.applied[i][j] = want;
                    st.cut_changes += 1;
                }
            }
        }
    }

    /// Partitions the nodes into `groups` (every node in exactly one); one group heals.
    fn partition(&self, groups: &[&[usize]]) {
        let mut side = [usize::MAX; NODES];
        for (g, members) in groups.iter().enumerate() {
            for &m in *members {
                side[m] = g;
            }
        }
        assert!(side.iter().all(|&s| s != usize::MAX), "{groups:?}");
        let mut st = lock(&self.state);
        for i in 0..NODES {
            for j in 0..NODES {
                st.cut[i][j] = i != j && side[i] != side[j];
            }
        }
        self.apply(&mut st);
    }

    fn heal(&self) {
        self.partition(&[&ALL]);
    }

    /// Cuts node `n` from everyone (`on`), or joins it again.
    fn isolate(&self, n: usize, on: bool) {
        let mut st = lock(&self.state);
        for j in 0..NODES {
            if j != n {
                st.cut[n][j] = on;
                st.cut[j][n] = on;
            }
        }
        self.apply(&mut st);
    }

    /// One tick of the weather: each directed link may begin or end a burst of loss.
    fn weather_tick(&self, rng: &mut Rng) {
        let mut st = lock(&self.state);
        for i in 0..NODES {
            for j in 0..NODES {
                if i != j {
                    let p = if st.burst[i][j] {
                        BURST_END_PERMILLE
                    } else {
                        BURST_START_PERMILLE
                    };
                    if rng.chance(p) {
                        st.burst[i][j] = !st.burst[i][j];
                    }
                }
            }
        }
        self.apply(&mut st);
    }

    fn calm(&self) {
        let mut st = lock(&self.state);
        st.burst = [[false; NODES]; NODES];
        self.apply(&mut st);
    }

    fn cut_changes(&self) -> u64 {
        lock(&self.state).cut_changes
    }
}

/// Sets a flag when dropped: stops the client and weather threads also when the
/// scenario panics, so that the scope joining them ends.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------------------------
// Clients.

/// One client thread: new bills to node `node`, with `?wait=commit`, in turn one
/// alone (`POST /v1/txs`) and [`LOAD_BATCH`] in a batch (`POST /v1/txs/batch`), at most
/// one request per [`LOAD_PACE`]. Returns how many bills it sent.
fn load(net: &Net, history: &History, node: usize, stop: &AtomicBool) -> u64 {
    let http = Http::with_timeout(&url(node), Duration::from_millis(WAIT_COMMIT_MS + 20_000));
    let client = format!("load-{node}");
    let mut sent = 0u64;
    let mut requests = 0u64;
    while !stop.load(Ordering::Relaxed) {
        requests += 1;
        let n = if requests % 2 == 1 { 1 } else { LOAD_BATCH };
        let txs: Vec<SignedTx> = (0..n)
            .map(|k| net.issue_tx((node as u64 + 1) * 1_000_000 + sent + k + 1))
            .collect();
        sent += n;
        let ids: Vec<String> = txs.iter().map(|t| net.id(t)).collect();
        let t = Instant::now();
        if n == 1 {
            let body = serde_json::to_string(&txs[0]).unwrap();
            let r = http.try_post("/v1/txs?wait=commit", &body);
            history.tx_op(&client, node, "submit issue", &ids[0], t, &r);
        } else {
            let body = serde_json::to_string(&json!({ "txs": txs })).unwrap();
            let r = http.try_post("/v1/txs/batch?wait=commit", &body);
            history.batch_op(&client, node, &ids, t, &r);
        }
        let next = t + LOAD_PACE;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
    }
    sent
}

/// A bill reimbursed by both reimbursing units at once, through two nodes.
struct Pair {
    name: &'static str,
    number: u64,
    check_code: String,
    /// (node, unit index, tx id if the node admitted it).
    tries: Vec<(usize, usize, Option<String>)>,
}

/// `ebill reimburse --no-wait` by unit `unit` through `node`, recorded; the tx id if
/// admitted.
fn reimburse(
    net: &Net,
    history: &History,
    number: u64,
    cc: &str,
    unit: usize,
    node: usize,
) -> Option<String> {
    let key = net.reimburser_keys[unit].display().to_string();
    let number = format!("{number:010}");
    let args = [
        "reimburse",
        "--key",
        &key,
        "--no-wait",
        BILL_CODE,
        &number,
        cc,
    ];
    let t = Instant::now();
    let out = ebill(&url(node), &args);
    history.cli_op(&format!("reimburser-{unit}"), node, &args, t, &out);
    if !out.status.success() {
        return None;
    }
    let v = json_of(&out);
    assert_eq!(v["action"], "confirm_reimbursed", "{v}");
    Some(v["tx_id"].as_str().unwrap().to_owned())
}

impl Pair {
    /// Sends both reimbursements at the same moment: unit 0 through `a`, unit 1
    /// through `b`.
    fn send(
        name: &'static str,
        net: &Net,
        history: &History,
        bill: &(u64, String),
        a: usize,
        b: usize,
    ) -> Pair {
        let (number, cc) = bill;
        let (ta, tb) = std::thread::scope(|s| {
            let ta = s.spawn(|| reimburse(net, history, *number, cc, 0, a));
            let tb = s.spawn(|| reimburse(net, history, *number, cc, 1, b));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        Pair {
            name,
            number: *number,
            check_code: cc.clone(),
            tries: vec![(a, 0, ta), (b, 1, tb)],
        }
    }

    /// Each try's fate as its own node tells it now (recorded); `None` for a try its
    /// node did not admit.
    fn fates(&self, cluster: &Cluster, history: &History) -> Vec<Option<Fate>> {
        self.tries
            .iter()
            .map(|(node, unit, id)| {
                let id = id.as_ref()?;
                let t = Instant::now();
                let r = cluster.https[*node].try_get(&format!("/v1/txs/{id}"));
                Some(history.tx_op(&format!("reimburser-{unit}"), *node, "tx status", id, t, &r))
            })
            .collect()
    }

    fn committed(&self, cluster: &Cluster, history: &History) -> usize {
        self.fates(cluster, history)
            .iter()
            .filter(|f| matches!(f, Some(Fate::Committed { .. })))
            .count()
    }
}

// ---------------------------------------------------------------------------------
// The inner run.

fn inner(lab: &Lab) {
    let t0 = Instant::now();
    let seed = std::env::var(SEED_ENV)
        .ok()
        .map(|s| s.parse::<u64>().expect("EBILL_PARTITION_SEED is a u64"))
        .unwrap_or_else(|| u64::try_from(now_ms()).unwrap());
    eprintln!("partition test: seed {seed} (replay the fault schedule with {SEED_ENV}={seed})");
    let mut rng = Rng(seed);
    let art = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("partition-{}", std::process::id()));
    std::fs::create_dir_all(&art).unwrap();
    eprintln!("partition test: history and node logs in {}", art.display());

    let net = Net::init();
    let history = History::new(&art.join("history.jsonl"));
    history.note(json!({ "seed": seed, "lab": lab.describe() }));
    let mut cluster = Cluster::start(lab, &net, &art);
    cluster.wait_peers(4);
    let setup = t0.elapsed();
    eprintln!("partition test: 5 nodes up and connected in {setup:?}");

    let links = Links::new(lab);
    let mut report = BTreeMap::<&str, Value>::new();
    report.insert("seed", seed.into());
    report.insert("setup_ms", ms(setup).into());

    // The bills that the pairs reimburse, final everywhere before any fault.
    let pair_bills: Vec<(u64, String)> = {
        let txs: Vec<SignedTx> = (1..=3).map(|n| net.issue_tx(n)).collect();
        let body = serde_json::to_string(&json!({ "txs": txs })).unwrap();
        let (code, text) = cluster.https[0].post("/v1/txs/batch?wait=commit", &body);
        assert_eq!(code, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["committed"].as_u64(), Some(3), "{v}");
        let top = v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["height"].as_u64().unwrap())
            .max()
            .unwrap();
        cluster.converge(top);
        txs.iter()
            .zip(1..)
            .map(|(t, n)| (n, t.to_signed_bill().unwrap().check_code.to_string()))
            .collect()
    };

    // Weather: netem where the kernel has it.
    let netem = match lab.netem_available() {
        Ok(()) => {
            for i in 0..NODES {
                lab.netem(i, Some(NETEM)).unwrap();
            }
            eprintln!("partition test: netem on every node: {NETEM}");
            true
        }
        Err(e) => {
            assert!(
                std::env::var(REQUIRE_NETEM_ENV).is_err(),
                "{REQUIRE_NETEM_ENV} is set and this kernel has no netem: {e}"
            );
            eprintln!(
                "\n{bar}\nNOTE: this kernel has no netem ({e}): no delay, jitter or reordering \
                 by tc here; the weather is bursts of loss (cuts) alone.\n{bar}\n",
                bar = "!".repeat(78)
            );
            false
        }
    };
    report.insert("netem", netem.into());
    report.insert("cuts_at_bridge", lab.cuts_at_bridge().into());
    if !lab.cuts_at_bridge() {
        eprintln!(
            "\n{bar}\nNOTE: no tc u32/mirred in this kernel: cuts are blackhole routes in the \
             sender's namespace (its TCP sees the route fail and retries without back-off).\n{bar}\n",
            bar = "!".repeat(78)
        );
    }

    let stop = AtomicBool::new(false);
    let weather_stop = AtomicBool::new(false);
    let mut weather_rng = Rng(rng.next());
    let pairs: Mutex<Vec<Pair>> = Mutex::new(Vec::new());
    let sent: Vec<u64> = std::thread::scope(|s| {
        let _stop = StopOnDrop(&stop);
        let _weather_stop = StopOnDrop(&weather_stop);
        let loaders: Vec<_> = (0..NODES)
            .map(|i| {
                let (net, history, stop) = (&net, &history, &stop);
                s.spawn(move || load(net, history, i, stop))
            })
            .collect();
        let weather = {
            let (links, weather_stop) = (&links, &weather_stop);
            s.spawn(move || {
                while !weather_stop.load(Ordering::Relaxed) {
                    links.weather_tick(&mut weather_rng);
                    std::thread::sleep(WEATHER_TICK);
                }
                links.calm();
            })
        };
        let c = &cluster;
        let hist = &history;
        let push = |p: Pair| lock(&pairs).push(p);

        // 1. Weather only: the chain must move.
        hist.set_phase("weather");
        let h = *c.heights().iter().max().unwrap();
        let t = Instant::now();
        c.wait_all_at(&ALL, h + 2, t, LIVENESS_BOUND, "under weather alone");
        hold(t, WEATHER_ONLY);

        // 2. A minority cut off: one validator (drawn from the seed) and the observer.
        // The majority goes on (a block decided after the cut, not just the one that may
        // have been decided as it began) and commits its side's reimbursement; the
        // minority stays where it was (plus at most that one block).
        hist.set_phase("minority");
        let lone = rng.range(0, VALIDATORS as u64 - 1) as usize;
        let majority: Vec<usize> = (0..VALIDATORS).filter(|&v| v != lone).collect();
        let minority = vec![lone, OBSERVER];
        let through = majority[rng.range(0, 2) as usize];
        links.partition(&[&majority, &minority]);
        let cut_at = Instant::now();
        let h_cut = *c.heights().iter().max().unwrap();
        let pair = Pair::send("minority", &net, hist, &pair_bills[0], through, lone);
        let majority_moved =
            c.wait_all_at(&majority, h_cut + 2, cut_at, LIVENESS_BOUND, "the majority");
        let end = Instant::now() + LIVENESS_BOUND;
        loop {
            let f = pair.fates(c, hist);
            assert!(
                !matches!(f[1], Some(Fate::Committed { .. })),
                "the cut-off validator committed: {f:?}"
            );
            if matches!(f[0], Some(Fate::Committed { .. })) {
                break;
            }
            assert!(
                Instant::now() < end,
                "the majority's reimbursement is not final: {f:?}"
            );
            std::thread::sleep(POLL);
        }
        while cut_at.elapsed() < MINORITY_HOLD {
            let hs = c.heights();
            for &i in &minority {
                assert!(
                    hs[i] <= h_cut + 1,
                    "cut-off node {i} moved: {hs:?} (cut at {h_cut})"
                );
            }
            std::thread::sleep(POLL);
        }
        let h_heal = *c.heights().iter().max().unwrap();
        links.heal();
        let healed = Instant::now();
        let minority_recovery = c.wait_all_at(
            &ALL,
            h_heal + 1,
            healed,
            HEAL_BOUND,
            "after the minority healed",
        );
        eprintln!(
            "partition test: {minority:?} cut off from {majority:?} for {:?} (the majority's first \
             block after the cut in {majority_moved:?}); every node past height {h_heal} \
             {minority_recovery:?} after the heal",
            healed - cut_at
        );
        report.insert("minority", json!(minority));
        report.insert("minority_majority_moved_ms", ms(majority_moved).into());
        report.insert("minority_recovery_ms", ms(minority_recovery).into());
        push(pair);

        // 3. A 2/2 split of the validators (the observer on one side): no side has a
        // quorum, nothing may become final.
        hist.set_phase("split");
        let mut vs: Vec<usize> = (0..VALIDATORS).collect();
        for k in (1..vs.len()).rev() {
            vs.swap(k, rng.range(0, k as u64) as usize);
        }
        let (mut left, mut right) = (vs[..2].to_vec(), vs[2..].to_vec());
        let (a, b) = (left[0], right[0]);
        if rng.chance(500) {
            left.push(OBSERVER);
        } else {
            right.push(OBSERVER);
        }
        links.partition(&[&left, &right]);
        let split_at = Instant::now();
        let h_split = *c.heights().iter().max().unwrap();
        let pair = Pair::send("split", &net, hist, &pair_bills[1], a, b);
        while split_at.elapsed() < SPLIT_HOLD {
            let hs = c.heights();
            assert!(
                hs.iter().all(|&h| h <= h_split + 1),
                "a node moved without a quorum: {hs:?} (split at {h_split})"
            );
            std::thread::sleep(POLL);
        }
        let f = pair.fates(c, hist);
        assert!(
            !f.iter().any(|f| matches!(f, Some(Fate::Committed { .. }))),
            "a reimbursement became final without a quorum: {f:?}"
        );
        let h_heal = *c.heights().iter().max().unwrap();
        links.heal();
        let healed = Instant::now();
        let split_recovery = c.wait_all_at(
            &ALL,
            h_heal + 1,
            healed,
            HEAL_BOUND,
            "after the split healed",
        );
        eprintln!(
            "partition test: split {left:?} | {right:?} for {:?}; every node past height \
             {h_heal} {split_recovery:?} after the heal",
            healed - split_at
        );
        report.insert("split", json!([left, right]));
        report.insert("split_recovery_ms", ms(split_recovery).into());
        push(pair);

        // 4. A flapping link: one validator cut from everyone and joined again, at
        // intervals of 0.2-1.5 s drawn from the seed. The other three keep a quorum.
        hist.set_phase("flap");
        let flapper = rng.range(0, VALIDATORS as u64 - 1) as usize;
        let others: Vec<usize> = (0..VALIDATORS).filter(|&v| v != flapper).collect();
        let other = others[rng.range(0, 2) as usize];
        let flap_at = Instant::now();
        let h_flap = *c.heights().iter().max().unwrap();
        let pair = Pair::send("flap", &net, hist, &pair_bills[2], flapper, other);
        let mut cut = false;
        let mut flips = 0u64;
        while flap_at.elapsed() < FLAP_HOLD {
            cut = !cut;
            links.isolate(flapper, cut);
            flips += 1;
            hold(Instant::now(), Duration::from_millis(rng.range(200, 1500)));
        }
        links.isolate(flapper, false);
        let healed = Instant::now();
        let h_after = c.heights();
        let h_heal = *h_after.iter().max().unwrap();
        assert!(
            h_heal > h_flap,
            "no block final while validator {flapper} flapped: {h_after:?} (began at {h_flap})"
        );
        let flap_recovery = c.wait_all_at(
            &ALL,
            h_heal + 1,
            healed,
            HEAL_BOUND,
            "after the flapping stopped",
        );
        eprintln!(
            "partition test: validator {flapper} flapped {flips} times in {:?} (heights \
             {h_flap} -> {h_heal}); every node past {h_heal} {flap_recovery:?} after",
            healed - flap_at
        );
        report.insert("flapper", flapper.into());
        report.insert("flaps", flips.into());
        report.insert("flap_recovery_ms", ms(flap_recovery).into());
        push(pair);

        // 5. Calm: no weather, no cuts. The chain must move again, and a new bill sent
        // to each node be final, within the bound.
        hist.set_phase("calm");
        weather_stop.store(true, Ordering::Relaxed);
        weather.join().unwrap();
        if netem {
            for i in 0..NODES {
                lab.netem(i, None).unwrap();
            }
        }
        let calm_at = Instant::now();
        let h_calm = *c.heights().iter().max().unwrap();
        let calm_recovery = c.wait_all_at(
            &ALL,
            h_calm + 1,
            calm_at,
            HEAL_BOUND,
            "after the final heal",
        );
        let probes: Vec<(usize, String, Duration)> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..NODES)
                .map(|i| {
                    let (net, https) = (&net, &c.https);
                    s.spawn(move || {
                        let stx = net.issue_tx(900_000_000 + i as u64);
                        let id = net.id(&stx);
                        let body = serde_json::to_string(&stx).unwrap();
                        let t = Instant::now();
                        let r = https[i].try_post("/v1/txs?wait=commit", &body);
                        let mut fate = hist.tx_op("probe", i, "submit issue", &id, t, &r);
                        while fate == Fate::Pending && calm_at.elapsed() < HEAL_BOUND {
                            std::thread::sleep(POLL);
                            let t = Instant::now();
                            let r = https[i].try_get(&format!("/v1/txs/{id}"));
                            fate = hist.tx_op("probe", i, "tx status", &id, t, &r);
                        }
                        assert!(
                            matches!(fate, Fate::Committed { .. }),
                            "a bill sent to node {i} after the final heal: {fate:?} {:?} after the heal",
                            calm_at.elapsed()
                        );
                        (i, id, calm_at.elapsed())
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let slowest = probes.iter().map(|p| p.2).max().unwrap();
        eprintln!(
            "partition test: after the final heal every node past {h_calm} in {calm_recovery:?}; \
             a new bill final on each node within {slowest:?}"
        );
        report.insert("calm_recovery_ms", ms(calm_recovery).into());
        report.insert("calm_probe_final_ms", ms(slowest).into());

        stop.store(true, Ordering::Relaxed);
        loaders.into_iter().map(|l| l.join().unwrap()).collect()
    });
    history.set_phase("verify");
    report.insert("faults_ms", ms(t0.elapsed() - setup).into());
    report.insert("cut_changes", links.cut_changes().into());

    // The pairs: exactly one reimbursement of each is final, within the bound.
    let pairs = pairs.into_inner().unwrap();
    for p in &pairs {
        let end = Instant::now() + HEAL_BOUND;
        loop {
            let n = p.committed(&cluster, &history);
            assert!(
                n <= 1,
                "{}: both reimbursements of bill {} committed",
                p.name,
                p.number
            );
            if n == 1 {
                break;
            }
            assert!(
                Instant::now() < end,
                "{}: neither reimbursement of bill {} is final {HEAL_BOUND:?} after healing",
                p.name,
                p.number
            );
            std::thread::sleep(POLL);
        }
    }

    // Every transaction still pending in the history: ask once where it stands.
    let mut last: BTreeMap<String, Fate> = BTreeMap::new();
    for h in history.heard() {
        last.insert(h.tx_id.clone(), h.fate.clone());
    }
    for (id, fate) in &last {
        if matches!(
            fate,
            Fate::Pending | Fate::Transport(_) | Fate::Unavailable(_)
        ) {
            let t = Instant::now();
            let r = cluster.https[0].try_get(&format!("/v1/txs/{id}"));
            history.tx_op("final", 0, "tx status", id, t, &r);
        }
    }
    let heard = history.heard();
    let acked_max = heard
        .iter()
        .filter_map(|h| match h.fate {
            Fate::Committed { height, .. } => Some(height),
            _ => None,
        })
        .max()
        .unwrap();
    let top = cluster.converge(acked_max);

    // No fork: every block of every node.
    let mut chains: Vec<Vec<(String, Vec<String>)>> = Vec::new();
    // The rounds in which node 0's blocks were decided (their certificates' round).
    let mut rounds = BTreeMap::<u64, u64>::new();
    for (i, http) in cluster.https.iter().enumerate() {
        let mut chain = Vec::new();
        let mut prev: Option<String> = None;
        for h in 1..=top {
            let (code, text) = http.try_get(&format!("/v1/blocks/{h}")).unwrap();
            assert_eq!(code, 200, "node {i} block {h}: {text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            let hash = v["hash"].as_str().unwrap().to_owned();
            if let Some(p) = &prev {
                assert_eq!(
                    v["prev_hash"].as_str(),
                    Some(p.as_str()),
                    "node {i} height {h}"
                );
            }
            prev = Some(hash.clone());
            if i == 0 {
                let round = v["certificate"]["round"].as_u64().unwrap();
                *rounds.entry(round).or_default() += 1;
            }
            let ids = v["tx_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap().to_owned())
                .collect();
            chain.push((hash, ids));
        }
        chains.push(chain);
    }
    for h in 0..top as usize {
        for (i, chain) in chains.iter().enumerate().skip(1) {
            assert_eq!(
                chain[h].0,
                chains[0][h].0,
                "fork: node {i} and node 0 differ at height {}",
                h + 1
            );
        }
    }
    let mut on_chain: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (h, (_, ids)) in chains[0].iter().enumerate() {
        for (x, id) in ids.iter().enumerate() {
            let at = (h as u64 + 1, x as u64);
            if let Some(first) = on_chain.insert(id, at) {
                panic!("transaction {id} is in two blocks: {first:?} and {at:?}");
            }
        }
    }

    // Every acknowledged commit is where it was said to be, on every node; nothing
    // refused is anywhere.
    let mut acked = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for h in &heard {
        match &h.fate {
            Fate::Committed { height, index } => {
                for (i, chain) in chains.iter().enumerate() {
                    let ids = &chain[usize::try_from(*height).unwrap() - 1].1;
                    assert_eq!(
                        ids.get(usize::try_from(*index).unwrap()),
                        Some(&h.tx_id),
                        "answer {} (node {}) said {} is committed at {height}/{index}; node {i} disagrees",
                        h.seq,
                        h.node,
                        h.tx_id
                    );
                }
                acked.insert(h.tx_id.clone());
            }
            Fate::Refused(code) => {
                assert!(
                    !on_chain.contains_key(h.tx_id.as_str()),
                    "answer {} (node {}) refused {} ({code}), yet it is on the chain at {:?}",
                    h.seq,
                    h.node,
                    h.tx_id,
                    on_chain[h.tx_id.as_str()]
                );
                refused.insert(h.tx_id.clone());
            }
            _ => {}
        }
    }

    // No bill reimbursed twice: the same verdict on every node, one confirmation, by
    // the transaction that is on the chain.
    let mut pair_report = Vec::new();
    for p in &pairs {
        let path = bill_path(p.number, &p.check_code);
        let verdicts: Vec<Value> = cluster
            .https
            .iter()
            .enumerate()
            .map(|(i, http)| {
                let t = Instant::now();
                let r = http.try_get(&path);
                let (code, text) = r.clone().unwrap();
                history.note(json!({
                    "client": "check", "node": i, "op": "get bill", "path": path,
                    "sent_ms": history.ms(t), "http_status": code,
                    "answer": serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
                }));
                assert_eq!(code, 200, "node {i} {path}: {text}");
                serde_json::from_str(&text).unwrap()
            })
            .collect();
        for (i, v) in verdicts.iter().enumerate() {
            assert_eq!(
                v, &verdicts[0],
                "{}: node {i} and node 0 answer differently for bill {}",
                p.name, p.number
            );
        }
        let v = &verdicts[0];
        assert_eq!(v["status"], "reimbursed", "{}: {v}", p.name);
        let confirmations: Vec<&Value> = v["history"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "confirm_reimbursed")
            .collect();
        assert_eq!(
            confirmations.len(),
            1,
            "{}: bill {} reimbursed twice: {v}",
            p.name,
            p.number
        );
        let winner_tx = confirmations[0]["tx_id"].as_str().unwrap();
        let committed: Vec<&(usize, usize, Option<String>)> = p
            .tries
            .iter()
            .filter(|(_, _, id)| id.as_deref().is_some_and(|id| on_chain.contains_key(id)))
            .collect();
        assert_eq!(committed.len(), 1, "{}: {:?}", p.name, p.tries);
        let (node, unit, id) = committed[0];
        assert_eq!(id.as_deref(), Some(winner_tx), "{}", p.name);
        assert_eq!(
            confirmations[0]["by"].as_str(),
            Some(net.reimburser_codes[*unit].to_string().as_str()),
            "{}",
            p.name
        );
        pair_report.push(json!({
            "phase": p.name, "bill": p.number, "winner": { "node": node, "unit": unit },
            "admitted": p.tries.iter().filter(|t| t.2.is_some()).count(),
        }));
    }
    cluster.assert_healthy();

    // What happened, in figures.
    let mut fates = BTreeMap::<&str, u64>::new();
    for id in last.keys() {
        let k = if on_chain.contains_key(id.as_str()) {
            "on chain"
        } else if refused.contains(id) {
            "refused"
        } else {
            "not on chain"
        };
        *fates.entry(k).or_default() += 1;
    }
    report.insert("height", top.into());
    report.insert(
        "blocks_by_decision_round",
        json!(
            rounds
                .iter()
                .map(|(r, n)| (r.to_string(), n))
                .collect::<BTreeMap<_, _>>()
        ),
    );
    report.insert("client_submissions", sent.iter().sum::<u64>().into());
    report.insert("acknowledged_committed", (acked.len() as u64).into());
    report.insert("transactions_by_fate", json!(fates));
    report.insert("pairs", pair_report.into());
    report.insert(
        "history_entries",
        history.seq.load(Ordering::Relaxed).into(),
    );
    report.insert("total_ms", ms(t0.elapsed()).into());
    history.note(json!({ "report": report }));
    history.flush();
    eprintln!(
        "partition test: passed in {:?}\n{}",
        t0.elapsed(),
        serde_json::to_string_pretty(&report).unwrap()
    );
    drop(cluster);
    if std::env::var(KEEP_ENV).is_err() {
        let _ = std::fs::remove_dir_all(&art);
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap()
}

/// Holds a fault until `d` after `from` (how long a fault lasts is the scenario's
/// choice, not a guess at how long something takes).
fn hold(from: Instant, d: Duration) {
    let left = d.saturating_sub(from.elapsed());
    std::thread::sleep(left);
}
