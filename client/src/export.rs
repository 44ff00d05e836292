//! `ebill export` and `ebill verify-export`: a regulator's signed export of the chain
//! between two heights (docs/spec/export.md). `export` asks the node's operator API for
//! the signed manifest, then each table's CSV over the manifest's range, checks each
//! against the manifest and writes `<table>.csv` and `manifest.json`; `verify-export`
//! re-hashes the files, counts their rows and checks the signature against a validator
//! or observer named in the genesis.

use std::path::Path;

use ebill_types::Hash32;
use ebill_types::export::ExportManifest;

use crate::CliError;
use crate::files;
use crate::http::Node;

/// Largest `manifest.json` read.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

fn data_rows(csv: &[u8]) -> u64 {
    // Rows end in CRLF; a quoted field may hold a line end, so count only outside quotes.
    let mut rows: u64 = 0;
    let mut quoted = false;
    for &b in csv {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => rows += 1,
            _ => {}
        }
    }
    rows.saturating_sub(1)
}

/// `ebill export -o DIR --from-height A --to-height B`.
pub fn export(
    node: &str,
    dir: &Path,
    from_height: Option<u64>,
    to_height: Option<u64>,
) -> Result<ExportManifest, CliError> {
    let node = Node::new(node)?;
    let mut q = Vec::new();
    if let Some(h) = from_height {
        q.push(format!("from_height={h}"));
    }
    if let Some(h) = to_height {
        q.push(format!("to_height={h}"));
    }
    let a = node.get(&format!("/admin/v1/export/manifest?{}", q.join("&")))?;
    if !a.is_success() {
        return Err(a.error());
    }
    let manifest: ExportManifest = serde_json::from_slice(&a.body)
        .map_err(|e| CliError::new("invalid_manifest", format!("manifest: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, &e))?;
    for f in &manifest.body.files {
        let a = node.get(&format!(
            "/admin/v1/export?table={}&format=csv&from_height={}&to_height={}",
            f.table, manifest.body.from_height, manifest.body.to_height
        ))?;
        if !a.is_success() {
            return Err(a.error());
        }
        if Hash32::digest(&a.body) != f.sha256 {
            return Err(CliError::new(
                "export_hash_mismatch",
                format!(
                    "{}.csv from the node does not hash to its manifest",
                    f.table
                ),
            ));
        }
        let path = dir.join(format!("{}.csv", f.table));
        std::fs::write(&path, &a.body).map_err(|e| CliError::io(&path, &e))?;
    }
    let path = dir.join("manifest.json");
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| CliError::new("invalid_manifest", e.to_string()))?;
    std::fs::write(&path, json).map_err(|e| CliError::io(&path, &e))?;
    Ok(manifest)
}

/// What `verify-export` found.
#[derive(Debug)]
pub struct Verified {
    /// Who signed ("validator NAME" or "observer NAME").
    pub signer: String,
    /// The manifest.
    pub manifest: ExportManifest,
}

/// `ebill verify-export DIR --genesis G`.
pub fn verify_export(dir: &Path, genesis: &Path) -> Result<Verified, CliError> {
    let genesis = files::read_genesis(genesis)?;
    let path = dir.join("manifest.json");
    let len = std::fs::metadata(&path)
        .map_err(|e| CliError::io(&path, &e))?
        .len();
    if len > MAX_MANIFEST_BYTES {
        return Err(CliError::new(
            "invalid_manifest",
            format!("manifest.json is {len} bytes, more than {MAX_MANIFEST_BYTES}"),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| CliError::io(&path, &e))?;
    let manifest: ExportManifest = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::new("invalid_manifest", format!("manifest.json: {e}")))?;
    let signer = manifest
        .verify(&genesis)
        .map_err(|e| CliError::new(e.code(), format!("manifest.json: {e}")))?;
    for f in &manifest.body.files {
        if !f.table.bytes().all(|b| b.is_ascii_lowercase()) || f.table.is_empty() {
            return Err(CliError::new(
                "invalid_manifest",
                format!("manifest.json: table {:?} is not a table name", f.table),
            ));
        }
        let name = format!("{}.csv", f.table);
        let p = dir.join(&name);
        let data = std::fs::read(&p).map_err(|e| CliError::io(&p, &e))?;
        if Hash32::digest(&data) != f.sha256 {
            return Err(CliError::new(
                "export_hash_mismatch",
                format!("{name}: its SHA-256 is not the manifest's"),
            ));
        }
        let rows = data_rows(&data);
        if rows != f.rows {
            return Err(CliError::new(
                "export_row_count_mismatch",
                format!("{name}: {rows} rows, the manifest says {}", f.rows),
            ));
        }
    }
    Ok(Verified { signer, manifest })
}

#[cfg(test)]
mod tests {
    use super::data_rows;

    #[test]
    fn rows_exclude_the_header_and_quoted_line_ends() {
        assert_eq!(data_rows(b"a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n"), 2);
        assert_eq!(data_rows(b"a,b\r\n"), 0);
    }
}
