//! The repository's references to its own design and spec hold: every
//! reference to a numbered section of docs/design.md (`§4`, `§4.3`) names a section it
//! has, every markdown file of docs/spec/ that is named exists, and nothing points to a
//! design document outside the repository.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Text files of the repository (sources, docs, scripts), skipping build output.
fn text_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if !matches!(name.as_str(), ".git" | "target" | "corpus" | "artifacts") {
                text_files(&path, out);
            }
        } else if [".rs", ".md", ".toml", ".sh", ".py"]
            .iter()
            .any(|ext| name.ends_with(ext))
            || name == "run"
        {
            out.push(path);
        }
    }
}

/// The section numbers docs/design.md has: "1" for `## 1. ...`, "4.3" for `### 4.3 ...`.
fn design_sections(design: &str) -> BTreeSet<String> {
    design
        .lines()
        .filter_map(|l| l.strip_prefix("### ").or_else(|| l.strip_prefix("## ")))
        .filter_map(|rest| {
            let num: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let num = num.trim_end_matches('.').to_owned();
            (!num.is_empty()).then_some(num)
        })
        .collect()
}

#[test]
fn design_and_spec_references_point_into_the_repository() {
    let root = repo_root();
    let design = std::fs::read_to_string(root.join("docs/design.md")).unwrap();
    let sections = design_sections(&design);
    assert!(
        sections.contains("4.3") && sections.contains("10"),
        "{sections:?}"
    );

    let mut files = Vec::new();
    text_files(&root, &mut files);
    // Spelled in pieces so that this file does not match itself.
    let outside = ["shared/", "design.md"].concat();
    let old_style = ["design", " section "].concat();
    let design_ref = "docs/design.md §";
    let spec_ref = "docs/spec/";
    let mut problems = Vec::new();
    let mut refs = 0;
    for path in &files {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let shown = path
            .strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string();
        if text.contains(&outside) {
            problems.push(format!(
                "{shown}: refers to a design document outside the repository"
            ));
        }
        if text.to_lowercase().contains(&old_style) {
            problems.push(format!(
                "{shown}: says \"design section\"; write `docs/design.md §N`"
            ));
        }
        for (at, _) in text.match_indices(design_ref) {
            let num: String = text[at + design_ref.len()..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let num = num.trim_end_matches('.');
            if num.is_empty() {
                continue; // "§N" in prose about the notation
            }
            refs += 1;
            if !sections.contains(num) {
                problems.push(format!("{shown}: docs/design.md §{num} does not exist"));
            }
        }
        for (at, _) in text.match_indices(spec_ref) {
            let name: String = text[at + spec_ref.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.' || *c == '_')
                .collect();
            let name = name.trim_end_matches('.');
            if name.ends_with(".md") && !root.join("docs/spec").join(name).exists() {
                problems.push(format!("{shown}: docs/spec/{name} does not exist"));
            }
        }
    }
    assert!(refs >= 20, "only {refs} references to docs/design.md found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
