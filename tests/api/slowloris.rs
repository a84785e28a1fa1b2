//! Slow clients: a client that sends its request head a byte at a time (slowloris) is answered
//! 408 and disconnected after `http.client_request_timeout_ms`, while other clients are served.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::process::Server;
use crate::support::{Backend, TestDb};

#[test]
fn a_client_dribbling_its_request_head_is_cut_off_while_others_are_served() {
    let db = TestDb::new(Backend::Sqlite);
    let server = Server::start(
        &db.url,
        &[],
        &[("ALMANAC_HTTP__CLIENT_REQUEST_TIMEOUT_MS", "1000")],
    );

    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /v2/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let mut answer = Vec::new();
    let closed_after = loop {
        // One more byte of a header that never ends.
        if slow.write_all(b"a").is_err() {
            break started.elapsed();
        }
        let mut buf = [0u8; 1024];
        match slow.read(&mut buf) {
            Ok(0) => break started.elapsed(),
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break started.elapsed(),
        }
        // Meanwhile another client is served.
        let reply = server.get("/healthcheck");
        assert_eq!(reply.status, 200);
        // actix-web's own default is 5 s: being cut off before that shows the setting applies.
        assert!(
            started.elapsed() < Duration::from_millis(4500),
            "the slow client is still connected after {:?}",
            started.elapsed()
        );
    };
    assert!(
        closed_after >= Duration::from_millis(900),
        "cut off too early ({closed_after:?}), not by the request timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // The server is still fine.
    assert_eq!(server.get("/v2/events").status, 200);
}
