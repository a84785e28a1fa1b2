//! Reading the traits of a page of events: the one place where the read path differs by
//! backend, because this is where a list request spends most of its database time.
//!
//! - PostgreSQL rows carry their traits as a document ([`trait_doc`]), every row (the
//!   `unkeyed_trait_rows` migration gave one to the rows stored before documents existed), so a
//!   page needs no trait-table read at all.
//! - SQLite rows carry their numeric traits ([`trait_numbers`]), so a page reads only its string
//!   traits from a trait table: a JSON array of the ids, and a primary-key probe per id, in
//!   process. Rows stored before the `sqlite_trait_numbers` migration are read from all four
//!   tables.
//!
//! The page's event ids are bound as one value, not one placeholder each: diesel's work per
//! bound value was about a tenth of a page's CPU, and SQLite turned a long `IN (…)` list into a
//! temporary B-tree on every execution.

use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, Double, Text};
use diesel::RunQueryDsl;

use super::ingest::trait_table;
use super::rows::EventRow;
use super::trait_doc;
use super::trait_numbers;
use crate::db::sql::{Bind, Sql, TypedSql};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::model::{TraitType, TraitValue};

/// (event id, name id, value) of every trait of these events, in no particular order.
pub fn load(
    conn: &mut AnyConnection,
    rows: &[EventRow],
) -> Result<Vec<(i64, i64, TraitValue)>, ApiError> {
    let mut traits = Vec::with_capacity(rows.len() * 12);
    // Events whose traits are all still to be read, and those whose strings only are.
    let mut unread = Vec::new();
    let mut strings_unread = Vec::new();
    for row in rows {
        if let Some(doc) = &row.traits {
            trait_doc::decode(row.id, doc, &mut traits)?;
        } else if let Some(numbers) = &row.numbers {
            trait_numbers::decode(row.id, numbers, &mut traits)?;
            strings_unread.push(row.id);
        } else {
            unread.push(row.id);
        }
    }
    match conn {
        AnyConnection::Sqlite(_) => load_sqlite(conn, &unread, &strings_unread, &mut traits)?,
        // Every PostgreSQL row has its document (migration `unkeyed_trait_rows`), and its
        // trait tables have no key to read one event's traits by.
        AnyConnection::Postgresql(_) => {
            if let Some(id) = unread.first() {
                return Err(ApiError::internal(anyhow::anyhow!(
                    "event {id} has no trait document"
                )));
            }
        }
    }
    Ok(traits)
}

/// The traits of the events `unread`, and the string traits of the events `strings_unread`.
fn load_sqlite(
    conn: &mut AnyConnection,
    unread: &[i64],
    strings_unread: &[i64],
    traits: &mut Vec<(i64, i64, TraitValue)>,
) -> Result<(), ApiError> {
    // `[1,2]`, for `json_each`.
    let json = |ids: &[i64]| serde_json::to_string(ids).map_err(|e| ApiError::internal(e.into()));
    let select = |t: TraitType, list: String| {
        let mut sql = Sql::new("SELECT x.event_id, x.name_id, x.value FROM json_each(");
        sql.bind(Bind::Text(list));
        // CROSS JOIN keeps the id list as the outer loop.
        sql.push(&format!(
            ") j CROSS JOIN {} x WHERE x.event_id = j.value",
            trait_table(t)
        ));
        sql
    };
    let strings: Vec<i64> = unread.iter().chain(strings_unread).copied().collect();
    if !strings.is_empty() {
        let sql = select(TraitType::String, json(&strings)?);
        load_typed::<Text, String>(conn, sql, traits, TraitValue::String)?;
    }
    if unread.is_empty() {
        return Ok(());
    }
    let list = json(unread)?;
    load_typed::<BigInt, i64>(
        conn,
        select(TraitType::Integer, list.clone()),
        traits,
        TraitValue::Integer,
    )?;
    load_typed::<Double, f64>(
        conn,
        select(TraitType::Float, list.clone()),
        traits,
        TraitValue::Float,
    )?;
    load_typed::<BigInt, i64>(
        conn,
        select(TraitType::Datetime, list),
        traits,
        TraitValue::Datetime,
    )?;
    Ok(())
}

/// Runs a `(event_id, name_id, value)` query whose value column has the SQL type `ST`, and adds
/// its rows to `traits`, each value made a [`TraitValue`] by `wrap`.
fn load_typed<ST, V>(
    conn: &mut AnyConnection,
    sql: Sql,
    traits: &mut Vec<(i64, i64, TraitValue)>,
    wrap: fn(V) -> TraitValue,
) -> Result<(), ApiError>
where
    for<'a> TypedSql<(BigInt, BigInt, ST)>: LoadQuery<'a, AnyConnection, (i64, i64, V)>,
{
    let rows = sql
        .typed::<(BigInt, BigInt, ST)>()
        .load::<(i64, i64, V)>(conn)?;
    traits.extend(
        rows.into_iter()
            .map(|(event_id, name_id, value)| (event_id, name_id, wrap(value))),
    );
    Ok(())
}
