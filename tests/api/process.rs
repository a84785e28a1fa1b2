//! Support for the reliability tests: the real `almanac serve` as a child process that the test
//! can kill (SIGKILL), stop (SIGTERM) and restart on the same database, and plain HTTP to it.
//!
//! Servers always run with `--auth headers` and requests always carry identity headers, so these
//! tests do not depend on the default authentication mode.

use std::fs::File;
use std::io::{Read, Seek};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_almanac");
pub const USER: &str = "rel-user";
pub const PROJECT: &str = "rel-project";
/// How long a server may take to answer /healthcheck.
const STARTUP: Duration = Duration::from_secs(30);

/// An address nobody listens on right now.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    format!(
        "127.0.0.1:{}",
        listener.local_addr().expect("an address").port()
    )
}

/// A running `almanac serve`; killed on drop if still running.
pub struct Server {
    child: Child,
    pub addr: String,
    pub base: String,
    stderr_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Spawns `almanac serve --auth headers --workers 2 --bind <free port> --database-url URL`
    /// plus `args` and `env`, in an empty working directory, and waits for /healthcheck.
    pub fn start(database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_on(&free_addr(), database_url, args, env)
    }

    /// Like [`Server::start`] on a given address (a restart on the same port).
    pub fn start_on(addr: &str, database_url: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::launch(&[], addr, database_url, args, env)
    }

    /// Like [`Server::start`], with the `almanac` command line appended to `wrapper` (e.g.
    /// `unshare … sh -c '…; exec "$@"' sh`), which must end by exec'ing it (same pid).
    pub fn start_wrapped(
        wrapper: &[&str],
        database_url: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Self::launch(wrapper, &free_addr(), database_url, args, env)
    }

    fn launch(
        wrapper: &[&str],
        addr: &str,
        database_url: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let stderr_path = dir.path().join("stderr");
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(BIN);
                cmd
            }
            None => Command::new(BIN),
        };
        cmd.current_dir(dir.path());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ALMANAC_") {
                cmd.env_remove(&key);
            }
        }
        cmd.args([
            "serve",
            "--auth",
            "headers",
            "--workers",
            "2",
            "--bind",
            addr,
        ])
        .args(["--database-url", database_url])
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(File::create(dir.path().join("stdout")).expect("a stdout file"))
        .stderr(File::create(&stderr_path).expect("a stderr file"));
        let child = cmd.spawn().expect("start almanac serve");
        let mut server = Server {
            child,
            addr: addr.to_string(),
            base: format!("http://{addr}"),
            stderr_path,
            _dir: dir,
        };
        server.wait_ready();
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        let mut text = String::new();
        let mut file = File::open(&self.stderr_path).expect("open the server's stderr");
        file.rewind().expect("rewind");
        file.read_to_string(&mut text)
            .expect("read the server's stderr");
        text
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!(
                    "almanac serve exited ({status}); stderr:\n{}",
                    self.stderr()
                );
            }
            if let Ok(res) = agent(Duration::from_secs(2))
                .get(&format!("{}/healthcheck", self.base))
                .call()
            {
                assert_eq!(res.into_string().unwrap_or_default(), "OK");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "almanac serve did not answer within {STARTUP:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: the process dies at once, whatever it was doing.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        self.child.wait().expect("reap the server");
    }

    /// Sends SIGTERM (graceful shutdown) without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit; fails after `timeout`.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "almanac serve did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path_and_query: &str) -> Reply {
        send(
            &agent(Duration::from_secs(30)),
            "GET",
            &self.url(path_and_query),
            None,
        )
        .expect("the server answers")
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        send(
            &agent(Duration::from_secs(30)),
            "POST",
            &self.url(path),
            Some(body),
        )
        .expect("the server answers")
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base)
    }

    /// Every stored event's message_id (across tenants), asserting one page holds them all;
    /// Almanac's own audit records (`almanac.*`) are left out.
    #[track_caller]
    pub fn all_ids(&self) -> Vec<String> {
        let res = self.get("/v2/events?q.field=all_tenants&q.value=true&limit=10000");
        assert_eq!(res.status, 200, "{}", res.body);
        let events = res.json();
        let events = events.as_array().expect("an array of events");
        assert!(events.len() < 10000, "more events than one page holds");
        events
            .iter()
            .filter(|e| {
                !e["event_type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("almanac."))
            })
            .map(|e| e["message_id"].as_str().expect("a message_id").to_string())
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP agent whose every request gives up after `timeout` (so a hung server fails a test
/// instead of hanging it).
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(timeout).build()
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

impl Reply {
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts the status and the one error envelope; returns the faultstring.
    #[track_caller]
    pub fn error(&self, status: u16) -> String {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(self.content_type.as_deref(), Some("application/json"));
        let body = self.json();
        let err = &body["error_message"];
        let code = if status >= 500 { "Server" } else { "Client" };
        assert_eq!(err["faultcode"], code, "{body}");
        assert!(err["debuginfo"].is_null(), "{body}");
        err["faultstring"]
            .as_str()
            .unwrap_or_else(|| panic!("no faultstring in {body}"))
            .to_string()
    }
}

/// Sends a request as an admin of [`PROJECT`]. An HTTP error status is a `Reply`; a transport
/// failure (refused, reset, timed out) is `Err` with its text.
pub fn send(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> Result<Reply, String> {
    let req = agent
        .request(method, url)
        .set("X-User-Id", USER)
        .set("X-Project-Id", PROJECT)
        .set("X-Roles", "admin");
    let result = match body {
        Some(body) => req.send_json(body),
        None => req.call(),
    };
    let res = match result {
        Ok(res) => res,
        Err(ureq::Error::Status(_, res)) => res,
        Err(e) => return Err(e.to_string()),
    };
    let status = res.status();
    let content_type = res.header("content-type").map(str::to_string);
    let body = res.into_string().map_err(|e| e.to_string())?;
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// An event of [`PROJECT`] in the ingest shape.
pub fn event(id: &str, n: u64) -> Value {
    json!({
        "message_id": id,
        "event_type": "reliability.test",
        "generated": format!("2024-05-01T10:00:{:02}.{:06}Z", n % 60, n % 1_000_000),
        "traits": [
            {"name": "project_id", "type": "string", "value": PROJECT},
            {"name": "user_id", "type": "string", "value": USER},
            {"name": "n", "type": "integer", "value": n},
        ],
        "raw": {"n": n},
    })
}

/// Whether the current user is root (then chmod does not stop writes, and initdb refuses).
pub fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run id -u");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}
