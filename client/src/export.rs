//! `ebill export` and `ebill verify-export`: a regulator's signed export of the chain
//! between two heights (docs/spec/export.md). `export` asks the node's operator API for
//! the signed manifest, then streams each table's file (CSV, Parquet or xlsx) over the
//! manifest's range to disk, hashing it on the way, keeps it only if it matches the
//! manifest, and writes `<table>.<format>` and `manifest.json`; `verify-export` re-hashes the files, counts their rows (a CSV file's
//! line ends outside quotes; a Parquet file's footer; an xlsx file's rows of its sheet)
//! and checks the signature against a validator or observer named in the genesis.

use std::path::Path;

use ebill_types::Hash32;
use ebill_types::export::{ExportFile, ExportManifest};

use crate::CliError;
use crate::files;
use crate::http::Node;

/// Largest `manifest.json` read.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// The file formats an export may hold.
const FORMATS: &[&str] = &["csv", "parquet", "xlsx"];
/// Most bytes of an xlsx export's sheet that `verify-export` reads to count its rows
/// (a sheet of 10^6 rows of the widest table is about 300 MB).
const MAX_XLSX_SHEET_BYTES: u64 = 4 << 30;

/// The file name of a manifest's table: a table name is lowercase ASCII letters and the
/// format one of [`FORMATS`], so that a manifest (from a node, or in a folder) cannot
/// name a path outside the folder.
fn file_name(file: &ExportFile) -> Result<String, CliError> {
    let table = &file.table;
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(CliError::new(
            "invalid_manifest",
            format!("manifest: table {table:?} is not a table name"),
        ));
    }
    if !FORMATS.contains(&file.format.as_str()) {
        return Err(CliError::new(
            "invalid_manifest",
            format!(
                "manifest: {table}: format {:?} is not one of {}",
                file.format,
                FORMATS.join(", ")
            ),
        ));
    }
    Ok(format!("{table}.{}", file.format))
}

/// Counts the data rows of a CSV file fed to it in pieces: rows end in CRLF, and a
/// quoted field may hold a line end, so only line ends outside quotes count; the header
/// is not a row.
#[derive(Default)]
struct RowCounter {
    line_ends: u64,
    quoted: bool,
}

impl RowCounter {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'"' => self.quoted = !self.quoted,
                b'\n' if !self.quoted => self.line_ends += 1,
                _ => {}
            }
        }
    }

    fn rows(&self) -> u64 {
        self.line_ends.saturating_sub(1)
    }
}

/// The SHA-256 of the file at `path`, and its data rows if it is CSV, read in pieces
/// (an export may be large, and the folder is not trusted: nothing is held whole in
/// memory).
fn hash_and_count_csv(path: &Path, csv: bool) -> Result<(Hash32, Option<u64>), CliError> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| CliError::io(path, &e))?;
    let mut hasher = sha2::Sha256::new();
    let mut rows = RowCounter::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(|e| CliError::io(path, &e))?;
        let Some(piece) = buf.get(..n).filter(|p| !p.is_empty()) else {
            break;
        };
        hasher.update(piece);
        if csv {
            rows.feed(piece);
        }
    }
    Ok((Hash32(hasher.finalize().into()), csv.then(|| rows.rows())))
}

/// The rows a Parquet file's footer declares. Read only after the file hashed to its
/// signed manifest: the bytes are then those the signer wrote.
fn parquet_rows(path: &Path, name: &str) -> Result<u64, CliError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(|e| CliError::io(path, &e))?;
    let reader = SerializedFileReader::new(file).map_err(|e| {
        CliError::new(
            "invalid_export_file",
            format!("{name}: not a Parquet file: {e}"),
        )
    })?;
    u64::try_from(reader.metadata().file_metadata().num_rows()).map_err(|_| {
        CliError::new(
            "invalid_export_file",
            format!("{name}: a negative row count"),
        )
    })
}

/// Most bytes of one file `ebill export` downloads: the node's limit per export, blocks
/// of 2,000,000 transactions, is about 600 MB of the widest table in any format.
const MAX_EXPORT_FILE_BYTES: u64 = 2 << 30;

/// Streams the answer of `url` into `dir/name`, hashing it on the way: written first as
/// `name.part`, renamed only once it hashed to `sha256` (the manifest's), removed
/// otherwise, so that no file of a folder is ever one the manifest does not vouch for.
fn download(
    node: &Node,
    url: &str,
    dir: &Path,
    name: &str,
    sha256: &Hash32,
) -> Result<(), CliError> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let mut body = node.download(url)?.take(MAX_EXPORT_FILE_BYTES + 1);
    let part = dir.join(format!("{name}.part"));
    let result = (|| {
        let mut file = std::fs::File::create(&part).map_err(|e| CliError::io(&part, &e))?;
        let mut hasher = sha2::Sha256::new();
        let mut total: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf).map_err(|e| {
                CliError::new(
                    "node_unreachable",
                    format!("{name}: the download broke off: {e}"),
                )
            })?;
            let Some(piece) = buf.get(..n).filter(|p| !p.is_empty()) else {
                break;
            };
            total += u64::try_from(n).unwrap_or(u64::MAX);
            if total > MAX_EXPORT_FILE_BYTES {
                return Err(CliError::new(
                    "export_too_large",
                    format!("{name}: more than {MAX_EXPORT_FILE_BYTES} bytes"),
                ));
            }
            hasher.update(piece);
            file.write_all(piece).map_err(|e| CliError::io(&part, &e))?;
        }
        file.sync_all().map_err(|e| CliError::io(&part, &e))?;
        if Hash32(hasher.finalize().into()) != *sha256 {
            return Err(CliError::new(
                "export_hash_mismatch",
                format!("{name} from the node does not hash to its manifest"),
            ));
        }
        let path = dir.join(name);
        std::fs::rename(&part, &path).map_err(|e| CliError::io(&path, &e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    result
}

/// What `ebill export` asks for.
#[derive(Clone, Debug, Default)]
pub struct ExportRequest {
    /// First height (default 1).
    pub from_height: Option<u64>,
    /// Last height (default the node's tip).
    pub to_height: Option<u64>,
    /// `csv` or `parquet` (default csv).
    pub format: Option<String>,
    /// The tables (default all).
    pub tables: Vec<String>,
}

/// Counts the `<row ` elements of a sheet's XML fed to it in pieces.
#[derive(Default)]
struct XmlRowCounter {
    matched: usize,
    rows: u64,
}

impl XmlRowCounter {
    const TAG: &'static [u8] = b"<row ";

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if Self::TAG.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == Self::TAG.len() {
                    self.rows += 1;
                    self.matched = 0;
                }
            } else {
                // No proper prefix of the tag is also its suffix: restart, at 1 if
                // this byte opens a tag.
                self.matched = usize::from(b == b'<');
            }
        }
    }
}

/// The data rows of an xlsx export: the rows of its one sheet, less the header. Read
/// only after the file hashed to its signed manifest, and bounded all the same.
fn xlsx_rows(path: &Path, name: &str) -> Result<u64, CliError> {
    use std::io::Read;
    let bad = |why: String| CliError::new("invalid_export_file", format!("{name}: {why}"));
    let file = std::fs::File::open(path).map_err(|e| CliError::io(path, &e))?;
    let mut zip = zip::ZipArchive::new(file).map_err(|e| bad(format!("not an xlsx file: {e}")))?;
    let sheet = zip
        .by_name("xl/worksheets/sheet1.xml")
        .map_err(|e| bad(format!("no sheet: {e}")))?;
    let mut sheet = sheet.take(MAX_XLSX_SHEET_BYTES + 1);
    let mut counter = XmlRowCounter::default();
    let mut read: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = sheet
            .read(&mut buf)
            .map_err(|e| bad(format!("reading its sheet: {e}")))?;
        let Some(piece) = buf.get(..n).filter(|p| !p.is_empty()) else {
            break;
        };
        read += u64::try_from(n).unwrap_or(u64::MAX);
        if read > MAX_XLSX_SHEET_BYTES {
            return Err(bad(format!(
                "its sheet is larger than {MAX_XLSX_SHEET_BYTES} bytes"
            )));
        }
        counter.feed(piece);
    }
    Ok(counter.rows.saturating_sub(1))
}

/// `ebill export -o DIR [--from-height A] [--to-height B] [--format F] [--table T]...`.
pub fn export(node: &str, dir: &Path, req: &ExportRequest) -> Result<ExportManifest, CliError> {
    let node = Node::new(node)?;
    let mut q = Vec::new();
    if let Some(h) = req.from_height {
        q.push(format!("from_height={h}"));
    }
    if let Some(h) = req.to_height {
        q.push(format!("to_height={h}"));
    }
    if let Some(f) = &req.format {
        if !FORMATS.contains(&f.as_str()) {
            return Err(CliError::new(
                "invalid_format",
                format!("--format {f:?} is not one of {}", FORMATS.join(", ")),
            ));
        }
        q.push(format!("format={f}"));
    }
    if !req.tables.is_empty() {
        for t in &req.tables {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(CliError::new(
                    "invalid_table",
                    format!("--table {t:?} is not a table name"),
                ));
            }
        }
        q.push(format!("tables={}", req.tables.join(",")));
    }
    let a = node.get(&format!("/admin/v1/export/manifest?{}", q.join("&")))?;
    if !a.is_success() {
        return Err(a.error());
    }
    let manifest: ExportManifest = serde_json::from_slice(&a.body)
        .map_err(|e| CliError::new("invalid_manifest", format!("manifest: {e}")))?;
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(dir, &e))?;
    for f in &manifest.body.files {
        // Named by the node: checked before it is a path or part of a URL.
        let name = file_name(f)?;
        let url = format!(
            "/admin/v1/export?table={}&format={}&from_height={}&to_height={}",
            f.table, f.format, manifest.body.from_height, manifest.body.to_height
        );
        download(&node, &url, dir, &name, &f.sha256)?;
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
    let bytes = files::read_at_most(&path, MAX_MANIFEST_BYTES, "invalid_manifest")?;
    let manifest: ExportManifest = serde_json::from_slice(&bytes)
        .map_err(|e| CliError::new("invalid_manifest", format!("manifest.json: {e}")))?;
    let signer = manifest
        .verify(&genesis)
        .map_err(|e| CliError::new(e.code(), format!("manifest.json: {e}")))?;
    for f in &manifest.body.files {
        let name = file_name(f)?;
        let p = dir.join(&name);
        let (sha256, csv_rows) = hash_and_count_csv(&p, f.format == "csv")?;
        if sha256 != f.sha256 {
            return Err(CliError::new(
                "export_hash_mismatch",
                format!("{name}: its SHA-256 is not the manifest's"),
            ));
        }
        let rows = match (csv_rows, f.format.as_str()) {
            (Some(rows), _) => rows,
            (None, "xlsx") => xlsx_rows(&p, &name)?,
            (None, _) => parquet_rows(&p, &name)?,
        };
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
    use super::{RowCounter, XmlRowCounter};

    #[test]
    fn xml_rows_are_counted_across_pieces() {
        let mut c = XmlRowCounter::default();
        for piece in [
            &b"<sheetData><row r=\"1\"><c/></row><ro"[..],
            b"w r=\"2\"></row><<row ",
        ] {
            c.feed(piece);
        }
        assert_eq!(c.rows, 3);
        let mut c = XmlRowCounter::default();
        c.feed(b"<rows><rowx ><row");
        assert_eq!(c.rows, 0);
    }

    fn data_rows(pieces: &[&[u8]]) -> u64 {
        let mut c = RowCounter::default();
        for p in pieces {
            c.feed(p);
        }
        c.rows()
    }

    #[test]
    fn rows_exclude_the_header_and_quoted_line_ends() {
        assert_eq!(data_rows(&[b"a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n"]), 2);
        assert_eq!(data_rows(&[b"a,b\r\n"]), 0);
        // A quoted field split across two pieces.
        assert_eq!(data_rows(&[b"a,b\r\n3,\"x\r", b"\ny\"\r\n1,2\r\n"]), 2);
    }
}
