//! SQLite: WAL checkpoints on a thread of their own, beside the ingest writer.
//!
//! In WAL mode a commit appends the pages it changed to the WAL, and a checkpoint copies them
//! back into the database file. SQLite's automatic checkpoint runs in the committing thread right
//! after its commit: during a 1M-event load it was 29% of the ingest writer's time (16.5 s of
//! 57 s), time in which the writer stored nothing while the other core had room. So the writer's
//! connection does not checkpoint. After each commit it wakes this thread, which checkpoints when
//! one is due (below) with `PASSIVE` (it copies what no reader still needs, and never waits for
//! anyone) while the writer stores the next group.
//!
//! A WAL starts over from its beginning only when a write transaction begins with every frame
//! copied back, which a writer that is always busy never lets a concurrent checkpoint achieve.
//! So once the WAL holds `restart_pages` pages, this thread takes the writer's gate between two
//! groups and copies the rest; the next group then starts the WAL over, whose file stays near
//! that size. The WAL must also stay small for reads: with no checkpoint during a 1M load,
//! ingest was slower than with checkpoints in the writer.
//!
//! The WAL starts over only at the first commit after the gated checkpoint, and until then its
//! size still reads as over the limit. So after a gated checkpoint the thread does not take the
//! gate again until two more transactions have committed: the first is the one that starts the WAL
//! over (unless a reader's snapshot kept it from doing so), the second is the first to show
//! whether it did. Taking the gate at the next wake-up, as it first did, blocked the writer about
//! once per restart for nothing: 93 waits of 56 ms on average, 10% of a 1M-event load, where about
//! 40 restarts needed one (docs/PERFORMANCE.md).
//!
//! A checkpoint copies each page once, however many commits changed it since the last one, so the
//! thread does not checkpoint after every commit: it waits until the WAL holds `restart_pages`
//! frames, which it reads from the WAL index (`store::wal_index`), then copies them while the
//! writer stores the next group, and the gated checkpoint copies the rest. A 1M-event load
//! rewrites many of the same index pages in commit after commit (random keys: message ids,
//! resource ids, floats); copying after every commit wrote every WAL frame back, 17.4 GB of
//! writes in all for a 0.66 GB store (docs/PERFORMANCE.md, session 11). When the writer falls
//! idle, what is left is copied after `WriterOptions::checkpoint_idle` (a second), so that the
//! database file of an idle store is complete.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use diesel::sql_types::Integer;
use diesel::RunQueryDsl;

use super::wal_index::{WalFrames, WalIndex};
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
    /// Starts the checkpoint thread for the database of `db` (SQLite). `commits` is the writer's
    /// count of committed transactions, which it raises before it calls
    /// [`Checkpointer::committed`].
    pub fn start(
        db: Db,
        restart_pages: u32,
        idle: Duration,
        commits: Arc<AtomicU64>,
    ) -> Checkpointer {
        // One pending wake-up is enough: a checkpoint copies everything committed before it.
        let (wake, woken) = mpsc::sync_channel(1);
        let gate = Arc::new(Mutex::new(()));
        let shared = Shared {
            gate: Arc::clone(&gate),
            commits,
        };
        let thread = std::thread::Builder::new()
            .name("almanac-checkpoint".into())
            .spawn(move || run(&db, &woken, &shared, restart_pages, idle))
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

/// What the checkpoint thread shares with the writer.
struct Shared {
    gate: Arc<Mutex<()>>,
    /// The writer's committed transactions.
    commits: Arc<AtomicU64>,
}

/// Checkpoints after the writer's commits until `woken` is closed. Frames left in the WAL are
/// copied back once the writer has been idle for `idle_after`.
fn run(db: &Db, woken: &Receiver<()>, shared: &Shared, restart_pages: u32, idle_after: Duration) {
    let mut conn: Option<(AnyConnection, Option<WalIndex>)> = None;
    // The writer's commit count at the last gated checkpoint.
    let mut gated_at: Option<u64> = None;
    // Whether frames may be left uncopied since the last checkpoint.
    let mut behind = false;
    loop {
        let idle = match woken.recv_timeout(idle_after) {
            Ok(()) => false,
            Err(RecvTimeoutError::Timeout) if behind => true,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if conn.is_none() {
            // The index is opened and dropped with the connection: while a connection is open,
            // SQLite keeps the `-shm` file in place, so the handle never reads a replaced file.
            conn = db.dedicated().ok().map(|mut c| {
                let index = WalIndex::open(&mut c);
                (c, index)
            });
        }
        let Some((c, index)) = conn.as_mut() else {
            behind = true; // the database is unavailable; try again on the next wake or timeout
            continue;
        };
        // Without a readable WAL index (another VFS, say), checkpoint after every commit.
        let wal = index.as_ref().and_then(WalIndex::read);
        if !idle && wal.is_some_and(|w| !due(w, restart_pages)) {
            behind = true;
            continue;
        }
        let outcome = checkpoint(c).and_then(|(wal_pages, copied)| {
            // A reader's snapshot can keep frames from being copied: try again when idle.
            behind = copied < wal_pages;
            let commits = shared.commits.load(Ordering::SeqCst);
            if needs_gate(wal_pages, restart_pages, commits, gated_at) {
                catch_up(c, index.as_ref(), restart_pages)?;
                let _between_groups = shared.gate.lock().unwrap_or_else(|p| p.into_inner());
                let started = std::time::Instant::now();
                checkpoint(c)?;
                gated_at = Some(shared.commits.load(Ordering::SeqCst));
                tracing::debug!(
                    wal_pages,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    "WAL checkpoint between two groups"
                );
            }
            Ok(())
        });
        if let Err(error) = outcome {
            // Harmless for the data: the WAL keeps the pages until a later checkpoint.
            tracing::warn!(%error, "WAL checkpoint failed");
            conn = None;
            behind = true;
        }
    }
}

/// Passive checkpoints of what the writer committed while the last one copied, until little is
/// left: the gated checkpoint that follows, which the writer waits for, then copies only that
/// little. A checkpoint of a full WAL takes long enough for several groups to commit meanwhile,
/// and the gated one copying them all cost the writer 6.4 s of a 90 s 1M-event load.
fn catch_up(
    conn: &mut AnyConnection,
    index: Option<&WalIndex>,
    restart_pages: u32,
) -> Result<(), ApiError> {
    const ROUNDS: usize = 4;
    for _ in 0..ROUNDS {
        match index.and_then(WalIndex::read) {
            Some(wal) if wal.uncopied() > restart_pages / 16 => checkpoint(conn)?,
            _ => break,
        };
    }
    Ok(())
}

/// Whether a commit that leaves the WAL as `wal` calls for a checkpoint: once it holds
/// `restart_pages` frames, when it must start over anyway. Until then each page is left to be
/// copied once, however many commits rewrite it.
fn due(wal: WalFrames, restart_pages: u32) -> bool {
    wal.frames >= restart_pages
}

/// Whether to copy the rest of the WAL between two groups, so that the next group starts it over:
/// when it holds `restart_pages` pages or more, unless the last such checkpoint (at `gated_at`
/// commits) has not yet been followed by the commit that starts the WAL over and one more that
/// shows its new size (see the module's comment).
fn needs_gate(wal_pages: i64, restart_pages: u32, commits: u64, gated_at: Option<u64>) -> bool {
    wal_pages >= i64::from(restart_pages) && gated_at.is_none_or(|at| commits >= at + 2)
}

/// One passive checkpoint; returns the pages in the WAL, and how many of them are copied back.
fn checkpoint(conn: &mut AnyConnection) -> Result<(i64, i64), ApiError> {
    let rows = Sql::new("PRAGMA wal_checkpoint(PASSIVE)")
        .typed::<(Integer, Integer, Integer)>()
        .load::<(i32, i32, i32)>(conn)?;
    Ok(rows.first().map_or((0, 0), |&(_busy, wal_pages, copied)| {
        (i64::from(wal_pages), i64::from(copied))
    }))
}

#[cfg(test)]
mod tests {
    use super::{due, needs_gate, WalFrames};

    #[test]
    fn a_checkpoint_waits_for_the_restart_size() {
        let wal = |frames, copied| WalFrames { frames, copied };
        assert!(!due(wal(39_999, 0), 40_000));
        assert!(due(wal(40_000, 0), 40_000));
        // Over the size with little left to copy, as after the checkpoint that the gated one
        // follows: due, so that the WAL can start over.
        assert!(due(wal(45_000, 44_000), 40_000));
        assert!(due(wal(1, 0), 1));
    }

    #[test]
    fn a_small_wal_needs_no_gate() {
        assert!(!needs_gate(39_999, 40_000, 10, None));
        assert!(needs_gate(40_000, 40_000, 10, None));
    }

    #[test]
    fn after_a_gated_checkpoint_the_wal_gets_two_commits_to_start_over() {
        // Gated at 7 commits: the size read after commit 8 is still the old WAL's.
        assert!(!needs_gate(50_000, 40_000, 7, Some(7)));
        assert!(!needs_gate(50_000, 40_000, 8, Some(7)));
        // After commit 9 a WAL still over the limit did not start over (a reader kept it).
        assert!(needs_gate(50_000, 40_000, 9, Some(7)));
        assert!(!needs_gate(9_000, 40_000, 9, Some(7)));
    }
}
