//! Token mode as a process: the bootstrap token of a new store, `almanac token
//! create|list|revoke` working straight on the database, and settings that stop `serve`: `auth =
//! headers` on a public address, and a bad policy (named by file and line).

use super::*;

backend_tests!(
    serve_bootstraps_an_admin_token_once,
    token_command_creates_lists_and_revokes,
    two_servers_starting_together_make_one_bootstrap_token,
);

/// A request with a token (or none); 4xx and 5xx are returned, not errors.
#[track_caller]
fn send_token(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    send_with(method, url, &headers, body)
}

/// A token-mode server in `cwd`.
fn token_server(url: &str, cwd: &Path, env: &[(&str, &str)]) -> Server {
    Start {
        auth_headers: false,
        cwd: Some(cwd),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Start::on(url)
    }
    .start()
}

impl Server {
    /// What the server printed on standard output so far.
    fn stdout(&self) -> String {
        std::fs::read_to_string(self._dirs[0].path().join("stdout")).expect("the stdout file")
    }
}

const BOOTSTRAP_LINE: &str = "Almanac bootstrap admin token (shown once): ";

/// The tokens printed by a server's bootstrap.
fn printed_tokens(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(BOOTSTRAP_LINE))
        .map(str::to_string)
        .collect()
}

async fn serve_bootstraps_an_admin_token_once(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    // A symlink planted at the token's path is replaced, not written through.
    let victim = cwd.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&victim, cwd.path().join("almanac-bootstrap-token")).unwrap();
    let server = token_server(&db.url, cwd.path(), &[]);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    let printed = printed_tokens(&server.stdout());
    assert_eq!(printed.len(), 1, "stdout: {}", server.stdout());
    let token = &printed[0];
    assert!(token.starts_with("alm_"), "{token}");

    let file = cwd.path().join("almanac-bootstrap-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "only the owner may read the token file");
    }
    assert!(
        !server.stderr().contains(token.as_str()),
        "the token is not in the log"
    );

    // It is an admin token; requests without one are refused.
    let url = |path: &str| format!("{}{path}", server.base);
    let tokens = send_token("GET", &url("/v2/tokens"), Some(token), None);
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let tokens = tokens.json();
    assert_eq!(tokens.as_array().unwrap().len(), 1);
    assert_eq!(tokens[0]["created_by"], "bootstrap");
    assert_eq!(tokens[0]["roles"], json!(["admin"]));
    let refused = send_token("GET", &url("/v2/events"), None, None);
    assert_eq!(refused.status, 401);
    assert!(refused.faultstring().starts_with("Authentication required"));
    // The failure is recorded (asynchronously) with the peer's address and the request id.
    let failure_request = refused.assert_request_id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let failure = loop {
        let found = send_token(
            "GET",
            &url("/v2/events?q.field=all_tenants&q.value=true&q.field=event_type&q.value=almanac.auth.failure"),
            Some(token),
            None,
        )
        .json();
        if let Some(first) = found.as_array().and_then(|a| a.first()) {
            break first.clone();
        }
        assert!(Instant::now() < deadline, "no almanac.auth.failure record");
        std::thread::sleep(Duration::from_millis(50));
    };
    let trait_value = |name: &str| {
        failure["traits"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["value"].clone())
    };
    assert_eq!(
        trait_value("remote_addr"),
        Some(json!("127.0.0.1")),
        "{failure}"
    );
    assert_eq!(trait_value("request_id"), Some(json!(failure_request)));
    assert_eq!(trait_value("reason"), Some(json!("missing")));
    let created = send_token(
        "GET",
        &url("/v2/events?q.field=all_tenants&q.value=true&q.field=event_type&q.value=almanac.token.create"),
        Some(token),
        None,
    );
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(ids_of(&created.json()).len(), 1, "the bootstrap is audited");

    // A restart finds a token in the store and makes none.
    drop(server);
    let again = token_server(&db.url, cwd.path(), &[]);
    assert!(
        printed_tokens(&again.stdout()).is_empty(),
        "{}",
        again.stdout()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    let still = send_token(
        "GET",
        &format!("{}/v2/tokens", again.base),
        Some(token),
        None,
    );
    assert_eq!(still.status, 200);
}

async fn two_servers_starting_together_make_one_bootstrap_token(backend: Backend) {
    let db = TestDb::new(backend);
    let (cwd_a, cwd_b) = (tempdir(), tempdir());
    let start = |cwd: &Path| {
        Start {
            auth_headers: false,
            cwd: Some(cwd),
            ..Start::on(&db.url)
        }
        .spawn()
    };
    let (mut a, mut b) = (start(cwd_a.path()), start(cwd_b.path()));
    a.wait_ready();
    b.wait_ready();
    let printed: Vec<String> = [&a, &b]
        .iter()
        .flat_map(|s| printed_tokens(&s.stdout()))
        .collect();
    assert_eq!(
        printed.len(),
        1,
        "exactly one server bootstraps: {printed:?}"
    );
    let listed = send_token(
        "GET",
        &format!("{}/v2/tokens", b.base),
        Some(&printed[0]),
        None,
    );
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
}

fn token_cmd(cwd: &Path, url: &str, args: &[&str]) -> Finished {
    let mut cmd = almanac(cwd);
    cmd.args(["token", "--database-url", url]).args(args);
    finish(cmd, None, SHORT)
}

async fn token_command_creates_lists_and_revokes(backend: Backend) {
    let db = TestDb::new(backend);
    let cwd = tempdir();
    let created = token_cmd(
        cwd.path(),
        &db.url,
        &[
            "create",
            "--user-id",
            "svc",
            "--project-id",
            "ops",
            "--role",
            "admin",
            "--access",
            "read",
            "--expires-in",
            "1h",
            "--description",
            "dashboards",
        ],
    );
    created.assert_success();
    let token = created.stdout.trim().to_string();
    assert!(
        token.starts_with("alm_"),
        "stdout is the token alone: {:?}",
        created.stdout
    );
    let id = token.split('_').nth(1).unwrap().to_string();
    assert!(created.stderr.contains(&id) && created.stderr.contains("shown only now"));

    let list = token_cmd(cwd.path(), &db.url, &["list"]);
    list.assert_success();
    assert!(list.stdout.contains(&id), "{}", list.stdout);
    assert!(list.stdout.contains("access read"), "{}", list.stdout);
    assert!(!list.stdout.contains(token.splitn(3, '_').nth(2).unwrap()));
    let json_list = token_cmd(cwd.path(), &db.url, &["list", "--json"]);
    json_list.assert_success();
    let rows: Vec<Value> = json_list
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["description"], "dashboards");
    assert_eq!(rows[0]["active"], true);

    // The server finds a token and makes no bootstrap token; the CLI's token works, read-only.
    let server = token_server(
        &db.url,
        cwd.path(),
        &[("ALMANAC_TOKENS__CACHE_SECONDS", "0")],
    );
    assert!(printed_tokens(&server.stdout()).is_empty());
    let url = |path: &str| format!("{}{path}", server.base);
    assert_eq!(
        send_token("GET", &url("/v2/events"), Some(&token), None).status,
        200
    );
    let write = send_token(
        "POST",
        &url("/v2/events"),
        Some(&token),
        Some(&json!([event("e", 1, "m1.small")])),
    );
    assert_eq!(write.status, 403);
    assert!(write.faultstring().contains("read-only"));

    // Revoked from the command line: the running server refuses it.
    token_cmd(cwd.path(), &db.url, &["revoke", &id]).assert_success();
    assert_eq!(
        send_token("GET", &url("/v2/events"), Some(&token), None).status,
        401
    );
    let unknown = token_cmd(cwd.path(), &db.url, &["revoke", "0000000000000000"]);
    assert!(unknown.assert_failure().contains("no token with id"));
    let bad = token_cmd(
        cwd.path(),
        &db.url,
        &[
            "create",
            "--user-id",
            "u",
            "--project-id",
            "p",
            "--access",
            "write",
        ],
    );
    assert_eq!(
        bad.status.code(),
        Some(2),
        "clap rejects the value: {}",
        bad.stderr
    );
    assert!(
        bad.stderr.contains("expected full, read or ingest"),
        "{}",
        bad.stderr
    );
}

#[test]
fn serve_refuses_headers_mode_on_a_public_address() {
    let cwd = tempdir();
    let mut cmd = almanac(cwd.path());
    cmd.args([
        "serve",
        "--auth",
        "headers",
        "--bind",
        &format!("0.0.0.0:{}", free_port()),
    ])
    .args(["--database-url", "sqlite://never-opened.db"]);
    let done = finish(cmd, None, SHORT);
    let stderr = done.assert_failure();
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(!cwd.path().join("never-opened.db").exists());
}

#[test]
fn a_bad_policy_stops_serve_naming_file_and_line() {
    let cwd = tempdir();
    let file = cwd.path().join("policy.toml");
    std::fs::write(
        &file,
        "[policy]\n\"events:index\" = \"\"\n\"events:create\" = \"rol:admin\"\n",
    )
    .unwrap();
    let stderr = serve_fails(cwd.path(), &["--config", &file.display().to_string()]);
    assert!(
        stderr.contains(&format!(
            "{}:3: policy rule \"events:create\"",
            file.display()
        )),
        "{stderr}"
    );
}

#[test]
fn headers_mode_says_so_at_start_and_a_public_bind_needs_the_override() {
    let cwd = tempdir();
    let addr = format!("0.0.0.0:{}", free_port());
    let server = Start {
        addr: addr.clone(),
        bind_flag: true,
        database_url: Some("sqlite://almanac.db"),
        args: Vec::new(),
        env: vec![(
            "ALMANAC_ALLOW_HEADERS_AUTH_ON_PUBLIC_BIND".into(),
            "true".into(),
        )],
        cwd: Some(cwd.path()),
        auth_headers: true,
    }
    .spawn();
    // The server listens on every interface; ask it on loopback.
    let health = format!(
        "http://127.0.0.1:{}/healthcheck",
        addr.rsplit(':').next().unwrap()
    );
    let deadline = Instant::now() + STARTUP;
    while ureq::get(&health).call().is_err() {
        assert!(
            Instant::now() < deadline,
            "no answer on {health}: {}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = server.stderr();
    assert!(
        log.contains("auth = headers: X-User-Id, X-Project-Id and X-Roles are trusted"),
        "{log}"
    );
    assert!(log.contains("allow_headers_auth_on_public_bind"), "{log}");
}
