//! Interned names: event types, trait names and tenant ids are stored once and referred to by
//! id.

use std::collections::HashMap;

use diesel::RunQueryDsl;

use super::rows::IdName;
use crate::db::sql::{Bind, Sql};
use crate::db::AnyConnection;
use crate::error::ApiError;

/// Names per statement, well under both backends' bind-parameter limits.
const CHUNK: usize = 500;

#[derive(Clone, Copy, Debug)]
pub enum NameTable {
    EventTypes,
    TraitNames,
    /// Values of the tenancy traits `project_id` and `user_id`.
    Tenants,
}

impl NameTable {
    fn table(self) -> &'static str {
        match self {
            NameTable::EventTypes => "event_types",
            NameTable::TraitNames => "trait_names",
            NameTable::Tenants => "tenants",
        }
    }
}

/// Ids of these names, creating the missing ones. Call inside a write transaction; the insert
/// comes first so that the transaction's first statement is a write (see `write_transaction`).
pub fn intern(
    conn: &mut AnyConnection,
    table: NameTable,
    names: &[&str],
) -> Result<HashMap<String, i64>, ApiError> {
    insert(conn, table, names)?;
    lookup(conn, table, names)
}

/// Inserts the names that do not exist yet, in the order given (callers sort them).
pub fn insert(conn: &mut AnyConnection, table: NameTable, names: &[&str]) -> Result<(), ApiError> {
    for chunk in names.chunks(CHUNK) {
        // Padded to a power of two by repeating the last name (a repeat is one more conflict,
        // skipped), so that few statement shapes exist and each is prepared once.
        let padded = chunk.len().next_power_of_two();
        let mut sql = Sql::new(&format!("INSERT INTO {} (name) VALUES ", table.table()));
        sql.push_rows((0..padded).map(|i| [Bind::Text(chunk[i.min(chunk.len() - 1)].to_string())]));
        sql.push(" ON CONFLICT (name) DO NOTHING");
        sql.execute(conn)?;
    }
    Ok(())
}

/// Ids of the names that exist; absent names are missing from the map.
pub fn lookup(
    conn: &mut AnyConnection,
    table: NameTable,
    names: &[&str],
) -> Result<HashMap<String, i64>, ApiError> {
    let keys: Vec<Bind> = names.iter().map(|n| Bind::Text(n.to_string())).collect();
    let rows = rows_where(conn, table, "name", &keys)?;
    Ok(rows.into_iter().map(|r| (r.name, r.id)).collect())
}

/// The names of these ids.
pub fn values_of(
    conn: &mut AnyConnection,
    table: NameTable,
    ids: &[i64],
) -> Result<HashMap<i64, String>, ApiError> {
    let keys: Vec<Bind> = ids.iter().map(|id| Bind::BigInt(*id)).collect();
    let rows = rows_where(conn, table, "id", &keys)?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

/// The rows whose `column` is one of `keys`, in statements of at most `CHUNK` keys.
fn rows_where(
    conn: &mut AnyConnection,
    table: NameTable,
    column: &str,
    keys: &[Bind],
) -> Result<Vec<IdName>, ApiError> {
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(CHUNK) {
        let mut sql = Sql::new(&format!(
            "SELECT id, name FROM {} WHERE {column} IN ",
            table.table()
        ));
        sql.bind_list(chunk.iter().cloned());
        rows.extend(sql.load::<IdName>(conn)?);
    }
    Ok(rows)
}
