//! PostgreSQL stopped under load (a private server of this test's own): requests get a 503 in the
//! error envelope, never a 500 and never a hang; `/healthcheck` (liveness) stays 200 while
//! `/readyz` (readiness) is 503; once PostgreSQL is back the same server process serves again,
//! and every acknowledged batch is stored whole.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::private_pg::PrivatePostgres;
use crate::process::{agent, event, send, Reply, Server};

/// What the server is told to wait for a database connection before answering 503.
const CONNECT_TIMEOUT_MS: &str = "2000";
/// A request without an answer after this long counts as a hang (the timeout plus a wide margin
/// for a loaded machine; this bounds hangs, it does not measure speed).
const HANG: Duration = Duration::from_secs(30);
const CLIENTS: usize = 3;
const BATCH: usize = 10;

#[derive(Clone, Debug)]
struct Seen {
    method: &'static str,
    status: u16,
    /// The faultcode and faultstring of an error reply.
    fault: Option<(String, String)>,
}

fn record(method: &'static str, result: Result<Reply, String>) -> Result<Seen, String> {
    let reply = result?;
    let fault = (reply.status >= 400).then(|| {
        let body = reply.json();
        (
            body["error_message"]["faultcode"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            body["error_message"]["faultstring"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    });
    Ok(Seen {
        method,
        status: reply.status,
        fault,
    })
}

fn batch(client: usize, k: usize) -> Value {
    Value::Array(
        (0..BATCH)
            .map(|i| event(&format!("load-{client}-{k}-{i}"), (k * BATCH + i) as u64))
            .collect(),
    )
}

/// Polls `path` until it answers `status`; fails after `within`.
#[track_caller]
fn wait_for(server: &Server, path: &str, status: u16, within: Duration) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        let reply = server.get(path);
        if reply.status == status {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "{path} did not become {status} (last: {} {}); stderr:\n{}",
            reply.status,
            reply.body,
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `count(seen)` reaches `n`.
#[track_caller]
fn wait_until(
    seen: &Mutex<Vec<Result<Seen, String>>>,
    n: usize,
    what: &str,
    f: impl Fn(&Seen) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let count = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.as_ref().is_ok_and(&f))
            .count();
        if count >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {count} {what} seen in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn postgres_outage_gives_503_then_recovers_without_restart() {
    let pg = PrivatePostgres::start();
    let server = Server::start(
        &pg.url(),
        &[],
        &[("ALMANAC_DATABASE__CONNECT_TIMEOUT_MS", CONNECT_TIMEOUT_MS)],
    );
    assert_eq!(server.get("/readyz").json()["status"], "ready");

    // Load: each client alternates an ingest batch and a query until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(Mutex::new(BTreeMap::<(usize, usize), bool>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (stop, seen, acked) = (Arc::clone(&stop), Arc::clone(&seen), Arc::clone(&acked));
            let (post_url, get_url) = (server.url("/v2/events"), server.url("/v2/events?limit=5"));
            std::thread::spawn(move || {
                let agent = agent(HANG);
                let mut k = 0;
                while !stop.load(Ordering::SeqCst) {
                    let result = send(&agent, "POST", &post_url, Some(&batch(client, k)));
                    let ok = matches!(&result, Ok(r) if r.status == 201);
                    acked.lock().unwrap().insert((client, k), ok);
                    seen.lock().unwrap().push(record("POST", result));
                    k += 1;
                    let result = send(&agent, "GET", &get_url, None);
                    seen.lock().unwrap().push(record("GET", result));
                }
            })
        })
        .collect();
    wait_until(&seen, 6, "201s before the outage", |s| s.status == 201);

    pg.pg_ctl_stop();
    let outage_started = seen.lock().unwrap().len();
    let reply = wait_for(&server, "/readyz", 503, Duration::from_secs(30));
    assert!(!reply.error(503).is_empty());
    assert_eq!(
        server.get("/healthcheck").status,
        200,
        "liveness is not readiness"
    );
    wait_until(&seen, 3, "503s to ingests", |s| {
        s.method == "POST" && s.status == 503
    });
    wait_until(&seen, 3, "503s to queries", |s| {
        s.method == "GET" && s.status == 503
    });

    pg.pg_ctl_start();
    wait_for(&server, "/readyz", 200, Duration::from_secs(60));
    let recovered_at = seen.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let after: Vec<_> = seen.lock().unwrap()[recovered_at..].to_vec();
        let ok = |m: &str, st: u16| {
            after
                .iter()
                .any(|s| matches!(s, Ok(s) if s.method == m && s.status == st))
        };
        if ok("POST", 201) && ok("GET", 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not serve again after PostgreSQL came back; stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().expect("a client thread");
    }

    // Every reply was a success or a 503 in the envelope; none hung, none was a 500.
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > outage_started);
    for s in &seen {
        let s = s
            .as_ref()
            .unwrap_or_else(|e| panic!("a request failed or hung: {e}"));
        match s.status {
            200 | 201 => assert!(s.fault.is_none()),
            503 => {
                let (code, text) = s.fault.as_ref().expect("a 503 in the error envelope");
                assert_eq!(code, "Server");
                assert!(text.contains("database"), "{text}");
            }
            other => panic!(
                "unexpected {other} to {}: {s:?}; the server logged:\n{}",
                s.method,
                server
                    .stderr()
                    .lines()
                    .filter(|l| l.contains("ERROR"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
        }
    }

    // Nothing acknowledged was lost; nothing refused or unanswered was stored in part.
    let mut stored: HashMap<(usize, usize), usize> = HashMap::new();
    for id in server.all_ids() {
        let mut parts = id.split('-').skip(1).map(|p| p.parse::<usize>().unwrap());
        let key = (parts.next().unwrap(), parts.next().unwrap());
        *stored.entry(key).or_default() += 1;
    }
    for (key, ok) in acked.lock().unwrap().iter() {
        let count = stored.get(key).copied().unwrap_or(0);
        if *ok {
            assert_eq!(count, BATCH, "acknowledged batch {key:?} lost events");
        } else {
            assert!(
                count == 0 || count == BATCH,
                "batch {key:?} half-stored: {count}"
            );
        }
    }
}

/// A PostgreSQL address that accepts TCP connections but never answers (a stopped or wedged
/// server behind a live socket): connecting fails after libpq's `connect_timeout` (from
/// `database.connect_timeout_ms`) instead of blocking forever.
#[test]
fn connecting_to_a_silent_postgres_fails_instead_of_hanging() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("an address").port();
    std::thread::spawn(move || {
        // Accept and hold every connection, answering nothing.
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let url = almanac::db::DatabaseUrl::parse(&format!("postgres://postgres@127.0.0.1:{port}/x"))
        .expect("a URL");
    let options = almanac::db::DbOptions {
        connect_timeout: Duration::from_millis(1000),
        ..almanac::db::DbOptions::default()
    };
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(almanac::db::Db::connect(&url, &options).map(|_| ()));
    });
    let result = result
        .recv_timeout(HANG)
        .expect("connecting to a silent server hung");
    assert!(result.is_err(), "connected to a server that never answers");
}
