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
    for chunk in names.chunks(CHUNK) {
        let mut sql = Sql::new(&format!("INSERT INTO {} (name) VALUES ", table.table()));
        for (i, name) in chunk.iter().enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            sql.bind_text(name).push(")");
        }
        sql.push(" ON CONFLICT (name) DO NOTHING");
        sql.execute(conn)?;
    }
    lookup(conn, table, names)
}

/// Ids of the names that exist; absent names are missing from the map.
pub fn lookup(
    conn: &mut AnyConnection,
    table: NameTable,
    names: &[&str],
) -> Result<HashMap<String, i64>, ApiError> {
    let mut ids = HashMap::with_capacity(names.len());
    for chunk in names.chunks(CHUNK) {
        let mut sql = Sql::new(&format!(
            "SELECT id, name FROM {} WHERE name IN ",
            table.table()
        ));
        sql.bind_list(chunk.iter().map(|n| Bind::Text(n.to_string())));
        for row in sql.load::<IdName>(conn)? {
            ids.insert(row.name, row.id);
        }
    }
    Ok(ids)
}

/// The names of these ids.
pub fn values_of(
    conn: &mut AnyConnection,
    table: NameTable,
    ids: &[i64],
) -> Result<HashMap<i64, String>, ApiError> {
    let mut names = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut sql = Sql::new(&format!(
            "SELECT id, name FROM {} WHERE id IN ",
            table.table()
        ));
        sql.bind_list(chunk.iter().map(|id| Bind::BigInt(*id)));
        for row in sql.load::<IdName>(conn)? {
            names.insert(row.id, row.name);
        }
    }
    Ok(names)
}
