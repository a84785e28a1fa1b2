//! The system under test: a fresh database, and `almanac serve` (this executable) as a child
//! process on a free 127.0.0.1 port.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use diesel::connection::SimpleConnection;
use diesel::sql_types::BigInt;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

/// How long the server may take to answer /healthcheck (PostgreSQL migrations included).
const STARTUP: Duration = Duration::from_secs(60);
/// How long a stopping server may take to finish its requests and close its connections.
const SHUTDOWN: Duration = Duration::from_secs(30);

/// A database used by one run and nothing else, removed afterwards unless kept.
pub enum Store {
    Sqlite {
        path: PathBuf,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
        keep: bool,
    },
}

impl Store {
    /// An SQLite file in `dir` (the run's working directory, removed with it).
    pub fn sqlite(dir: &Path) -> Store {
        Store::Sqlite {
            path: dir.join("almanac.db"),
        }
    }

    /// A new database on the server of `admin_url`, named uniquely so that runs never share one.
    pub fn postgres(admin_url: &str, keep: bool) -> anyhow::Result<Store> {
        let name = format!("almanac_bench_{}", uuid::Uuid::new_v4().simple());
        let mut conn = PgConnection::establish(admin_url).with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {} (--postgres-url)",
                crate::db::redact(admin_url)
            )
        })?;
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .with_context(|| format!("cannot create the database {name}"))?;
        Ok(Store::Postgres {
            admin_url: admin_url.to_string(),
            url: with_database(admin_url, &name)?,
            name,
            keep,
        })
    }

    pub fn url(&self) -> String {
        match self {
            Store::Sqlite { path } => format!("sqlite://{}", path.display()),
            Store::Postgres { url, .. } => url.clone(),
        }
    }

    /// After the load step. PostgreSQL: `VACUUM (ANALYZE)`, what autovacuum does within a
    /// minute or so of a bulk load (the trait tables ask for a vacuum every 100,000 inserted
    /// rows; see the `covering_trait_keys` migration). Done here so that every query is measured
    /// on the same statistics and visibility map rather than some before and some after
    /// autovacuum wakes up, and because a server may run with autovacuum off (this project's CI
    /// machines do). SQLite has no such daemon, so nothing is done: it is measured as the
    /// server leaves it.
    pub fn settle(&self) -> anyhow::Result<()> {
        if let Store::Postgres { url, name, .. } = self {
            let mut conn = PgConnection::establish(url)
                .with_context(|| format!("cannot connect to {name} to vacuum it"))?;
            conn.batch_execute("VACUUM (ANALYZE)")
                .context("VACUUM (ANALYZE)")?;
        }
        Ok(())
    }

    /// Bytes on disk. On SQLite the WAL is checkpointed into the database file first (best done
    /// with the server stopped or idle), so the number does not depend on when SQLite last
    /// checkpointed; the WAL's size is added in case the checkpoint could not finish.
    pub fn size_bytes(&self) -> anyhow::Result<u64> {
        match self {
            Store::Sqlite { path } => {
                let url = path.display().to_string();
                let mut conn = SqliteConnection::establish(&url)
                    .with_context(|| format!("cannot open {url} to measure it"))?;
                conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    .context("checkpointing the SQLite WAL")?;
                drop(conn);
                let mut total = 0;
                for suffix in ["", "-wal"] {
                    let file = PathBuf::from(format!("{url}{suffix}"));
                    if let Ok(meta) = std::fs::metadata(&file) {
                        total += meta.len();
                    }
                }
                Ok(total)
            }
            Store::Postgres { url, name, .. } => {
                let mut conn = PgConnection::establish(url)
                    .with_context(|| format!("cannot connect to {name} to measure it"))?;
                let size: i64 = diesel::select(diesel::dsl::sql::<BigInt>(
                    "pg_database_size(current_database())",
                ))
                .get_result(&mut conn)
                .context("SELECT pg_database_size")?;
                Ok(size as u64)
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres {
            admin_url,
            name,
            keep,
            ..
        } = self
        {
            if *keep {
                eprintln!("bench: kept the PostgreSQL database {name}");
                return;
            }
            let dropped = PgConnection::establish(admin_url).and_then(|mut conn| {
                conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
            });
            if let Err(error) = dropped {
                eprintln!("bench: could not drop the database {name}: {error}");
            }
        }
    }
}

/// `postgres://…/old?opts` with the database part replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    anyhow::ensure!(
        host_part.len() > scheme_end,
        "the PostgreSQL URL {} names no server",
        crate::db::redact(url)
    );
    Ok(match query {
        Some(q) => format!("{host_part}/{name}?{q}"),
        None => format!("{host_part}/{name}"),
    })
}

/// A running `almanac serve`. Killed when dropped, if it was not stopped.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    log: PathBuf,
    /// The bootstrap admin token the server made on its new store.
    pub admin_token: String,
}

impl Server {
    /// Starts the server in `dir` (so no `almanac.toml` of the caller's is read) and waits until
    /// it answers. Its log goes to `dir/server.log`.
    pub fn start(store: &Store, dir: &Path) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let log = dir.join("server.log");
        let log_file = File::create(&log).with_context(|| format!("cannot create {log:?}"))?;
        let mut cmd = Command::new(exe);
        // Token authentication, as deployed: the new store gets a bootstrap admin token, which
        // the server writes to `dir`.
        cmd.args(["serve", "--bind", &addr, "--database-url", &store.url()])
            .args(["--auth", "token"])
            .env_remove("ALMANAC_TOKENS__BOOTSTRAP_FILE")
            .current_dir(dir)
            // Other ALMANAC_* settings pass through (to benchmark a tuning); these three are the
            // harness's to choose.
            .env_remove("ALMANAC_CONFIG")
            .env_remove("ALMANAC_DATABASE_URL")
            .env_remove("ALMANAC_BIND")
            // The log is a file: no colour codes in it.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = cmd.spawn().context("cannot start almanac serve")?;
        let mut server = Server {
            child: Some(child),
            base: format!("http://{addr}"),
            log,
            admin_token: String::new(),
        };
        if let Err(error) = server.wait_until_up() {
            eprintln!("{}", server.log_tail());
            return Err(error);
        }
        let token_file = dir.join("almanac-bootstrap-token");
        server.admin_token = std::fs::read_to_string(&token_file)
            .with_context(|| format!("the server wrote no bootstrap token to {token_file:?}"))?
            .trim()
            .to_string();
        Ok(server)
    }

    fn wait_until_up(&mut self) -> anyhow::Result<()> {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let deadline = Instant::now() + STARTUP;
        let url = format!("{}/healthcheck", self.base);
        loop {
            self.ensure_running()?;
            if agent.get(&url).call().is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                anyhow::bail!("the server did not answer {url} within {STARTUP:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An error if the server has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        let child = self.child.as_mut().context("the server was stopped")?;
        if let Some(status) = child.try_wait().context("polling the server")? {
            anyhow::bail!("the server exited ({status})");
        }
        Ok(())
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("server log ({}), last lines:\n{tail}", self.log.display())
    }

    /// Stops the server as an operator would (SIGTERM: actix finishes and closes the pool), and
    /// kills it if it has not exited in time.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let term = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        if !matches!(term, Ok(s) if s.success()) {
            let _ = child.kill();
        }
        let deadline = Instant::now() + SHUTDOWN;
        while child
            .try_wait()
            .context("waiting for the server")?
            .is_none()
        {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                anyhow::bail!("the server did not stop within {SHUTDOWN:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port nobody listens on right now (the kernel picks it; the server binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind a local port")?;
    Ok(listener.local_addr()?.port())
}

/// The resident set size of a process, from /proc (Linux).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(proc_value(&status, "VmRSS:")? * 1024) // given in KiB
}

/// The number after `key` on its line of a /proc file of `key value [unit]` lines.
fn proc_value(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find_map(|l| l.strip_prefix(key))?;
    line.split_whitespace().next()?.parse().ok()
}

/// What a process has used so far: CPU time (all threads, user and kernel) and bytes it caused
/// to be written to storage (Linux's `/proc/PID/stat` and `/proc/PID/io`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Usage {
    pub cpu_seconds: f64,
    pub write_bytes: u64,
}

impl Usage {
    /// `None` where /proc does not tell (another OS, a process already gone).
    pub fn of(pid: u32) -> Option<Usage> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        Usage::parse(&stat, &io, ticks)
    }

    fn parse(stat: &str, io: &str, ticks_per_second: i64) -> Option<Usage> {
        if ticks_per_second <= 0 {
            return None;
        }
        // The command name (field 2) is in parentheses and may hold spaces or parentheses, so
        // fields are counted after the last ')': utime and stime are fields 14 and 15.
        let after_name = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |field: usize| fields.get(field - 3)?.parse::<u64>().ok();
        let cpu_ticks = ticks(14)? + ticks(15)?;
        let write_bytes = proc_value(io, "write_bytes:")?;
        Some(Usage {
            cpu_seconds: cpu_ticks as f64 / ticks_per_second as f64,
            write_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_time_and_writes_from_proc() {
        let stat = "4242 (almanac (x) y) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    1250 250 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        let io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 0\n\
                  write_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(
            Usage::parse(stat, io, 100),
            Some(Usage {
                cpu_seconds: 15.0,
                write_bytes: 8192
            })
        );
        assert_eq!(Usage::parse(stat, "rchar: 10\n", 100), None);
        assert_eq!(Usage::parse("garbage", io, 100), None);
        assert_eq!(Usage::parse(stat, io, 0), None);
    }

    #[test]
    fn reads_a_value_with_its_unit() {
        let status = "Name:\talmanac\nVmHWM:\t  2048 kB\nVmRSS:\t  1234 kB\n";
        assert_eq!(proc_value(status, "VmRSS:"), Some(1234));
        assert_eq!(proc_value(status, "VmSwap:"), None);
    }

    #[test]
    fn measures_this_process() {
        let usage = Usage::of(std::process::id()).expect("Linux /proc");
        assert!(usage.cpu_seconds >= 0.0);
    }

    #[test]
    fn replaces_the_database_of_a_url() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/b",
            ),
            (
                "postgres://u:p@h/db?sslmode=disable",
                "postgres://u:p@h/b?sslmode=disable",
            ),
            ("postgresql://h:5432", "postgresql://h:5432/b"),
        ];
        for (url, expected) in cases {
            assert_eq!(with_database(url, "b").unwrap(), expected);
        }
        assert!(with_database("postgres:///db", "b").is_err());
    }
}
