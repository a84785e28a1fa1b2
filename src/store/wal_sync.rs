//! SQLite: the WAL sync that makes an ingest commit durable, on a thread of its own.
//!
//! With `synchronous = FULL` SQLite syncs the WAL inside every commit, on the committing thread:
//! during a 1M-event load that `fdatasync` took about 20 ms of each ~185 ms group, time in which
//! the ingest writer stored nothing (docs/PERFORMANCE.md, "SQLite ingest, session 15"). So when
//! the store is configured `FULL` (or `EXTRA`), the writer's own connection commits with
//! `synchronous = NORMAL`, which writes and publishes the group's WAL frames without a sync, and
//! hands the group's answers to this thread. The thread calls `fdatasync` on the WAL and only
//! then sends them. A 201 still means that the batch is on disk, as it does under `FULL`, while
//! the writer already stores the next batches.
//!
//! Why one sync after the commit is enough: a WAL is one file that every connection appends to in
//! commit order, and `fdatasync` on any descriptor of a file writes all of its dirty pages, so a
//! sync that starts after a commit has returned covers all of that commit's frames, and every
//! earlier commit's. One sync answers every group that committed before it began (commits that
//! wait here share it). The rest of what `FULL` syncs is unaffected: SQLite syncs the WAL before a
//! checkpoint copies frames back, and the database file before a checkpoint completes, whatever
//! the `synchronous` level; and it syncs a restarted WAL's header (its `syncHeader`) under
//! `NORMAL` too. The checkpoint thread's and the request pool's connections keep the configured
//! level.
//!
//! What differs from `FULL`: between the commit and the sync, readers can already see the group's
//! events. A power loss in that window (milliseconds) loses those events, which no client was told
//! were stored. A process crash loses nothing committed, as in any WAL mode.
//!
//! A failed sync answers every batch that was waiting for it with a 503 and logs the error: the
//! events may or may not be on disk, and a retry stores those that are missing (and reports the
//! others as duplicates).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};

use super::writer::Answer;
use crate::error::ApiError;

/// The writer's handle on its sync thread. Dropping it ends the thread once every answer handed
/// to it has been sent, and waits for it.
pub struct WalSync {
    /// `None` only while dropping.
    queue: Option<Sender<Vec<Answer>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for WalSync {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WalSync {
    /// Starts the sync thread for the WAL of the database file `database`.
    pub fn start(database: &str) -> std::io::Result<WalSync> {
        let wal = PathBuf::from(format!("{database}-wal"));
        let (queue, answers) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("almanac-wal-sync".into())
            .spawn(move || run(&wal, &answers))?;
        Ok(WalSync {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Sends `answers` (a committed group's) once the WAL has been synced after this call.
    pub fn acknowledge(&self, answers: Vec<Answer>) {
        let Some(queue) = &self.queue else {
            return;
        };
        if let Err(mpsc::SendError(answers)) = queue.send(answers) {
            // The thread is gone (it panicked): nothing can confirm these.
            tracing::error!(
                "the WAL sync thread has stopped; failing the batches that wait for it"
            );
            let error = unsynced();
            for answer in answers {
                answer.send(Err(&error));
            }
        }
    }
}

fn run(wal: &Path, answers: &Receiver<Vec<Answer>>) {
    // The WAL's directory entry is synced once, by the first sync (see `sync`).
    let mut directory_synced = false;
    while let Ok(mut waiting) = answers.recv() {
        // Every group committed so far shares this sync.
        while let Ok(more) = answers.try_recv() {
            waiting.extend(more);
        }
        let synced = sync(wal, &mut directory_synced);
        if let Err(error) = &synced {
            tracing::error!(%error, batches = waiting.len(), "the WAL could not be synced; failing the batches of the commits it holds");
        }
        let error = synced.err().map(|_| unsynced());
        for answer in waiting {
            answer.send(error.as_ref().map_or(Ok(()), Err));
        }
    }
}

/// `fdatasync` on the WAL. The first time, also `fsync` on its directory: SQLite syncs the
/// directory entry of a WAL it creates on that connection's first sync, and the connection that
/// created this one may never sync it (the writer's does not, under `NORMAL`).
fn sync(wal: &Path, directory_synced: &mut bool) -> std::io::Result<()> {
    File::open(wal)?.sync_data()?;
    if !*directory_synced {
        if let Some(directory) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(directory)?.sync_all()?;
        }
        *directory_synced = true;
    }
    Ok(())
}

fn unsynced() -> ApiError {
    ApiError::Unavailable(
        "The batch was committed but could not be synced to disk; retry the request (events \
         already stored are reported as duplicates)."
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_an_existing_wal_and_its_directory() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database = dir.path().join("store.db");
        std::fs::write(format!("{}-wal", database.display()), b"frames").expect("a WAL");
        let mut directory_synced = false;
        let wal = PathBuf::from(format!("{}-wal", database.display()));
        sync(&wal, &mut directory_synced).expect("the sync succeeds");
        assert!(directory_synced);
    }

    #[test]
    fn a_missing_wal_is_an_error_not_a_success() {
        // The writer's connection keeps its WAL while it is open, so a WAL that is not there was
        // removed by something else, and nothing proves the commit durable.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let wal = dir.path().join("gone.db-wal");
        let mut directory_synced = false;
        assert!(sync(&wal, &mut directory_synced).is_err());
        assert!(!directory_synced);
    }
}
