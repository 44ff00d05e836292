//! Governance on the dev chain (three regulators, threshold 2), through the `ebill`
//! binary as a regulator would use it: a second hospital admitted by proposal, its bill
//! verified; a revocation that passes, refusing the next bill while the earlier one
//! still verifies; a qualification that lapses and a renewal that restores it; the
//! offline path with two `.sig` files; stale, expired, doubled and non-regulator votes
//! refused with their codes.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ebill_types::{BillCode, Timestamp, dev};
use serde_json::Value;
use support::{Node, ebill, json_of};

struct Env {
    url: String,
    dir: PathBuf,
    keys: PathBuf,
}

impl Env {
    fn run(&self, args: &[&str]) -> (bool, Value) {
        let out = ebill(&self.url, args);
        (out.status.success(), json_of(&out))
    }

    fn ok(&self, args: &[&str]) -> Value {
        let (ok, v) = self.run(args);
        assert!(ok, "ebill {args:?} failed: {v}");
        v
    }

    fn refused(&self, args: &[&str], code: &str) -> Value {
        let (ok, v) = self.run(args);
        assert!(!ok, "ebill {args:?} should have been refused: {v}");
        assert_eq!(v["error"]["code"], code, "ebill {args:?}: {v}");
        v
    }

    fn reg(&self, i: u32) -> String {
        self.keys
            .join(format!("regulator-{i}.key"))
            .to_str()
            .unwrap()
            .to_owned()
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// A new issuer's key file.
    fn keygen(&self, name: &str, code: &str) -> String {
        let p = self.path(name);
        self.ok(&[
            "keygen",
            "-o",
            &p,
            "--credit-code",
            code,
            "--role",
            "issuer",
        ]);
        p
    }

    /// Issues bill `number` of unit `code` under bill code `bill_code` with `key`.
    fn issue(&self, key: &str, code: &str, bill_code: &str, number: u64) -> (bool, Value) {
        let mut bill = dev::sample_bill(number, 1250, 0);
        bill.issuer = ebill_types::CreditCode::parse(code).unwrap();
        bill.code = BillCode::parse(bill_code).unwrap();
        let path = self.dir.join(format!("bill-{code}-{number}.json"));
        std::fs::write(&path, serde_json::to_string(&bill).unwrap()).unwrap();
        self.run(&["issue", "--key", key, "--now", path.to_str().unwrap()])
    }

    fn verify(&self, bill_code: &str, number: u64, check: &str) -> Value {
        let n = format!("{number:010}");
        self.ok(&["verify", bill_code, &n, check])
    }

    /// `gov propose ACTION...` by regulator `by`; returns the proposal id.
    fn propose(&self, by: u32, action: &[&str]) -> String {
        let mut args = vec!["gov", "propose"];
        args.extend_from_slice(action);
        let key = self.reg(by);
        args.extend(["--key", key.as_str()]);
        let v = self.ok(&args);
        assert!(v["summary"].as_str().is_some(), "{v}");
        v["proposal_id"].as_str().unwrap().to_owned()
    }

    fn approve(&self, by: u32, id: &str) -> Value {
        self.ok(&["gov", "approve", id, "--key", &self.reg(by)])
    }
}

fn date_in(ms_from_now: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let t = Timestamp {
        unix_ms: now + ms_from_now as i64,
        offset_min: 480,
    };
    t.to_rfc3339().unwrap()
}

#[test]
fn regulators_govern_the_dev_chain_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut node = Node::start_dev(&data);
    let env = Env {
        url: node.url.clone(),
        dir: tmp.path().to_owned(),
        keys: tmp.path().join("keys"),
    };
    env.ok(&["dev-keys", "--out", env.keys.to_str().unwrap()]);
    let list = env.ok(&["gov", "list"]);
    assert_eq!(list["regulators"]["threshold"], 2);
    assert_eq!(list["regulators"]["keys"].as_array().unwrap().len(), 3);

    // 1. Regulator 0 proposes a second hospital, regulator 1 approves, it issues.
    let h2 = dev::test_credit_code('B', 2).to_string();
    let h2_key = env.keygen("h2.key", &h2);
    let id = env.propose(
        0,
        &[
            "register-issuer",
            "--credit-code",
            &h2,
            "--name",
            "杭州市第二人民医院",
            "--key-file",
            &h2_key,
            "--prefixes",
            "3302",
            "--valid-until",
            "2099-12-31",
        ],
    );
    let shown = env.ok(&["gov", "show", &id]);
    assert_eq!(shown["proposal"]["status"], "pending");
    assert_eq!(shown["proposal"]["approvals_missing"], 1);
    let pending = env.ok(&["gov", "list", "--status", "pending"]);
    assert_eq!(pending["total"], 1);
    // Before it passes, the hospital is unknown.
    let (ok, v) = env.issue(&h2_key, &h2, "33020126", 1);
    assert!(!ok);
    assert_eq!(v["error"]["code"], "unknown_issuer", "{v}");
    let voted = env.approve(1, &id);
    assert_eq!(voted["proposal_status"], "executed", "{voted}");
    let (ok, b1) = env.issue(&h2_key, &h2, "33020126", 1);
    assert!(ok, "{b1}");
    let check1 = b1["check_code"].as_str().unwrap().to_owned();
    let verdict = env.verify("33020126", 1, &check1);
    assert_eq!(verdict["authentic"], true);
    let unit = env.ok(&["units", &h2]);
    assert_eq!(unit["unit"]["status"], "active");
    assert_eq!(unit["proof_checked"], true, "{unit}");
    assert_eq!(unit["unit"]["history"][0]["action"], "register_issuer");

    // Refusals: a second approval, approving an executed proposal, a non-regulator.
    env.refused(
        &["gov", "approve", &id, "--key", &env.reg(2)],
        "proposal_executed",
    );
    let id_r = env.propose(
        1,
        &[
            "set-prefixes",
            "--credit-code",
            &h2,
            "--prefixes",
            "3302,3303",
        ],
    );
    env.refused(
        &["gov", "approve", &id_r, "--key", &env.reg(1)],
        "already_voted",
    );
    let outsider = env.keygen("outsider.key", &h2);
    env.refused(
        &["gov", "approve", &id_r, "--key", &outsider],
        "not_a_regulator",
    );
    // Stale: another action executes first (directly, offline, two .sig files).
    let draft = env.path("renew.json");
    env.ok(&[
        "gov",
        "draft",
        "renew",
        "--credit-code",
        &h2,
        "--valid-until",
        "2098-12-31",
        "-o",
        &draft,
    ]);
    let s0 = env.path("r0.sig");
    let s2 = env.path("r2.sig");
    env.ok(&["gov", "sign", &draft, "--key", &env.reg(0), "-o", &s0]);
    // One signature is not enough, and a signature of another draft does not fit.
    env.refused(&["gov", "submit", &draft, &s0], "insufficient_signatures");
    env.ok(&["gov", "sign", &draft, "--key", &env.reg(2), "-o", &s2]);
    env.refused(&["gov", "submit", &draft, &s0, &s0], "already_voted");
    let submitted = env.ok(&["gov", "submit", &draft, &s0, &s2]);
    assert_eq!(submitted["status"], "committed", "{submitted}");
    let unit = env.ok(&["units", &h2]);
    assert_eq!(unit["unit"]["valid_until"], "2098-12-31T23:59:59.999+08:00");
    env.refused(
        &["gov", "approve", &id_r, "--key", &env.reg(0)],
        "stale_proposal",
    );

    // Expired: a proposal open for no block after its own.
    let id_x = env.propose(
        2,
        &[
            "set-prefixes",
            "--credit-code",
            &h2,
            "--prefixes",
            "3302,3304",
            "--expires-in",
            "0b",
        ],
    );
    env.issue(&env.path("h2.key"), &h2, "33020126", 2);
    env.refused(
        &["gov", "approve", &id_x, "--key", &env.reg(0)],
        "proposal_expired",
    );
    let expired = env.ok(&["gov", "list", "--status", "expired"]);
    assert_eq!(expired["total"], 1, "{expired}");

    // 2. Revocation by proposal: the next bill is refused, the earlier one verifies.
    let id_v = env.propose(
        2,
        &["revoke", "--credit-code", &h2, "--reason", "执业许可证吊销"],
    );
    env.approve(0, &id_v);
    let (ok, v) = env.issue(&h2_key, &h2, "33020126", 3);
    assert!(!ok);
    assert_eq!(v["error"]["code"], "unit_revoked", "{v}");
    assert_eq!(env.verify("33020126", 1, &check1)["authentic"], true);
    assert_eq!(env.ok(&["units", &h2])["unit"]["status"], "revoked");

    // 3. A qualification that lapses, and a renewal that restores it.
    let h3 = dev::test_credit_code('B', 3).to_string();
    let h3_key = env.keygen("h3.key", &h3);
    let soon = date_in(8_000);
    let id3 = env.propose(
        0,
        &[
            "register-issuer",
            "--credit-code",
            &h3,
            "--name",
            "杭州市第三人民医院",
            "--key-file",
            &h3_key,
            "--prefixes",
            "3303",
            "--valid-until",
            &soon,
        ],
    );
    env.approve(2, &id3);
    let (ok, v) = env.issue(&h3_key, &h3, "33030126", 1);
    assert!(ok, "{v}");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut number = 2;
    loop {
        let (ok, v) = env.issue(&h3_key, &h3, "33030126", number);
        number += 1;
        if !ok {
            if v["error"]["code"] != "qualification_expired" {
                let log = node.lines_with("");
                panic!(
                    "{v}\nnode log:\n{}",
                    log[log.len().saturating_sub(30)..].join("\n")
                );
            }
            break;
        }
        assert!(Instant::now() < deadline, "the qualification never lapsed");
        std::thread::sleep(Duration::from_millis(250));
    }
    let id4 = env.propose(
        1,
        &["renew", "--credit-code", &h3, "--valid-until", "2099-12-31"],
    );
    env.approve(0, &id4);
    let (ok, v) = env.issue(&h3_key, &h3, "33030126", number);
    assert!(ok, "{v}");
    let units = env.ok(&["units"]);
    assert_eq!(units["units"].as_array().unwrap().len(), 4);
    drop(node);
}
