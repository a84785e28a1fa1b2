//! The ingest writer's grouping of batches into commits, and (SQLite) its checkpoint thread.
//!
//! These drive `IngestWriter` directly, with a long linger, so that the waits they check are not
//! timing-dependent: a batch the writer should wait for comes well within the linger, and a
//! batch it should not wait for is answered long before the linger would end.

use std::time::{Duration, Instant};

use almanac::config::Config;
use almanac::db::AnyConnection;
use almanac::ingest::{decode_batch, BatchFormat};
use almanac::model::NewEvent;
use almanac::store::audit::{Actor, AuditEntry, EVENTS_INGEST};
use almanac::store::ingest::{
    insert_batches, insert_growing_group, BatchWrite, GroupOutcome, IngestOutcome,
};
use almanac::store::wal_index::{WalFrames, WalIndex};
use almanac::store::writer::{IngestWriter, WriterOptions};
use diesel::connection::SimpleConnection;
use diesel::Connection;

use crate::backend_tests;
use crate::support::{count, Backend, TestDb};

backend_tests!(
    a_lone_client_is_never_kept_waiting,
    a_batch_that_fails_in_the_database_fails_alone,
    a_growing_group_grows_only_on_sqlite,
);

/// Long enough that no test's deliberate delay comes near it, even on a loaded machine.
const LINGER: Duration = Duration::from_secs(10);
/// The pause before a batch the writer is expected to wait for.
const PAUSE: Duration = Duration::from_millis(100);

fn writer_on(db: &TestDb, wal_restart_pages: u32) -> IngestWriter {
    writer_with_idle(db, wal_restart_pages, Duration::from_secs(1))
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
/// before the first is queued and queued a pause later; the first must still be waiting for it
/// then. Returns both outcomes.
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
    assert!(
        !first.is_finished(),
        "the first batch waits for the one being decoded"
    );
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

/// SQLite's single writer waits for a batch being decoded, and leaves one of the batches in
/// flight out of each group: with three announced, the first two are stored together (the second
/// waited for while it was decoded) and answered while the third is still on its way, which the
/// next commit stores.
#[actix_web::test]
async fn sqlite_a_group_waits_for_a_batch_being_decoded_and_leaves_one_out() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);
    let started = Instant::now();
    let third_arrival = writer.arriving();
    let (first, second) = first_then_announced(&writer, ["a", "b"], 10).await;
    assert_eq!((first.stored, second.stored), (10, 10));
    assert_eq!(writer.commits(), 1, "the first two batches in one commit");
    // Answered long before the linger would have ended: the group did not wait for the third.
    assert!(started.elapsed() < LINGER, "took {:?}", started.elapsed());
    let third = writer
        .submit(batch("c", 10), None, Some(third_arrival))
        .await
        .expect("the third batch is stored");
    assert_eq!(third.stored, 10);
    assert_eq!(
        writer.commits(),
        2,
        "the batch left out in a commit of its own"
    );
}

/// SQLite's single writer with two clients in step: each batch is committed alone, and the first
/// is answered without waiting for the other client's batch (which is being decoded), so that
/// the writer stores one client's batch while the other gets its answer and sends again.
#[actix_web::test]
async fn sqlite_two_clients_in_step_are_stored_apart() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);
    let started = Instant::now();
    let second_arrival = writer.arriving();
    let first = writer
        .submit(batch("a", 10), None, None)
        .await
        .expect("the first batch is stored");
    assert_eq!(first.stored, 10);
    assert!(started.elapsed() < LINGER, "took {:?}", started.elapsed());
    assert_eq!(writer.commits(), 1, "the first batch committed alone");
    let second = writer
        .submit(batch("b", 10), None, Some(second_arrival))
        .await
        .expect("the second batch is stored");
    assert_eq!(second.stored, 10);
    assert_eq!(writer.commits(), 2);
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
    let path = sqlite_path(&db).to_string();
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

/// SQLite: the checkpoint thread leaves a WAL below its restart size alone, so that a page that
/// several commits rewrite is copied back once, not once per commit (`store::checkpointer`).
#[actix_web::test]
async fn sqlite_checkpoints_wait_for_the_wal_to_fill() {
    let db = TestDb::new(Backend::Sqlite);
    // Idle never comes during the test: only a full WAL would call for a checkpoint.
    let writer = writer_with_idle(&db, 100_000, Duration::from_secs(600));
    store_batches(&writer, "f", 5).await;
    // Time for the thread to act, were it to checkpoint after each commit.
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let wal = wal_frames(&db);
    assert!(wal.frames > 0, "the commits are in the WAL: {wal:?}");
    assert_eq!(wal.copied, 0, "nothing copied back yet: {wal:?}");
}

/// SQLite: once the writer is idle, the checkpoint thread copies back what the WAL holds, so the
/// database file of an idle store is complete.
#[actix_web::test]
async fn sqlite_checkpoints_an_idle_writers_wal() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_with_idle(&db, 100_000, Duration::from_millis(100));
    store_batches(&writer, "i", 5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut wal = wal_frames(&db);
    while wal.uncopied() > 0 && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        wal = wal_frames(&db);
    }
    assert!(wal.frames > 0, "the commits went through the WAL: {wal:?}");
    assert_eq!(wal.uncopied(), 0, "all copied back: {wal:?}");
    drop(writer);
    let mut conn = diesel::SqliteConnection::establish(sqlite_path(&db)).expect("open");
    assert_eq!(count_events(&mut conn), 500);
}

/// Stores `n` batches of 100 events one after another, message ids `{prefix}{i}-…`.
async fn store_batches(writer: &IngestWriter, prefix: &str, n: usize) {
    for i in 0..n {
        writer
            .submit(batch(&format!("{prefix}{i}"), 100), None, None)
            .await
            .expect("stored");
    }
}

fn writer_with_idle(db: &TestDb, wal_restart_pages: u32, idle: Duration) -> IngestWriter {
    let options = WriterOptions {
        linger: LINGER,
        checkpoint_idle: idle,
        ..WriterOptions::new(Duration::from_secs(5), wal_restart_pages)
    };
    IngestWriter::start(db.open_migrated(), &options)
}

fn sqlite_path(db: &TestDb) -> &str {
    db.url.strip_prefix("sqlite://").expect("a SQLite URL")
}

/// The WAL's frames, read from its index through a connection of the test's own.
fn wal_frames(db: &TestDb) -> WalFrames {
    let sqlite = diesel::SqliteConnection::establish(sqlite_path(db)).expect("open");
    let mut conn = AnyConnection::Sqlite(sqlite);
    WalIndex::open(&mut conn)
        .expect("a WAL index")
        .read()
        .expect("a consistent WAL index")
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

/// `insert_growing_group` over plain batches (no audit records).
fn store_growing(
    conn: &mut AnyConnection,
    items: &mut Vec<Vec<NewEvent>>,
    more: impl FnMut(&mut Vec<Vec<NewEvent>>) -> bool,
) -> GroupOutcome {
    insert_growing_group(
        conn,
        items,
        |events| BatchWrite {
            events,
            audit: None,
        },
        more,
    )
}

/// The SQLite writer stores a group's first batch while the others are still arriving
/// (`insert_growing_group`): batches that `more` adds once the first is stored go into the same
/// transaction, and when one of them fails, every batch taken so far is stored again alone.
/// PostgreSQL interns a group's names before its transaction, so there the group never grows.
async fn a_growing_group_grows_only_on_sqlite(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = db.open_migrated();
    let mut conn = pool.dedicated().expect("a connection");
    let events = |conn: &mut AnyConnection| count(conn, "SELECT COUNT(*) AS n FROM events");

    // Two more batches arrive, one at each call; the third call finds none.
    let mut arriving = vec![batch("late2", 4), batch("late1", 3)];
    let mut calls = 0;
    let mut items = vec![batch("first", 5)];
    let group = store_growing(&mut conn, &mut items, |items| {
        calls += 1;
        arriving.pop().map(|b| items.push(b)).is_some()
    });
    let stored: Vec<usize> = group
        .outcomes
        .into_iter()
        .map(|o| o.expect("stored").stored)
        .collect();
    match backend {
        Backend::Sqlite => {
            assert_eq!(calls, 3, "asked again after each batch it was given");
            assert_eq!(stored, [5, 3, 4], "outcomes in the order taken");
            assert_eq!(group.commits, 1, "one transaction for the grown group");
            assert_eq!(events(&mut conn), 12);
        }
        Backend::Postgres => {
            assert_eq!(calls, 0, "PostgreSQL never asks for more");
            assert_eq!(stored, [5]);
            assert_eq!(group.commits, 1);
            assert_eq!(events(&mut conn), 5);
            return;
        }
    }

    // A batch added later fails half-way: the group is rolled back, and each batch taken so far
    // is stored alone, the one added by `more` before it included. The group takes no batch
    // after the failure (in the writer it stays queued for the next group).
    conn.batch_execute(
        "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.message_id LIKE 'poison%' \
         BEGIN SELECT RAISE(FAIL, 'poisoned event'); END;",
    )
    .expect("the trigger is created");
    let mut poisoned = batch("p", 6);
    poisoned[3].message_id = "poison-p".into();
    let mut arriving = vec![batch("after", 2), poisoned, batch("mid", 3)];
    let mut items = vec![batch("before", 4)];
    let group = store_growing(&mut conn, &mut items, |items| {
        arriving.pop().map(|b| items.push(b)).is_some()
    });
    let [before, mid, poisoned] =
        <[_; 3]>::try_from(group.outcomes).expect("one outcome per batch taken");
    assert_eq!(before.expect("the first batch is stored").stored, 4);
    assert_eq!(mid.expect("the batch added before it is stored").stored, 3);
    assert!(poisoned.is_err(), "the poisoned batch fails");
    assert_eq!(group.commits, 2, "the two good batches, each alone");
    assert_eq!(arriving.len(), 1, "the last batch was not taken");
    assert_eq!(events(&mut conn), 12 + 7);
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM events WHERE message_id LIKE 'p-%'"
        ),
        0,
        "nothing of the failed batch"
    );
}

/// A group is one transaction without savepoints: when one of its batches fails in the database
/// (here: a trigger refuses one event in the middle of a batch, after the rows before it were
/// written), the group is rolled back and each batch stored alone, so the others are stored and
/// nothing of the failed batch remains.
async fn a_batch_that_fails_in_the_database_fails_alone(backend: Backend) {
    let db = TestDb::new(backend);
    let pool = db.open_migrated();
    let mut conn = pool.dedicated().expect("a connection");
    conn.batch_execute(match backend {
        Backend::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.message_id LIKE 'poison%' \
             BEGIN SELECT RAISE(FAIL, 'poisoned event'); END;"
        }
        Backend::Postgres => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF NEW.message_id LIKE 'poison%' THEN RAISE EXCEPTION 'poisoned event'; END IF; \
               RETURN NEW; END $$; \
             CREATE TRIGGER poison BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    })
    .expect("the trigger is created");

    let good_a = batch("a", 10);
    let good_c = batch("c", 10);
    // Five events, the poisoned one, four more: a multi-row insert that fails half-way.
    let mut poisoned = batch("b", 10);
    poisoned[5].message_id = "poison-b".into();
    let writes = [&good_a, &poisoned, &good_c].map(|events| BatchWrite {
        events,
        audit: None,
    });
    let group = insert_batches(&mut conn, &writes);

    let [a, b, c] = <[_; 3]>::try_from(group.outcomes).expect("one outcome per batch");
    assert_eq!(a.expect("the first batch is stored").stored, 10);
    assert!(b.is_err(), "the poisoned batch fails");
    assert_eq!(c.expect("the last batch is stored").stored, 10);
    assert_eq!(group.commits, 2, "the two good batches, each alone");

    assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM events"), 20);
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) AS n FROM events WHERE message_id LIKE 'b-%'"
        ),
        0,
        "nothing of the failed batch"
    );
    // Each stored event has its `host` and `memory_mb` rows (`project_id` is a column), and no
    // trait row is left without its event.
    for (table, rows) in [("traits_string", 20), ("traits_integer", 20)] {
        assert_eq!(
            count(&mut conn, &format!("SELECT COUNT(*) AS n FROM {table}")),
            rows
        );
        assert_eq!(
            count(
                &mut conn,
                &format!(
                    "SELECT COUNT(*) AS n FROM {table} t \
                     WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = t.event_id)"
                )
            ),
            0,
            "{table} has rows of events that do not exist"
        );
    }
}

/// SQLite: the writer's connection leaves foreign keys unchecked (see `store::writer::open`);
/// what it stores must satisfy them all the same: grouped batches with new names, a duplicate
/// across batches and audit records.
#[actix_web::test]
async fn sqlite_the_writer_stores_only_valid_references() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);
    // Three batches announced: the first two share a commit (see
    // `sqlite_a_group_waits_for_a_batch_being_decoded_and_leaves_one_out`).
    let third_arrival = writer.arriving();
    let (first, second) = first_then_announced(&writer, ["x", "y"], 20).await;
    assert_eq!((first.stored, second.stored), (20, 20));
    assert_eq!(writer.commits(), 1, "both batches in one commit");
    drop(third_arrival);
    // The same events again, with one new and an audit record: only the new one is stored,
    // and the record with it.
    let mut again = batch("x", 20);
    again.extend(batch("z", 1));
    let record = AuditEntry::new(
        EVENTS_INGEST,
        Actor {
            user_id: Some("auditor".into()),
            project_id: Some("audit-project".into()),
            token_id: None,
        },
    );
    let outcome = writer
        .submit(again, Some(record), None)
        .await
        .expect("stored");
    assert_eq!((outcome.stored, outcome.duplicates.len()), (1, 20));

    let path = db.url.strip_prefix("sqlite://").expect("a SQLite URL");
    let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
    assert_eq!(
        count_events(&mut conn),
        42,
        "41 events and the audit record"
    );
    #[derive(diesel::QueryableByName)]
    struct Violation {
        #[diesel(sql_type = diesel::sql_types::Text)]
        table: String,
    }
    let violations: Vec<Violation> =
        diesel::RunQueryDsl::load(diesel::sql_query("PRAGMA foreign_key_check"), &mut conn)
            .expect("check the foreign keys");
    let tables: Vec<String> = violations.into_iter().map(|v| v.table).collect();
    assert!(tables.is_empty(), "dangling references in {tables:?}");
}

/// SQLite: dropping the last writer handle waits until the writer and its checkpoint thread have
/// stored what was queued and closed their connections; no database work may still be running
/// when the process exits. The last connection to close removes the WAL file, so its absence
/// right after the drop shows that every connection is closed.
#[actix_web::test]
async fn sqlite_dropping_the_writer_waits_for_its_threads() {
    let db = TestDb::new(Backend::Sqlite);
    let writer = writer_on(&db, 40_000);
    writer
        .submit(batch("last", 50), None, None)
        .await
        .expect("stored");
    let path = db.url.strip_prefix("sqlite://").expect("a SQLite URL");
    let wal = format!("{path}-wal");
    assert!(std::path::Path::new(&wal).exists(), "a WAL while open");
    drop(writer);
    assert!(
        !std::path::Path::new(&wal).exists(),
        "a connection was still open after the drop"
    );
    let mut conn = diesel::SqliteConnection::establish(path).expect("open the SQLite file");
    assert_eq!(count_events(&mut conn), 50);
}

/// SQLite under `synchronous = FULL`: the writer's commits are made durable by a WAL sync on a
/// thread of its own (`store::wal_sync`), and a batch is answered only after it. Here the sync
/// cannot happen (the WAL's name is gone, so the sync thread cannot find it): the batch gets a 503
/// saying so instead of a 201, and so does every later batch, even once the WAL is back under its
/// name. With `sync_off_thread` off (a store configured `NORMAL`) nothing waits for a sync, and
/// the same batches are answered as stored.
#[actix_web::test]
async fn sqlite_a_batch_is_answered_only_after_its_wal_sync() {
    for sync_off_thread in [true, false] {
        let db = TestDb::new(Backend::Sqlite);
        let options = WriterOptions {
            linger: LINGER,
            sync_off_thread,
            ..WriterOptions::new(Duration::from_secs(5), 40_000)
        };
        let writer = IngestWriter::start(db.open_migrated(), &options);
        let first = writer
            .submit(batch("before", 3), None, None)
            .await
            .expect("stored and synced");
        assert_eq!(first.stored, 3);
        let wal = format!("{}-wal", sqlite_path(&db));
        let moved = format!("{wal}.moved");
        std::fs::rename(&wal, &moved).expect("the WAL exists while the writer is open");
        let outcome = writer.submit(batch("after", 3), None, None).await;
        // The WAL back under its name: a sync would succeed again, but after a failed one nothing
        // is confirmed any more (a write-back failure may have dropped pages that a later sync
        // does not cover).
        std::fs::rename(&moved, &wal).expect("the WAL back");
        let later = writer.submit(batch("later", 3), None, None).await;
        use actix_web::ResponseError;
        if sync_off_thread {
            for outcome in [outcome, later] {
                let error = outcome.expect_err("no sync, no 201");
                assert_eq!(
                    error.status_code(),
                    actix_web::http::StatusCode::SERVICE_UNAVAILABLE
                );
                assert!(
                    error.to_string().contains("could not be synced to disk"),
                    "{error}"
                );
            }
        } else {
            assert_eq!(outcome.expect("nothing waits for a sync").stored, 3);
            assert_eq!(later.expect("nothing waits for a sync").stored, 3);
        }
    }
}
