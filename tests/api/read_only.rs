//! SQLite opened read-only: ingestion gets a 503 in the error envelope saying the database is
//! read-only (never a panic or a 500), and reads keep working.
//!
//! The database is opened with SQLite's URI `file:PATH?mode=ro`. chmod would not do: these tests
//! may run as root, whom file permissions do not stop. (A full disk is in `full_disk.rs`.)

use std::time::Duration;

use serde_json::json;

use crate::process::{event, Server};
use crate::support::{Backend, TestDb};

#[test]
fn sqlite_read_only_database_gives_503_on_ingest_and_serves_reads() {
    let db = TestDb::new(Backend::Sqlite);
    let mut server = Server::start(&db.url, &[], &[]);
    let reply = server.post("/v2/events", &json!([event("ro-1", 1), event("ro-2", 2)]));
    assert_eq!(reply.status, 201, "{}", reply.body);
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(60)).success());

    let path = db.url.strip_prefix("sqlite://").expect("an SQLite URL");
    let server = Server::start(&format!("sqlite://file:{path}?mode=ro"), &[], &[]);
    let reply = server.post("/v2/events", &json!([event("ro-3", 3)]));
    let text = reply.error(503);
    assert!(text.contains("read-only"), "{text}");
    assert_eq!(server.all_ids(), ["ro-1", "ro-2"]);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics.contains("almanac_db_errors_total{kind=\"read_only\"} 1"),
        "{metrics}"
    );
}
