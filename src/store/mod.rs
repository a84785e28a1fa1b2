//! The store: every query Almanac runs, as plain functions over a connection. Handlers call these
//! and never build SQL themselves.

pub mod audit;
mod checkpointer;
pub mod event_types;
pub mod events;
pub mod ingest;
pub mod name_cache;
mod names;
mod page_traits;
pub mod plan_cache;
mod rows;
mod sqlite_inserts;
pub mod tokens;
mod trait_doc;
mod trait_numbers;
#[cfg(test)]
mod trait_values;
pub mod wal_index;
mod wal_sync;
pub mod writer;

use diesel::connection::Connection;

use crate::db::AnyConnection;
use crate::error::ApiError;

/// Registers the SQL functions the store's SQLite queries use, on a new connection.
pub fn register_sqlite_functions(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
    trait_numbers::register_functions(conn)
}

/// What the read path keeps between requests: shared by all of a server's requests.
#[derive(Default)]
pub struct ReadCaches {
    /// Recent trait-filter match counts, for choosing query plans.
    pub plans: plan_cache::PlanCache,
    /// Interned names by id and by name.
    pub names: name_cache::NameCache,
}

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

/// Runs the reads of one request against one snapshot.
///
/// On SQLite the reads run in one deferred (read) transaction: the page and its traits come from
/// the same snapshot, and the file and WAL read locks, which every autocommit statement would
/// otherwise take and release on locks shared by all of the process's connections, are taken
/// once. On PostgreSQL each statement of a request already sees only committed rows of
/// immutable events, and a transaction would cost two more round trips, so reads run as they are.
pub(crate) fn read_snapshot<T, F>(conn: &mut AnyConnection, f: F) -> Result<T, ApiError>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, ApiError>,
{
    match conn {
        AnyConnection::Sqlite(_) => conn.transaction(f),
        AnyConnection::Postgresql(_) => f(conn),
    }
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
