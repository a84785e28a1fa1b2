//! `Db::run`: handlers' database work runs on the database threads, one per pooled connection,
//! in arrival order; work that waited longer than the connection timeout gets a 503 without
//! running; a panicking job costs its caller an error, not a thread.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use almanac::config::Config;
use almanac::db::{DatabaseUrl, Db};
use almanac::error::ApiError;
use diesel::connection::SimpleConnection;
use futures_util::future::join_all;

use crate::support::{Backend, TestDb};

/// A pool of one connection, hence one database thread.
fn one_thread(test_db: &TestDb, timeout: Duration) -> Db {
    let mut options = Config::default().db_options();
    options.pool_size = 1;
    options.connect_timeout = timeout;
    Db::open(
        &DatabaseUrl::parse(&test_db.url).expect("a valid URL"),
        &options,
    )
    .expect("open")
}

/// Occupies the only thread until the returned sender is sent to (or dropped).
async fn hold_the_thread(db: &Db) -> mpsc::Sender<()> {
    let (release, released) = mpsc::channel::<()>();
    let (started, has_started) = tokio::sync::oneshot::channel();
    let db = db.clone();
    actix_web::rt::spawn(async move {
        db.run(move |_| {
            let _ = started.send(());
            let _ = released.recv();
            Ok(())
        })
        .await
        .expect("the holding job succeeds");
    });
    has_started.await.expect("the holder starts");
    release
}

#[actix_web::test]
async fn queued_work_runs_in_arrival_order() {
    let test_db = TestDb::new(Backend::Sqlite);
    let db = one_thread(&test_db, Duration::from_secs(30));
    let release = hold_the_thread(&db).await;

    let order = Arc::new(Mutex::new(Vec::new()));
    // join_all polls each future once, in order, so they are queued 0, 1, 2, …
    let queued: Vec<_> = (0..8)
        .map(|i| {
            let (db, order) = (db.clone(), order.clone());
            async move {
                db.run(move |conn| {
                    conn.batch_execute("SELECT 1").map_err(ApiError::from)?;
                    order.lock().unwrap().push(i);
                    Ok(i)
                })
                .await
            }
        })
        .collect();
    let all = actix_web::rt::spawn(join_all(queued));
    // Let every one of them be queued behind the holder before it lets go.
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    release.send(()).expect("the holder is waiting");
    let results = all.await.expect("join");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
}

#[actix_web::test]
async fn work_that_waited_past_the_timeout_gets_503_and_does_not_run() {
    let test_db = TestDb::new(Backend::Sqlite);
    let db = one_thread(&test_db, Duration::from_millis(200));
    let release = hold_the_thread(&db).await;

    let ran = Arc::new(Mutex::new(false));
    let late = {
        let (db, ran) = (db.clone(), ran.clone());
        actix_web::rt::spawn(async move {
            db.run(move |_| {
                *ran.lock().unwrap() = true;
                Ok(())
            })
            .await
        })
    };
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    release.send(()).expect("the holder is waiting");
    let error = late
        .await
        .expect("join")
        .expect_err("it waited 500 ms, past 200");
    assert!(
        matches!(&error, ApiError::Unavailable(m) if m.contains("No connection could be obtained in time")),
        "{error:?}"
    );
    assert!(!*ran.lock().unwrap(), "work that timed out must not run");

    // Work queued now runs at once.
    db.run(|conn| conn.batch_execute("SELECT 1").map_err(ApiError::from))
        .await
        .expect("the thread is free again");
}

#[actix_web::test]
async fn a_panicking_job_fails_its_caller_and_keeps_the_thread() {
    let test_db = TestDb::new(Backend::Sqlite);
    let db = one_thread(&test_db, Duration::from_secs(30));
    let error = db
        .run(|_| -> Result<(), ApiError> { panic!("a bug in a handler") })
        .await
        .expect_err("a panic is an error");
    assert!(matches!(error, ApiError::Internal(_)), "{error:?}");
    // The only thread survived it.
    let next = db.run(|conn| {
        conn.batch_execute("SELECT 1").map_err(ApiError::from)?;
        Ok(42)
    });
    let answer = actix_web::rt::time::timeout(Duration::from_secs(10), next)
        .await
        .expect("no thread took the next job")
        .expect("the next job runs");
    assert_eq!(answer, 42);
}

#[actix_web::test]
async fn dropping_the_last_handle_waits_for_work_in_progress() {
    use futures_util::FutureExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    let test_db = TestDb::new(Backend::Sqlite);
    let db = one_thread(&test_db, Duration::from_secs(30));
    let finished = Arc::new(AtomicBool::new(false));
    let (started, has_started) = tokio::sync::oneshot::channel();
    {
        let finished = finished.clone();
        // Polled once, so the job is queued; its caller then goes away, as a request whose
        // client disconnected does. The job still runs.
        let queued = db
            .run(move |_| {
                let _ = started.send(());
                std::thread::sleep(Duration::from_millis(300));
                finished.store(true, Ordering::SeqCst);
                Ok(())
            })
            .now_or_never();
        assert!(queued.is_none(), "the job cannot have finished yet");
    }
    has_started.await.expect("the job starts");
    // The last handle: its drop waits until the thread has finished the job, so that no
    // database work outlives the store's handles (and, at exit, the process).
    drop(db);
    assert!(
        finished.load(Ordering::SeqCst),
        "the drop returned while the job ran"
    );
}
