//! The browser's verifier (`src/web/assets/verify.js`) holds to the golden vectors of
//! crates/types: `tests/browser/vectors.mjs` recomputes, with Node, the genesis hash and
//! the signing and signed bytes of every transaction kind. A third implementation of the
//! byte formats (after Rust and the Python one of tests/conformance) cannot drift unseen.
//! Needs `node`: under `CI=true` its absence fails the test, elsewhere it skips loudly.

#![allow(clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_browser_verifier_recomputes_the_golden_vectors() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_node {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("node is missing: .ci/run installs nodejs for the browser tests");
        }
        eprintln!(
            "SKIPPED: the_browser_verifier_recomputes_the_golden_vectors needs node (apt-get install nodejs)"
        );
        return;
    }
    let out = Command::new("node")
        .arg(root.join("tests/browser/vectors.mjs"))
        .arg(root.join("crates/types/tests/vectors"))
        .output()
        .unwrap_or_else(|e| panic!("running node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify.js disagrees with the golden vectors:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 mismatches"), "{stdout}");
}
