//! Database access: one binary, two backends (SQLite, PostgreSQL), chosen by the URL scheme.
//!
//! Everything above this module sees [`Db`]: a pool of [`AnyConnection`]s and a `run` method that
//! executes blocking diesel work on threads of its own ([`runner`]), never on the async executor.

mod connection;
pub mod migrations;
mod runner;
pub mod schema;
pub mod sql;
mod wal_buffer;

pub use connection::{redact, AnyConnection, Backend, DatabaseUrl, MultiBackend};

use std::time::Duration;

use diesel::r2d2::{self, PooledConnection};

use crate::error::ApiError;

pub type Pool = r2d2::Pool<connection::Manager>;
pub type Conn = PooledConnection<connection::Manager>;

/// Pool and connection settings.
#[derive(Clone, Debug)]
pub struct DbOptions {
    pub pool_size: u32,
    /// How long a request waits for a free connection before it gets a 503.
    pub connect_timeout: Duration,
    /// SQLite `synchronous` pragma (`FULL` keeps acknowledged writes across power loss too).
    pub sqlite_synchronous: String,
    /// SQLite busy timeout: how long a writer waits for the write lock.
    pub sqlite_busy_timeout: Duration,
    /// SQLite page cache per pooled (reading) connection, in KiB.
    pub sqlite_cache_kib: u32,
    /// SQLite page cache of the ingest writer's connection, in KiB: index pages it keeps need
    /// not be read again for the next batch.
    pub sqlite_writer_cache_kib: u32,
    /// WAL pages after which a commit checkpoints (SQLite's default is 1,000), and after which
    /// the ingest writer's checkpoint thread lets the WAL start over.
    pub sqlite_wal_autocheckpoint: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            // One more than the cores: each connection has its own database thread, which
            // also renders the response, so one more keeps the cores busy while one thread
            // waits on the database. More only time-slices the same cores and lengthens the
            // latency tail: on 2 cores, 3 beat 4 on both backends (docs/PERFORMANCE.md).
            pool_size: std::thread::available_parallelism().map_or(2, |n| n.get() as u32) + 1,
            connect_timeout: Duration::from_secs(5),
            sqlite_synchronous: "FULL".into(),
            sqlite_busy_timeout: Duration::from_secs(5),
            sqlite_cache_kib: 8 * 1024,
            sqlite_writer_cache_kib: 64 * 1024,
            // 400 MB of 4 KiB pages. Pooled connections checkpoint after a commit that leaves
            // the WAL this large; the ingest writer leaves checkpoints to its own thread, which
            // lets the WAL start over at this size (`store::checkpointer`): index pages dirtied
            // by consecutive groups then reach the database file once per checkpoint, and the
            // writer waits for the checkpoint that lets the WAL start over once per this many
            // pages. 1M-event ingest: 19.2k events/s at 10,000 pages, 20.8k at 40,000, 20.2k at
            // 100,000 while the writer still idled between groups (session 4); since it no
            // longer does (session 15), 26.3k and 26.5k at 40,000 against 28.2k and 28.4k at
            // 100,000, with 16% fewer bytes written (docs/PERFORMANCE.md).
            sqlite_wal_autocheckpoint: 100_000,
        }
    }
}

/// A handle to the store's database, cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Runs handlers' database work on threads of its own (see [`runner`]).
    runner: runner::Runner,
    backend: Backend,
    /// Opens connections outside the pool, for long-lived users (the ingest writer).
    manager: std::sync::Arc<connection::Manager>,
}

impl Db {
    /// Opens the pool. Connections are made lazily except the first, so a wrong URL fails here.
    pub fn open(url: &DatabaseUrl, options: &DbOptions) -> anyhow::Result<Db> {
        let manager = connection::Manager::new(url.clone(), options);
        let writer_options = DbOptions {
            sqlite_cache_kib: options.sqlite_writer_cache_kib,
            ..options.clone()
        };
        let dedicated = std::sync::Arc::new(connection::Manager::new(url.clone(), &writer_options));
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size)
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            // No `SELECT 1` round trip on every checkout: a broken connection is noticed by
            // `has_broken` when it is returned, and the failing request gets a 503.
            .test_on_check_out(false)
            .error_handler(Box::new(connection::LogErrors))
            .build(manager)?;
        let runner =
            runner::Runner::start(pool.clone(), options.pool_size, options.connect_timeout)?;
        Ok(Db {
            pool,
            runner,
            backend: url.backend(),
            manager: dedicated,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The request pool's connections: (open, idle, maximum).
    pub fn pool_state(&self) -> (u32, u32, u32) {
        let state = self.pool.state();
        (
            state.connections,
            state.idle_connections,
            self.pool.max_size(),
        )
    }

    /// Closes the database at shutdown: waits up to `timeout` until this is the last handle
    /// (every clone shares `manager`; the ingest writer threads hold one until their queue is
    /// drained), then drops the pool, closing its connections on the calling thread. Returns
    /// false if other handles were still alive at the deadline (the pool is dropped anyway).
    pub fn close(self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::sync::Arc::strong_count(&self.manager) > 1 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// One connection, set up like pooled ones, without a pool. For one-shot commands: a pool
    /// opens replacement connections on background threads, which must not still be inside
    /// libpq when the process exits (seen as a crash at exit after `almanac migrate`).
    pub fn connect(
        url: &DatabaseUrl,
        options: &DbOptions,
    ) -> Result<AnyConnection, diesel::r2d2::Error> {
        use diesel::r2d2::ManageConnection;
        connection::Manager::new(url.clone(), options).connect()
    }

    /// A connection of its own, outside the pool, set up like pooled ones. The ingest writer
    /// keeps one: SQLite discards a connection's page cache whenever another connection has
    /// committed, so the one connection that writes should always be the same.
    pub fn dedicated(&self) -> Result<AnyConnection, ApiError> {
        use diesel::r2d2::ManageConnection;
        self.manager.connect().map_err(|error| {
            tracing::warn!(%error, "database connection failed");
            crate::metrics::db_error(crate::metrics::DbErrorKind::Unavailable);
            ApiError::Unavailable("The database is unavailable; retry later.".into())
        })
    }

    /// A pooled connection for synchronous callers (tests; one-shot commands use `connect`).
    pub fn get(&self) -> Result<Conn, ApiError> {
        self.pool.get().map_err(ApiError::from_pool)
    }

    /// Runs `f` with a pooled connection on one of the database threads, never on the async
    /// executor; requests are served in arrival order. The caller's tracing span (which carries
    /// the request id) is entered on that thread.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.runner.run(f).await
    }
}
