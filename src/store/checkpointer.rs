//! SQLite: WAL checkpoints on a thread of their own, beside the ingest writer.
//!
//! In WAL mode a commit appends the pages it changed to the WAL, and a checkpoint copies them
//! back into the database file. SQLite's automatic checkpoint runs in the committing thread right
//! after its commit: during a 1M-event load it was 29% of the ingest writer's time (16.5 s of
//! 57 s), time in which the writer stored nothing while the other core had room. So the writer's
//! connection does not checkpoint. After each commit it wakes this thread, which checkpoints
//! (`PASSIVE`: it copies what no reader still needs, and never waits for anyone) while the writer
//! stores the next group.
//!
//! A WAL starts over from its beginning only when a write transaction begins with every frame
//! copied back, which a writer that is always busy never lets a concurrent checkpoint achieve.
//! So once the WAL holds `restart_pages` pages, this thread takes the writer's gate between two
//! groups and copies the rest; the next group then starts the WAL over, whose file stays near
//! that size. The WAL must also stay small for reads: with no checkpoint during a 1M load,
//! ingest was slower than with checkpoints in the writer.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};

use diesel::sql_types::Integer;
use diesel::RunQueryDsl;

use crate::db::sql::Sql;
use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

/// The writer's handle on its checkpoint thread. Dropping it ends the thread, and waits for it
/// (no database work may outlive its owner: see `store::writer`).
pub struct Checkpointer {
    /// `None` only while dropping.
    wake: Option<SyncSender<()>>,
    gate: Arc<Mutex<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        // Closing the channel ends the thread after the checkpoint it may be running.
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Checkpointer {
    /// Starts the checkpoint thread for the database of `db` (SQLite).
    pub fn start(db: Db, restart_pages: u32) -> Checkpointer {
        // One pending wake-up is enough: a checkpoint copies everything committed before it.
        let (wake, woken) = mpsc::sync_channel(1);
        let gate = Arc::new(Mutex::new(()));
        let thread_gate = Arc::clone(&gate);
        let thread = std::thread::Builder::new()
            .name("almanac-checkpoint".into())
            .spawn(move || run(&db, &woken, &thread_gate, restart_pages))
            .expect("the checkpoint thread starts");
        Checkpointer {
            wake: Some(wake),
            gate,
            thread: Some(thread),
        }
    }

    /// Held by the writer while it stores a group, so that a restarting checkpoint comes
    /// between two groups.
    pub fn gate(&self) -> MutexGuard<'_, ()> {
        // The gate guards no data: a panic while it was held leaves nothing inconsistent.
        self.gate
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the thread that a group was committed.
    pub fn committed(&self) {
        // Full: a wake-up is pending already. Disconnected: the thread has ended (and logged why).
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }
}

fn run(db: &Db, woken: &Receiver<()>, gate: &Mutex<()>, restart_pages: u32) {
    let mut conn: Option<AnyConnection> = None;
    while woken.recv().is_ok() {
        if conn.is_none() {
            conn = db.dedicated().ok();
        }
        let Some(c) = conn.as_mut() else {
            continue; // the database is unavailable; the writer's next commit wakes us again
        };
        let outcome = checkpoint(c).and_then(|wal_pages| {
            if wal_pages >= i64::from(restart_pages) {
                let _between_groups = gate.lock().unwrap_or_else(|p| p.into_inner());
                checkpoint(c)?;
            }
            Ok(())
        });
        if let Err(error) = outcome {
            // Harmless for the data: the WAL keeps the pages until a later checkpoint.
            tracing::warn!(%error, "WAL checkpoint failed");
            conn = None;
        }
    }
}

/// One passive checkpoint; returns the pages in the WAL.
fn checkpoint(conn: &mut AnyConnection) -> Result<i64, ApiError> {
    let rows = Sql::new("PRAGMA wal_checkpoint(PASSIVE)")
        .typed::<(Integer, Integer, Integer)>()
        .load::<(i32, i32, i32)>(conn)?;
    Ok(rows
        .first()
        .map_or(0, |&(_busy, wal_pages, _copied)| i64::from(wal_pages)))
}
