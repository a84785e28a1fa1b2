//! A private PostgreSQL server for tests that stop and start it: its own data directory (a
//! temporary one), its own free port, started and stopped with `pg_ctl`. The shared server the
//! other tests use is never touched.
//!
//! The binaries come from `ALMANAC_TEST_PG_BIN` (default `/usr/lib/postgresql/15/bin`). When the
//! tests run as root, the server runs as the `postgres` user (initdb refuses root). A missing
//! binary fails the test; it never skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{free_addr, is_root};

pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    pub port: u16,
    as_postgres: bool,
}

fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("ALMANAC_TEST_PG_BIN")
        .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    let path = Path::new(&dir).join(name);
    assert!(
        path.exists(),
        "{} not found: install PostgreSQL's server binaries or set ALMANAC_TEST_PG_BIN",
        path.display()
    );
    path
}

impl PrivatePostgres {
    /// initdb into a temporary directory, then start.
    pub fn start() -> PrivatePostgres {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:", &dir.path().display().to_string()])
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the data directory to postgres");
        }
        let port: u16 = free_addr()
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .expect("a port");
        let pg = PrivatePostgres {
            dir,
            port,
            as_postgres,
        };
        let data = pg.data_dir();
        pg.run(
            &bin("initdb"),
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "-A",
                "trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        pg.pg_ctl_start();
        pg
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs a PostgreSQL binary (as `postgres` when we are root) and asserts success.
    fn run(&self, program: &Path, args: &[&str]) {
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        } else {
            Command::new(program)
                .args(args)
                .current_dir(self.dir.path())
                .output()
        }
        .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}\n{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server and waits until it accepts connections (`pg_ctl -w`).
    pub fn pg_ctl_start(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            &bin("pg_ctl"),
            &[
                "-D",
                &self.data_dir(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// Stops the server (`-m fast`: sessions are terminated, as in a restart or failover) and
    /// waits until it is down.
    pub fn pg_ctl_stop(&self) {
        self.run(
            &bin("pg_ctl"),
            &["-D", &self.data_dir(), "-m", "fast", "-w", "stop"],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Best effort: the server may already be stopped.
        let data = self.data_dir();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let pg_ctl = Path::new(
            &std::env::var("ALMANAC_TEST_PG_BIN")
                .unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into()),
        )
        .join("pg_ctl");
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&pg_ctl)
                .args(args)
                .output()
        } else {
            Command::new(&pg_ctl).args(args).output()
        };
    }
}
