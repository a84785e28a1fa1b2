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
//! The thread keeps one descriptor of the WAL open: Linux reports a failed write-back once to
//! each descriptor that was open when it failed, and never to one opened later, so a descriptor
//! opened for each sync could miss a failure that another sync (the checkpoint's, say) had
//! already reported. It opens the file again only if the WAL's name now stands for another file.
//! A failed sync answers every batch that was waiting for it with a 503 and logs the error, and
//! after it the thread confirms nothing more (every later stored batch gets the 503 too) until the
//! server is restarted: pages whose write-back failed may be dropped by the kernel, and a later
//! sync that succeeds says nothing about them. The events may or may not be on disk; a retry
//! after the restart stores those that are missing and reports the others as duplicates.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
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
    let mut file = WalFile::new(wal);
    // Set by the first failed sync: nothing is confirmed after it (see the module's comment).
    let mut failed = false;
    while let Ok(mut waiting) = answers.recv() {
        // Every group committed so far shares this sync.
        while let Ok(more) = answers.try_recv() {
            waiting.extend(more);
        }
        if !failed {
            if let Err(error) = file.sync() {
                tracing::error!(%error, batches = waiting.len(), "the WAL could not be synced; failing the batches of the commits it holds, and every later one until the server is restarted");
                failed = true;
            }
        }
        let error = failed.then(unsynced);
        for answer in waiting {
            answer.send(error.as_ref().map_or(Ok(()), Err));
        }
    }
}

/// The WAL, through one descriptor kept open (see the module's comment).
struct WalFile<'p> {
    path: &'p Path,
    /// The open WAL, and its (device, inode).
    open: Option<(File, (u64, u64))>,
    directory_synced: bool,
}

impl WalFile<'_> {
    fn new(path: &Path) -> WalFile<'_> {
        WalFile {
            path,
            open: None,
            directory_synced: false,
        }
    }

    /// `fdatasync` on the WAL, opening it first if the descriptor kept is not the file that the
    /// WAL's name stands for now (the first time; or if every connection closed and the WAL was
    /// made again). A WAL that is not there is an error: the writer's connection keeps it while it
    /// is open, so nothing proves the commit durable. The first time, it also syncs the WAL's
    /// directory, as SQLite does for a WAL it creates on that connection's first sync (the
    /// connection that created it may never sync, as the writer's does not under `NORMAL`); like
    /// SQLite, it only logs a failure there.
    fn sync(&mut self) -> std::io::Result<()> {
        let named = std::fs::metadata(self.path)?;
        let identity = (named.dev(), named.ino());
        let file = match &self.open {
            Some((file, open)) if *open == identity => file,
            _ => {
                let file = File::open(self.path)?;
                let meta = file.metadata()?;
                &self.open.insert((file, (meta.dev(), meta.ino()))).0
            }
        };
        file.sync_data()?;
        if !self.directory_synced {
            self.directory_synced = true;
            if let Some(directory) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                if let Err(error) = File::open(directory).and_then(|d| d.sync_all()) {
                    tracing::warn!(%error, "the WAL's directory could not be synced");
                }
            }
        }
        Ok(())
    }
}

fn unsynced() -> ApiError {
    ApiError::Unavailable(
        "The batch was committed but could not be synced to disk, and after a failed disk sync \
         the server confirms no batch until it is restarted; retry then (events already stored \
         are reported as duplicates)."
            .into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inode(file: &WalFile<'_>) -> Option<u64> {
        file.open.as_ref().map(|(_, (_, ino))| *ino)
    }

    #[test]
    fn keeps_one_descriptor_while_the_name_stands_for_the_same_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("store.db-wal");
        std::fs::write(&path, b"frames").expect("a WAL");
        let mut wal = WalFile::new(&path);
        wal.sync().expect("the first sync succeeds");
        assert!(wal.directory_synced);
        let first = inode(&wal).expect("the WAL is open");
        wal.sync().expect("the second sync succeeds");
        assert_eq!(inode(&wal), Some(first), "the same descriptor");

        // The WAL made again under the same name (a new file): the next sync opens it.
        let replaced = dir.path().join("other");
        std::fs::write(&replaced, b"new frames").expect("a new file");
        let new = std::fs::metadata(&replaced).expect("its metadata").ino();
        std::fs::rename(&replaced, &path).expect("it takes the WAL's name");
        wal.sync().expect("the sync after the replacement succeeds");
        assert_eq!(inode(&wal), Some(new));
        assert_ne!(new, first);
    }

    #[test]
    fn a_missing_wal_is_an_error_not_a_success() {
        // The writer's connection keeps its WAL while it is open, so a WAL that is not there was
        // removed by something else, and nothing proves the commit durable.
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("gone.db-wal");
        let mut wal = WalFile::new(&path);
        assert!(wal.sync().is_err());
        assert!(inode(&wal).is_none());
    }
}
