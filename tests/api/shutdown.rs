//! Graceful shutdown: on SIGTERM `almanac serve` stops accepting connections, lets a request that
//! is already in flight finish (its batch is committed and acknowledged), drains the ingest
//! writer, closes the database and exits with code 0.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend_tests;
use crate::process::{event, Server, PROJECT, USER};
use crate::support::{Backend, TestDb};

backend_tests!(sigterm_lets_an_in_flight_ingest_finish_and_exits_cleanly);

const EVENTS: usize = 200;

/// `almanac_http_requests_in_flight` (this scrape included).
fn in_flight(server: &Server) -> i64 {
    let text = server.get("/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix("almanac_http_requests_in_flight "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no in-flight gauge in:\n{text}"))
}

async fn sigterm_lets_an_in_flight_ingest_finish_and_exits_cleanly(backend: Backend) {
    let db = TestDb::new(backend);
    let mut server = Server::start(&db.url, &[], &[]);

    // A connection the server has certainly accepted: one request answered on it first.
    let mut conn = TcpStream::connect(&server.addr).expect("connect");
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "GET /healthcheck HTTP/1.1\r\nHost: {}\r\n\r\n",
        server.addr
    )
    .unwrap();
    let mut first = [0u8; 512];
    let n = conn.read(&mut first).expect("the healthcheck answer");
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );

    // An ingest request whose head and half its body are sent before SIGTERM.
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| event(&format!("term-{i}"), i as u64))
        .collect();
    let body = serde_json::to_vec(&events).unwrap();
    let (sent_before, sent_after) = body.split_at(body.len() / 2);
    write!(
        conn,
        "POST /v2/events HTTP/1.1\r\nHost: {}\r\nX-User-Id: {USER}\r\nX-Project-Id: {PROJECT}\r\n\
         X-Roles: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        server.addr,
        body.len()
    )
    .unwrap();
    conn.write_all(sent_before).unwrap();
    conn.flush().unwrap();
    // Only a request the server has begun to handle is in flight (actix drops bytes it has not
    // read yet): wait until the metrics count it beside the scrape itself.
    let deadline = Instant::now() + Duration::from_secs(20);
    while in_flight(&server) < 2 {
        assert!(
            Instant::now() < deadline,
            "the ingest request never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    server.terminate();

    // New connections are refused once the server has begun to shut down.
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&server.addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the server still accepts connections after SIGTERM; stderr:\n{}",
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The in-flight request completes and is acknowledged.
    if let Err(e) = conn.write_all(sent_after) {
        panic!(
            "the server closed the in-flight request's connection ({e}); stderr:\n{}",
            server.stderr()
        );
    }
    let mut response = Vec::new();
    conn.read_to_end(&mut response)
        .expect("the in-flight request is answered");
    let response = String::from_utf8_lossy(&response);
    assert!(
        response.starts_with("HTTP/1.1 201"),
        "the in-flight ingest was not acknowledged: {response}\nstderr:\n{}",
        server.stderr()
    );
    let (_, json) = response.split_once("\r\n\r\n").expect("a body");
    let outcome: Value = serde_json::from_str(json).expect("a JSON outcome");
    assert_eq!(outcome["stored"], EVENTS, "{outcome}");

    let status = server.wait_exit(Duration::from_secs(60));
    let log = server.stderr();
    assert_eq!(
        status.code(),
        Some(0),
        "exit status {status}; stderr:\n{log}"
    );
    assert!(
        log.contains("database closed; shutdown complete"),
        "the writer was not drained and the pool not closed:\n{log}"
    );

    // Everything acknowledged is in the database.
    let server = Server::start(&db.url, &[], &[]);
    assert_eq!(server.all_ids().len(), EVENTS);
}
