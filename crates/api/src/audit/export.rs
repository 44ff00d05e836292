//! `GET /admin/v1/export?table=bills|events|units&format=csv|parquet|xlsx&from_height=&to_height=`:
//! one table of the chain between two heights (both inclusive) as CSV, Parquet or xlsx
//! ([`super::format`]), with a fixed typed column schema per table ([`SCHEMA_VERSION`];
//! the columns are [`BILLS_COLUMNS`], [`EVENTS_COLUMNS`] and [`UNITS_COLUMNS`],
//! documented in docs/spec/export.md).
//!
//! Rows come from the committed blocks themselves, so two honest nodes give the same
//! bytes for the same range: the answer is bounded by [`MAX_EXPORT_HEIGHTS`] heights and
//! [`MAX_EXPORT_ROWS`] rows (422 `range_too_large` beyond either), and the response
//! headers `x-ebill-schema-version`, `x-ebill-rows`, `x-ebill-to-height` and
//! `x-ebill-block-hash` (the block at `to_height`, the checkpoint) say what it holds.
//! Money is integer fen; every time is given twice, unix ms and RFC 3339 (block times
//! in China Standard Time, +08:00; a bill's `issued_at` in the offset its issuer gave).

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use ebill_ledger::UnitRole;
use ebill_store::Store;
use ebill_types::{Hash32, SignedTx, Timestamp, TxBody};
use serde::Deserialize;

use super::AdminState;
use super::format::{Cell, Column, Format, Kind, TableWriter, writer};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiQuery;
use crate::routes::blocking;

/// The version of the column schemas below; a change of any column is a new version.
pub const SCHEMA_VERSION: u32 = 1;
/// Most heights one export covers.
pub const MAX_EXPORT_HEIGHTS: u64 = 10_000;
/// Most rows one export holds.
pub const MAX_EXPORT_ROWS: u64 = 1_000_000;

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

/// One finished export of one table.
#[derive(Clone, Debug)]
pub struct Export {
    /// The file's bytes in its format (CSV: the header row first).
    pub bytes: Vec<u8>,
    /// Its format.
    pub format: Format,
    /// Rows, not counting a header.
    pub rows: u64,
    /// First height.
    pub from_height: u64,
    /// Last height.
    pub to_height: u64,
    /// Hash of the block at `to_height`.
    pub block_hash: Hash32,
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
    let backend = st.backend.clone();
    let out =
        blocking(move || export_table(backend.store().as_ref(), table, format, from, to)).await?;
    let mut resp = (StatusCode::OK, out.bytes).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert("x-ebill-schema-version", HeaderValue::from(SCHEMA_VERSION));
    h.insert("x-ebill-rows", HeaderValue::from(out.rows));
    h.insert("x-ebill-from-height", HeaderValue::from(out.from_height));
    h.insert("x-ebill-to-height", HeaderValue::from(out.to_height));
    if let Ok(v) = HeaderValue::from_str(&out.block_hash.to_hex()) {
        h.insert("x-ebill-block-hash", v);
    }
    Ok(resp)
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

/// Counts rows into a writer, refusing more than [`MAX_EXPORT_ROWS`].
struct Rows {
    out: Box<dyn TableWriter>,
    count: u64,
    from_height: u64,
    to_height: u64,
}

impl Rows {
    fn push(&mut self, cells: Vec<Cell>) -> Result<(), ApiError> {
        self.count += 1;
        if self.count > MAX_EXPORT_ROWS {
            return Err(too_large(format!(
                "more than {MAX_EXPORT_ROWS} rows: export {}..={} in parts",
                self.from_height, self.to_height
            )));
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

/// Exports `table` in `format` from `from` (default 1) to `to` (default the tip), both
/// inclusive.
pub fn export_table(
    store: &dyn Store,
    table: Table,
    format: Format,
    from: Option<u64>,
    to: Option<u64>,
) -> Result<Export, ApiError> {
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
    let header = store
        .header(to_height)
        .map_err(store_err)?
        .ok_or_else(|| ApiError::internal("an export", &format!("no block {to_height}")))?;
    let block_hash = header.hash();
    let mut rows = Rows {
        out: writer(format, table.as_str(), table.columns())?,
        count: 0,
        from_height,
        to_height,
    };
    match table {
        Table::Units => unit_rows(store, from_height, to_height, &mut rows)?,
        Table::Bills | Table::Events => {
            for h in from_height..=to_height {
                let block = store
                    .block(h)
                    .map_err(store_err)?
                    .ok_or_else(|| ApiError::internal("an export", &format!("no block {h}")))?;
                let chain_id = block.header.chain_id.as_str();
                for (index, stx) in block.txs.iter().enumerate() {
                    let row = match table {
                        Table::Bills => bill_cells(stx, chain_id)?,
                        _ => event_cells(stx, chain_id, index)?,
                    };
                    let Some(rest) = row else { continue };
                    let mut cells = block_cells(h, block.header.time_ms)?;
                    cells.extend(rest);
                    rows.push(cells)?;
                }
            }
        }
    }
    let count = rows.count;
    Ok(Export {
        bytes: rows.out.finish()?,
        format,
        rows: count,
        from_height,
        to_height,
        block_hash,
    })
}

/// The registry events of the range, by height then transaction id.
fn unit_rows(
    store: &dyn Store,
    from_height: u64,
    to_height: u64,
    rows: &mut Rows,
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
/// exports the tables (default all three) over the range in the format (the same bytes
/// `export` answers), and signs a manifest of their row counts and SHA-256 with the
/// node's key (docs/spec/export.md).
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
    let backend = st.backend.clone();
    let m = blocking(move || {
        let store = backend.store();
        let mut files = Vec::new();
        let mut range = None;
        for table in tables {
            // Pin the range to the first table's, so a block committed meanwhile
            // does not split the files.
            let (f, t) = range.map_or((from, to), |(f, t, _)| (Some(f), Some(t)));
            let out = export_table(store.as_ref(), table, format, f, t)?;
            range = Some((out.from_height, out.to_height, out.block_hash));
            files.push(ebill_types::export::ExportFile {
                table: table.as_str().to_owned(),
                format: format.as_str().to_owned(),
                schema_version: SCHEMA_VERSION,
                rows: out.rows,
                sha256: Hash32::digest(&out.bytes),
            });
        }
        let Some((from_height, to_height, block_hash)) = range else {
            return Err(ApiError::internal("an export", &"no tables"));
        };
        let body = ebill_types::export::ManifestBody {
            chain_id: backend.genesis().chain_id.clone(),
            genesis_hash: backend.genesis().hash(),
            from_height,
            to_height,
            block_hash,
            files,
        };
        Ok(body.sign(&key))
    })
    .await?;
    Ok(crate::error::json(StatusCode::OK, &m))
}
