//! End to end on one machine: the real `ebill-node --dev` on a free loopback port, driven
//! by the real `ebill` binary and by HTTP. Every lifecycle action and every refusal, then a
//! restart on the same data folder that must serve all of it again, unchanged.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use ebill_types::dev;
use ebill_types::{Auth, BillCode, Tx, TxBody};
use serde_json::Value;
use support::{Http, Node, ebill, json_of};

/// Issues `bill` (a JSON file path) with the dev issuer; returns the client's JSON.
fn issue(url: &str, keys: &std::path::Path, bill: &std::path::Path) -> Value {
    let out = ebill(
        url,
        &[
            "issue",
            "--key",
            keys.join("issuer.key").to_str().unwrap(),
            "--now",
            bill.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "issue failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    json_of(&out)
}

fn bill_file(dir: &std::path::Path, number: u64) -> std::path::PathBuf {
    let bill = dev::sample_bill(number, 1250, 0);
    let path = dir.join(format!("bill-{number}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&bill).unwrap()).unwrap();
    path
}

/// Runs a lifecycle command; returns (exit ok, JSON).
fn act(url: &str, keys: &std::path::Path, cmd: &str, key: &str, ids: [&str; 3]) -> (bool, Value) {
    let key_path = keys.join(key);
    let mut args = vec![cmd, "--key", key_path.to_str().unwrap()];
    if cmd == "reverse" {
        args.extend(["--reason", "开错金额"]);
    }
    args.extend(ids);
    let out = ebill(url, &args);
    (out.status.success(), json_of(&out))
}

fn error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

#[test]
fn dev_chain_end_to_end_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let keys = tmp.path().join("keys");
    let node = Node::start_dev(&data);
    let url = node.url.clone();
    let http = Http::new(&url);

    let out = ebill(&url, &["dev-keys", "--out", keys.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Issue, verify online, take a proof and verify it offline.
    let b1 = issue(&url, &keys, &bill_file(tmp.path(), 1));
    assert_eq!(b1["status"], "committed");
    let check1 = b1["check_code"].as_str().unwrap().to_owned();
    let ids1 = ["33010126", "0000000001", check1.as_str()];
    let out = ebill(&url, &["verify", ids1[0], ids1[1], ids1[2]]);
    assert!(out.status.success());
    let verdict = json_of(&out);
    assert_eq!(verdict["authentic"], true);
    assert_eq!(verdict["final"], true);
    assert_eq!(verdict["status"], "issued");
    assert_eq!(verdict["total"], "12.50");
    assert_ne!(verdict["payer"]["name"], "张三", "payer must be masked");

    let bundle = tmp.path().join("bundle.json");
    let out = ebill(
        &url,
        &[
            "proof",
            ids1[0],
            ids1[1],
            ids1[2],
            "-o",
            bundle.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let genesis = support::repo_root().join("genesis/dev.json");
    let out = ebill(
        &url,
        &[
            "verify-proof",
            bundle.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A tampered bundle fails and names the broken link.
    let text = std::fs::read_to_string(&bundle).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let tampered_path = tmp.path().join("tampered.json");
    let s = serde_json::to_string(&v)
        .unwrap()
        .replacen("12.50", "99.50", 1);
    v = serde_json::from_str(&s).unwrap();
    std::fs::write(&tampered_path, serde_json::to_string(&v).unwrap()).unwrap();
    let out = ebill(
        &url,
        &[
            "verify-proof",
            tampered_path.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a tampered bundle must fail");
    assert!(!String::from_utf8_lossy(&out.stdout).is_empty());

    // Lock, unlock, lock, reimburse; a second reimbursement is refused.
    assert!(act(&url, &keys, "lock", "reimburser.key", ids1).0);
    assert!(act(&url, &keys, "unlock", "reimburser.key", ids1).0);
    assert!(act(&url, &keys, "lock", "reimburser.key", ids1).0);
    assert!(act(&url, &keys, "reimburse", "reimburser.key", ids1).0);
    let (ok, v) = act(&url, &keys, "reimburse", "reimburser.key", ids1);
    assert!(!ok);
    assert_eq!(error_code(&v), "already_reimbursed");
    // A bundle taken now proves "reimbursed as of height H" with the state tree; the
    // one taken before the reimbursement still verifies, but only as "issued as of
    // H0", and a desk that demands height H or a fresh state refuses it.
    let after = tmp.path().join("after.json");
    let out = ebill(
        &url,
        &[
            "proof",
            ids1[0],
            ids1[1],
            ids1[2],
            "-o",
            after.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    let verify = |path: &std::path::Path, extra: &[&str]| {
        let mut args = vec![
            "verify-proof",
            path.to_str().unwrap(),
            "--genesis",
            genesis.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = ebill(&url, &args);
        (out.status.success(), json_of(&out))
    };
    let (ok, new) = verify(&after, &[]);
    assert!(ok, "{new}");
    assert_eq!(new["status"], "reimbursed");
    assert_eq!(new["state_proved"], true);
    let h = new["state_height"].as_u64().unwrap();
    let (ok, old) = verify(&bundle, &[]);
    assert!(ok, "{old}");
    assert_eq!(old["status"], "issued");
    let h0 = old["state_height"].as_u64().unwrap();
    assert!(h0 < h, "{h0} < {h}");
    let min = h.to_string();
    let (ok, v) = verify(&bundle, &["--min-height", &min]);
    assert!(!ok);
    assert_eq!(error_code(&v), "stale_state");
    let (ok, v) = verify(&after, &["--min-height", &min]);
    assert!(ok, "{v}");
    let (ok, v) = verify(&bundle, &["--max-age", "0"]);
    assert!(!ok);
    assert_eq!(error_code(&v), "stale_state");

    // Reversing a reimbursed bill is refused.
    let (ok, v) = act(&url, &keys, "reverse", "issuer.key", ids1);
    assert!(!ok);
    assert_eq!(error_code(&v), "already_reimbursed");

    // Reverse bill 2, exchange bill 3.
    let b2 = issue(&url, &keys, &bill_file(tmp.path(), 2));
    let check2 = b2["check_code"].as_str().unwrap().to_owned();
    let ids2 = ["33010126", "0000000002", check2.as_str()];
    assert!(act(&url, &keys, "reverse", "issuer.key", ids2).0);
    let (ok, v) = act(&url, &keys, "reimburse", "reimburser.key", ids2);
    assert!(!ok);
    assert_eq!(error_code(&v), "already_reversed");
    let b3 = issue(&url, &keys, &bill_file(tmp.path(), 3));
    let check3 = b3["check_code"].as_str().unwrap().to_owned();
    let ids3 = ["33010126", "0000000003", check3.as_str()];
    assert!(act(&url, &keys, "exchange", "issuer.key", ids3).0);
    let (ok, v) = act(&url, &keys, "lock", "reimburser.key", ids3);
    assert!(!ok);
    assert_eq!(error_code(&v), "paper_exchanged");

    // Duplicate bill.
    let out = ebill(
        &url,
        &[
            "issue",
            "--key",
            keys.join("issuer.key").to_str().unwrap(),
            "--now",
            bill_file(tmp.path(), 1).to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert_eq!(error_code(&json_of(&out)), "bill_exists");

    // A lock held by another unit: register a second reimbursing unit (2 of 3 regulators).
    let chain = dev::DEV_CHAIN_ID;
    let regs = dev::dev_regulator_keys();
    let other = dev::dev_key("e2e-reimburser", 1);
    let other_code = dev::test_credit_code('A', 1);
    let reg = Tx {
        nonce: 1,
        body: TxBody::RegisterReimburser {
            credit_code: other_code,
            name: "另一家保险公司".into(),
            public_key: other.public(),
        },
    }
    .sign_regulators(chain, &[(0, &regs[0]), (2, &regs[2])]);
    let (status, body) = http.post("/v1/txs?wait=commit", &serde_json::to_string(&reg).unwrap());
    assert_eq!(status, 200, "{body}");
    let b4 = issue(&url, &keys, &bill_file(tmp.path(), 4));
    let check4 = b4["check_code"].as_str().unwrap().to_owned();
    let ids4 = ["33010126", "0000000004", check4.as_str()];
    assert!(act(&url, &keys, "lock", "reimburser.key", ids4).0);
    let bill4 = dev::sample_bill(4, 1250, 0).id();
    let lock_other = Tx {
        nonce: 2,
        body: TxBody::Lock {
            unit: other_code,
            bill: bill4,
            check_code: ebill_types::CheckCode::parse(&check4).unwrap(),
        },
    }
    .sign_unit(chain, &other);
    let (status, body) = http.post(
        "/v1/txs?wait=commit",
        &serde_json::to_string(&lock_other).unwrap(),
    );
    assert!(body.contains("locked_by_other"), "{status} {body}");

    // Unknown issuer, prefix not allowed, bad signature: straight to the API.
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let mut stranger_bill = dev::sample_bill(50, 100, now_ms);
    stranger_bill.issuer = dev::test_credit_code('B', 77);
    let t = Tx {
        nonce: 0,
        body: TxBody::IssueBill(stranger_bill),
    }
    .sign_unit(chain, &dev::dev_key("stranger", 0));
    let (_, body) = http.post("/v1/txs", &serde_json::to_string(&t).unwrap());
    assert!(body.contains("unknown_issuer"), "{body}");
    let mut other_prefix = dev::sample_bill(51, 100, now_ms);
    other_prefix.code = BillCode::parse("44010126").unwrap();
    let t = Tx {
        nonce: 0,
        body: TxBody::IssueBill(other_prefix),
    }
    .sign_unit(chain, &dev::dev_issuer_key());
    let (_, body) = http.post("/v1/txs", &serde_json::to_string(&t).unwrap());
    assert!(body.contains("code_prefix_not_allowed"), "{body}");
    let mut t = Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(52, 100, now_ms)),
    }
    .sign_unit(chain, &dev::dev_issuer_key());
    if let Auth::Unit(sig) = &mut t.auth {
        sig.0[5] ^= 0x40;
    }
    let (_, body) = http.post("/v1/txs", &serde_json::to_string(&t).unwrap());
    assert!(body.contains("bad_signature"), "{body}");

    // Issue 16, defects 1-3, straight to the API: a signature only the issuer can make
    // that verify_strict refuses (R = the identity, R with an order-2 component), an
    // amount over the genesis bound, and a name with a zero-width space. Each is refused
    // with its code, and none of the bills exists afterwards.
    let issuer_key = dev::dev_issuer_key();
    let mut hostile = Vec::new();
    for (number, nonce, torsion) in [(60u64, 0u64, 0usize), (61, 5, 4)] {
        let bill = dev::sample_bill(number, 100, now_ms);
        let tx = Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill.clone()),
        };
        let forged = ebill_types::SignedTx {
            auth: Auth::Unit(ebill_types::adversary::sign_with_torsion(
                &issuer_key,
                &tx.signing_bytes(chain),
                nonce,
                torsion,
            )),
            tx,
        };
        hostile.push((forged, "bad_signature", bill));
    }
    let huge = dev::sample_bill(62, 1_000_000_000_001, now_ms);
    let invisible = {
        let mut b = dev::sample_bill(63, 100, now_ms);
        b.payer.name = "张\u{200B}三".into();
        b
    };
    for bill in [huge, invisible] {
        let tx = Tx {
            nonce: 0,
            body: TxBody::IssueBill(bill.clone()),
        }
        .sign_unit(chain, &issuer_key);
        hostile.push((tx, "invalid_bill", bill));
    }
    for (tx, code, bill) in &hostile {
        let (status, body) = http.post("/v1/txs?wait=commit", &serde_json::to_string(tx).unwrap());
        assert_eq!(status, 422, "{body}");
        assert!(body.contains(code), "{code}: {body}");
        let (status, _) = http.get(&format!(
            "/v1/bills/{}/{}?check_code=000000",
            bill.code, bill.number
        ));
        assert_eq!(status, 404, "bill {} must not exist", bill.number);
    }

    // Money as a JSON number and malformed JSON: JSON errors, never plain text.
    let good = Tx {
        nonce: 0,
        body: TxBody::IssueBill(dev::sample_bill(53, 100, now_ms)),
    }
    .sign_unit(chain, &dev::dev_issuer_key());
    let text = serde_json::to_string(&good)
        .unwrap()
        .replace("\"total\":\"1.00\"", "\"total\":1.00");
    assert!(text.contains("\"total\":1.00"), "test setup: {text}");
    let (status, body) = http.post("/v1/txs", &text);
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].is_string());
    let (status, body) = http.post("/v1/txs", "{\"tx\": ");
    assert_eq!(status, 400, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].is_string());

    // A wrong check code and an unknown bill answer the same 404.
    let (s1, wrong) = http.get("/v1/bills/33010126/0000000001?check_code=000000");
    let (s2, unknown) = http.get("/v1/bills/33010126/0000009999?check_code=000000");
    assert_eq!((s1, s2), (404, 404));
    assert_eq!(wrong, unknown);

    // Everything as it is now, to compare after the restart.
    let all_ids = [ids1, ids2, ids3, ids4];
    let before: Vec<String> = all_ids
        .iter()
        .map(|ids| {
            http.get(&format!(
                "/v1/bills/{}/{}?check_code={}",
                ids[0], ids[1], ids[2]
            ))
            .1
        })
        .collect();
    let (_, latest_before) = http.get("/v1/blocks/latest");
    let status = node.stop();
    assert!(status.success(), "node did not stop cleanly: {status}");

    let node = Node::start_dev(&data);
    let http = Http::new(&node.url);
    let after: Vec<String> = all_ids
        .iter()
        .map(|ids| {
            http.get(&format!(
                "/v1/bills/{}/{}?check_code={}",
                ids[0], ids[1], ids[2]
            ))
            .1
        })
        .collect();
    assert_eq!(before, after, "verdicts changed across a restart");
    let (_, latest_after) = http.get("/v1/blocks/latest");
    assert_eq!(latest_before, latest_after);
    let out = ebill(&node.url, &["verify", ids1[0], ids1[1], ids1[2]]);
    assert_eq!(json_of(&out)["status"], "reimbursed");
    // And it still takes new bills.
    let b5 = issue(&node.url, &keys, &bill_file(tmp.path(), 5));
    assert_eq!(b5["status"], "committed");
    assert!(node.stop().success());
}
