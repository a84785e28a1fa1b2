//! Embedded migrations, one tree per backend with the same names (`migrations/{sqlite,postgres}`).
//!
//! On PostgreSQL the run holds an advisory lock, so several `almanac serve` processes starting at
//! once over one database migrate it exactly once.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::{pg::Pg, sqlite::Sqlite};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use super::AnyConnection;

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// An arbitrary constant naming Almanac's migration lock ("almanac" in ASCII).
const PG_LOCK_KEY: i64 = 0x0061_6c6d_616e_6163;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Applies every pending migration; returns the versions applied.
pub fn run_pending(conn: &mut AnyConnection) -> Result<Vec<String>, BoxError> {
    match conn {
        // The whole run holds SQLite's write lock (BEGIN IMMEDIATE; each migration is then a
        // savepoint), so of several processes starting together one migrates and the others,
        // waiting on the busy timeout, then find nothing pending. Without it, a process could
        // fail on "table … already exists" while the other was between two migrations.
        AnyConnection::Sqlite(c) => {
            match c.immediate_transaction(|c| {
                c.run_pending_migrations(SQLITE)
                    .map(|done| done.iter().map(|v| v.to_string()).collect::<Vec<_>>())
            }) {
                Ok(done) => Ok(done),
                // Kept as a last resort: if nothing is pending any more, another process
                // applied the migrations and this one has nothing to do.
                Err(error) => match c.has_pending_migration(SQLITE) {
                    Ok(false) => Ok(Vec::new()),
                    _ => Err(error),
                },
            }
        }
        AnyConnection::Postgresql(c) => {
            c.batch_execute(&format!("SELECT pg_advisory_lock({PG_LOCK_KEY})"))?;
            let result = c
                .run_pending_migrations(POSTGRES)
                .map(|done| done.iter().map(|v| v.to_string()).collect());
            c.batch_execute(&format!("SELECT pg_advisory_unlock({PG_LOCK_KEY})"))?;
            result
        }
    }
}

/// Reverts every applied migration (used by tests that check each `down.sql`).
pub fn revert_all(conn: &mut AnyConnection) -> Result<(), BoxError> {
    match conn {
        AnyConnection::Sqlite(c) => c.revert_all_migrations(SQLITE).map(drop),
        AnyConnection::Postgresql(c) => c.revert_all_migrations(POSTGRES).map(drop),
    }
}

/// Reverts the last applied migration and returns its version (used by tests that check what a
/// migration does to rows stored before it).
pub fn revert_last(conn: &mut AnyConnection) -> Result<String, BoxError> {
    match conn {
        AnyConnection::Sqlite(c) => c.revert_last_migration(SQLITE).map(|v| v.to_string()),
        AnyConnection::Postgresql(c) => c.revert_last_migration(POSTGRES).map(|v| v.to_string()),
    }
}

/// The migration names of each tree: (sqlite, postgres).
pub fn names() -> Result<(Vec<String>, Vec<String>), BoxError> {
    let sqlite = MigrationSource::<Sqlite>::migrations(&SQLITE)?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    let postgres = MigrationSource::<Pg>::migrations(&POSTGRES)?
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    Ok((sqlite, postgres))
}
