//! The store: every query Almanac runs, as plain functions over a connection. Handlers call these
//! and never build SQL themselves.

pub mod audit;
pub mod event_types;
pub mod events;
pub mod ingest;
mod names;
pub mod plan_cache;
mod rows;
pub mod tokens;
pub mod writer;

use diesel::connection::Connection;

use crate::db::AnyConnection;
use crate::error::ApiError;

/// Runs `f` in a transaction that writes.
///
/// On SQLite a transaction that reads before it writes can fail with "database is locked" when
/// another writer commits in between (the busy timeout does not apply to that upgrade), so
/// callers make their first statement a write; on PostgreSQL ordinary read-committed suffices.
pub fn write_transaction<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, ApiError>,
{
    conn.transaction(f)
}

/// The SQL text for a value comparison.
pub(crate) fn op_sql(op: crate::query::Op) -> &'static str {
    use crate::query::Op;
    match op {
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Eq => "=",
        Op::Ne => "<>",
        Op::Ge => ">=",
        Op::Gt => ">",
    }
}
