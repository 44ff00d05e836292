//! `GET /admin/v1/export?table=bills|events|units&format=csv|parquet|xlsx&from_height=&to_height=`:
//! one table of the chain between two heights (both inclusive) as CSV, Parquet or xlsx
//! ([`super::format`]), with a fixed typed column schema per table ([`SCHEMA_VERSION`];
//! the columns are [`BILLS_COLUMNS`], [`EVENTS_COLUMNS`] and [`UNITS_COLUMNS`],
//! documented in docs/spec/export.md).
//!
//! Rows come from the committed blocks themselves, so two honest nodes give the same
//! bytes for the same range. The range is checked before the first byte: at most
//! [`MAX_EXPORT_HEIGHTS`] heights whose blocks hold at most [`MAX_EXPORT_TXS`]
//! transactions, summed from their headers (422 `range_too_large` beyond either), and
//! the response headers `x-ebill-schema-version`, `x-ebill-from-height`,
//! `x-ebill-to-height` and `x-ebill-block-hash` (the block at `to_height`, the
//! checkpoint) say what it holds. The file then streams as it is written
//! ([`super::streamed`]): a node holds a few chunks of an export in memory, not the
//! export, so its head cannot say how many rows follow; the signed manifest
//! ([`manifest`]) does. At most [`MAX_CONCURRENT_EXPORTS`] exports and manifests are
//! written at once (503 `overloaded` beyond).
//! Money is integer fen; every time is given twice, unix ms and RFC 3339 (block times
//! in China Standard Time, +08:00; a bill's `issued_at` in the offset its issuer gave).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use ebill_ledger::UnitRole;
use ebill_store::Store;
use ebill_types::{Hash32, SignedTx, Timestamp, TxBody};
use serde::Deserialize;

use super::AdminState;
use super::format::{Cell, Column, Format, Kind, Sink, TableWriter, XLSX_MAX_ROWS, writer};
use super::streamed;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::routes::blocking;

/// The version of the column schemas below; a change of any column is a new version.
pub const SCHEMA_VERSION: u32 = 1;
/// Most heights one export covers.
pub const MAX_EXPORT_HEIGHTS: u64 = 10_000;
/// Most transactions the blocks of one export may hold, summed from their headers
/// before any block is read: a bound on one answer's work, and so on its rows (a row is
/// one transaction, or in `units` one registry event of one). An xlsx export is held to
/// what one sheet holds, [`XLSX_MAX_ROWS`] less its header.
pub const MAX_EXPORT_TXS: u64 = 2_000_000;
/// Exports and manifests written at once; one more is answered 503 `overloaded`.
pub const MAX_CONCURRENT_EXPORTS: usize = 2;
/// What an overloaded export asks the client to wait, in seconds (`retry-after`).
pub const EXPORT_RETRY_AFTER_S: u64 = 5;

const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        distinct: false,
    }
}

/// A column whose values are (nearly) all distinct.
const fn distinct(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        distinct: true,
    }
}

/// Columns of `bills`: one row per bill issued in the range.
pub const BILLS_COLUMNS: &[Column] = &[
    col("height", Kind::Int),
    col("block_time_ms", Kind::Int),
    col("block_time", Kind::Text),
    distinct("tx_id", Kind::Text),
    col("code", Kind::Text),
    distinct("number", Kind::Text),
    col("kind", Kind::Text),
    col("issuer", Kind::Text),
    distinct("issued_at_ms", Kind::Int),
    distinct("issued_at", Kind::Text),
    col("total_fen", Kind::Int),
    col("currency", Kind::Text),
    col("payer_type", Kind::Text),
    col("payer_name", Kind::Text),
    distinct("payer_id", Kind::Text),
    col("item_count", Kind::Int),
    col("related_code", Kind::OptText),
    col("related_number", Kind::OptText),
];
/// Columns of `events`: one row per bill transaction (issue, red reversal, paper
/// exchange, lock, unlock, reimbursement) in the range.
pub const EVENTS_COLUMNS: &[Column] = &[
    col("height", Kind::Int),
    col("block_time_ms", Kind::Int),
    col("block_time", Kind::Text),
    col("tx_index", Kind::Int),
    distinct("tx_id", Kind::Text),
    col("kind", Kind::Text),
    col("code", Kind::Text),
    distinct("number", Kind::Text),
    col("unit", Kind::OptText),
    col("reason", Kind::OptText),
];
/// Columns of `units`: one row per registry event of a unit (registration, key
/// rotation, revocation, whether by a direct transaction or an executed proposal) in the
/// range, ordered by height then transaction id, with the unit's name and role as they
/// stand at the tip.
pub const UNITS_COLUMNS: &[Column] = &[
    col("height", Kind::Int),
    col("block_time_ms", Kind::Int),
    col("block_time", Kind::Text),
    distinct("tx_id", Kind::Text),
    col("kind", Kind::Text),
    col("credit_code", Kind::Text),
    col("name", Kind::Text),
    col("role", Kind::Text),
    col("revoked_at_height", Kind::OptInt),
];

/// Stable error codes of the export.
pub mod codes {
    /// `table` is not bills, events or units.
    pub const INVALID_TABLE: &str = "invalid_table";
    /// `format` is not csv, parquet or xlsx.
    pub const INVALID_FORMAT: &str = "invalid_format";
    /// A height is not a whole number, or `from_height` is above `to_height`.
    pub const INVALID_HEIGHT: &str = "invalid_height";
    /// `to_height` is above the tip.
    pub const HEIGHT_BEYOND_TIP: &str = "height_beyond_tip";
    /// The node was started without a key to sign manifests with.
    pub const NO_SIGNING_KEY: &str = "no_signing_key";
}

/// A table of the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Bills issued.
    Bills,
    /// Bill transactions.
    Events,
    /// Registry transactions.
    Units,
}

impl Table {
    /// Every table, in the order of the manifest.
    pub const ALL: [Table; 3] = [Table::Bills, Table::Events, Table::Units];

    /// Its name in `table=` and in file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Bills => "bills",
            Table::Events => "events",
            Table::Units => "units",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Its columns.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Table::Bills => BILLS_COLUMNS,
            Table::Events => EVENTS_COLUMNS,
            Table::Units => UNITS_COLUMNS,
        }
    }

    /// Its column names, in order (the CSV header).
    pub fn column_names(self) -> Vec<&'static str> {
        self.columns().iter().map(|c| c.name).collect()
    }
}

/// `export?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    table: Option<String>,
    format: Option<String>,
    from_height: Option<String>,
    to_height: Option<String>,
}

/// The range of an export, checked and pinned before its first byte is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportRange {
    /// First height (at least 1).
    pub from_height: u64,
    /// Last height (at most the tip when it was checked).
    pub to_height: u64,
    /// Hash of the block at `to_height`: the checkpoint the files are of.
    pub block_hash: Hash32,
    /// Transactions in the range's blocks, by their headers: no table has more rows.
    pub txs: u64,
}

fn height(name: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    match v.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) if s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(codes::INVALID_HEIGHT, format!("{name}: {s:?}"))),
        Some(s) => Err(ApiError::bad_request(
            codes::INVALID_HEIGHT,
            format!("{name}: {s:?} is not a height"),
        )),
    }
}

/// `format=` (default csv).
fn format(v: &Option<String>) -> Result<Format, ApiError> {
    let name = v.as_deref().filter(|f| !f.is_empty()).unwrap_or("csv");
    Format::parse(name).ok_or_else(|| {
        ApiError::bad_request(
            codes::INVALID_FORMAT,
            format!("format: {name:?} is not csv, parquet or xlsx"),
        )
    })
}

/// `tables=bills,events` (default every table), each once, in the order of
/// [`Table::ALL`].
fn tables(v: &Option<String>) -> Result<Vec<Table>, ApiError> {
    let Some(list) = v.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(Table::ALL.to_vec());
    };
    let mut wanted = Vec::new();
    for name in list.split(',') {
        let Some(t) = Table::parse(name) else {
            return Err(ApiError::bad_request(
                codes::INVALID_TABLE,
                format!("tables: {name:?} is not one of bills, events, units"),
            ));
        };
        wanted.push(t);
    }
    Ok(Table::ALL
        .into_iter()
        .filter(|t| wanted.contains(t))
        .collect())
}

/// `GET /admin/v1/export`.
pub(crate) async fn export(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult {
    let table_name = q.table.as_deref().unwrap_or("");
    let Some(table) = Table::parse(table_name) else {
        return Err(ApiError::bad_request(
            codes::INVALID_TABLE,
            format!("table: {table_name:?} is not one of bills, events, units"),
        ));
    };
    let format = format(&q.format)?;
    let from = height("from_height", &q.from_height)?;
    let to = height("to_height", &q.to_height)?;
    let permit = match export_permit(&st.exports) {
        Ok(p) => p,
        Err(e) => return Ok(with_retry_after(e)),
    };
    let backend = st.backend.clone();
    let range = blocking(move || export_range(backend.store().as_ref(), format, from, to)).await?;
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert("x-ebill-schema-version", HeaderValue::from(SCHEMA_VERSION));
    h.insert("x-ebill-from-height", HeaderValue::from(range.from_height));
    h.insert("x-ebill-to-height", HeaderValue::from(range.to_height));
    if let Ok(v) = HeaderValue::from_str(&range.block_hash.to_hex()) {
        h.insert("x-ebill-block-hash", v);
    }
    let backend = st.backend.clone();
    streamed::answer(h, move |w| {
        let _permit = permit;
        write_table(backend.store().as_ref(), table, format, &range, w).map(|_rows| ())
    })
    .await
}

/// The answer of an overloaded export: its error with `retry-after`.
fn with_retry_after(e: ApiError) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut resp = e.into_response();
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(EXPORT_RETRY_AFTER_S));
    resp
}

/// One of the [`MAX_CONCURRENT_EXPORTS`] places, held until the export is written.
fn export_permit(
    exports: &Arc<tokio::sync::Semaphore>,
) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    exports.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::error::codes::OVERLOADED,
            format!(
                "{MAX_CONCURRENT_EXPORTS} exports are being written; retry in {EXPORT_RETRY_AFTER_S} s"
            ),
        )
    })
}

fn store_err(e: ebill_store::StoreError) -> ApiError {
    ApiError::internal("reading blocks for an export", &e)
}

fn rfc3339(unix_ms: i64) -> String {
    Timestamp {
        unix_ms,
        offset_min: super::params::CHINA_OFFSET_MIN,
    }
    .to_rfc3339()
    .unwrap_or_default()
}

fn too_large(what: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        super::params::codes::RANGE_TOO_LARGE,
        what,
    )
}

/// Counts rows into a writer, holding them to the range's transactions (more would be
/// a fault of this export's code, said loudly).
struct Rows<'a> {
    out: Box<dyn TableWriter + 'a>,
    count: u64,
    most: u64,
}

impl Rows<'_> {
    fn push(&mut self, cells: Vec<Cell>) -> Result<(), ApiError> {
        self.count += 1;
        if self.count > self.most {
            return Err(ApiError::internal(
                "an export",
                &format!("more rows than the range's {} transactions", self.most),
            ));
        }
        self.out.row(cells)
    }
}

/// The three leading cells of every row: the block's height and time.
fn block_cells(height: u64, time_ms: u64) -> Result<Vec<Cell>, ApiError> {
    Ok(vec![
        Cell::int(height)?,
        Cell::int(time_ms)?,
        Cell::Text(rfc3339(i64::try_from(time_ms).unwrap_or(i64::MAX))),
    ])
}

/// Checks and pins the range of an export in `format` from `from` (default 1) to `to`
/// (default the tip), both inclusive: every refusal of an export is made here, before
/// its first byte.
pub fn export_range(
    store: &dyn Store,
    format: Format,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<ExportRange, ApiError> {
    let tip = store.tip().map_err(store_err)?.map_or(0, |t| t.height);
    let to_height = to.unwrap_or(tip);
    let from_height = from.unwrap_or(1).max(1);
    if from_height > to_height {
        return Err(ApiError::bad_request(
            codes::INVALID_HEIGHT,
            format!("from_height {from_height} is above to_height {to_height}"),
        ));
    }
    if to_height - from_height >= MAX_EXPORT_HEIGHTS {
        return Err(too_large(format!(
            "more than {MAX_EXPORT_HEIGHTS} heights: export {from_height}..={to_height} in parts"
        )));
    }
    if to_height > tip {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::HEIGHT_BEYOND_TIP,
            format!("to_height {to_height} is above the tip {tip}"),
        ));
    }
    let most_txs = match format {
        Format::Xlsx => MAX_EXPORT_TXS.min(u64::from(XLSX_MAX_ROWS) - 1),
        Format::Csv | Format::Parquet => MAX_EXPORT_TXS,
    };
    let mut txs: u64 = 0;
    let mut block_hash = None;
    for h in from_height..=to_height {
        let header = store
            .header(h)
            .map_err(store_err)?
            .ok_or_else(|| ApiError::internal("an export", &format!("no block {h}")))?;
        txs += u64::from(header.tx_count);
        if txs > most_txs {
            return Err(too_large(format!(
                "the blocks {from_height}..={h} hold more than {most_txs} transactions{}: \
                 export {from_height}..={to_height} in parts",
                if most_txs < MAX_EXPORT_TXS {
                    " (what one xlsx sheet holds)"
                } else {
                    ""
                }
            )));
        }
        if h == to_height {
            block_hash = Some(header.hash());
        }
    }
    let block_hash =
        block_hash.ok_or_else(|| ApiError::internal("an export", &"an empty range"))?;
    Ok(ExportRange {
        from_height,
        to_height,
        block_hash,
        txs,
    })
}

/// Writes `table` over `range` (from [`export_range`]) in `format` into `sink`, and
/// tells how many rows it wrote.
pub fn write_table(
    store: &dyn Store,
    table: Table,
    format: Format,
    range: &ExportRange,
    sink: Sink<'_>,
) -> Result<u64, ApiError> {
    let (from_height, to_height) = (range.from_height, range.to_height);
    let mut rows = Rows {
        out: writer(format, table.as_str(), table.columns(), sink)?,
        count: 0,
        most: range.txs,
    };
    match table {
        Table::Units => unit_rows(store, from_height, to_height, &mut rows)?,
        Table::Bills | Table::Events => {
            block_rows(store, table, from_height, to_height, &mut rows)?
        }
    }
    let count = rows.count;
    rows.out.finish()?;
    Ok(count)
}

/// Writes the rows of `table` (bills or events) of the blocks `from..=to` into `rows`.
/// (Making the rows on a second thread while this one writes them was tried: no gain
/// measured with the node's allocator, docs/benchmarks.md.)
fn block_rows(
    store: &dyn Store,
    table: Table,
    from_height: u64,
    to_height: u64,
    rows: &mut Rows<'_>,
) -> Result<(), ApiError> {
    for h in from_height..=to_height {
        for cells in block_table_rows(store, table, h)? {
            rows.push(cells)?;
        }
    }
    Ok(())
}

/// The rows of `table` (bills or events) of block `h`, in transaction order; the block's
/// leading cells (height and times) are formatted once for all its rows.
fn block_table_rows(store: &dyn Store, table: Table, h: u64) -> Result<Vec<Vec<Cell>>, ApiError> {
    let block = store
        .block(h)
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("an export", &format!("no block {h}")))?;
    let chain_id = block.header.chain_id.as_str();
    let lead = block_cells(h, block.header.time_ms)?;
    let mut out = Vec::new();
    for (index, stx) in block.txs.iter().enumerate() {
        let row = match table {
            Table::Bills => bill_cells(stx, chain_id)?,
            _ => event_cells(stx, chain_id, index)?,
        };
        let Some(rest) = row else { continue };
        let mut cells = Vec::with_capacity(lead.len() + rest.len());
        cells.extend_from_slice(&lead);
        cells.extend(rest);
        out.push(cells);
    }
    Ok(out)
}

/// The registry events of the range, by height then transaction id.
fn unit_rows(
    store: &dyn Store,
    from_height: u64,
    to_height: u64,
    rows: &mut Rows<'_>,
) -> Result<(), ApiError> {
    struct UnitEvent {
        height: u64,
        tx_id: ebill_types::TxId,
        cells: Vec<Cell>,
    }
    let mut events = Vec::new();
    for u in store.units().map_err(store_err)? {
        for e in &u.events {
            if !(from_height..=to_height).contains(&e.height) {
                continue;
            }
            let role = match u.role {
                UnitRole::Issuer { .. } => "issuer",
                UnitRole::Reimburser => "reimburser",
            };
            let revoked = match u.revoked_at {
                Some(h) => Cell::int(h)?,
                None => Cell::Null,
            };
            events.push(UnitEvent {
                height: e.height,
                tx_id: e.tx_id,
                cells: vec![
                    Cell::Text(e.tx_id.to_hex()),
                    Cell::Text(e.action.as_str().to_owned()),
                    Cell::Text(u.credit_code.as_str().to_owned()),
                    Cell::Text(u.name.clone()),
                    Cell::Text(role.to_owned()),
                    revoked,
                ],
            });
        }
    }
    events.sort_by_key(|e| (e.height, e.tx_id));
    let mut time_of = std::collections::BTreeMap::new();
    for e in events {
        let time_ms = match time_of.get(&e.height) {
            Some(t) => *t,
            None => {
                let t = store
                    .header(e.height)
                    .map_err(store_err)?
                    .ok_or_else(|| {
                        ApiError::internal("an export", &format!("no block {}", e.height))
                    })?
                    .time_ms;
                time_of.insert(e.height, t);
                t
            }
        };
        let mut cells = block_cells(e.height, time_ms)?;
        cells.extend(e.cells);
        rows.push(cells)?;
    }
    Ok(())
}

fn bill_cells(stx: &SignedTx, chain_id: &str) -> Result<Option<Vec<Cell>>, ApiError> {
    let TxBody::IssueBill(b) = &stx.tx.body else {
        return Ok(None);
    };
    let (related_code, related_number) = match &b.related {
        Some(r) => (
            Cell::Text(r.code.as_str().to_owned()),
            Cell::Text(r.number.as_str().to_owned()),
        ),
        None => (Cell::Null, Cell::Null),
    };
    Ok(Some(vec![
        Cell::Text(stx.tx.id(chain_id).to_hex()),
        Cell::Text(b.code.as_str().to_owned()),
        Cell::Text(b.number.as_str().to_owned()),
        Cell::Text(b.kind.as_str().to_owned()),
        Cell::Text(b.issuer.as_str().to_owned()),
        Cell::Int(b.issued_at.unix_ms),
        Cell::Text(b.issued_at.to_rfc3339().unwrap_or_default()),
        Cell::int(b.total.0)?,
        Cell::Text("CNY".to_owned()),
        Cell::Text(b.payer.payer_type.as_str().to_owned()),
        Cell::Text(b.payer.name.clone()),
        Cell::Text(b.payer.id.clone()),
        Cell::int(u64::try_from(b.items.len()).unwrap_or(u64::MAX))?,
        related_code,
        related_number,
    ]))
}

fn event_cells(
    stx: &SignedTx,
    chain_id: &str,
    index: usize,
) -> Result<Option<Vec<Cell>>, ApiError> {
    let body = &stx.tx.body;
    let Some(bill) = body.bill_id() else {
        return Ok(None);
    };
    let unit = match body.actor() {
        ebill_types::tx::Actor::Unit(u) => Cell::Text(u.as_str().to_owned()),
        _ => Cell::Null,
    };
    let reason = match body {
        TxBody::RedReverse { reason, .. } => Cell::opt_text(reason.clone()),
        _ => Cell::Null,
    };
    Ok(Some(vec![
        Cell::int(u64::try_from(index).unwrap_or(u64::MAX))?,
        Cell::Text(stx.tx.id(chain_id).to_hex()),
        Cell::Text(body.kind().as_str().to_owned()),
        Cell::Text(bill.code.as_str().to_owned()),
        Cell::Text(bill.number.as_str().to_owned()),
        unit,
        reason,
    ]))
}

/// `export/manifest?...`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestQuery {
    from_height: Option<String>,
    to_height: Option<String>,
    format: Option<String>,
    tables: Option<String>,
}

/// `GET /admin/v1/export/manifest?from_height=&to_height=&format=csv|parquet&tables=`:
/// writes the tables (default all three) over the range in the format (the same bytes
/// `export` answers) through a hasher, holding none of them, and signs a manifest of
/// their row counts and SHA-256 with the node's key (docs/spec/export.md).
pub(crate) async fn manifest(
    State(st): State<AdminState>,
    ApiQuery(q): ApiQuery<ManifestQuery>,
) -> ApiResult {
    let Some(key) = st.signer.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::NO_SIGNING_KEY,
            "this node has no key to sign an export manifest with",
        ));
    };
    let from = height("from_height", &q.from_height)?;
    let to = height("to_height", &q.to_height)?;
    let format = format(&q.format)?;
    let tables = tables(&q.tables)?;
    let permit = match export_permit(&st.exports) {
        Ok(p) => p,
        Err(e) => return Ok(with_retry_after(e)),
    };
    let backend = st.backend.clone();
    let m = blocking(move || {
        let _permit = permit;
        let store = backend.store();
        // One range for every table, so a block committed meanwhile does not split
        // the files.
        let range = export_range(store.as_ref(), format, from, to)?;
        let mut files = Vec::new();
        for table in tables {
            let mut hashed = HashingSink::default();
            let rows = write_table(store.as_ref(), table, format, &range, &mut hashed)?;
            files.push(ebill_types::export::ExportFile {
                table: table.as_str().to_owned(),
                format: format.as_str().to_owned(),
                schema_version: SCHEMA_VERSION,
                rows,
                sha256: Hash32(sha2::Digest::finalize(hashed.hasher).into()),
            });
        }
        let body = ebill_types::export::ManifestBody {
            chain_id: backend.genesis().chain_id.clone(),
            genesis_hash: backend.genesis().hash(),
            from_height: range.from_height,
            to_height: range.to_height,
            block_hash: range.block_hash,
            files,
        };
        Ok(body.sign(&key))
    })
    .await?;
    Ok(crate::error::json(StatusCode::OK, &m))
}

/// A sink that only hashes what is written to it.
#[derive(Default)]
struct HashingSink {
    hasher: sha2::Sha256,
}

impl std::io::Write for HashingSink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.hasher, data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_third_export_at_once_is_refused_until_one_ends() {
        let exports = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT_EXPORTS));
        let held: Vec<_> = (0..MAX_CONCURRENT_EXPORTS)
            .map(|_| export_permit(&exports).unwrap())
            .collect();
        let refused = export_permit(&exports).err().unwrap();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.code, crate::error::codes::OVERLOADED);
        drop(held);
        assert!(export_permit(&exports).is_ok());
    }
}
