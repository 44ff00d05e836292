//! A regulator's audit on a real network (`ebill genesis init`, loopback, free ports):
//! four validators and two regulators' observers, the walk-through of the audit issue's
//! "done when".
//!
//! Each observer re-executes every block and co-signs its checkpoint; the co-signatures
//! are gossiped to every node, served by `GET /v1/checkpoints/latest` and carried by
//! proof bundles. A bundle verified with `ebill verify-proof --witnesses 2` passes; with a
//! forged or repeated co-signature it is refused, naming it; a version 2 bundle carries
//! no witnesses and is refused too.
//!
//! Then a workload with planted anomalies (a numbering gap, a red reversal after a lock,
//! a red-reversal rate above the threshold, bills outside the issuer's declared hours)
//! goes to the validators, and the regulator, on its observer's operator listener, finds
//! each planted case with `ebill audit anomalies`, exports the chain as Parquet with a
//! manifest its observer signs, verifies the manifest against the genesis, and gets from
//! DuckDB over the files the statistics of `GET /admin/v1/stats`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebill_types::dev;
use serde_json::Value;
use support::{Http, Node, ebill, ebill_bin, free_port, json_of};

/// Bound on every wait for a state.
const WAIT: Duration = Duration::from_secs(90);
/// Pause between two polls of a node's HTTP state.
const POLL: Duration = Duration::from_millis(100);

fn get_json(http: &Http, path: &str) -> (u16, Value) {
    let (status, body) = http.get(path);
    let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
    (status, v)
}

/// `ebill --json verify-proof FILE --genesis G --witnesses K`: success and its JSON.
fn verify_proof(bundle: &Path, genesis: &Path, witnesses: usize) -> (bool, Value) {
    let out = Command::new(ebill_bin())
        .arg("--json")
        .arg("verify-proof")
        .arg(bundle)
        .arg("--genesis")
        .arg(genesis)
        .arg("--witnesses")
        .arg(witnesses.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run ebill");
    (out.status.success(), json_of(&out))
}

/// Waits until `f` gives `Some`, polling; fails after `WAIT` naming `what`.
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < end, "{what}: not within {WAIT:?}");
        std::thread::sleep(POLL);
    }
}

#[test]
fn regulators_observers_cosign_and_audit_a_planted_workload() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let support::GenesisInit {
        answer: init,
        genesis_path,
        genesis,
    } = support::genesis_init(&dir, &["--validators", "4", "--observers", "2"]);
    // Both observers belong to a regulator, by default.
    let observers = genesis["observers"].as_array().unwrap();
    assert_eq!(observers.len(), 2);
    assert!(
        observers.iter().all(|o| o["regulator"].is_string()),
        "{genesis}"
    );

    let configs: Vec<PathBuf> = init["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| PathBuf::from(n["config"].as_str().unwrap()))
        .collect();
    assert_eq!(configs.len(), 6);
    // Observer 0 is the regulator's audit node: thresholds that the planted workload
    // below crosses, and its operator listener.
    let issuer_key = init["issuers"][0]["key_file"].as_str().unwrap().to_owned();
    let kf =
        ebill_types::keyfile::KeyFile::from_json(&std::fs::read_to_string(&issuer_key).unwrap())
            .unwrap();
    let issuer_code = kf.credit_code.unwrap();
    let mut audit_config = std::fs::read_to_string(&configs[4]).unwrap();
    audit_config.push_str(&format!(
        "\n[audit]\nreversal_rate_max_permille = 300\nreversal_rate_min_bills = 3\n\
         numbering_max_gap = 2\n[audit.declared_hours]\n{} = \"{}\"\n",
        issuer_code.as_str(),
        support::hours_excluding_now()
    ));
    std::fs::write(&configs[4], audit_config).unwrap();
    let admin_port = free_port();
    let admin = format!("http://127.0.0.1:{admin_port}");
    let mut nodes: Vec<Node> = configs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i == 4 {
                Node::start_config_with(
                    c,
                    &["--admin-api".into(), format!("127.0.0.1:{admin_port}")],
                )
            } else {
                Node::start_config(c)
            }
        })
        .collect();
    for n in &mut nodes[4..] {
        assert!(n.logged("regulator's witness"), "{:?}", n.log);
    }
    let https: Vec<Http> = nodes.iter().map(|n| Http::new(&n.url)).collect();

    // Every node connected to the five others before the bill goes in.
    for http in &https {
        wait_for("peers", || {
            let (_, s) = get_json(http, "/v1/status");
            (s["peers"].as_u64().unwrap_or(0) >= 5).then_some(())
        });
    }

    // A bill, issued through validator 0.
    let mut bill = dev::sample_bill(1, 1250, 0);
    bill.issuer = issuer_code;
    let bill_path = tmp.path().join("bill.json");
    std::fs::write(&bill_path, serde_json::to_string(&bill).unwrap()).unwrap();
    let out = ebill(
        &nodes[0].url,
        &[
            "issue",
            "--key",
            &issuer_key,
            "--now",
            bill_path.to_str().unwrap(),
        ],
    );
    let issued = json_of(&out);
    assert!(out.status.success(), "issue: {issued}");
    let check_code = issued["check_code"].as_str().unwrap().to_owned();
    let bill_height = issued["height"].as_u64().unwrap();
    let proof_path = format!(
        "/v1/bills/{}/{}/proof?check_code={check_code}",
        bill.code, bill.number
    );

    // Validator 0's newest co-signed checkpoint reaches the bill's block, with both
    // observers' co-signatures and the validators' certificate; no conflicts.
    let latest = wait_for("a checkpoint co-signed by both observers", || {
        let (code, v) = get_json(&https[0], "/v1/checkpoints/latest");
        (code == 200
            && v["checkpoint"]["height"].as_u64() >= Some(bill_height)
            && v["cosignatures"].as_array().map(Vec::len) == Some(2))
        .then_some(v)
    });
    assert_eq!(latest["witnesses_in_genesis"], 2);
    assert_eq!(
        latest["certificate"]["block"], latest["checkpoint"]["block_hash"],
        "{latest}"
    );
    assert!(
        latest["conflicts"].as_array().unwrap().is_empty(),
        "{latest}"
    );
    // Every node keeps them, observers too.
    for http in &https[1..] {
        wait_for("co-signatures on every node", || {
            let (code, v) = get_json(http, "/v1/checkpoints/latest");
            (code == 200 && v["cosignatures"].as_array().map(Vec::len) == Some(2)).then_some(())
        });
    }

    // A bundle that carries both co-signatures of its state checkpoint (the tip's: the
    // chain is idle after the bill, so the observers co-sign it soon).
    let bundle: Value = wait_for("a bundle with two witnesses", || {
        let (code, v) = get_json(&https[0], &proof_path);
        assert_eq!(code, 200, "{v}");
        (v["version"] == 3 && v["witnesses"].as_array().map(Vec::len) == Some(2)).then_some(v)
    });
    let good = tmp.path().join("good.proof.json");
    std::fs::write(&good, bundle.to_string()).unwrap();
    let (ok, v) = verify_proof(&good, &genesis_path, 2);
    assert!(ok, "a bundle with two witnesses: {v}");
    assert_eq!(
        v["witnesses"]["counted"].as_array().unwrap().len(),
        2,
        "{v}"
    );
    let (ok, v) = verify_proof(&good, &genesis_path, 3);
    assert!(!ok, "three witnesses of two: {v}");
    assert_eq!(v["error"]["code"], "witnesses");

    // A forged co-signature: observer 1's key id with observer 0's signature.
    let mut forged = bundle.clone();
    forged["witnesses"][1]["signature"] = bundle["witnesses"][0]["signature"].clone();
    let forged_path = tmp.path().join("forged.proof.json");
    std::fs::write(&forged_path, forged.to_string()).unwrap();
    let (ok, v) = verify_proof(&forged_path, &genesis_path, 2);
    assert!(!ok, "a forged co-signature must not count: {v}");
    assert_eq!(v["error"]["code"], "witnesses", "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    let forged_id = bundle["witnesses"][1]["key_id"].as_str().unwrap();
    assert!(
        message.contains(forged_id) && message.contains("bad_signature"),
        "the error names the forged co-signature: {message}"
    );

    // The same witness twice counts once.
    let mut doubled = bundle.clone();
    doubled["witnesses"][1] = bundle["witnesses"][0].clone();
    let doubled_path = tmp.path().join("doubled.proof.json");
    std::fs::write(&doubled_path, doubled.to_string()).unwrap();
    let (ok, v) = verify_proof(&doubled_path, &genesis_path, 2);
    assert!(!ok, "a repeated co-signature must count once: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate"),
        "{v}"
    );

    // A version 2 bundle carries no witnesses.
    let (code, v2) = get_json(&https[0], &format!("{proof_path}&version=2"));
    assert_eq!(code, 200, "{v2}");
    let v2_path = tmp.path().join("v2.proof.json");
    std::fs::write(&v2_path, v2.to_string()).unwrap();
    let (ok, v) = verify_proof(&v2_path, &genesis_path, 1);
    assert!(!ok, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("carries no witnesses"),
        "{v}"
    );

    // The planted workload, through validators 1 to 3 in turn: bills 2, 3 and 9 (six
    // numbers skipped after 3: a gap above 2), bill 2 locked, unlocked and red-reversed
    // (a reversal after a lock), bill 3 red-reversed (2 of 4 bills: above 300 per mille),
    // bill 9 reimbursed; every bill issued now, outside the declared hours.
    let reimburser_key = init["reimbursers"][0]["key_file"]
        .as_str()
        .unwrap()
        .to_owned();
    let via = |i: usize| nodes[1 + i % 3].url.clone();
    let mut check_codes = std::collections::BTreeMap::new();
    check_codes.insert(1u64, check_code.clone());
    for (i, n) in [2u64, 3, 9].into_iter().enumerate() {
        let mut b = dev::sample_bill(n, 1000 * n + 7, 0);
        b.issuer = issuer_code;
        let path = tmp.path().join(format!("bill-{n}.json"));
        std::fs::write(&path, serde_json::to_string(&b).unwrap()).unwrap();
        let out = ebill(
            &via(i),
            &[
                "issue",
                "--key",
                &issuer_key,
                "--now",
                path.to_str().unwrap(),
            ],
        );
        let v = json_of(&out);
        assert!(out.status.success(), "issue {n}: {v}");
        check_codes.insert(n, v["check_code"].as_str().unwrap().to_owned());
    }
    let mut last_height = 0;
    let mut run = |i: usize, args: &[&str], n: u64| {
        let number = format!("{n:010}");
        let mut all: Vec<&str> = args.to_vec();
        all.extend([
            bill.code.as_str(),
            number.as_str(),
            check_codes[&n].as_str(),
        ]);
        let out = ebill(&via(i), &all);
        let v = json_of(&out);
        assert!(out.status.success(), "{args:?} {n}: {v}");
        last_height = last_height.max(v["height"].as_u64().unwrap_or(0));
    };
    run(0, &["lock", "--key", &reimburser_key], 2);
    run(1, &["unlock", "--key", &reimburser_key], 2);
    run(
        2,
        &["reverse", "--key", &issuer_key, "--reason", "开错了"],
        2,
    );
    run(
        0,
        &["reverse", "--key", &issuer_key, "--reason", "重复开具"],
        3,
    );
    run(1, &["reimburse", "--key", &reimburser_key], 9);
    wait_for("the audit observer at the workload's last block", || {
        let (_, s) = get_json(&https[4], "/v1/status");
        (s["height"].as_u64() >= Some(last_height)).then_some(())
    });

    // The regulator finds each planted case, with its evidence.
    let anomalies = |rule: &str| -> Vec<Value> {
        let out = ebill(&admin, &["audit", "anomalies", "--rule", rule]);
        let v = json_of(&out);
        assert!(out.status.success(), "audit anomalies --rule {rule}: {v}");
        v["hits"].as_array().unwrap().clone()
    };
    let numbers = |hits: &[Value]| -> Vec<String> {
        let mut n: Vec<String> = hits
            .iter()
            .map(|h| h["bill"]["number"].as_str().unwrap_or("").to_owned())
            .collect();
        n.sort();
        n
    };
    let gap = anomalies("numbering_gap");
    assert_eq!(numbers(&gap), vec!["0000000009"], "{gap:?}");
    assert_eq!(gap[0]["evidence_count"], 2, "{gap:?}");
    let after_lock = anomalies("reversal_after_lock");
    assert_eq!(numbers(&after_lock), vec!["0000000002"], "{after_lock:?}");
    let rate = anomalies("reversal_rate");
    assert_eq!(rate.len(), 1, "{rate:?}");
    assert_eq!(rate[0]["issuer"], issuer_code.as_str(), "{rate:?}");
    assert_eq!(rate[0]["evidence_count"], 2, "{rate:?}");
    let outside = anomalies("outside_hours");
    assert_eq!(
        numbers(&outside),
        vec!["0000000001", "0000000002", "0000000003", "0000000009"],
        "{outside:?}"
    );
    for hits in [&gap, &after_lock, &rate, &outside] {
        assert!(
            hits.iter().all(|h| h["version"].as_u64() >= Some(1)),
            "{hits:?}"
        );
    }

    // The same statistics from the API and from DuckDB over a Parquet export that the
    // observer signs and the genesis verifies.
    let (code, stats) = get_json(&Http::new(&admin), "/admin/v1/stats");
    assert_eq!(code, 200, "{stats}");
    assert_eq!(stats["total"]["issued"]["count"], 4, "{stats}");
    assert_eq!(stats["total"]["reversed"]["count"], 2, "{stats}");
    assert_eq!(stats["total"]["reimbursed"]["count"], 1, "{stats}");
    let export_dir = tmp.path().join("export");
    let out = ebill(
        &admin,
        &[
            "export",
            "--format",
            "parquet",
            "-o",
            export_dir.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "export: {}", json_of(&out));
    let out = ebill(
        &admin,
        &[
            "verify-export",
            export_dir.to_str().unwrap(),
            "--genesis",
            genesis_path.to_str().unwrap(),
        ],
    );
    let v = json_of(&out);
    assert!(out.status.success(), "verify-export: {v}");
    assert!(
        v["signer"].as_str().unwrap().starts_with("observer "),
        "the observer signs its export: {v}"
    );
    if support::duckdb::required_for("the DuckDB part of the regulator's walk-through") {
        support::duckdb::assert_totals_match(&export_dir, "parquet", &stats);
    }

    // Nothing went wrong anywhere; every node stops cleanly.
    for n in &mut nodes {
        for bad in ["CONFLICT", "not co-signing", "HALT", "co-signature refused"] {
            let hits = n.lines_with(bad);
            assert!(hits.is_empty(), "a node logged {bad:?}: {hits:?}");
        }
    }
    for n in nodes {
        assert!(n.stop().success(), "a node did not stop cleanly");
    }
}
