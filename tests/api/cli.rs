//! The `almanac` binary as a process: `serve` over real HTTP, `migrate`, `import`, `openapi`, and
//! the configuration layers (TOML file, `ALMANAC_*` environment, flags).
//!
//! Every child runs in a temporary working directory of its own (so no stray `almanac.toml` or
//! `almanac.db` is used) with every `ALMANAC_*` variable of the test process removed.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{Backend, TestDb};

/// Token mode, the bootstrap token and `almanac token` as processes.
mod auth;
/// Structured (JSON) logs.
mod logs;

const BIN: &str = env!("CARGO_BIN_EXE_almanac");
const USER: &str = "cli-user";
const PROJECT: &str = "cli-project";
/// How long a server may take to answer /healthcheck.
const STARTUP: Duration = Duration::from_secs(20);
/// How long a short command (migrate, import, openapi, a failing start) may take.
const SHORT: Duration = Duration::from_secs(20);

// --- processes -----------------------------------------------------------------------------------

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("a local address").port()
}

fn free_addr() -> String {
    format!("127.0.0.1:{}", free_port())
}

/// `almanac` run in `cwd`, without any `ALMANAC_*` variable of this process.
fn almanac(cwd: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ALMANAC_") {
            cmd.env_remove(&key);
        }
    }
    cmd
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn read_all(mut file: File) -> String {
    file.rewind().expect("rewind an output file");
    let mut text = String::new();
    file.read_to_string(&mut text).expect("read an output file");
    text
}

/// A command that ran to its end.
#[derive(Debug)]
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Finished {
    #[track_caller]
    fn assert_success(&self) -> &Finished {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a failure (exit code 1) and returns standard error.
    #[track_caller]
    fn assert_failure(&self) -> &str {
        assert_eq!(
            self.status.code(),
            Some(1),
            "expected exit code 1, got {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        &self.stderr
    }

    /// The lines of standard error that are not log records (the command's own messages).
    fn messages(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("almanac: ") || l.starts_with("line"))
            .collect()
    }
}

/// Runs `cmd` to its end (killing it and failing after `timeout`), feeding it `stdin`.
#[track_caller]
fn finish(mut cmd: Command, stdin: Option<Vec<u8>>, timeout: Duration) -> Finished {
    let out = tempfile::tempfile().expect("a stdout file");
    let err = tempfile::tempfile().expect("a stderr file");
    cmd.stdout(out.try_clone().expect("clone stdout"))
        .stderr(err.try_clone().expect("clone stderr"))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start almanac");
    let writer = stdin.map(|data| {
        let mut pipe = child.stdin.take().expect("a stdin pipe");
        std::thread::spawn(move || {
            // The child may exit without reading everything; that is its business.
            let _ = pipe.write_all(&data);
        })
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll the child") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                read_all(out),
                read_all(err)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    if let Some(writer) = writer {
        writer.join().expect("the stdin writer");
    }
    Finished {
        status,
        stdout: read_all(out),
        stderr: read_all(err),
        elapsed,
    }
}

/// A running `almanac serve`, killed on drop.
struct Server {
    child: Child,
    base: String,
    stderr: File,
    /// Holds the captured output (and the working directory when the test gave none).
    _dirs: Vec<tempfile::TempDir>,
}

/// How to start a server.
struct Start<'a> {
    /// The address the server should end up on (from a flag, the environment or a file).
    addr: String,
    /// Passes `--bind addr`.
    bind_flag: bool,
    database_url: Option<&'a str>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// The working directory; a fresh empty one when `None`.
    cwd: Option<&'a Path>,
    /// Passes `--auth headers` (most tests name their caller with identity headers) and turns
    /// the ingest audit records off.
    auth_headers: bool,
}

impl<'a> Start<'a> {
    /// `serve --bind <free port> --database-url URL`.
    fn on(database_url: &'a str) -> Start<'a> {
        Start {
            addr: free_addr(),
            bind_flag: true,
            database_url: Some(database_url),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            auth_headers: true,
        }
    }

    fn command(&self, cwd: &Path) -> Command {
        let mut cmd = almanac(cwd);
        cmd.arg("serve").args(["--workers", "2"]);
        if self.bind_flag {
            cmd.args(["--bind", &self.addr]);
        }
        if let Some(url) = self.database_url {
            cmd.args(["--database-url", url]);
        }
        if self.auth_headers {
            // As the in-process tests: identity headers, and no ingest audit records among the
            // events the test lists.
            cmd.args(["--auth", "headers"]);
            cmd.env("ALMANAC_AUDIT__INGEST", "false");
        }
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Spawns the server without waiting for it.
    fn spawn(self) -> Server {
        let mut dirs = vec![tempdir()];
        let cwd = match self.cwd {
            Some(cwd) => cwd.to_path_buf(),
            None => {
                let dir = tempdir();
                let path = dir.path().to_path_buf();
                dirs.push(dir);
                path
            }
        };
        let err = File::create(dirs[0].path().join("stderr")).expect("a stderr file");
        let out = File::create(dirs[0].path().join("stdout")).expect("a stdout file");
        let stderr = File::open(dirs[0].path().join("stderr")).expect("open the stderr file");
        let child = self
            .command(&cwd)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start almanac serve");
        Server {
            child,
            base: format!("http://{}", self.addr),
            stderr,
            _dirs: dirs,
        }
    }

    /// Spawns the server and waits until it answers /healthcheck.
    fn start(self) -> Server {
        let mut server = self.spawn();
        server.wait_ready();
        server
    }
}

impl Server {
    fn stderr(&self) -> String {
        let mut file = self.stderr.try_clone().expect("clone the stderr file");
        file.rewind().expect("rewind");
        let mut text = String::new();
        file.read_to_string(&mut text)
            .expect("read the server's stderr");
        text
    }

    /// Polls /healthcheck until it answers OK; fails with the server's stderr if the process
    /// exits or does not answer within [`STARTUP`].
    #[track_caller]
    fn wait_ready(&mut self) {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the server") {
                panic!(
                    "almanac serve exited ({status}) before answering on {}; stderr:\n{}",
                    self.base,
                    self.stderr()
                );
            }
            let log = self.stderr();
            if log.contains("almanac listening") && !log.contains(&self.base[7..]) {
                panic!(
                    "almanac serve is listening elsewhere than {}; stderr:\n{log}",
                    self.base
                );
            }
            if let Ok(res) = agent.get(&format!("{}/healthcheck", self.base)).call() {
                let body = res.into_string().unwrap_or_default();
                assert_eq!(body, "OK", "the healthcheck answers OK");
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "almanac serve did not answer {}/healthcheck within {STARTUP:?}; stderr:\n{}",
                    self.base,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, path_and_query: &str) -> Reply {
        send("GET", &format!("{}{path_and_query}", self.base), None)
    }

    fn post(&self, path: &str, body: &Value) -> Reply {
        send("POST", &format!("{}{path}", self.base), Some(body))
    }

    /// Ingests a JSON array as an admin and returns the 201's body.
    #[track_caller]
    fn ingest(&self, events: &Value) -> Value {
        let res = self.post("/v2/events", events);
        assert_eq!(res.status, 201, "ingest failed: {}", res.body);
        res.json()
    }

    /// The message_ids of a 200 list of events.
    #[track_caller]
    fn ids(&self, path_and_query: &str) -> Vec<String> {
        let res = self.get(path_and_query);
        assert_eq!(res.status, 200, "GET {path_and_query}: {}", res.body);
        ids_of(&res.json())
    }

    /// Asserts that `limit=max` is accepted and `limit=max+1` is a 400 naming `max`.
    #[track_caller]
    fn assert_max_limit(&self, max: u32) {
        let res = self.get(&format!("/v2/events?limit={max}"));
        assert_eq!(
            res.status, 200,
            "limit={max} is within the maximum: {}",
            res.body
        );
        let over = max + 1;
        let res = self.get(&format!("/v2/events?limit={over}"));
        assert_eq!(res.status, 400, "limit={over} is above the maximum");
        assert_eq!(
            res.faultstring(),
            format!(
                "Invalid input for field/attribute limit. Value: '{over}'. the limit should not \
                 be greater than {max}."
            )
        );
    }

    /// Stops the server and waits for it to exit.
    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- HTTP ----------------------------------------------------------------------------------------

/// A response, read whole.
#[derive(Debug)]
struct Reply {
    status: u16,
    request_id: Option<String>,
    x_request_id: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Reply {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    #[track_caller]
    fn faultstring(&self) -> String {
        let body = self.json();
        assert_eq!(body["error_message"]["faultcode"], "Client", "{body}");
        body["error_message"]["faultstring"]
            .as_str()
            .unwrap_or_else(|| panic!("no faultstring in {body}"))
            .to_string()
    }

    /// Asserts `x-openstack-request-id: req-<uuid>`, the same in `X-Request-Id`; returns it.
    #[track_caller]
    fn assert_request_id(&self) -> String {
        let id = self
            .request_id
            .clone()
            .unwrap_or_else(|| panic!("no x-openstack-request-id on {self:?}"));
        assert!(
            id.starts_with("req-") && uuid::Uuid::parse_str(&id[4..]).is_ok(),
            "request id {id:?} is req-<uuid>"
        );
        assert_eq!(self.x_request_id.as_deref(), Some(id.as_str()));
        id
    }
}

/// Sends a request as an admin of [`PROJECT`]; 4xx and 5xx are returned, not errors.
#[track_caller]
fn send(method: &str, url: &str, body: Option<&Value>) -> Reply {
    send_with(
        method,
        url,
        &[
            ("X-User-Id", USER),
            ("X-Project-Id", PROJECT),
            ("X-Roles", "admin"),
        ],
        body,
    )
}

/// Sends a request with these headers; 4xx and 5xx are returned, not errors.
#[track_caller]
fn send_with(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Reply {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build();
    let mut req = agent.request(method, url);
    for (name, value) in headers {
        req = req.set(name, value);
    }
    let result = match body {
        Some(body) => req.send_json(body),
        None => req.call(),
    };
    let res = match result {
        Ok(res) => res,
        Err(ureq::Error::Status(_, res)) => res,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let header = |name: &str| res.header(name).map(str::to_string);
    let (request_id, x_request_id, content_type) = (
        header("x-openstack-request-id"),
        header("x-request-id"),
        header("content-type"),
    );
    Reply {
        status: res.status(),
        request_id,
        x_request_id,
        content_type,
        body: res.into_string().expect("a readable body"),
    }
}

#[track_caller]
fn ids_of(events: &Value) -> Vec<String> {
    events
        .as_array()
        .unwrap_or_else(|| panic!("an array of events: {events}"))
        .iter()
        .map(|e| e["message_id"].as_str().expect("a message_id").to_string())
        .collect()
}

/// An event of [`PROJECT`] in the ingest shape, with a `flavor` string trait.
fn event(id: &str, minute: u32, flavor: &str) -> Value {
    json!({
        "message_id": id,
        "event_type": "compute.instance.create.end",
        "generated": format!("2024-05-01T10:{minute:02}:00Z"),
        "traits": [
            {"name": "project_id", "type": "string", "value": PROJECT},
            {"name": "user_id", "type": "string", "value": USER},
            {"name": "flavor", "type": "string", "value": flavor},
            {"name": "memory_mb", "type": "integer", "value": 512 * (minute + 1)},
        ],
        "raw": {"n": minute},
    })
}

fn ndjson_line(id: &str, minute: u32, flavor: &str) -> String {
    event(id, minute, flavor).to_string()
}

fn toml_string(s: &str) -> String {
    // A Rust debug string of plain ASCII without backslashes is a valid TOML basic string.
    assert!(s.is_ascii() && !s.contains('\\'), "{s}");
    format!("{s:?}")
}

fn manifest_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

// --- serve ---------------------------------------------------------------------------------------

backend_tests!(
    serve_ingests_queries_and_pages,
    two_servers_share_one_database,
    migrate_reports_up_to_date_and_is_repeatable,
    import_stores_a_file_and_skips_duplicates_on_reimport,
    import_counts_repeats_inside_the_file_as_duplicates,
    import_with_an_invalid_line_stores_nothing,
    import_reports_a_non_json_line_by_its_line_in_the_file,
    import_reads_standard_input,
    import_missing_file_fails_clearly,
    config_file_sets_bind_and_limits,
    environment_overrides_config_file,
    environment_sets_bind_and_database_url,
    flags_override_environment_and_file,
    almanac_config_variable_names_the_file,
    working_directory_almanac_toml_is_read,
    explicit_config_ignores_working_directory_toml,
);

async fn serve_ingests_queries_and_pages(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Start::on(&db.url).start();

    let batch = json!([
        event("ev-1", 1, "m1.small"),
        event("ev-2", 2, "m1.small"),
        event("ev-3", 3, "m1.large"),
        event("ev-4", 4, "m1.small"),
        event("ev-5", 5, "m1.small"),
    ]);
    let res = server.post("/v2/events", &batch);
    assert_eq!(res.status, 201, "{}", res.body);
    let mut request_ids = vec![res.assert_request_id()];
    assert_eq!(
        res.json(),
        json!({"received": 5, "stored": 5, "duplicates": [],
               "message_ids": ["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"]})
    );

    // A trait filter, paged two at a time with the last message_id as marker.
    let filter = "q.field=flavor&q.op=eq&q.value=m1.small";
    let mut pages = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let uri = match &marker {
            Some(m) => format!("/v2/events?{filter}&limit=2&marker={m}"),
            None => format!("/v2/events?{filter}&limit=2"),
        };
        let res = server.get(&uri);
        assert_eq!(res.status, 200, "GET {uri}: {}", res.body);
        assert_eq!(res.content_type.as_deref(), Some("application/json"));
        request_ids.push(res.assert_request_id());
        let page = ids_of(&res.json());
        assert!(page.len() <= 2, "limit=2 gave {page:?}");
        if page.is_empty() {
            break;
        }
        marker = page.last().cloned();
        pages.push(page);
        assert!(pages.len() <= 3, "paging does not end: {pages:?}");
    }
    assert_eq!(
        pages,
        vec![vec!["ev-1", "ev-2"], vec!["ev-4", "ev-5"]],
        "two full pages of the m1.small events in generated order, then an empty one"
    );

    // The other flavor, and one event read whole.
    assert_eq!(
        server.ids("/v2/events?q.field=flavor&q.op=eq&q.value=m1.large"),
        ["ev-3"]
    );
    let res = server.get("/v2/events/ev-3");
    assert_eq!(res.status, 200, "{}", res.body);
    request_ids.push(res.assert_request_id());
    let shown = res.json();
    assert_eq!(shown["event_type"], "compute.instance.create.end");
    assert_eq!(shown["generated"], "2024-05-01T10:03:00");
    assert_eq!(shown["raw"], json!({"n": 3}));
    let traits = shown["traits"].as_array().expect("traits");
    assert!(
        traits.contains(&json!({"name": "flavor", "value": "m1.large", "type": "string"})),
        "{shown}"
    );
    assert!(
        traits.contains(&json!({"name": "memory_mb", "value": "2048", "type": "integer"})),
        "{shown}"
    );

    // Errors carry request ids too, in the one error shape.
    let res = server.get("/v2/events?limit=2&marker=no-such-event");
    assert_eq!(res.status, 400, "{}", res.body);
    request_ids.push(res.assert_request_id());
    assert!(!res.faultstring().is_empty());

    // The same batch again: every event is a duplicate.
    let again = server.ingest(&batch);
    assert_eq!(again["stored"], 0, "{again}");
    assert_eq!(
        again["duplicates"],
        json!(["ev-1", "ev-2", "ev-3", "ev-4", "ev-5"])
    );
    assert_eq!(server.ids("/v2/events").len(), 5);

    let unique: std::collections::HashSet<_> = request_ids.iter().collect();
    assert_eq!(
        unique.len(),
        request_ids.len(),
        "request ids are unique: {request_ids:?}"
    );
}

/// Several processes may share one database (spec §5): both start at once (migrating the same
/// empty database), and what one stores the other serves.
async fn two_servers_share_one_database(backend: Backend) {
    let db = TestDb::new(backend);
    let mut a = Start::on(&db.url).spawn();
    let mut b = Start::on(&db.url).spawn();
    a.wait_ready();
    b.wait_ready();
    a.ingest(&json!([event("shared-1", 1, "m1.small")]));
    b.ingest(&json!([
        event("shared-2", 2, "m1.small"),
        event("shared-1", 1, "m1.small")
    ]));
    for server in [&a, &b] {
        assert_eq!(server.ids("/v2/events"), ["shared-1", "shared-2"]);
    }
}

// --- migrate -------------------------------------------------------------------------------------

async fn migrate_reports_up_to_date_and_is_repeatable(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgresql",
    };
    let migrate = || {
        let mut cmd = almanac(cwd.path());
        cmd.args(["migrate", "--database-url", &db.url]);
        finish(cmd, None, SHORT)
    };
    let first = migrate();
    first.assert_success();
    assert_eq!(
        first.stdout,
        format!("database is up to date ({name})\n"),
        "stderr: {}",
        first.stderr
    );
    assert!(
        first.stderr.contains("migration applied"),
        "the first run applies the migrations: {}",
        first.stderr
    );

    let second = migrate();
    second.assert_success();
    assert_eq!(second.stdout, format!("database is up to date ({name})\n"));
    assert!(
        !second.stderr.contains("migration applied"),
        "the second run has nothing to apply: {}",
        second.stderr
    );

    // The migrated database serves.
    let server = Start::on(&db.url).start();
    assert_eq!(server.ids("/v2/events"), Vec::<String>::new());
    // migrate never touches the working directory.
    assert!(!cwd.path().join("almanac.db").exists());
}

#[test]
fn migrate_rejects_an_unknown_scheme_at_once() {
    let cwd = tempdir();
    for url in ["mysql://x", "almanac.db"] {
        let mut cmd = almanac(cwd.path());
        cmd.args(["migrate", "--database-url", url]);
        let done = finish(cmd, None, SHORT);
        let stderr = done.assert_failure();
        assert!(
            stderr.contains(&format!("unsupported database URL {url:?}"))
                && stderr.contains("sqlite://PATH")
                && stderr.contains("postgres://USER@HOST/DB"),
            "the message names the URL and the accepted schemes: {stderr}"
        );
        assert!(
            done.elapsed < Duration::from_secs(10),
            "a bad scheme is refused without the startup retries ({:?})",
            done.elapsed
        );
        assert_eq!(done.stdout, "");
    }
    let mut cmd = almanac(cwd.path());
    cmd.args(["migrate", "--database-url", "sqlite://"]);
    let done = finish(cmd, None, SHORT);
    assert!(
        done.assert_failure().contains("names no file"),
        "{}",
        done.stderr
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).expect("list the cwd").count(),
        0,
        "nothing was created in the working directory"
    );
}

/// An unreachable PostgreSQL is retried for about 30 s (as under docker compose), then refused
/// with a message that hides the password.
#[test]
fn migrate_gives_up_on_unreachable_postgres_after_the_retry_window() {
    let cwd = tempdir();
    let url = format!(
        "postgres://almanac:s3cret-pw@127.0.0.1:{}/almanac",
        free_port()
    );
    let mut cmd = almanac(cwd.path());
    cmd.args(["migrate", "--database-url", &url]);
    let done = finish(cmd, None, Duration::from_secs(90));
    let stderr = done.assert_failure();
    assert!(
        stderr.contains("almanac: cannot open the database"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password is never printed: {stderr}"
    );
    assert!(
        stderr.contains("retrying"),
        "each retry is logged: {stderr}"
    );
    assert!(
        done.elapsed >= Duration::from_secs(25) && done.elapsed <= Duration::from_secs(60),
        "gave up after {:?}, expected about 30 s",
        done.elapsed
    );
}

// --- import --------------------------------------------------------------------------------------

fn import(cwd: &Path, url: &str, file: &str, extra: &[&str], stdin: Option<Vec<u8>>) -> Finished {
    let mut cmd = almanac(cwd);
    cmd.args(["import", file, "--database-url", url])
        .args(extra);
    finish(cmd, stdin, SHORT)
}

async fn import_stores_a_file_and_skips_duplicates_on_reimport(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let path = cwd.path().join("events.ndjson");
    let text = format!(
        "{}\n\n{}\r\n   \n{}",
        ndjson_line("imp-1", 1, "m1.small"),
        ndjson_line("imp-2", 2, "m1.large"),
        ndjson_line("imp-3", 3, "m1.small"),
    );
    std::fs::write(&path, text).expect("write the file");
    let file = path.to_str().expect("a UTF-8 path");

    let first = import(cwd.path(), &db.url, file, &[], None);
    first.assert_success();
    assert_eq!(
        first.stdout,
        format!("{file}: 3 events read, 3 stored, 0 duplicates skipped\n")
    );

    // Again, in batches of two: every event is a duplicate, nothing new is stored.
    let again = import(cwd.path(), &db.url, file, &["--batch-size", "2"], None);
    again.assert_success();
    assert_eq!(
        again.stdout,
        format!("{file}: 3 events read, 0 stored, 3 duplicates skipped\n")
    );

    let server = Start::on(&db.url).start();
    assert_eq!(server.ids("/v2/events"), ["imp-1", "imp-2", "imp-3"]);
    assert_eq!(
        server.ids("/v2/events?q.field=flavor&q.value=m1.small"),
        ["imp-1", "imp-3"]
    );
    let shown = server.get("/v2/events/imp-2").json();
    assert_eq!(shown["generated"], "2024-05-01T10:02:00");
    assert_eq!(shown["raw"], json!({"n": 2}));
    assert!(!cwd.path().join("almanac.db").exists());
}

/// A message_id that repeats inside the file is stored once, whether the repeats fall in one
/// transaction or in different ones.
async fn import_counts_repeats_inside_the_file_as_duplicates(backend: Backend) {
    let cwd = tempdir();
    let path = cwd.path().join("repeats.ndjson");
    let text = [
        ndjson_line("rep-1", 1, "m1.small"),
        ndjson_line("rep-2", 2, "m1.small"),
        ndjson_line("rep-1", 3, "m1.large"),
        ndjson_line("rep-2", 4, "m1.large"),
        ndjson_line("rep-3", 5, "m1.small"),
    ]
    .join("\n");
    std::fs::write(&path, text).expect("write the file");
    let file = path.to_str().expect("a UTF-8 path");
    for batch_size in ["1000", "2", "1"] {
        let db = TestDb::new(backend);
        let done = import(
            cwd.path(),
            &db.url,
            file,
            &["--batch-size", batch_size],
            None,
        );
        done.assert_success();
        assert_eq!(
            done.stdout,
            format!("{file}: 5 events read, 3 stored, 2 duplicates skipped\n"),
            "--batch-size {batch_size}"
        );
        // The first occurrence wins.
        let server = Start::on(&db.url).start();
        assert_eq!(
            server.ids("/v2/events?q.field=flavor&q.value=m1.small"),
            ["rep-1", "rep-2", "rep-3"],
            "--batch-size {batch_size}"
        );
    }
}

async fn import_with_an_invalid_line_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let path = cwd.path().join("bad.ndjson");
    // Line 7 lacks its event_type; blank lines count as lines.
    let lines = [
        ndjson_line("bad-1", 1, "m1.small"),
        String::new(),
        ndjson_line("bad-2", 2, "m1.small"),
        ndjson_line("bad-3", 3, "m1.small"),
        "  ".to_string(),
        String::new(),
        json!({"message_id": "bad-4", "generated": "2024-05-01T10:04:00Z", "traits": []})
            .to_string(),
        ndjson_line("bad-5", 5, "m1.small"),
    ];
    std::fs::write(&path, lines.join("\n") + "\n").expect("write the file");
    let file = path.to_str().expect("a UTF-8 path");

    for extra in [
        &[][..],
        &["--batch-size", "2"][..],
        &["--batch-size", "1"][..],
    ] {
        let done = import(cwd.path(), &db.url, file, extra, None);
        let stderr = done.assert_failure();
        assert_eq!(done.stdout, "", "no summary for a refused file ({extra:?})");
        let messages = done.messages();
        assert_eq!(messages.len(), 2, "{extra:?}: {stderr}");
        assert!(
            messages[0].starts_with("line 7: ") && messages[0].contains("event_type"),
            "{extra:?}: the problem is on physical line 7 and names the field: {stderr}"
        );
        assert_eq!(
            messages[1],
            format!("almanac: {file}: 1 invalid event(s); nothing was imported"),
            "{extra:?}"
        );
    }

    // Nothing at all was stored, not even the events before the bad line.
    let server = Start::on(&db.url).start();
    assert_eq!(server.ids("/v2/events"), Vec::<String>::new());
}

/// A line that is not JSON is reported by its physical line in the file, and only by it.
async fn import_reports_a_non_json_line_by_its_line_in_the_file(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let path = cwd.path().join("broken.ndjson");
    let text = format!(
        "{}\n\n\n{}\n{{\"message_id\": \"nj-3\",\n",
        ndjson_line("nj-1", 1, "m1.small"),
        ndjson_line("nj-2", 2, "m1.small"),
    );
    std::fs::write(&path, text).expect("write the file");
    let file = path.to_str().expect("a UTF-8 path");
    let done = import(cwd.path(), &db.url, file, &[], None);
    done.assert_failure();
    let messages = done.messages();
    assert_eq!(messages.len(), 2, "{}", done.stderr);
    assert!(
        messages[0].starts_with("line 5: ") && messages[0].contains("not valid JSON"),
        "{}",
        done.stderr
    );
    // The reason must not name another line of the file as the culprit (the decoder numbers the
    // lines of the chunk it was given, which leaves out the blank lines).
    for other in 1..=4 {
        assert!(
            !messages[0].contains(&format!("(line {other} ")),
            "the message names line {other}, but the bad line is line 5: {}",
            messages[0]
        );
    }
}

async fn import_reads_standard_input(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let input = format!(
        "{}\n\n{}\n",
        ndjson_line("in-1", 1, "m1.small"),
        ndjson_line("in-2", 2, "m1.small"),
    );
    let done = import(cwd.path(), &db.url, "-", &[], Some(input.into_bytes()));
    done.assert_success();
    assert_eq!(
        done.stdout, "-: 2 events read, 2 stored, 0 duplicates skipped\n",
        "stderr: {}",
        done.stderr
    );
    let server = Start::on(&db.url).start();
    assert_eq!(server.ids("/v2/events"), ["in-1", "in-2"]);
    drop(server);

    // An invalid event on standard input: refused, by its line.
    let input = format!(
        "{}\n{{\"event_type\": \"\"}}\n",
        ndjson_line("in-3", 3, "m1.small")
    );
    let done = import(cwd.path(), &db.url, "-", &[], Some(input.into_bytes()));
    done.assert_failure();
    assert!(
        done.messages()
            .first()
            .is_some_and(|m| m.starts_with("line 2: ")),
        "{}",
        done.stderr
    );
    let server = Start::on(&db.url).start();
    assert_eq!(server.ids("/v2/events"), ["in-1", "in-2"]);
}

async fn import_missing_file_fails_clearly(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let missing = cwd.path().join("no-such-file.ndjson");
    let file = missing.to_str().expect("a UTF-8 path");
    let done = import(cwd.path(), &db.url, file, &[], None);
    let stderr = done.assert_failure();
    assert!(
        stderr.contains(&format!("almanac: cannot read {file}: ")),
        "the message names the file: {stderr}"
    );
    assert!(
        stderr.contains("No such file or directory"),
        "the message says why: {stderr}"
    );
    assert_eq!(done.stdout, "");
}

// --- openapi -------------------------------------------------------------------------------------

#[test]
fn openapi_prints_the_committed_document() {
    let committed = std::fs::read_to_string(manifest_file("api-spec/openapi.json"))
        .expect("api-spec/openapi.json");
    let cwd = tempdir();
    let mut cmd = almanac(cwd.path());
    cmd.arg("openapi");
    let done = finish(cmd, None, SHORT);
    done.assert_success();
    assert!(
        done.stdout == committed,
        "`almanac openapi` differs from api-spec/openapi.json ({} vs {} bytes)",
        done.stdout.len(),
        committed.len()
    );
    let doc: Value = serde_json::from_str(&done.stdout).expect("the document is JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    assert!(doc["paths"]["/v2/events"].is_object());

    let out = cwd.path().join("openapi.json");
    let mut cmd = almanac(cwd.path());
    cmd.args(["openapi", "--output"]).arg(&out);
    let done = finish(cmd, None, SHORT);
    done.assert_success();
    assert_eq!(
        done.stdout, "",
        "--output writes nothing to standard output"
    );
    let written = std::fs::read_to_string(cwd.path().join("openapi.json")).expect("the file");
    assert!(written == committed, "--output writes the same document");

    // It opens no database.
    let entries: Vec<_> = std::fs::read_dir(cwd.path())
        .expect("list the cwd")
        .map(|e| e.expect("an entry").file_name())
        .collect();
    assert_eq!(entries, ["openapi.json"]);
}

#[test]
fn openapi_output_to_an_unwritable_place_fails() {
    let cwd = tempdir();
    let mut cmd = almanac(cwd.path());
    cmd.args(["openapi", "--output", "no-such-dir/openapi.json"]);
    let done = finish(cmd, None, SHORT);
    let stderr = done.assert_failure();
    assert!(stderr.starts_with("almanac: "), "{stderr}");
}

// --- configuration -------------------------------------------------------------------------------

/// A config file in a directory of its own with `bind`, `database_url` and `limits.max_limit`.
fn config_file(dir: &Path, name: &str, bind: &str, database_url: &str, max_limit: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "bind = {}\ndatabase_url = {}\n\n[limits]\nmax_limit = {max_limit}\n",
            toml_string(bind),
            toml_string(database_url)
        ),
    )
    .expect("write the config file");
    path
}

async fn config_file_sets_bind_and_limits(backend: Backend) {
    let db = TestDb::new(backend);
    let conf = tempdir();
    let cwd = tempdir();
    let addr = free_addr();
    let file = config_file(conf.path(), "almanac-test.toml", &addr, &db.url, 150);
    let server = Start {
        addr,
        bind_flag: false,
        database_url: None,
        args: vec!["--config".into(), file.display().to_string()],
        env: Vec::new(),
        cwd: Some(cwd.path()),
        auth_headers: true,
    }
    .start();
    server.assert_max_limit(150);
    // The file's database_url is used, not the default almanac.db of the working directory.
    server.ingest(&json!([event("conf-1", 1, "m1.small")]));
    assert!(!cwd.path().join("almanac.db").exists());
    drop(server);
    let check = Start::on(&db.url).start();
    assert_eq!(check.ids("/v2/events"), ["conf-1"]);
}

/// `ALMANAC_LIMITS__MAX_LIMIT` overrides the file's `[limits] max_limit`.
async fn environment_overrides_config_file(backend: Backend) {
    let db = TestDb::new(backend);
    let conf = tempdir();
    let addr = free_addr();
    let file = config_file(conf.path(), "almanac-test.toml", &addr, &db.url, 150);
    let server = Start {
        addr,
        bind_flag: false,
        database_url: None,
        args: vec!["--config".into(), file.display().to_string()],
        env: vec![
            ("ALMANAC_LIMITS__MAX_LIMIT".into(), "170".into()),
            // Not a setting: ignored.
            ("ALMANAC_SOMETHING_ELSE".into(), "1".into()),
        ],
        cwd: None,
        auth_headers: true,
    }
    .start();
    server.assert_max_limit(170);
}

/// `ALMANAC_BIND` and `ALMANAC_DATABASE_URL` override the file's `bind` and `database_url`.
async fn environment_sets_bind_and_database_url(backend: Backend) {
    let db = TestDb::new(backend);
    let conf = tempdir();
    let cwd = tempdir();
    let env_addr = free_addr();
    let file = config_file(
        conf.path(),
        "almanac-test.toml",
        &free_addr(),
        "sqlite://from-the-file.db",
        150,
    );
    let server = Start {
        addr: env_addr.clone(),
        bind_flag: false,
        database_url: None,
        args: vec!["--config".into(), file.display().to_string()],
        env: vec![
            ("ALMANAC_BIND".into(), env_addr),
            ("ALMANAC_DATABASE_URL".into(), db.url.clone()),
        ],
        cwd: Some(cwd.path()),
        auth_headers: true,
    }
    .start();
    server.ingest(&json!([event("env-1", 1, "m1.small")]));
    assert!(!cwd.path().join("from-the-file.db").exists());
    drop(server);
    let check = Start::on(&db.url).start();
    assert_eq!(check.ids("/v2/events"), ["env-1"]);
}

/// Flags beat the environment, which beats the file; settings without a flag still come from
/// the environment.
async fn flags_override_environment_and_file(backend: Backend) {
    let db = TestDb::new(backend);
    let conf = tempdir();
    let flag_addr = free_addr();
    let file = config_file(
        conf.path(),
        "almanac-test.toml",
        &free_addr(),
        "sqlite://",
        150,
    );
    let server = Start {
        addr: flag_addr,
        bind_flag: true,
        database_url: Some(&db.url),
        args: vec!["--config".into(), file.display().to_string()],
        env: vec![
            ("ALMANAC_BIND".into(), free_addr()),
            ("ALMANAC_DATABASE_URL".into(), "mysql://x".into()),
            ("ALMANAC_LIMITS__MAX_LIMIT".into(), "160".into()),
        ],
        cwd: None,
        auth_headers: true,
    }
    .start();
    // --bind and --database-url won; the limit (no flag) comes from the environment.
    server.ingest(&json!([event("flag-1", 1, "m1.small")]));
    assert_eq!(server.ids("/v2/events"), ["flag-1"]);
    server.assert_max_limit(160);
}

async fn almanac_config_variable_names_the_file(backend: Backend) {
    let db = TestDb::new(backend);
    let conf = tempdir();
    let addr = free_addr();
    let file = config_file(conf.path(), "from-env.toml", &addr, &db.url, 140);
    let server = Start {
        addr,
        bind_flag: false,
        database_url: None,
        args: Vec::new(),
        env: vec![("ALMANAC_CONFIG".into(), file.display().to_string())],
        cwd: None,
        auth_headers: true,
    }
    .start();
    server.assert_max_limit(140);
}

async fn working_directory_almanac_toml_is_read(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let addr = free_addr();
    config_file(cwd.path(), "almanac.toml", &addr, &db.url, 130);
    let server = Start {
        addr,
        bind_flag: false,
        database_url: None,
        args: Vec::new(),
        env: Vec::new(),
        cwd: Some(cwd.path()),
        auth_headers: true,
    }
    .start();
    server.assert_max_limit(130);
    assert!(!cwd.path().join("almanac.db").exists());
}

async fn explicit_config_ignores_working_directory_toml(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let conf = tempdir();
    // Read, this file would stop the server.
    std::fs::write(cwd.path().join("almanac.toml"), "no_such_setting = 1\n").expect("write");
    let addr = free_addr();
    let file = config_file(conf.path(), "chosen.toml", &addr, &db.url, 120);
    let server = Start {
        addr,
        bind_flag: false,
        database_url: None,
        args: vec!["--config".into(), file.display().to_string()],
        env: Vec::new(),
        cwd: Some(cwd.path()),
        auth_headers: true,
    }
    .start();
    server.assert_max_limit(120);
}

/// `serve` that must fail at start: returns its stderr.
#[track_caller]
fn serve_fails(cwd: &Path, args: &[&str]) -> String {
    let mut cmd = almanac(cwd);
    cmd.arg("serve")
        .args(["--bind", &free_addr()])
        .args(["--database-url", "sqlite://never-opened.db"])
        .args(args);
    let done = finish(cmd, None, SHORT);
    done.assert_failure();
    assert!(
        !cwd.join("never-opened.db").exists(),
        "a configuration error stops serve before it opens the database"
    );
    done.stderr
}

#[test]
fn unknown_config_keys_stop_serve_naming_the_key() {
    let cwd = tempdir();
    let cases = [
        (
            "top.toml",
            "bind = \"127.0.0.1:1\"\nlisten_port = 8977\n",
            "listen_port",
        ),
        ("section.toml", "[limits]\nmax_limt = 5\n", "max_limt"),
        ("table.toml", "[limitz]\nmax_limit = 5\n", "limitz"),
    ];
    for (name, text, key) in cases {
        let path = cwd.path().join(name);
        std::fs::write(&path, text).expect("write the config file");
        let stderr = serve_fails(cwd.path(), &["--config", path.to_str().expect("UTF-8")]);
        assert!(
            stderr.starts_with("almanac: ") && stderr.contains(key),
            "{name}: the message names {key}: {stderr}"
        );
    }
}

/// A value from the environment is checked like one from the file: a `max_limit` below the
/// default page size stops serve.
#[test]
fn a_bad_environment_value_stops_serve() {
    let cwd = tempdir();
    let mut cmd = almanac(cwd.path());
    cmd.args(["serve", "--bind", &free_addr()])
        .args(["--database-url", "sqlite://never-opened.db"])
        .env("ALMANAC_LIMITS__MAX_LIMIT", "50");
    // A correct build refuses at once; one that ignores the variable serves until killed.
    let done = finish(cmd, None, Duration::from_secs(5));
    let stderr = done.assert_failure();
    assert!(
        stderr.contains("limits.max_limit must be at least limits.default_limit"),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_value_stops_serve() {
    let cwd = tempdir();
    let path = cwd.path().join("bad.toml");
    std::fs::write(&path, "[limits]\ndefault_limit = 500\nmax_limit = 100\n").expect("write");
    let stderr = serve_fails(cwd.path(), &["--config", path.to_str().expect("UTF-8")]);
    assert!(
        stderr.contains("limits.max_limit must be at least limits.default_limit"),
        "{stderr}"
    );
}

#[test]
fn a_string_limit_the_index_cannot_hold_stops_serve() {
    let cwd = tempdir();
    let path = cwd.path().join("long.toml");
    std::fs::write(&path, "[limits]\nmax_string_bytes = 4096\n").expect("write");
    let stderr = serve_fails(cwd.path(), &["--config", path.to_str().expect("UTF-8")]);
    assert!(
        stderr.contains("limits.max_string_bytes must be between 1 and 2048"),
        "{stderr}"
    );
}

#[test]
fn missing_config_file_stops_serve() {
    let cwd = tempdir();
    let missing = cwd.path().join("nowhere.toml");
    let stderr = serve_fails(cwd.path(), &["--config", missing.to_str().expect("UTF-8")]);
    assert_eq!(
        stderr.trim_end(),
        format!("almanac: config file {} does not exist", missing.display())
    );
}

// --- the default database ------------------------------------------------------------------------

/// With no database URL anywhere, `serve` keeps its events in `almanac.db` in the working
/// directory, and they are there after a restart.
#[test]
fn serve_defaults_to_almanac_db_in_the_working_directory() {
    let cwd = tempdir();
    let db_file = cwd.path().join("almanac.db");
    let start = || Start {
        addr: free_addr(),
        bind_flag: true,
        database_url: None,
        args: Vec::new(),
        env: Vec::new(),
        cwd: Some(cwd.path()),
        auth_headers: true,
    };
    let server = start().start();
    assert!(
        db_file.is_file(),
        "serve created {} ({:?})",
        db_file.display(),
        std::fs::read_dir(cwd.path())
            .map(|d| d.map(|e| e.map(|e| e.file_name())).collect::<Vec<_>>())
    );
    server.ingest(&json!([event("default-1", 1, "m1.small")]));
    server.stop();

    let server = start().start();
    assert_eq!(server.ids("/v2/events"), ["default-1"]);
    server.stop();

    let mut cmd = almanac(cwd.path());
    cmd.arg("migrate");
    let done = finish(cmd, None, SHORT);
    done.assert_success();
    assert_eq!(done.stdout, "database is up to date (sqlite)\n");
}
