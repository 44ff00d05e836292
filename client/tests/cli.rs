//! The `ebill` binary itself: exit codes and JSON forms that need no node. (The runs
//! against a real node are in node/tests/dev_chain.rs, which also needs this binary built:
//! having an integration test here makes `cargo test --workspace` build it.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use ebill_types::dev;

fn ebill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ebill"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn dev_keys_json_names_the_dev_chain_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = ebill(&["--json", "dev-keys", "--out", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["issuer"]["credit_code"], dev::dev_issuer_code().as_str());
    assert_eq!(
        v["issuer"]["public_key"],
        dev::dev_issuer_key().public().to_hex()
    );
    assert_eq!(
        v["reimburser"]["public_key"],
        dev::dev_reimburser_key().public().to_hex()
    );
    assert_eq!(
        v["validator"]["public_key"],
        dev::dev_validator_key().public().to_hex()
    );
}

#[test]
fn failures_exit_non_zero_with_a_json_error() {
    let out = ebill(&[
        "--json",
        "verify-proof",
        "/nonexistent/bundle.json",
        "--genesis",
        "/nonexistent/g.json",
    ]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
    assert!(v["error"]["message"].is_string(), "{v}");
    // No node listens on port 9 of loopback: a clear error, not a hang or a panic.
    let out = ebill(&["--json", "--node", "http://127.0.0.1:9", "status"]);
    assert!(!out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"]["code"].is_string(), "{v}");
}
