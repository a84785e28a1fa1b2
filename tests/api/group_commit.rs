//! The ingest writer's grouping of batches into commits, and (SQLite) its checkpoint thread.
//!
//! These drive `IngestWriter` directly, with a long linger, so that the waits they check are not
//! timing-dependent: a batch the writer should wait for comes well within the linger, and a
//! batch it should not wait for is answered long before the linger would end.

use std::time::{Duration, Instant};

use almanac::config::Config;
use almanac::ingest::{decode_batch, BatchFormat};
use almanac::model::NewEvent;
use almanac::store::ingest::IngestOutcome;
use almanac::store::writer::{IngestWriter, WriterOptions};
use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::backend_tests;
use crate::support::{Backend, TestDb};

backend_tests!(a_lone_client_is_never_kept_waiting);

/// Long enough that no test's deliberate delay comes near it, even on a loaded machine.
const LINGER: Duration = Duration::from_secs(10);
/// The pause before a batch the writer is expected to wait for.
const PAUSE: Duration = Duration::from_millis(100);

fn writer_on(db: &TestDb, wal_restart_pages: u32) -> IngestWriter {
    let options = WriterOptions {
        linger: LINGER,
        ..WriterOptions::new(Duration::from_secs(5), wal_restart_pages)
    };
    IngestWriter::start(db.open_migrated(), &options)
}

/// `n` events with message ids `{prefix}-{i}`, each with a few traits.
fn batch(prefix: &str, n: usize) -> Vec<NewEvent> {
    let lines: Vec<String> = (0..n)
        .map(|i| {
            serde_json::json!({
                "message_id": format!("{prefix}-{i}"),
                "event_type": "compute.instance.create.end",
                "generated": "2026-01-01T00:00:00",
                "traits": [
                    {"name": "project_id", "type": "string", "value": "p1"},
                    {"name": "host", "type": "string", "value": format!("host-{}", i % 7)},
                    {"name": "memory_mb", "type": "integer", "value": (i * 512) as i64},
                ],
            })
            .to_string()
        })
        .collect();
    decode_batch(
        lines.join("\n").as_bytes(),
        BatchFormat::Ndjson,
        &Config::default().ingest_limits(),
        0,
    )
    .expect("a valid batch")
}

/// Two batches of `n` events: the first queued alone, the second announced (its body being read)
/// before the first is queued and queued a pause later. Returns both outcomes.
async fn first_then_announced(
    writer: &IngestWriter,
    prefixes: [&str; 2],
    n: usize,
) -> (IngestOutcome, IngestOutcome) {
    let announced = writer.arriving();
    let first = tokio::spawn({
        let (writer, events) = (writer.clone(), batch(prefixes[0], n));
        async move { writer.submit(events, None, None).await }
    });
    tokio::time::sleep(PAUSE).await;
    let second = writer
        .submit(batch(prefixes[1], n), None, Some(announced))
        .await
        .expect("the second batch is stored");
    let first = first
        .await
        .expect("the task ends")
        .expect("the first batch is stored");
    (first, second)
}

/// SQLite's single writer waits for a batch being decoded.
#[actix_web::test]
async fn sqlite_a_batch_being_decoded_joins_the_group_that_waits_for_it() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);
    // The writer holds the first batch until the announced one is queued, and commits both.
    let (first, second) = first_then_announced(&writer, ["a", "b"], 10).await;
    assert_eq!((first.stored, second.stored), (10, 10));
    assert_eq!(writer.commits(), 1, "both batches in one commit");
}

/// SQLite's single writer, having stored two batches at a time, waits for a second one.
#[actix_web::test]
async fn sqlite_after_groups_of_two_a_lone_batch_waits_for_its_partner() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);

    // Two clients in step: the first pair arrives together and is stored together.
    first_then_announced(&writer, ["a1", "b1"], 5).await;
    assert_eq!(writer.commits(), 1);

    // Then one client comes back before the other has even started its request: the writer,
    // having stored two batches at a time, waits for the second.
    let early = tokio::spawn({
        let writer = writer.clone();
        async move { writer.submit(batch("a2", 5), None, None).await }
    });
    tokio::time::sleep(PAUSE).await;
    assert!(!early.is_finished(), "the lone batch waits for its partner");
    writer
        .submit(batch("b2", 5), None, None)
        .await
        .expect("stored");
    early.await.expect("the task ends").expect("stored");
    assert_eq!(writer.commits(), 2, "the second pair in one commit");
}

/// PostgreSQL's two writers: a batch is never held back for another while the other writer is
/// idle and could store that one in parallel.
#[actix_web::test]
async fn postgres_an_idle_writer_takes_the_next_batch_instead_of_waiting() {
    let db = TestDb::new(Backend::Postgres);
    let writer = writer_on(&db, 40_000);
    let started = Instant::now();
    let second_arrival = writer.arriving();
    let first = writer
        .submit(batch("a", 10), None, None)
        .await
        .expect("the first batch is stored");
    // Answered although a second batch was announced: the other writer was idle.
    assert_eq!(first.stored, 10);
    assert!(started.elapsed() < LINGER, "took {:?}", started.elapsed());
    let second = writer
        .submit(batch("b", 10), None, Some(second_arrival))
        .await
        .expect("the second batch is stored");
    assert_eq!(second.stored, 10);
    assert_eq!(writer.commits(), 2);
}

async fn a_lone_client_is_never_kept_waiting(backend: Backend) {
    let db = TestDb::new(backend);
    let writer = writer_on(&db, 40_000);
    let started = Instant::now();
    for n in 0..5 {
        let outcome = writer
            .submit(batch(&format!("solo{n}"), 3), None, None)
            .await
            .expect("stored");
        assert_eq!(outcome.stored, 3);
    }
    assert_eq!(writer.commits(), 5, "one commit per batch");
    // Five batches answered in less than one linger: none waited for a batch that never came.
    assert!(started.elapsed() < LINGER, "took {:?}", started.elapsed());
}

/// SQLite: the writer's connection does not checkpoint, its checkpoint thread does, and lets the
/// WAL start over, so the WAL file stays near the configured size however much is written.
#[actix_web::test]
async fn sqlite_checkpoint_thread_keeps_the_wal_small() {
    let db = TestDb::new(Backend::Sqlite);
    let restart_pages = 16;
    let writer = writer_on(&db, restart_pages);
    let path = db
        .url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_string();
    let wal = format!("{path}-wal");

    let batches = 60;
    let mut largest_wal = 0;
    for n in 0..batches {
        writer
            .submit(batch(&format!("w{n}"), 100), None, None)
            .await
            .expect("stored");
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    // Without checkpoints the 60 batches make a WAL of about 12 MiB; with them it stays near
    // the restart size plus a batch or two (about 0.5 MiB when this was written).
    assert!(
        largest_wal < 4 * 1024 * 1024,
        "the WAL grew to {largest_wal} bytes"
    );

    // Everything is there, read through another connection.
    let mut conn = diesel::SqliteConnection::establish(&path).expect("open the SQLite file");
    let count = count_events(&mut conn);
    assert_eq!(count, batches * 100);
    conn.batch_execute("PRAGMA integrity_check")
        .expect("intact");
}

fn count_events(conn: &mut diesel::SqliteConnection) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM events")
        .get_result::<Count>(conn)
        .expect("count the events")
        .n
}
