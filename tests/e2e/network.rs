//! A real network on loopback: `ebill genesis init` writes four validators and an
//! observer (free ports, keys, configs), and each test starts real `ebill-node` processes
//! on them, drives them over HTTP and the `ebill` binary, kills some with SIGKILL and
//! restarts them on their data folders.
//!
//! Every wait is bounded and waits for something: a node's own "ready" line, a log line,
//! an HTTP answer, or a state reached over HTTP (a poll with a short pause and a
//! generous deadline). Every process is killed when its `Node` is dropped, so a failed
//! assertion leaves nothing running; temp folders are removed by `tempfile`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use ebill_types::keyfile::KeyFile;
use ebill_types::{Bill, CheckCode, CreditCode, Keypair, SignedTx, Tx, TxBody, dev};
use serde_json::{Value, json};
use support::{Http, Node, ebill, free_port, json_of};

/// Bound on every wait for a state (heights, peers, commits).
const WAIT: Duration = Duration::from_secs(60);
/// Pause between two polls of a node's HTTP state.
const POLL: Duration = Duration::from_millis(50);
/// The bill code of every bill here (prefix 3301, the generated issuer's).
const BILL_CODE: &str = "33010126";

/// The multi-process tests share two cores with each other and with the rest of the
/// workspace's tests; running two clusters at once only makes both slower and their
/// consensus rounds time out. One cluster at a time.
static ONE_CLUSTER: Mutex<()> = Mutex::new(());

fn one_cluster() -> std::sync::MutexGuard<'static, ()> {
    ONE_CLUSTER
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One node of the generated network.
struct Spec {
    name: String,
    config: PathBuf,
}

/// A network written by `ebill genesis init`.
struct Devnet {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    genesis: PathBuf,
    chain_id: String,
    nodes: Vec<Spec>,
    issuer_key_file: PathBuf,
    issuer_code: CreditCode,
    issuer: Keypair,
    reimburser_code: CreditCode,
    reimburser: Keypair,
    regulators: Vec<Keypair>,
    /// The regulators' key files, in genesis order.
    regulator_key_files: Vec<PathBuf>,
}

fn read_key(path: &Path) -> (Keypair, Option<CreditCode>) {
    let kf = KeyFile::from_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    (kf.keypair().unwrap(), kf.credit_code)
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

impl Devnet {
    fn init(validators: u32, observers: u32) -> Self {
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
                &validators.to_string(),
                "--observers",
                &observers.to_string(),
            ],
        );
        let nodes = v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| Spec {
                name: n["name"].as_str().unwrap().to_owned(),
                config: PathBuf::from(n["config"].as_str().unwrap()),
            })
            .collect();
        let issuer_key_file = PathBuf::from(v["issuers"][0]["key_file"].as_str().unwrap());
        let (issuer, code) = read_key(&issuer_key_file);
        let (reimburser, rcode) =
            read_key(Path::new(v["reimbursers"][0]["key_file"].as_str().unwrap()));
        let regulator_key_files: Vec<PathBuf> = v["regulators"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| PathBuf::from(r["key_file"].as_str().unwrap()))
            .collect();
        let regulators = regulator_key_files.iter().map(|p| read_key(p).0).collect();
        Self {
            _tmp: tmp,
            dir,
            genesis,
            chain_id: g["chain_id"].as_str().unwrap().to_owned(),
            nodes,
            issuer_key_file,
            issuer_code: code.expect("the issuer key file names its unit"),
            issuer,
            reimburser_code: rcode.expect("the reimburser key file names its unit"),
            reimburser,
            regulators,
            regulator_key_files,
        }
    }

    fn start(&self, i: usize) -> Node {
        Node::start_config(&self.nodes[i].config)
    }

    /// Starts nodes `0..n` (validators first, then observers).
    fn start_first(&self, n: usize) -> Vec<Option<Node>> {
        (0..n).map(|i| Some(self.start(i))).collect()
    }

    /// A valid bill of the generated issuer, issued now.
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

    /// The peer listen address in a node's config.
    fn listen_of(&self, i: usize) -> String {
        let text = std::fs::read_to_string(&self.nodes[i].config).unwrap();
        let t: toml::Table = toml::from_str(&text).unwrap();
        t["listen"].as_str().unwrap().to_owned()
    }
}

fn check_code_of(stx: &SignedTx) -> CheckCode {
    stx.to_signed_bill().unwrap().check_code
}

fn verdict_path(number: u64, check_code: &str) -> String {
    format!("/v1/bills/{BILL_CODE}/{number:010}?check_code={check_code}")
}

fn get_json(http: &Http, path: &str) -> (u16, Value) {
    let (status, body) = http.get(path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

fn status(http: &Http) -> Value {
    let (code, v) = get_json(http, "/v1/status");
    assert_eq!(code, 200, "{v}");
    v
}

fn height(http: &Http) -> u64 {
    status(http)["height"].as_u64().unwrap()
}

/// Waits until the node's height is at least `h` (poll every 50 ms, bounded by WAIT).
fn wait_height(http: &Http, h: u64, what: &str) -> u64 {
    let end = Instant::now() + WAIT;
    loop {
        let now = height(http);
        if now >= h {
            return now;
        }
        assert!(
            Instant::now() < end,
            "{what}: height {now}, not {h} within {WAIT:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until every node reports at least `n` connected peers.
fn wait_peers(https: &[&Http], n: u64) {
    let end = Instant::now() + WAIT;
    for http in https {
        loop {
            let peers = status(http)["peers"].as_u64().unwrap();
            if peers >= n {
                break;
            }
            assert!(Instant::now() < end, "only {peers} peers, not {n}");
            std::thread::sleep(POLL);
        }
    }
}

/// Waits until all nodes report the same height, at least `min`, and returns it with
/// the tip hash, which must then be the same everywhere. Two nodes at one height with
/// two tips is a fork: it fails at once.
fn converge(https: &[&Http], min: u64) -> (u64, String) {
    let end = Instant::now() + WAIT;
    loop {
        let st: Vec<Value> = https.iter().map(|h| status(h)).collect();
        let heights: Vec<u64> = st.iter().map(|s| s["height"].as_u64().unwrap()).collect();
        if heights.iter().all(|&h| h == heights[0] && h >= min) {
            let tips: Vec<&Value> = st.iter().map(|s| &s["tip_hash"]).collect();
            assert!(
                tips.iter().all(|t| *t == tips[0]),
                "fork at height {}: tips {tips:?}",
                heights[0]
            );
            return (heights[0], tips[0].as_str().unwrap().to_owned());
        }
        assert!(
            Instant::now() < end,
            "nodes did not converge on a height >= {min} within {WAIT:?}: {heights:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// The hash of the block at `h` on a node.
fn block_hash(http: &Http, h: u64) -> String {
    let (code, v) = get_json(http, &format!("/v1/blocks/{h}"));
    assert_eq!(code, 200, "block {h}: {v}");
    v["hash"].as_str().unwrap().to_owned()
}

/// Every node holds the same block at every height `1..=upto`.
fn same_blocks(https: &[&Http], upto: u64) {
    for h in 1..=upto {
        let first = block_hash(https[0], h);
        for (i, http) in https.iter().enumerate().skip(1) {
            assert_eq!(block_hash(http, h), first, "node {i} differs at height {h}");
        }
    }
}

/// `POST /v1/txs/batch?wait=commit`; every item must be final.
fn submit_batch_final(http: &Http, txs: &[SignedTx]) -> Value {
    let body = serde_json::to_string(&json!({ "txs": txs })).unwrap();
    let (code, text) = http.post("/v1/txs/batch?wait=commit", &body);
    assert_eq!(code, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["committed"].as_u64(), Some(txs.len() as u64), "{text}");
    v
}

fn max_height(results: &Value) -> u64 {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["height"].as_u64().unwrap())
        .max()
        .unwrap()
}

/// No node equivocated, none halted.
fn assert_no_faults(nodes: &mut [Option<Node>]) {
    for n in nodes.iter_mut().flatten() {
        for bad in ["equivocation evidence", "HALT", "engine stopped"] {
            let hits = n.lines_with(bad);
            assert!(hits.is_empty(), "a node logged {bad:?}: {hits:?}");
        }
    }
}

/// Every node's log, for a failure message.
fn logs(nodes: &mut [Option<Node>]) -> String {
    let mut out = String::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        if let Some(n) = n {
            n.drain();
            out.push_str(&format!("--- node {i}\n{}\n", n.log.join("\n")));
        }
    }
    out
}

fn https_of(nodes: &[Option<Node>]) -> Vec<Http> {
    nodes
        .iter()
        .map(|n| Http::new(&n.as_ref().unwrap().url))
        .collect()
}

/// Bills sent to each of the four validators (one through `ebill issue --batch`, three
/// through HTTP batches, all at once) are all final, and all five nodes end on the same
/// chain with the same verdicts.
#[test]
fn bills_sent_to_different_validators_are_final_on_every_node() {
    let _one = one_cluster();
    let net = Devnet::init(4, 1);
    let mut nodes = net.start_first(5);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 4);

    const PER_VALIDATOR: u64 = 40;
    // Validator 0 through the CLI: a JSONL batch, two requests of 20.
    let jsonl = net.dir.join("bills.jsonl");
    let lines: Vec<String> = (1..=PER_VALIDATOR)
        .map(|n| serde_json::to_string(&net.bill(n)).unwrap())
        .collect();
    std::fs::write(&jsonl, lines.join("\n") + "\n").unwrap();
    let v0_url = nodes[0].as_ref().unwrap().url.clone();
    let (cli, http_results) = std::thread::scope(|s| {
        let cli = s.spawn(|| {
            ebill(
                &v0_url,
                &[
                    "issue",
                    "--key",
                    net.issuer_key_file.to_str().unwrap(),
                    "--now",
                    "--chunk",
                    "20",
                    "--batch",
                    jsonl.to_str().unwrap(),
                ],
            )
        });
        let http: Vec<_> = (1..4u64)
            .map(|v| {
                let txs: Vec<SignedTx> = (1..=PER_VALIDATOR)
                    .map(|n| net.issue_tx(v * 1000 + n))
                    .collect();
                let http = &https[v as usize];
                s.spawn(move || (txs.clone(), submit_batch_final(http, &txs)))
            })
            .collect();
        (
            cli.join().unwrap(),
            http.into_iter()
                .map(|h| h.join().unwrap())
                .collect::<Vec<_>>(),
        )
    });
    assert!(
        cli.status.success(),
        "ebill issue --batch: {}",
        String::from_utf8_lossy(&cli.stdout)
    );
    let cli = json_of(&cli);
    assert_eq!(cli["final"].as_u64(), Some(PER_VALIDATOR), "{cli}");
    assert_eq!(cli["rejected"].as_u64(), Some(0), "{cli}");

    // (number, check code) of every bill, and the highest height any was final at.
    let mut bills: Vec<(u64, String)> = Vec::new();
    let mut top = 0;
    for r in cli["results"].as_array().unwrap() {
        assert_eq!(r["status"], "committed", "{r}");
        let number: u64 = r["number"].as_str().unwrap().parse().unwrap();
        bills.push((number, r["check_code"].as_str().unwrap().to_owned()));
        top = top.max(r["height"].as_u64().unwrap());
    }
    for (txs, results) in &http_results {
        top = top.max(max_height(results));
        for tx in txs {
            let TxBody::IssueBill(b) = &tx.tx.body else {
                unreachable!()
            };
            let number: u64 = b.number.to_string().parse().unwrap();
            bills.push((number, check_code_of(tx).to_string()));
        }
    }
    assert_eq!(bills.len() as u64, 4 * PER_VALIDATOR);

    // All five at the same height (>= the last commit seen) with the same tip, the same
    // block at every height, and the same verdict for every bill.
    let (h, _tip) = converge(&all, top);
    same_blocks(&all, h);
    for (number, cc) in &bills {
        let path = verdict_path(*number, cc);
        let (code, first) = get_json(&https[0], &path);
        assert_eq!(code, 200, "{first}");
        assert_eq!(first["authentic"], true);
        assert_eq!(first["final"], true);
        assert_eq!(first["status"], "issued");
        for http in &https[1..] {
            assert_eq!(get_json(http, &path), (200, first.clone()));
        }
    }
    assert_no_faults(&mut nodes);
}

/// A validator killed with SIGKILL while batches keep coming: the other three keep
/// finalising; restarted on its data folder it catches up and holds the same block at
/// every height; nobody saw it sign two conflicting votes.
#[test]
fn a_validator_killed_under_load_catches_up_and_agrees() {
    let _one = one_cluster();
    let net = Devnet::init(4, 1);
    let mut nodes = net.start_first(5);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 4);

    let stop = Arc::new(AtomicBool::new(false));
    let committed: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        // Load: batches of 25 to validators 0, 1, 2 in turn, each must be final.
        let loader = s.spawn(|| {
            let mut next = 1u64;
            let mut turn = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let txs: Vec<SignedTx> = (next..next + 25).map(|n| net.issue_tx(n)).collect();
                submit_batch_final(&https[turn % 3], &txs);
                let mut c = committed.lock().unwrap();
                for (i, tx) in txs.iter().enumerate() {
                    c.push((next + i as u64, check_code_of(tx).to_string()));
                }
                next += 25;
                turn += 1;
            }
        });
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            wait_height(&https[0], 3, "validator-0 under load");
            nodes[3].take().unwrap().kill9();
            let killed_at = height(&https[0]);
            // The other three keep finalising while it is down.
            for i in [0, 1, 2, 4] {
                wait_height(&https[i], killed_at + 4, &net.nodes[i].name);
            }
            nodes[3] = Some(net.start(3));
            // It catches up with the others while the load goes on.
            let target = height(&https[0]);
            wait_height(&https[3], target, "restarted validator-3");
        }));
        stop.store(true, Ordering::Relaxed);
        let loaded = loader.join();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
        if let Err(p) = loaded {
            std::panic::resume_unwind(p);
        }
    });

    let (h, _) = converge(&all, 1);
    same_blocks(&all, h);
    let committed = committed.into_inner().unwrap();
    assert!(committed.len() >= 100, "only {} bills", committed.len());
    for (number, cc) in committed.iter().step_by(7) {
        let path = verdict_path(*number, cc);
        let (code, first) = get_json(&https[0], &path);
        assert_eq!(code, 200, "{first}");
        assert_eq!(get_json(&https[3], &path), (200, first));
    }
    assert_no_faults(&mut nodes);
}

/// A validator killed with SIGKILL five times in the middle of heavy load (batches of
/// 200), restarted each time on its data folder (resuming consensus from its WAL when
/// the kill hit a height under way): nobody ever sees it sign two conflicting votes
/// ("equivocation evidence" in no log), and all five nodes end on one chain.
#[test]
fn a_validator_killed_repeatedly_under_heavy_load_never_equivocates() {
    let _one = one_cluster();
    let net = Devnet::init(4, 1);
    let mut nodes = net.start_first(5);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 4);

    const KILLS: u32 = 5;
    let stop = AtomicBool::new(false);
    let mut resumed = 0;
    std::thread::scope(|s| {
        // Three loaders, one per surviving validator, so that a batch always waits.
        let loaders: Vec<_> = [0usize, 2, 3]
            .into_iter()
            .map(|v| {
                let (stop, net, https) = (&stop, &net, &https);
                s.spawn(move || {
                    let mut next = 1_000_000 * v as u64 + 1;
                    while !stop.load(Ordering::Relaxed) {
                        let txs: Vec<SignedTx> =
                            (next..next + 200).map(|n| net.issue_tx(n)).collect();
                        submit_batch_final(&https[v], &txs);
                        next += 200;
                    }
                })
            })
            .collect();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for round in 0..KILLS {
                // It takes part (caught up, then two more heights) before each kill.
                let h = height(&https[0]);
                wait_height(
                    &https[1],
                    h + 2,
                    &format!("validator-1 before kill {round}"),
                );
                nodes[1].take().unwrap().kill9();
                let mut node = net.start(1);
                if node.logged("resuming consensus from the WAL") {
                    resumed += 1;
                }
                nodes[1] = Some(node);
            }
            let h = height(&https[0]);
            wait_height(&https[1], h + 2, "validator-1 after the last restart");
        }));
        stop.store(true, Ordering::Relaxed);
        let loaded: Vec<_> = loaders.into_iter().map(|l| l.join()).collect();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
        for l in loaded {
            if let Err(p) = l {
                std::panic::resume_unwind(p);
            }
        }
    });
    eprintln!("{KILLS} kills, {resumed} restarts resumed consensus from the WAL");
    let (h, _) = converge(&all, 1);
    same_blocks(&all, h);
    assert_no_faults(&mut nodes);
}

/// Two of four validators killed: a transaction sent meanwhile stays pending (the node's
/// own commit wait, 30 s, runs out with 504) and no node moves past the height it had
/// during that window. Then both are restarted on their data folders: they come back on
/// the same chain (nothing forked, nothing committed lost). With `resume_within`, the
/// network must also go on within that time and the pending transaction become final.
fn two_of_four_down_then_restarted(resume_within: Option<Duration>) {
    let _one = one_cluster();
    let net = Devnet::init(4, 1);
    let mut nodes = net.start_first(5);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 4);

    let first = net.issue_tx(1);
    let r = submit_batch_final(&https[0], std::slice::from_ref(&first));
    let h0 = max_height(&r);
    converge(&all, h0);
    let first_path = verdict_path(1, &check_code_of(&first).to_string());
    let before = get_json(&https[1], &first_path);

    nodes[2].take().unwrap().kill9();
    nodes[3].take().unwrap().kill9();

    let pending = net.issue_tx(2);
    let body = serde_json::to_string(&pending).unwrap();
    let (code, answer) = std::thread::scope(|s| {
        // The window is the node's own commit wait: the request answers 504 when it runs
        // out. Meanwhile no surviving node may move past h0.
        let waiter = s.spawn(|| https[0].post("/v1/txs?wait=commit", &body));
        while !waiter.is_finished() {
            for i in [0, 1, 4] {
                let st = status(&https[i]);
                assert_eq!(
                    st["height"].as_u64(),
                    Some(h0),
                    "{} moved with two of four validators down: {st}",
                    net.nodes[i].name
                );
            }
            std::thread::sleep(POLL);
        }
        let (code, text) = waiter.join().unwrap();
        (code, serde_json::from_str::<Value>(&text).unwrap())
    });
    assert_eq!(code, 504, "{answer}");
    assert_eq!(answer["error"]["code"], "timeout", "{answer}");
    let tx_id = answer["error"]["tx_id"].as_str().unwrap().to_owned();
    for i in [0, 1, 4] {
        assert_eq!(height(&https[i]), h0, "{}", net.nodes[i].name);
    }
    // Both survivors hold it (the other one by gossip).
    for i in [0, 1] {
        let (_, st) = get_json(&https[i], &format!("/v1/txs/{tx_id}"));
        assert_eq!(st["status"], "pending", "{}: {st}", net.nodes[i].name);
    }

    // Back to four, on their data folders: the same chain, nothing committed lost.
    let restarted = Instant::now();
    nodes[2] = Some(net.start(2));
    nodes[3] = Some(net.start(3));
    for i in [2, 3] {
        assert!(height(&https[i]) >= h0, "{} lost blocks", net.nodes[i].name);
    }
    same_blocks(&all, h0);
    assert_eq!(get_json(&https[1], &first_path), before);
    let Some(resume_within) = resume_within else {
        assert_no_faults(&mut nodes);
        return;
    };

    // Progress resumes and the pending transaction becomes final.
    let end = restarted + resume_within;
    let committed_at = loop {
        let (_, st) = get_json(&https[0], &format!("/v1/txs/{tx_id}"));
        if st["status"] == "committed" {
            break st["height"].as_u64().unwrap();
        }
        assert_eq!(st["status"], "pending", "{st}");
        assert!(
            Instant::now() < end,
            "the pending transaction was not final within {resume_within:?} of the restart; \
             logs:\n{}",
            logs(&mut nodes)
        );
        std::thread::sleep(POLL);
    };
    eprintln!(
        "pending transaction final at height {committed_at}, {:?} after the restart",
        restarted.elapsed()
    );
    assert!(committed_at > h0);
    let (h, _) = converge(&all, committed_at);
    same_blocks(&all, h);
    let (code, v) = get_json(
        &https[4],
        &verdict_path(2, &check_code_of(&pending).to_string()),
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["final"], true);
    assert_no_faults(&mut nodes);
}

/// Scenario 3: with two of four validators down nothing becomes final and nothing
/// forks; restarted, they are on the same chain, progress resumes and the transaction
/// accepted while they were down becomes final.
///
/// This once stalled for good: the survivors' re-sent votes (`Event::Rebroadcast`) were
/// the same bytes, hence the same gossipsub message id (a content hash), and gossipsub
/// refused them as duplicates for as long as its cache remembered the first — on a quiet
/// network, indefinitely. The consensus envelope now carries a publish attempt counter
/// outside the signed bytes (`ebill_net::gossip::encode_consensus`).
#[test]
fn two_of_four_validators_down_nothing_becomes_final_then_progress_resumes() {
    two_of_four_down_then_restarted(Some(WAIT));
}

/// Two reimbursing units confirm the same bill through two validators at the same
/// moment: exactly one wins, the other is told `already_reimbursed`.
#[test]
fn the_same_bill_reimbursed_twice_at_once_through_two_validators() {
    let _one = one_cluster();
    let net = Devnet::init(4, 0);
    let mut nodes = net.start_first(4);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 3);

    // A second reimbursing unit, registered by regulators 0 and 1 (threshold 2).
    let other = Keypair::from_seed([7; 32]);
    let other_code = dev::test_credit_code('A', 9);
    assert_ne!(other_code, net.reimburser_code);
    let reg = Tx {
        nonce: 1,
        body: TxBody::RegisterReimburser {
            credit_code: other_code,
            name: "另一家保险公司".into(),
            public_key: other.public(),
        },
    }
    .sign_regulators(
        &net.chain_id,
        &[(0, &net.regulators[0]), (1, &net.regulators[1])],
    );
    let (code, text) = https[0].post("/v1/txs?wait=commit", &serde_json::to_string(&reg).unwrap());
    assert_eq!(code, 200, "{text}");

    let bill = net.issue_tx(1);
    let r = submit_batch_final(&https[1], std::slice::from_ref(&bill));
    // Both validators must know the unit and the bill before the race starts.
    converge(&all, max_height(&r));
    let cc = check_code_of(&bill);
    let TxBody::IssueBill(b) = &bill.tx.body else {
        unreachable!()
    };
    let confirm = |unit: CreditCode, key: &Keypair| {
        serde_json::to_string(
            &Tx {
                nonce: 2,
                body: TxBody::ConfirmReimbursed {
                    unit,
                    bill: b.id(),
                    check_code: cc,
                },
            }
            .sign_unit(&net.chain_id, key),
        )
        .unwrap()
    };
    let a = confirm(net.reimburser_code, &net.reimburser);
    let c = confirm(other_code, &other);
    let start = Barrier::new(2);
    let (ra, rc) = std::thread::scope(|s| {
        let ta = s.spawn(|| {
            start.wait();
            https[2].post("/v1/txs?wait=commit", &a)
        });
        let tc = s.spawn(|| {
            start.wait();
            https[3].post("/v1/txs?wait=commit", &c)
        });
        (ta.join().unwrap(), tc.join().unwrap())
    });
    let answers = [(net.reimburser_code, ra), (other_code, rc)];
    let winners: Vec<_> = answers
        .iter()
        .filter(|(_, (code, _))| *code == 200)
        .collect();
    let losers: Vec<_> = answers
        .iter()
        .filter(|(_, (code, _))| *code != 200)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    assert_eq!(losers.len(), 1, "{answers:?}");
    let (loser_code, loser_text) = &losers[0].1;
    assert_eq!(*loser_code, 409, "{loser_text}");
    let lv: Value = serde_json::from_str(loser_text).unwrap();
    assert_eq!(lv["error"]["code"], "already_reimbursed", "{lv}");

    let winner = winners[0].0.to_string();
    let won: Value = serde_json::from_str(&winners[0].1.1).unwrap();
    let (h, _) = converge(&all, won["height"].as_u64().unwrap());
    same_blocks(&all, h);
    let path = verdict_path(1, &cc.to_string());
    let (code, first) = get_json(&https[0], &path);
    assert_eq!(code, 200, "{first}");
    assert_eq!(first["status"], "reimbursed");
    let history = first["history"].as_array().unwrap();
    let reimbursed: Vec<&Value> = history
        .iter()
        .filter(|e| e["action"] == "confirm_reimbursed")
        .collect();
    assert_eq!(reimbursed.len(), 1, "{first}");
    assert_eq!(reimbursed[0]["by"], winner.as_str(), "{first}");
    for http in &https[1..] {
        assert_eq!(get_json(http, &path), (200, first.clone()));
    }
    assert_no_faults(&mut nodes);
}

/// An observer started after 5,000 bills syncs from height 0, re-executes them all
/// and ends on the validators' tip with their verdicts.
#[test]
fn a_late_observer_syncs_five_thousand_bills_from_height_zero() {
    let _one = one_cluster();
    let net = Devnet::init(4, 1);
    let mut nodes = net.start_first(4);
    let https = https_of(&nodes);
    let validators: Vec<&Http> = https.iter().collect();
    wait_peers(&validators, 3);

    let mut bills: Vec<(u64, String)> = Vec::new();
    for batch in 0..5u64 {
        let txs: Vec<SignedTx> = (1..=1000).map(|n| net.issue_tx(batch * 1000 + n)).collect();
        submit_batch_final(&https[(batch % 4) as usize], &txs);
        bills.extend(
            txs.iter()
                .enumerate()
                .map(|(i, t)| (batch * 1000 + 1 + i as u64, check_code_of(t).to_string())),
        );
    }
    let (h, tip) = converge(&validators, 1);

    let started = Instant::now();
    nodes.push(Some(net.start(4)));
    let observer = Http::new(&nodes[4].as_ref().unwrap().url);
    assert_eq!(status(&observer)["role"], "observer");
    wait_height(&observer, h, "the late observer");
    eprintln!("observer synced {h} blocks in {:?}", started.elapsed());
    let mut everyone = validators.clone();
    everyone.push(&observer);
    let (h2, tip2) = converge(&everyone, h);
    assert_eq!((h2, &tip2), (h, &tip), "the chain moved meanwhile");
    same_blocks(&everyone, h);
    // It executed every transaction itself.
    let committed = |http: &Http| {
        let (_, text) = http.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix("ebill_committed_txs_total "))
            .unwrap()
            .trim()
            .to_owned()
    };
    assert_eq!(committed(&observer), committed(&https[0]));
    assert_eq!(committed(&observer), "5000");
    // What the network and consensus refused or dropped is on /metrics.
    let (_, text) = https[0].get("/metrics");
    let value = |needle: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(needle))
            .unwrap_or_else(|| panic!("no {needle} in:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    };
    assert!(value("ebill_net_total{kind=\"gossip_accepted\"} ") > 0);
    value("ebill_dropped_total{queue=\"outbound_queue\"} ");
    value("ebill_dropped_total{queue=\"net_events\"} ");
    value("ebill_net_total{kind=\"gossip_rejected\"} ");
    value("ebill_consensus_events{kind=\"bad_signatures\"} ");
    for (number, cc) in bills.iter().step_by(97) {
        let path = verdict_path(*number, cc);
        let (code, v) = get_json(&https[1], &path);
        assert_eq!(code, 200, "{v}");
        assert_eq!(get_json(&observer, &path), (200, v));
    }
    assert_no_faults(&mut nodes);
}

/// A node whose key is in no genesis, dialing every validator: each validator refuses
/// it; it stays at height 0 with no peers while the network goes on, and a transaction
/// sent through it never reaches the validators.
#[test]
fn a_peer_not_on_the_allow_list_is_refused() {
    let _one = one_cluster();
    let net = Devnet::init(4, 0);
    let mut nodes = net.start_first(4);
    let https = https_of(&nodes);
    let all: Vec<&Http> = https.iter().collect();
    wait_peers(&all, 3);

    let key = net.dir.join("outsider.key");
    let out = ebill(
        "http://127.0.0.1:1",
        &["keygen", "-o", key.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api = free_port();
    let mut args: Vec<String> = vec![
        "--genesis".into(),
        net.genesis.display().to_string(),
        "--key".into(),
        key.display().to_string(),
        "--data".into(),
        net.dir.join("outsider-data").display().to_string(),
        "--api".into(),
        format!("127.0.0.1:{api}"),
        "--listen".into(),
        format!("/ip4/127.0.0.1/tcp/{}", free_port()),
        "--role".into(),
        "observer".into(),
    ];
    for i in 0..4 {
        args.push("--peer".into());
        args.push(net.listen_of(i));
    }
    let mut outsider = Node::start(&args, api);
    let outsider_http = Http::new(&outsider.url);

    // Every validator logs that it refused the outsider.
    for (i, n) in nodes.iter_mut().enumerate() {
        n.as_mut()
            .unwrap()
            .wait_for_line("refused a peer that is not allowed", WAIT);
        assert!(n.as_mut().unwrap().running(), "validator {i} stopped");
    }

    // A valid transaction sent through the outsider goes nowhere.
    let injected = net.issue_tx(1);
    let (_, text) = outsider_http.post("/v1/txs", &serde_json::to_string(&injected).unwrap());
    let v: Value = serde_json::from_str(&text).unwrap();
    let injected_id = v["tx_id"]
        .as_str()
        .or(v["error"]["tx_id"].as_str())
        .unwrap_or_else(|| panic!("no tx id: {text}"))
        .to_owned();

    // The network moves on without it.
    let r = submit_batch_final(&https[0], &[net.issue_tx(2)]);
    let (h, _) = converge(&all, max_height(&r));
    assert!(h >= 1);
    // Its side of a connection completes before the validator refuses it, so it may
    // count a validator for the instant until the validator closes it; then none.
    let end = Instant::now() + WAIT;
    loop {
        let st = status(&outsider_http);
        assert_eq!(st["height"], 0, "{st}");
        if st["peers"] == 0 {
            break;
        }
        assert!(Instant::now() < end, "the outsider keeps a peer: {st}");
        std::thread::sleep(POLL);
    }
    for http in &https {
        let (code, v) = get_json(http, &format!("/v1/txs/{injected_id}"));
        assert_eq!(code, 404, "a validator has the outsider's transaction: {v}");
    }
    assert!(outsider.running());
    assert_eq!(height(&outsider_http), 0);
    assert_no_faults(&mut nodes);
}

/// Issue 12's walk-through on a real network: three regulators (threshold 2) of a
/// 4-validator chain admit a hospital with `ebill gov propose` and `ebill gov approve`
/// (sent to different validators), see it with `ebill units`, watch it issue a bill
/// that verifies on another validator, then revoke it: its next bill is refused
/// `unit_revoked` while the first still verifies, and all four hold the same chain.
#[test]
fn three_regulators_admit_watch_and_revoke_a_hospital_on_four_validators() {
    let _one = one_cluster();
    let net = Devnet::init(4, 0);
    let mut nodes = net.start_first(4);
    let https = https_of(&nodes);
    let refs: Vec<&Http> = https.iter().collect();
    wait_peers(&refs, 3);
    let url = |i: usize| nodes[i].as_ref().unwrap().url.clone();
    let urls: Vec<String> = (0..4).map(url).collect();
    let run = |node: usize, args: &[&str]| {
        let out = ebill(&urls[node], args);
        (out.status.success(), json_of(&out))
    };
    let ok = |node: usize, args: &[&str]| {
        let (ok, v) = run(node, args);
        assert!(ok, "ebill {args:?} on validator {node} failed: {v}");
        v
    };
    let reg = |i: usize| net.regulator_key_files[i].to_str().unwrap().to_owned();
    // A command answers when its transaction is final on the validator it was sent to;
    // before the next command goes to another one, that one must have the block too.
    let every_validator_at = |from: usize| {
        let h = height(&https[from]);
        for (i, http) in https.iter().enumerate() {
            wait_height(http, h, &format!("validator {i} catching up with {from}"));
        }
    };
    assert_eq!(
        net.regulators.len(),
        3,
        "genesis init makes three regulators"
    );
    let list = ok(0, &["gov", "list"]);
    assert_eq!(list["regulators"]["threshold"], 2, "{list}");

    // A new hospital's key, made where the hospital is.
    let code = dev::test_credit_code('C', 7).to_string();
    let key = net.dir.join("hospital.key");
    let key = key.to_str().unwrap();
    ok(
        0,
        &[
            "keygen",
            "-o",
            key,
            "--credit-code",
            &code,
            "--role",
            "issuer",
        ],
    );
    let issue = |node: usize, number: u64| {
        let mut bill = dev::sample_bill(number, 1250, 0);
        bill.issuer = CreditCode::parse(&code).unwrap();
        bill.code = ebill_types::BillCode::parse("33020126").unwrap();
        let path = net.dir.join(format!("hospital-bill-{number}.json"));
        std::fs::write(&path, serde_json::to_string(&bill).unwrap()).unwrap();
        run(
            node,
            &["issue", "--key", key, "--now", path.to_str().unwrap()],
        )
    };

    // 1. Regulator 0 proposes through validator 0; regulator 1 approves through
    //    validator 1; the action executes in the block of the approval.
    let proposed = ok(
        0,
        &[
            "gov",
            "propose",
            "register-issuer",
            "--credit-code",
            &code,
            "--name",
            "宁波市第二医院",
            "--key-file",
            key,
            "--prefixes",
            "3302",
            "--valid-until",
            "2099-12-31",
            "--key",
            &reg(0),
        ],
    );
    let id = proposed["proposal_id"].as_str().unwrap().to_owned();
    every_validator_at(0);
    let shown = ok(2, &["gov", "show", &id]);
    assert_eq!(shown["proposal"]["status"], "pending", "{shown}");
    assert_eq!(shown["proposal"]["approvals_missing"], 1, "{shown}");
    let voted = ok(1, &["gov", "approve", &id, "--key", &reg(1)]);
    assert_eq!(voted["proposal_status"], "executed", "{voted}");

    // 2. Every validator shows the unit; it issues through validator 2, and the bill
    //    verifies on validator 3.
    every_validator_at(1);
    for i in 0..https.len() {
        let unit = ok(i, &["units", &code]);
        assert_eq!(unit["unit"]["status"], "active", "validator {i}: {unit}");
        assert_eq!(unit["proof_checked"], true, "validator {i}: {unit}");
    }
    let (issued, first) = issue(2, 1);
    assert!(issued, "{first}");
    let check = first["check_code"].as_str().unwrap().to_owned();
    every_validator_at(2);
    let verdict = ok(3, &["verify", "33020126", "0000000001", &check]);
    assert_eq!(verdict["authentic"], true, "{verdict}");

    // 3. Regulator 2 proposes the revocation, regulator 0 approves: the next bill is
    //    refused, the first one still verifies.
    let revoke = ok(
        3,
        &[
            "gov",
            "propose",
            "revoke",
            "--credit-code",
            &code,
            "--reason",
            "执业许可证吊销",
            "--key",
            &reg(2),
        ],
    );
    let rid = revoke["proposal_id"].as_str().unwrap().to_owned();
    every_validator_at(3);
    let voted = ok(0, &["gov", "approve", &rid, "--key", &reg(0)]);
    assert_eq!(voted["proposal_status"], "executed", "{voted}");
    every_validator_at(0);
    let (refused, v) = issue(1, 2);
    assert!(!refused, "a revoked hospital issued: {v}");
    assert_eq!(v["error"]["code"], "unit_revoked", "{v}");
    let verdict = ok(2, &["verify", "33020126", "0000000001", &check]);
    assert_eq!(verdict["authentic"], true, "{verdict}");
    assert_eq!(ok(3, &["units", &code])["unit"]["status"], "revoked");

    let (tip, _) = converge(&refs, height(&https[0]));
    same_blocks(&refs, tip);
    assert_no_faults(&mut nodes);
}
