//! SQLite's multi-row inserts at ingest, as statements of a few fixed shapes, each prepared once
//! on the writer's connection and then only bound and run.
//!
//! The ingest writer is one thread and the bound of SQLite ingest. Through the `Sql` builder and
//! diesel's `MultiConnection`, every execution of a multi-row insert built its whole text (tens
//! of kilobytes) several times, hashed it to find the cached statement, and copied every message
//! id, payload and string value into a bind; a chunk of any other length than the full one was
//! parsed and compiled anew. That was about a tenth of the CPU a stored event cost
//! (docs/PERFORMANCE.md, session 14). Here a statement's shape is a type
//! (`ROWS` rows into one table), so diesel finds it by type id, never builds its text after the
//! first time, and binds borrowed values straight to SQLite. A chunk is stored as pieces whose
//! lengths are powers of two ([`PIECES`]), so that a table has at most twelve shapes, all
//! prepared and kept; a prepared statement's memory grows with its rows, and twelve shapes cost
//! about as much as two full ones.

use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Binary, Double, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};
use diesel::{QueryResult, RunQueryDsl};

use crate::error::ApiError;
use crate::model::{TraitType, TraitValue};

/// The lengths of the pieces a chunk is stored as, largest first: a chunk of `n` rows is
/// `n / 2048` pieces of 2048 rows, then one piece per binary digit of the rest. 2048 event rows
/// of 7 binds stay under SQLite's 32,766 bind parameters.
const PIECES: [usize; 12] = [2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1];

/// `dispatch!(piece, f[A, B](conn))` calls `f::<A, B, ROWS>(conn, Rows(piece))`, where `ROWS` is
/// the piece's length (one of [`PIECES`]): a statement's row count is a constant of its type.
macro_rules! dispatch {
    ($piece:expr, $f:ident[$($g:tt),*]($conn:expr)) => {{
        let piece = $piece;
        match piece.len() {
            2048 => $f::<$($g,)* 2048>($conn, Rows(piece)),
            1024 => $f::<$($g,)* 1024>($conn, Rows(piece)),
            512 => $f::<$($g,)* 512>($conn, Rows(piece)),
            256 => $f::<$($g,)* 256>($conn, Rows(piece)),
            128 => $f::<$($g,)* 128>($conn, Rows(piece)),
            64 => $f::<$($g,)* 64>($conn, Rows(piece)),
            32 => $f::<$($g,)* 32>($conn, Rows(piece)),
            16 => $f::<$($g,)* 16>($conn, Rows(piece)),
            8 => $f::<$($g,)* 8>($conn, Rows(piece)),
            4 => $f::<$($g,)* 4>($conn, Rows(piece)),
            2 => $f::<$($g,)* 2>($conn, Rows(piece)),
            1 => $f::<$($g,)* 1>($conn, Rows(piece)),
            n => Err(ApiError::internal(anyhow::anyhow!("no insert of {n} rows"))),
        }
    }};
}

/// An event row as the `events` insert binds it.
pub struct EventRow<'a> {
    pub message_id: &'a str,
    pub event_type_id: i64,
    pub generated: i64,
    pub project_ref: Option<i64>,
    pub user_ref: Option<i64>,
    pub raw: &'a str,
    /// The event's numeric traits (`store::trait_numbers`).
    pub numbers: Vec<u8>,
}

/// A trait row: (event id, name id, value).
pub type TraitRow<'a> = (i64, i64, &'a TraitValue);

/// An (event type id, name id, dtype) row of `event_type_traits`.
pub type TypeTraitRow = (i64, i64, i16);

/// Inserts event rows, skipping those whose `message_id` is already stored; returns (id,
/// message id) of each row inserted.
pub fn insert_events(
    conn: &mut SqliteConnection,
    rows: &[EventRow<'_>],
) -> Result<Vec<(i64, String)>, ApiError> {
    let mut inserted = Vec::with_capacity(rows.len());
    for piece in pieces(rows) {
        inserted.extend(dispatch!(piece, load_events[](conn))?);
    }
    Ok(inserted)
}

/// Inserts trait rows of one type into its table; every value must be of that type.
pub fn insert_traits(
    conn: &mut SqliteConnection,
    trait_type: TraitType,
    rows: &[TraitRow<'_>],
) -> Result<(), ApiError> {
    if let Some(&(_, _, value)) = rows.iter().find(|r| r.2.trait_type() != trait_type) {
        return Err(ApiError::internal(anyhow::anyhow!(
            "a {:?} trait row among {trait_type:?} rows",
            value.trait_type()
        )));
    }
    for piece in pieces(rows) {
        match trait_type {
            TraitType::String => dispatch!(piece, run[_, STRING](conn)),
            TraitType::Integer => dispatch!(piece, run[_, INTEGER](conn)),
            TraitType::Float => dispatch!(piece, run[_, FLOAT](conn)),
            TraitType::Datetime => dispatch!(piece, run[_, DATETIME](conn)),
        }?;
    }
    Ok(())
}

/// Inserts the (event type, trait name, type) pairs not recorded yet.
pub fn insert_type_traits(
    conn: &mut SqliteConnection,
    rows: &[TypeTraitRow],
) -> Result<(), ApiError> {
    for piece in pieces(rows) {
        dispatch!(piece, run[_, TYPE_TRAITS](conn))?;
    }
    Ok(())
}

/// `rows` cut into pieces of the lengths in [`PIECES`], largest first.
fn pieces<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let len = PIECES.iter().copied().find(|&p| p <= rows.len())?;
        let (piece, rest) = rows.split_at(len);
        rows = rest;
        Some(piece)
    })
}

/// Exactly `ROWS` rows (see [`dispatch`]): the statement's shape is in the type.
#[derive(Clone, Copy)]
struct Rows<'a, T, const ROWS: usize>(&'a [T]);

/// The tables, as the `TABLE` parameter of [`Insert`].
const EVENTS: u8 = 0;
const STRING: u8 = 1;
const INTEGER: u8 = 2;
const FLOAT: u8 = 3;
const DATETIME: u8 = 4;
const TYPE_TRAITS: u8 = 5;

/// `INSERT OR FAIL` of `ROWS` rows into table `TABLE`.
///
/// SQLite makes a multi-row `INSERT` that could stop half-way (a constraint whose conflict
/// action is the default `ABORT`, or an immediate foreign key) undoable on its own: before it
/// changes a page the first time, it copies the page into a statement journal. At ingest that is
/// every index page a batch touches. With `OR FAIL` a failed constraint stops the statement and
/// keeps its earlier rows, so no journal is needed; every caller runs inside a transaction that
/// is rolled back whole when a statement fails, so those rows never outlive the error. (The
/// ingest writer's connection also leaves foreign keys unchecked, the other reason for a
/// statement journal: see `store::writer`.)
struct Insert<'a, T, const TABLE: u8, const ROWS: usize> {
    rows: Rows<'a, T, ROWS>,
}

/// The type diesel keys the prepared statement by: one per table and row count.
struct InsertId<const TABLE: u8, const ROWS: usize>;

impl<T, const TABLE: u8, const ROWS: usize> QueryId for Insert<'_, T, TABLE, ROWS> {
    type QueryId = InsertId<TABLE, ROWS>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

/// How one table's rows are written: the text around the `VALUES` rows, and the binds of a row.
trait Table<const TABLE: u8> {
    const HEAD: &'static str;
    const TAIL: &'static str;
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()>;
}

impl Table<EVENTS> for EventRow<'_> {
    const HEAD: &'static str = "INSERT OR FAIL INTO events \
        (message_id, event_type_id, generated, project_ref, user_ref, raw, numbers) VALUES ";
    const TAIL: &'static str = " ON CONFLICT (message_id) DO NOTHING RETURNING id, message_id";
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_bind_param::<Text, _>(self.message_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.event_type_id)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.generated)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.project_ref)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.user_ref)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.raw)?;
        out.push_sql(", ");
        out.push_bind_param::<Binary, _>(&self.numbers)
    }
}

/// A trait row's binds; the value's type was checked against the table's (`insert_traits`).
fn bind_trait<'b>(row: &'b TraitRow<'_>, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
    out.push_bind_param::<BigInt, _>(&row.0)?;
    out.push_sql(", ");
    out.push_bind_param::<BigInt, _>(&row.1)?;
    out.push_sql(", ");
    match row.2 {
        TraitValue::String(s) => out.push_bind_param::<Text, _>(s.as_str()),
        TraitValue::Integer(n) | TraitValue::Datetime(n) => out.push_bind_param::<BigInt, _>(n),
        TraitValue::Float(f) => out.push_bind_param::<Double, _>(f),
    }
}

macro_rules! trait_table {
    ($table:ident, $name:literal) => {
        impl Table<$table> for TraitRow<'_> {
            const HEAD: &'static str = concat!(
                "INSERT OR FAIL INTO ",
                $name,
                " (event_id, name_id, value) VALUES "
            );
            const TAIL: &'static str = "";
            fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
                bind_trait(self, out)
            }
        }
    };
}
trait_table!(STRING, "traits_string");
trait_table!(INTEGER, "traits_integer");
trait_table!(FLOAT, "traits_float");
trait_table!(DATETIME, "traits_datetime");

impl Table<TYPE_TRAITS> for TypeTraitRow {
    const HEAD: &'static str =
        "INSERT OR FAIL INTO event_type_traits (event_type_id, name_id, dtype) VALUES ";
    const TAIL: &'static str = " ON CONFLICT DO NOTHING";
    fn bind<'b>(&'b self, out: &mut AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        out.push_bind_param::<BigInt, _>(&self.0)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.1)?;
        out.push_sql(", ");
        out.push_bind_param::<diesel::sql_types::SmallInt, _>(&self.2)
    }
}

impl<T: Table<TABLE>, const TABLE: u8, const ROWS: usize> QueryFragment<Sqlite>
    for Insert<'_, T, TABLE, ROWS>
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // `Rows` is only made with ROWS rows (`dispatch`); a statement of another length would
        // not match the prepared one.
        if self.rows.0.len() != ROWS {
            return Err(diesel::result::Error::QueryBuilderError(
                format!("{} rows for an insert of {ROWS}", self.rows.0.len()).into(),
            ));
        }
        out.push_sql(T::HEAD);
        for (i, row) in self.rows.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.bind(&mut out)?;
            out.push_sql(")");
        }
        out.push_sql(T::TAIL);
        Ok(())
    }
}

/// The events insert returns (id, message id) of each row it stored.
impl<T, const ROWS: usize> Query for Insert<'_, T, EVENTS, ROWS> {
    type SqlType = (BigInt, Text);
}

impl<T, const TABLE: u8, const ROWS: usize> RunQueryDsl<SqliteConnection>
    for Insert<'_, T, TABLE, ROWS>
{
}

fn load_events<const ROWS: usize>(
    conn: &mut SqliteConnection,
    rows: Rows<'_, EventRow<'_>, ROWS>,
) -> Result<Vec<(i64, String)>, ApiError> {
    Ok(Insert::<_, EVENTS, ROWS> { rows }.load(conn)?)
}

fn run<T: Table<TABLE>, const TABLE: u8, const ROWS: usize>(
    conn: &mut SqliteConnection,
    rows: Rows<'_, T, ROWS>,
) -> Result<(), ApiError> {
    Insert::<_, TABLE, ROWS> { rows }.execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_powers_of_two_largest_first_and_cover_the_rows() {
        for n in [
            0usize,
            1,
            2,
            3,
            7,
            1000,
            2047,
            2048,
            2049,
            4096 + 1000,
            9999,
        ] {
            let rows: Vec<usize> = (0..n).collect();
            let cut: Vec<&[usize]> = pieces(&rows).collect();
            let lens: Vec<usize> = cut.iter().map(|p| p.len()).collect();
            assert!(lens.iter().all(|l| PIECES.contains(l)), "{n}: {lens:?}");
            assert!(lens.windows(2).all(|w| w[0] >= w[1]), "{n}: {lens:?}");
            // Below the largest piece, each length at most once (its binary digits).
            let small: Vec<usize> = lens.iter().copied().filter(|&l| l < PIECES[0]).collect();
            assert_eq!(small.iter().sum::<usize>(), n % PIECES[0], "{n}: {lens:?}");
            assert_eq!(
                small.len(),
                (n % PIECES[0]).count_ones() as usize,
                "{n}: {lens:?}"
            );
            let joined: Vec<usize> = cut.concat();
            assert_eq!(joined, rows, "{n}");
        }
    }
}
