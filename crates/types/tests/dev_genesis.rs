//! `genesis/dev.json` is the dev chain's genesis built into `ebill-node --dev`: the two
//! must stay identical, so that offline verification against the file needs nothing from
//! a node. Regenerate deliberately with `EBILL_REGENERATE_VECTORS=1` (a protocol change).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use ebill_types::Genesis;
use ebill_types::dev::dev_genesis;

fn path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../genesis/dev.json")
}

#[test]
fn dev_json_is_the_built_in_dev_genesis() {
    let expected = format!("{}\n", dev_genesis().to_json());
    if std::env::var_os("EBILL_REGENERATE_VECTORS").is_some() {
        std::fs::write(path(), &expected).unwrap();
    }
    let text = std::fs::read_to_string(path())
        .expect("genesis/dev.json is missing: regenerate it with EBILL_REGENERATE_VECTORS=1");
    assert_eq!(
        text, expected,
        "genesis/dev.json differs from ebill_types::dev::dev_genesis()"
    );
    let parsed = Genesis::from_json(&text).unwrap();
    assert_eq!(parsed, dev_genesis());
    assert_eq!(parsed.hash(), dev_genesis().hash());
}
