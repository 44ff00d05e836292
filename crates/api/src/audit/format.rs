//! The file formats of an export: one table's rows, with a fixed typed column schema,
//! written as CSV (RFC 4180 with CRLF line ends, a header row), as Parquet (one file,
//! row groups of [`PARQUET_ROW_GROUP_ROWS`] rows, Snappy-compressed pages), so that an
//! analytics engine (DuckDB, Spark, ClickHouse) reads an export in place, or as an xlsx
//! workbook of one sheet named after the table, for a spreadsheet.
//!
//! Both formats carry the same values: an integer column holds whole numbers (heights,
//! unix ms, fen), a text column UTF-8, and an optional column is empty in CSV where it is
//! null in Parquet (DuckDB reads an empty CSV field as null too).

use std::io::Write;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, Type as PhysicalType};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use parquet::schema::types::Type as SchemaType;

use crate::error::ApiError;

/// Rows per Parquet row group: large enough for good compression and few groups, small
/// enough that one group's column buffers stay a few tens of MB.
pub const PARQUET_ROW_GROUP_ROWS: usize = 65_536;

/// A file format of the export (`format=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/csv`, header row first.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// An Office Open XML workbook (xlsx), one sheet.
    Xlsx,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 3] = [Format::Csv, Format::Parquet, Format::Xlsx];

    /// Its name in `format=`, in the manifest and as the file extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Parquet => "parquet",
            Format::Xlsx => "xlsx",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The `content-type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Parquet => "application/vnd.apache.parquet",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (Parquet INT64).
    Int,
    /// Text, never null (Parquet BYTE_ARRAY, STRING).
    Text,
    /// Text or null (empty in CSV).
    OptText,
    /// A whole number or null (empty in CSV).
    OptInt,
}

/// One column of a table's schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Column {
    /// Its name, in the CSV header and the Parquet schema.
    pub name: &'static str,
    /// What it holds.
    pub kind: Kind,
    /// Whether its values are (nearly) all distinct, like transaction ids: Parquet then
    /// writes them plain, without a dictionary.
    pub distinct: bool,
}

/// A value of one row in one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// A whole number.
    Int(i64),
    /// Text.
    Text(String),
    /// No value (an optional column).
    Null,
}

impl Cell {
    /// A whole number that must fit in i64 (heights, times, fen do, by the genesis
    /// limits; one that does not is a fault of this node, said loudly).
    pub fn int(v: u64) -> Result<Cell, ApiError> {
        i64::try_from(v)
            .map(Cell::Int)
            .map_err(|_| ApiError::internal("an export", &format!("{v} does not fit in i64")))
    }

    /// Text, or null when empty.
    pub fn opt_text(s: String) -> Cell {
        if s.is_empty() {
            Cell::Null
        } else {
            Cell::Text(s)
        }
    }
}

/// Where a writer puts the file's bytes as it makes them: an answer's body, a hasher,
/// a file.
pub type Sink<'a> = &'a mut (dyn Write + Send);

/// Writes one table's rows in a format into a [`Sink`]. CSV writes each row as it
/// comes; Parquet each row group of [`PARQUET_ROW_GROUP_ROWS`] rows; xlsx keeps its
/// sheet in a temporary file (constant memory) and writes the workbook at the end.
pub trait TableWriter {
    /// Appends one row: one cell per column, in the schema's order and kinds.
    fn row(&mut self, cells: Vec<Cell>) -> Result<(), ApiError>;
    /// Writes the rest of the file (Parquet's footer, the whole xlsx workbook) and
    /// flushes the sink.
    fn finish(self: Box<Self>) -> Result<(), ApiError>;
}

/// A writer of `format` for the table `name` of `columns`, into `sink`.
pub fn writer<'a>(
    format: Format,
    name: &str,
    columns: &'static [Column],
    sink: Sink<'a>,
) -> Result<Box<dyn TableWriter + 'a>, ApiError> {
    Ok(match format {
        Format::Csv => Box::new(CsvTable::new(columns, sink)?),
        Format::Parquet => Box::new(ParquetTable::new(columns, sink)?),
        Format::Xlsx => Box::new(XlsxTable::new(name, columns, sink)?),
    })
}

/// The error of a writer whose sink or library failed: a sink that broke because the
/// client went away ([`std::io::ErrorKind::BrokenPipe`]) is no fault of the node and is
/// not logged as one.
fn write_failed(
    what: &str,
    io: Option<&std::io::Error>,
    detail: &dyn std::fmt::Display,
) -> ApiError {
    if io.is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) {
        tracing::debug!(what, %detail, "an export's client went away");
        ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            crate::error::codes::INTERNAL,
            format!("{what}: the client went away"),
        )
    } else {
        ApiError::internal(what, detail)
    }
}

/// Checks a row against the schema: a row of the wrong shape is this node's bug, and
/// the export fails with an internal error (logged) rather than write a wrong file.
fn check_row(columns: &[Column], cells: &[Cell]) -> Result<(), ApiError> {
    let fits = cells.len() == columns.len()
        && columns.iter().zip(cells).all(|(c, v)| {
            matches!(
                (c.kind, v),
                (Kind::Int | Kind::OptInt, Cell::Int(_))
                    | (Kind::Text | Kind::OptText, Cell::Text(_))
                    | (Kind::OptText | Kind::OptInt, Cell::Null)
            )
        });
    if fits {
        Ok(())
    } else {
        Err(ApiError::internal(
            "an export",
            &"a row does not fit its table's schema",
        ))
    }
}

struct CsvTable<'a> {
    columns: &'static [Column],
    w: csv::Writer<Sink<'a>>,
}

fn csv_err(e: csv::Error) -> ApiError {
    let io = match e.kind() {
        csv::ErrorKind::Io(io) => Some(io),
        _ => None,
    };
    write_failed("writing CSV", io, &e)
}

impl<'a> CsvTable<'a> {
    fn new(columns: &'static [Column], sink: Sink<'a>) -> Result<Self, ApiError> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(sink);
        w.write_record(columns.iter().map(|c| c.name))
            .map_err(csv_err)?;
        Ok(Self { columns, w })
    }
}

impl TableWriter for CsvTable<'_> {
    fn row(&mut self, cells: Vec<Cell>) -> Result<(), ApiError> {
        check_row(self.columns, &cells)?;
        let fields = cells.into_iter().map(|c| match c {
            Cell::Int(i) => i.to_string(),
            Cell::Text(s) => s,
            Cell::Null => String::new(),
        });
        self.w.write_record(fields).map_err(csv_err)
    }

    fn finish(self: Box<Self>) -> Result<(), ApiError> {
        let sink = self
            .w
            .into_inner()
            .map_err(|e| write_failed("writing CSV", Some(e.error()), &e))?;
        sink.flush()
            .map_err(|e| write_failed("writing CSV", Some(&e), &e))
    }
}

/// One column's values of the row group being gathered.
enum Values {
    Int {
        values: Vec<i64>,
        /// Definition levels (1 present, 0 null) of an optional column.
        defined: Option<Vec<i16>>,
    },
    Text {
        values: Vec<ByteArray>,
        defined: Option<Vec<i16>>,
    },
}

impl Values {
    fn new(kind: Kind) -> Self {
        match kind {
            Kind::Int => Values::Int {
                values: Vec::new(),
                defined: None,
            },
            Kind::OptInt => Values::Int {
                values: Vec::new(),
                defined: Some(Vec::new()),
            },
            Kind::Text => Values::Text {
                values: Vec::new(),
                defined: None,
            },
            Kind::OptText => Values::Text {
                values: Vec::new(),
                defined: Some(Vec::new()),
            },
        }
    }

    fn push(&mut self, cell: Cell) {
        match (self, cell) {
            (Values::Int { values, defined }, Cell::Int(i)) => {
                values.push(i);
                if let Some(d) = defined {
                    d.push(1);
                }
            }
            (Values::Text { values, defined }, Cell::Text(s)) => {
                values.push(ByteArray::from(s.into_bytes()));
                if let Some(d) = defined {
                    d.push(1);
                }
            }
            (Values::Int { defined, .. } | Values::Text { defined, .. }, Cell::Null) => {
                if let Some(d) = defined {
                    d.push(0);
                }
            }
            // check_row refused every other pairing before.
            _ => {}
        }
    }

    fn clear(&mut self) {
        match self {
            Values::Int { values, defined } => {
                values.clear();
                if let Some(d) = defined {
                    d.clear();
                }
            }
            Values::Text { values, defined } => {
                values.clear();
                if let Some(d) = defined {
                    d.clear();
                }
            }
        }
    }
}

struct ParquetTable<'a> {
    columns: &'static [Column],
    file: SerializedFileWriter<Sink<'a>>,
    group: Vec<Values>,
    group_rows: usize,
}

fn parquet_err(e: parquet::errors::ParquetError) -> ApiError {
    let io = match &e {
        parquet::errors::ParquetError::External(inner) => inner.downcast_ref(),
        _ => None,
    };
    write_failed("writing Parquet", io, &e)
}

/// The Parquet schema of `columns` (message `ebill_export`).
fn schema(columns: &[Column]) -> Result<SchemaType, ApiError> {
    let fields = columns
        .iter()
        .map(|c| {
            let (physical, logical, repetition) = match c.kind {
                Kind::Int => (PhysicalType::INT64, None, Repetition::REQUIRED),
                Kind::OptInt => (PhysicalType::INT64, None, Repetition::OPTIONAL),
                Kind::Text => (
                    PhysicalType::BYTE_ARRAY,
                    Some(LogicalType::String),
                    Repetition::REQUIRED,
                ),
                Kind::OptText => (
                    PhysicalType::BYTE_ARRAY,
                    Some(LogicalType::String),
                    Repetition::OPTIONAL,
                ),
            };
            SchemaType::primitive_type_builder(c.name, physical)
                .with_logical_type(logical)
                .with_repetition(repetition)
                .build()
                .map(Arc::new)
                .map_err(parquet_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    SchemaType::group_type_builder("ebill_export")
        .with_fields(fields)
        .build()
        .map_err(parquet_err)
}

impl<'a> ParquetTable<'a> {
    fn new(columns: &'static [Column], sink: Sink<'a>) -> Result<Self, ApiError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            // No writer version or time in the file: two nodes write the same bytes
            // for the same range, as with CSV.
            .set_created_by("ebill".to_owned())
            // Min and max per column chunk (what engines prune row groups by), not per
            // page: a fifth less time writing, measured on the benchmark's audit section.
            .set_statistics_enabled(EnabledStatistics::Chunk);
        // Columns whose values are (nearly) all distinct gain nothing from a dictionary.
        let props = columns
            .iter()
            .filter(|c| c.distinct)
            .fold(props, |p, c| {
                p.set_column_dictionary_enabled(ColumnPath::from(c.name), false)
            })
            .build();
        let file = SerializedFileWriter::new(sink, Arc::new(schema(columns)?), Arc::new(props))
            .map_err(parquet_err)?;
        Ok(Self {
            columns,
            file,
            group: columns.iter().map(|c| Values::new(c.kind)).collect(),
            group_rows: 0,
        })
    }

    fn flush_group(&mut self) -> Result<(), ApiError> {
        if self.group_rows == 0 {
            return Ok(());
        }
        let mut rg = self.file.next_row_group().map_err(parquet_err)?;
        for values in &mut self.group {
            let Some(mut col) = rg.next_column().map_err(parquet_err)? else {
                return Err(ApiError::internal(
                    "writing Parquet",
                    &"fewer columns than the schema",
                ));
            };
            match values {
                Values::Int { values, defined } => {
                    col.typed::<Int64Type>()
                        .write_batch(values, defined.as_deref(), None)
                        .map_err(parquet_err)?;
                }
                Values::Text { values, defined } => {
                    col.typed::<ByteArrayType>()
                        .write_batch(values, defined.as_deref(), None)
                        .map_err(parquet_err)?;
                }
            }
            col.close().map_err(parquet_err)?;
            values.clear();
        }
        rg.close().map_err(parquet_err)?;
        self.group_rows = 0;
        Ok(())
    }
}

impl TableWriter for ParquetTable<'_> {
    fn row(&mut self, cells: Vec<Cell>) -> Result<(), ApiError> {
        check_row(self.columns, &cells)?;
        for (values, cell) in self.group.iter_mut().zip(cells) {
            values.push(cell);
        }
        self.group_rows += 1;
        if self.group_rows >= PARQUET_ROW_GROUP_ROWS {
            self.flush_group()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ApiError> {
        self.flush_group()?;
        let sink = self.file.into_inner().map_err(parquet_err)?;
        sink.flush()
            .map_err(|e| write_failed("writing Parquet", Some(&e), &e))
    }
}

/// Largest whole number a spreadsheet holds exactly (its numbers are f64): 2^53.
const XLSX_MAX_EXACT_INT: i64 = 1 << 53;
/// Rows a sheet holds, the header included.
pub const XLSX_MAX_ROWS: u32 = 1_048_576;

struct XlsxTable<'a> {
    columns: &'static [Column],
    book: rust_xlsxwriter::Workbook,
    sink: Sink<'a>,
    /// The next row to write (0 is the header).
    next_row: u32,
}

fn xlsx_err(e: rust_xlsxwriter::XlsxError) -> ApiError {
    let io = match &e {
        rust_xlsxwriter::XlsxError::IoError(io) => Some(io),
        _ => None,
    };
    write_failed("writing xlsx", io, &e)
}

impl<'a> XlsxTable<'a> {
    fn new(name: &str, columns: &'static [Column], sink: Sink<'a>) -> Result<Self, ApiError> {
        let mut book = rust_xlsxwriter::Workbook::new();
        // A fixed creation time: two nodes write the same bytes for the same range.
        let created = rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 1, 1).map_err(xlsx_err)?;
        book.set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&created));
        let sheet = book
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_err)?;
        sheet.set_name(name).map_err(xlsx_err)?;
        for (col, c) in (0u16..).zip(columns) {
            sheet.write_string(0, col, c.name).map_err(xlsx_err)?;
        }
        Ok(Self {
            columns,
            book,
            sink,
            next_row: 1,
        })
    }
}

impl TableWriter for XlsxTable<'_> {
    fn row(&mut self, cells: Vec<Cell>) -> Result<(), ApiError> {
        check_row(self.columns, &cells)?;
        if self.next_row >= XLSX_MAX_ROWS {
            return Err(ApiError::internal(
                "writing xlsx",
                &format!("a sheet holds at most {XLSX_MAX_ROWS} rows"),
            ));
        }
        let row = self.next_row;
        let sheet = self.book.worksheet_from_index(0).map_err(xlsx_err)?;
        for (col, cell) in (0u16..).zip(cells) {
            match cell {
                Cell::Int(i) => {
                    if i.unsigned_abs() > XLSX_MAX_EXACT_INT.unsigned_abs() {
                        return Err(ApiError::internal(
                            "writing xlsx",
                            &format!("{i} is beyond what a spreadsheet number holds exactly"),
                        ));
                    }
                    // Exact: |i| <= 2^53.
                    #[allow(clippy::cast_precision_loss)]
                    let v = i as f64;
                    sheet.write_number(row, col, v).map_err(xlsx_err)?;
                }
                Cell::Text(t) => {
                    sheet.write_string(row, col, t).map_err(xlsx_err)?;
                }
                Cell::Null => {}
            }
        }
        self.next_row += 1;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), ApiError> {
        self.book.save_to_writer(&mut self.sink).map_err(xlsx_err)?;
        self.sink
            .flush()
            .map_err(|e| write_failed("writing xlsx", Some(&e), &e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    const fn col(name: &'static str, kind: Kind, distinct: bool) -> Column {
        Column {
            name,
            kind,
            distinct,
        }
    }

    const COLUMNS: &[Column] = &[
        col("height", Kind::Int, false),
        col("code", Kind::Text, true),
        col("reason", Kind::OptText, false),
        col("revoked_at_height", Kind::OptInt, false),
    ];

    fn rows(n: i64) -> Vec<Vec<Cell>> {
        (0..n)
            .map(|i| {
                vec![
                    Cell::Int(i),
                    Cell::Text(format!("code,{i}\"")),
                    if i % 3 == 0 {
                        Cell::Null
                    } else {
                        Cell::Text("开错了".into())
                    },
                    if i % 2 == 0 {
                        Cell::Null
                    } else {
                        Cell::Int(-i)
                    },
                ]
            })
            .collect()
    }

    fn write(format: Format, rows: Vec<Vec<Cell>>) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut w = writer(format, "bills", COLUMNS, &mut bytes).unwrap();
        for r in rows {
            w.row(r).unwrap();
        }
        w.finish().unwrap();
        bytes
    }

    #[test]
    fn parquet_holds_the_rows_as_csv_does_across_row_groups() {
        let n = i64::try_from(PARQUET_ROW_GROUP_ROWS).unwrap() + 5;
        let bytes = write(Format::Parquet, rows(n));
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), n);
        assert_eq!(meta.num_row_groups(), 2);
        let mut seen = 0i64;
        for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let cols: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
            let i = i64::try_from(i).unwrap();
            assert_eq!(cols[0], &Field::Long(i));
            assert_eq!(cols[1], &Field::Str(format!("code,{i}\"")));
            let reason = if i % 3 == 0 {
                Field::Null
            } else {
                Field::Str("开错了".into())
            };
            assert_eq!(cols[2], &reason);
            let revoked = if i % 2 == 0 {
                Field::Null
            } else {
                Field::Long(-i)
            };
            assert_eq!(cols[3], &revoked);
            seen += 1;
        }
        assert_eq!(seen, n);
    }

    #[test]
    fn the_same_rows_give_the_same_bytes() {
        assert_eq!(
            write(Format::Parquet, rows(10)),
            write(Format::Parquet, rows(10))
        );
        let csv = String::from_utf8(write(Format::Csv, rows(2))).unwrap();
        assert_eq!(
            csv,
            "height,code,reason,revoked_at_height\r\n0,\"code,0\"\"\",,\r\n1,\"code,1\"\"\",开错了,-1\r\n"
        );
    }

    #[test]
    fn xlsx_holds_one_sheet_of_the_rows_and_the_same_rows_give_the_same_bytes() {
        use std::io::Read;
        let bytes = write(Format::Xlsx, rows(20));
        assert_eq!(bytes, write(Format::Xlsx, rows(20)));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut sheet = String::new();
        zip.by_name("xl/worksheets/sheet1.xml")
            .unwrap()
            .read_to_string(&mut sheet)
            .unwrap();
        assert_eq!(sheet.matches("<row ").count(), 21, "a header and 20 rows");
        assert!(sheet.contains("开错了"), "{sheet}");
        let mut book = String::new();
        zip.by_name("xl/workbook.xml")
            .unwrap()
            .read_to_string(&mut book)
            .unwrap();
        assert!(book.contains("name=\"bills\""), "{book}");
        // A number a spreadsheet would round is refused, not rounded.
        let mut sink = Vec::new();
        let mut w = writer(Format::Xlsx, "bills", COLUMNS, &mut sink).unwrap();
        let too_big = vec![
            Cell::Int(1 << 54),
            Cell::Text("c".into()),
            Cell::Null,
            Cell::Null,
        ];
        assert!(w.row(too_big).is_err());
    }

    #[test]
    fn a_row_that_does_not_fit_the_schema_is_refused() {
        for bad in [
            vec![Cell::Int(1)],
            vec![
                Cell::Text("1".into()),
                Cell::Text("c".into()),
                Cell::Null,
                Cell::Null,
            ],
            vec![Cell::Int(1), Cell::Null, Cell::Null, Cell::Null],
        ] {
            for format in Format::ALL {
                let mut sink = Vec::new();
                let mut w = writer(format, "bills", COLUMNS, &mut sink).unwrap();
                assert!(w.row(bad.clone()).is_err(), "{format:?} {bad:?}");
            }
        }
    }
}
