//! Co-signed checkpoints on a real network (`ebill genesis init`, loopback, free ports):
//! four validators and two regulators' observers. Each observer re-executes every block
//! and co-signs its checkpoint; the co-signatures are gossiped to every node, served by
//! `GET /v1/checkpoints/latest` and carried by proof bundles. A bundle verified with
//! `ebill verify-proof --witnesses 2` passes; with a forged or repeated co-signature it is
//! refused, naming it; a version 2 bundle carries no witnesses and is refused too.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ebill_types::dev;
use serde_json::Value;
use support::{Http, Node, ebill, ebill_bin, json_of};

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
fn regulators_observers_cosign_and_bundles_need_their_witnesses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("net");
    let out = ebill(
        "http://127.0.0.1:1",
        &[
            "genesis",
            "init",
            "--validators",
            "4",
            "--observers",
            "2",
            "--out",
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "genesis init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let init = json_of(&out);
    let genesis_path = PathBuf::from(init["genesis"].as_str().unwrap());
    let genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(&genesis_path).unwrap()).unwrap();
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
    let mut nodes: Vec<Node> = configs.iter().map(|c| Node::start_config(c)).collect();
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
    let issuer_key = init["issuers"][0]["key_file"].as_str().unwrap().to_owned();
    let kf =
        ebill_types::keyfile::KeyFile::from_json(&std::fs::read_to_string(&issuer_key).unwrap())
            .unwrap();
    let mut bill = dev::sample_bill(1, 1250, 0);
    bill.issuer = kf.credit_code.unwrap();
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
