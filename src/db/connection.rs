//! The connection enum, database URLs and the r2d2 manager with per-backend session setup.

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, R2D2Connection};
use diesel::{Connection, PgConnection, SqliteConnection};

use super::DbOptions;

/// One connection type for both backends. PostgreSQL first: SQLite accepts any string.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

impl AnyConnection {
    pub fn backend(&self) -> Backend {
        match self {
            AnyConnection::Postgresql(_) => Backend::Postgres,
            AnyConnection::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

/// A parsed database URL. The scheme picks the backend; anything else is refused, so a typo never
/// silently creates an empty SQLite file somewhere.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or `sqlite:PATH` (`sqlite:///abs/path.db` for an absolute path).
    Sqlite(String),
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> anyhow::Result<DatabaseUrl> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseUrl::Postgres(url.to_string()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unsupported database URL {:?}: use sqlite://PATH (e.g. sqlite://almanac.db) or postgres://USER@HOST/DB",
                    redact(url)
                )
            })?;
        if path.is_empty() {
            anyhow::bail!("the SQLite URL {url:?} names no file: use sqlite://PATH");
        }
        Ok(DatabaseUrl::Sqlite(path.to_string()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            DatabaseUrl::Sqlite(_) => Backend::Sqlite,
            DatabaseUrl::Postgres(_) => Backend::Postgres,
        }
    }
}

/// Shows a URL without its password.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite://{p}"),
            DatabaseUrl::Postgres(u) => write!(f, "{}", redact(u)),
        }
    }
}

/// Opens connections of the URL's backend and prepares each session.
pub struct Manager {
    url: DatabaseUrl,
    sqlite_setup: String,
    /// The PostgreSQL URL with libpq's `connect_timeout` added (see [`with_connect_timeout`]).
    pg_url: Option<String>,
}

impl Manager {
    pub fn new(url: DatabaseUrl, options: &DbOptions) -> Manager {
        // WAL lets readers run beside the single writer; foreign keys are off by default in
        // SQLite; the busy timeout makes a second writer wait instead of failing at once; the
        // default 2 MiB page cache is far too small to keep index interior pages while ingesting.
        // The busy timeout comes first: switching to WAL takes a lock, and a process starting
        // beside another one must wait for it rather than fail.
        let sqlite_setup = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; \
             PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -{}; \
             PRAGMA wal_autocheckpoint = {};",
            options.sqlite_busy_timeout.as_millis(),
            options.sqlite_synchronous,
            options.sqlite_cache_kib,
            options.sqlite_wal_autocheckpoint
        );
        let pg_url = match &url {
            DatabaseUrl::Postgres(u) => Some(with_connect_timeout(u, options.connect_timeout)),
            DatabaseUrl::Sqlite(_) => None,
        };
        Manager {
            url,
            sqlite_setup,
            pg_url,
        }
    }
}

/// Adds libpq's `connect_timeout` (whole seconds, at least 2 as libpq requires) unless the URL
/// sets one. Without it, connecting to a server that accepts TCP but does not answer (stopped
/// with SIGSTOP, overloaded, a half-open proxy) blocks forever, and the ingest writer, which opens
/// its own connection, with it; the pool's checkout timeout does not cover that.
pub fn with_connect_timeout(url: &str, timeout: std::time::Duration) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let secs = timeout.as_secs_f64().ceil().max(2.0) as u64;
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={secs}")
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, Self::Error> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                // Before the first connection opens: WAL writes gathered (`db::wal_buffer`).
                super::wal_buffer::register().map_err(|e| {
                    diesel::r2d2::Error::ConnectionError(diesel::ConnectionError::BadConnection(e))
                })?;
                let mut conn = SqliteConnection::establish(path)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(&self.sqlite_setup)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                crate::store::register_sqlite_functions(&mut conn)
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(AnyConnection::Sqlite(conn))
            }
            DatabaseUrl::Postgres(url) => {
                let url = self.pg_url.as_deref().unwrap_or(url);
                let mut conn =
                    PgConnection::establish(url).map_err(diesel::r2d2::Error::ConnectionError)?;
                // UTC, and no statement can hold a connection forever.
                conn.batch_execute("SET TIME ZONE 'UTC'; SET statement_timeout = '60s';")
                    .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(AnyConnection::Postgresql(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        conn.is_broken()
    }
}

/// Logs pool errors (a database that went away) once per failure, without the URL.
#[derive(Debug)]
pub struct LogErrors;

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for LogErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(%error, "database connection failed");
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::with_connect_timeout;

    #[test]
    fn connect_timeout_is_added_in_whole_seconds_of_at_least_two() {
        let five = Duration::from_millis(4500);
        assert_eq!(
            with_connect_timeout("postgres://u@h/db", five),
            "postgres://u@h/db?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout(
                "postgres://u@h/db?options=-cx%3Dy",
                Duration::from_millis(100)
            ),
            "postgres://u@h/db?options=-cx%3Dy&connect_timeout=2"
        );
        // One given in the URL wins.
        assert_eq!(
            with_connect_timeout("postgres://u@h/db?connect_timeout=30", five),
            "postgres://u@h/db?connect_timeout=30"
        );
    }
}
