//! Every domain tag of the crate is used for one purpose only and is listed in the
//! spec's table (docs/spec/README.md): a tag used twice would let bytes hashed or
//! signed for one purpose stand for another (governance proposal ids once shared
//! `ebill/proposal/v1` with consensus proposals' signing bytes).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;

/// `(file, constant) -> tag` for every `const NAME: &str = "..."` or
/// `const NAME: &[u8] = b"..."` whose name ends in `DOMAIN`, in `crates/types/src`.
fn domain_constants() -> BTreeMap<String, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    let mut dirs = vec![src];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let line = line.trim();
                let Some(rest) = line
                    .strip_prefix("pub const ")
                    .or(line.strip_prefix("const "))
                else {
                    continue;
                };
                let Some((name, value)) = rest.split_once(':') else {
                    continue;
                };
                if !name.ends_with("DOMAIN") {
                    continue;
                }
                let Some(start) = value.find('"') else {
                    continue;
                };
                let Some(len) = value[start + 1..].find('"') else {
                    continue;
                };
                let tag = value[start + 1..start + 1 + len].to_owned();
                let file = path.file_name().unwrap().to_string_lossy().into_owned();
                out.insert(format!("{file}:{name}"), tag);
            }
        }
    }
    out
}

#[test]
fn every_domain_tag_is_unique_and_in_the_spec() {
    let consts = domain_constants();
    assert!(
        consts.len() >= 12,
        "found only {consts:?}: the scan no longer sees the constants"
    );
    let mut by_tag: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, tag) in &consts {
        by_tag.entry(tag).or_default().push(name);
    }
    let shared: Vec<_> = by_tag.iter().filter(|(_, names)| names.len() > 1).collect();
    assert!(shared.is_empty(), "domain tags used twice: {shared:?}");
    let spec = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/spec/README.md"),
    )
    .unwrap();
    for (name, tag) in &consts {
        assert!(
            spec.contains(&format!("| `{tag}` |")),
            "{name} = {tag:?} is not in docs/spec/README.md's table of domain tags"
        );
    }
}
