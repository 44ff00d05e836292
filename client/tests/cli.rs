//! The `ebill` binary itself: exit codes and JSON forms that need no node. (The runs
//! against a real node are in the `ebill-tests` package, tests/e2e/.)
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebill_types::dev;

fn ebill(args: &[&str]) -> std::process::Output {
    ebill_env(args, &[])
}

/// Runs `ebill` with extra environment variables and no terminal: standard input is
/// empty, as in CI.
fn ebill_env(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ebill"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn json_of(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout {:?}, stderr {:?}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The error code of a failed `--json` run.
fn error_code(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    json_of(out)["error"]["code"].as_str().unwrap().to_owned()
}

fn sample_bill() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../genesis/examples/bill.json")
}

/// No node listens on port 9 of loopback: a command that gets as far as the node fails
/// with `node_unreachable`, which shows that its key file opened.
const NO_NODE: &str = "http://127.0.0.1:9";

/// Writes the dev chain's key files into `dir` (asserting that it worked); returns the
/// command's output.
fn dev_keys(dir: &std::path::Path) -> std::process::Output {
    let out = ebill(&["--json", "dev-keys", "--out", dir.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn dev_keys_json_names_the_dev_chain_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = dev_keys(dir.path());
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

#[test]
fn a_sealed_key_is_made_and_used_with_a_passphrase_file_or_variable() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("issuer.key");
    let pass = dir.path().join("pass");
    std::fs::write(&pass, "correct horse battery staple\n").unwrap();
    let (key_s, pass_s) = (key.to_str().unwrap(), pass.to_str().unwrap());

    let out = ebill(&[
        "--json",
        "keygen",
        "--encrypt",
        "--role",
        "issuer",
        "-o",
        key_s,
        "--passphrase-file",
        pass_s,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json_of(&out);
    assert_eq!(v["sealed"], true);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key).unwrap()).unwrap();
    assert_eq!(file["type"], "ebill-key-sealed/v1");
    assert_eq!(file["public_key"], v["public_key"]);
    assert_eq!(file["kdf"]["alg"], "argon2id");
    assert_eq!(file["kdf"]["m_kib"], 65536);
    assert_eq!(file["kdf"]["t"], 3);
    assert!(file.get("seed").is_none());

    // The passphrase from a file (issue), then from a variable (lock): the key opens
    // and the command goes on to the node.
    let out = ebill(&[
        "--json",
        "--node",
        NO_NODE,
        "issue",
        "--key",
        key_s,
        "--passphrase-file",
        pass_s,
        sample_bill().to_str().unwrap(),
    ]);
    assert_eq!(error_code(&out), "node_unreachable", "{}", json_of(&out));
    let unit = dev::dev_issuer_code();
    let lock = [
        "--json",
        "--node",
        NO_NODE,
        "lock",
        "--key",
        key_s,
        "--unit",
        unit.as_str(),
        "--passphrase-env",
        "EBILL_TEST_PASSPHRASE",
        "33010126",
        "0000000001",
        "k3x9q2",
    ];
    let out = ebill_env(
        &lock,
        &[("EBILL_TEST_PASSPHRASE", "correct horse battery staple")],
    );
    assert_eq!(error_code(&out), "node_unreachable", "{}", json_of(&out));

    // A wrong one is refused before anything is sent.
    let out = ebill_env(
        &lock,
        &[("EBILL_TEST_PASSPHRASE", "correct horse battery stapler")],
    );
    assert_eq!(error_code(&out), "wrong_passphrase");
    let message = json_of(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("wrong passphrase or damaged file"),
        "{message}"
    );
    assert!(message.contains(key_s), "{message}");
    // So is an unset variable.
    let out = ebill_env(&lock, &[]);
    assert_eq!(error_code(&out), "no_passphrase");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));
}

#[test]
fn without_a_terminal_a_missing_passphrase_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let key_s = key.to_str().unwrap();

    // keygen --encrypt would ask twice: nothing is written.
    let out = ebill(&["--json", "keygen", "--encrypt", "-o", key_s]);
    assert_eq!(error_code(&out), "no_passphrase");
    assert!(!key.exists());

    let pass = dir.path().join("pass");
    std::fs::write(&pass, "pw\n").unwrap();
    let out = ebill(&[
        "--json",
        "keygen",
        "--encrypt",
        "-o",
        key_s,
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ebill(&[
        "--json",
        "--node",
        NO_NODE,
        "issue",
        "--key",
        key_s,
        sample_bill().to_str().unwrap(),
    ]);
    assert_eq!(error_code(&out), "no_passphrase");
    let message = json_of(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("--passphrase-file PATH or --passphrase-env VAR"),
        "{message}"
    );

    // Without --json too: a message on stderr, exit 1.
    let out = ebill(&[
        "--node",
        NO_NODE,
        "issue",
        "--key",
        key_s,
        sample_bill().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[no_passphrase]"));
}

#[test]
fn passphrase_flags_without_encrypt_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.key");
    let out = ebill(&[
        "--json",
        "keygen",
        "-o",
        key.to_str().unwrap(),
        "--passphrase-env",
        "X",
    ]);
    assert_eq!(error_code(&out), "usage");
    assert!(!key.exists());
    let out = ebill(&[
        "--json",
        "keygen",
        "--encrypt",
        "-o",
        key.to_str().unwrap(),
        "--passphrase-env",
        "X",
        "--passphrase-file",
        "p",
    ]);
    assert_eq!(error_code(&out), "usage");
}

#[test]
fn a_plaintext_key_file_others_can_read_gets_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    dev_keys(dir.path());
    let key = dir.path().join("issuer.key");
    let key_s = key.to_str().unwrap();
    let bill = sample_bill();
    let issue = [
        "--json",
        "--node",
        NO_NODE,
        "issue",
        "--key",
        key_s,
        bill.to_str().unwrap(),
    ];

    // Mode 0600 (as written): no warning, and no passphrase is asked for.
    let out = ebill(&issue);
    assert_eq!(error_code(&out), "node_unreachable");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("warning"));

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = ebill(&issue);
    assert_eq!(error_code(&out), "node_unreachable");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ebill: warning: key file"), "{stderr}");
    assert!(stderr.contains(key_s), "{stderr}");
    assert!(stderr.contains("mode 0644"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
}

/// `ebill completions SHELL` prints a completion script naming the subcommands and their
/// flags; bash's is valid bash (`bash -n`); an unknown shell is a usage error.
#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ebill(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let script = String::from_utf8(out.stdout).unwrap();
        for word in [
            "verify-proof",
            "proof-absent",
            "gov",
            "signed-out",
            "passphrase-file",
        ] {
            assert!(script.contains(word), "{shell}: no {word} in the script");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("ebill.bash");
            std::fs::write(&file, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
            assert!(check.status.success(), "bash -n: {check:?}");
        }
    }
    let out = ebill(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
