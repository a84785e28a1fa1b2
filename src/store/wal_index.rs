//! SQLite: how many frames the WAL holds, and how many of them a checkpoint has copied back, read
//! from the WAL index (the `-shm` file beside the database) without touching the database.
//!
//! SQLite reports these numbers only as the result of a checkpoint, which copies the frames it
//! counts; the checkpoint thread needs them before it decides to copy (`store::checkpointer`).
//! The WAL index is shared by every process using the database, so its layout is fixed and
//! documented (<https://www.sqlite.org/walformat.html>, "The WAL-Index Header"): two copies of
//! a 48-byte header, then the checkpoint information. Its integers are in the host's byte order.
//! - header at 0 and 48: `iVersion` (u32, 3007000) at 0, `isInit` (u8) at 12, `mxFrame` (u32,
//!   the last valid frame) at 16;
//! - `nBackfill` (u32, frames already copied into the database) at 96.
//!
//! SQLite writes the second header copy first and the first last, and a reader trusts the header
//! only when both copies agree; this reader does the same, and gives up (`None`) otherwise. The
//! numbers only steer when to checkpoint, so a missing or unreadable index costs a checkpoint,
//! never data.

use std::fs::File;
use std::os::unix::fs::FileExt;

use diesel::sql_types::{Integer, Text};
use diesel::RunQueryDsl;

use crate::db::sql::Sql;
use crate::db::AnyConnection;

/// `iVersion` of the WAL index this reader understands.
const VERSION: u32 = 3_007_000;
const HEADER: usize = 48;
const BACKFILL_AT: usize = 2 * HEADER;

/// The WAL's frames: all of them, and those a checkpoint has copied back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalFrames {
    pub frames: u32,
    pub copied: u32,
}

impl WalFrames {
    /// Frames a checkpoint would copy now.
    pub fn uncopied(self) -> u32 {
        self.frames.saturating_sub(self.copied)
    }
}

/// The open WAL index of one database.
pub struct WalIndex {
    shm: File,
}

impl WalIndex {
    /// Opens the WAL index of the main database of `conn` (SQLite, in WAL mode). `None` when
    /// there is none to read: PostgreSQL, an in-memory database, a VFS without a `-shm` file.
    pub fn open(conn: &mut AnyConnection) -> Option<WalIndex> {
        let file = database_file(conn)?;
        File::open(format!("{file}-shm"))
            .ok()
            .map(|shm| WalIndex { shm })
    }

    /// The WAL's frames now, or `None` when the index cannot be read consistently.
    pub fn read(&self) -> Option<WalFrames> {
        let mut bytes = [0u8; BACKFILL_AT + 4];
        self.shm.read_exact_at(&mut bytes, 0).ok()?;
        parse(&bytes)
    }
}

/// The path of the main database file of `conn` (SQLite); `None` on PostgreSQL, and for an
/// in-memory or temporary database, which has no file.
pub fn database_file(conn: &mut AnyConnection) -> Option<String> {
    if !matches!(conn, AnyConnection::Sqlite(_)) {
        return None;
    }
    let databases = Sql::new("PRAGMA database_list")
        .typed::<(Integer, Text, Text)>()
        .load::<(i32, String, String)>(conn)
        .ok()?;
    let (_, _, file) = databases.into_iter().find(|(_, name, _)| name == "main")?;
    (!file.is_empty()).then_some(file)
}

/// The frames recorded in the first 100 bytes of a WAL index.
fn parse(bytes: &[u8; BACKFILL_AT + 4]) -> Option<WalFrames> {
    let u32_at = |at: usize| u32::from_ne_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let (first, second) = (&bytes[..HEADER], &bytes[HEADER..BACKFILL_AT]);
    if first != second || u32_at(0) != VERSION || bytes[12] != 1 {
        return None;
    }
    Some(WalFrames {
        frames: u32_at(16),
        copied: u32_at(BACKFILL_AT),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::sql::Sql;
    use diesel::Connection;

    fn header(frames: u32) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&VERSION.to_ne_bytes());
        h[12] = 1;
        h[16..20].copy_from_slice(&frames.to_ne_bytes());
        h
    }

    fn index(first: [u8; HEADER], second: [u8; HEADER], copied: u32) -> [u8; BACKFILL_AT + 4] {
        let mut b = [0u8; BACKFILL_AT + 4];
        b[..HEADER].copy_from_slice(&first);
        b[HEADER..BACKFILL_AT].copy_from_slice(&second);
        b[BACKFILL_AT..].copy_from_slice(&copied.to_ne_bytes());
        b
    }

    #[test]
    fn a_consistent_header_gives_its_frames() {
        let frames = parse(&index(header(700), header(700), 300)).unwrap();
        assert_eq!(
            frames,
            WalFrames {
                frames: 700,
                copied: 300
            }
        );
        assert_eq!(frames.uncopied(), 400);
    }

    #[test]
    fn torn_uninitialised_or_unknown_headers_are_not_trusted() {
        // A writer between its two copies.
        assert_eq!(parse(&index(header(700), header(701), 0)), None);
        let mut uninitialised = header(700);
        uninitialised[12] = 0;
        assert_eq!(parse(&index(uninitialised, uninitialised, 0)), None);
        let mut other_version = header(700);
        other_version[0] ^= 1;
        assert_eq!(parse(&index(other_version, other_version, 0)), None);
    }

    #[test]
    fn copied_frames_never_exceed_the_frames_when_counting_what_is_left() {
        assert_eq!(
            WalFrames {
                frames: 3,
                copied: 5
            }
            .uncopied(),
            0
        );
    }

    /// Against a real SQLite database: the frames a commit appends, then a checkpoint's copy.
    #[test]
    fn reads_the_frames_of_a_real_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let sqlite = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let mut conn = AnyConnection::Sqlite(sqlite);
        let run = |conn: &mut AnyConnection, sql: &str| Sql::new(sql).execute(conn).unwrap();
        run(&mut conn, "PRAGMA journal_mode = WAL");
        run(&mut conn, "PRAGMA wal_autocheckpoint = 0");
        run(&mut conn, "CREATE TABLE t (x BLOB)");
        let index = WalIndex::open(&mut conn).expect("a WAL database has a WAL index");
        let before = index.read().expect("readable");
        run(&mut conn, "INSERT INTO t WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) \
             SELECT randomblob(1000) FROM n");
        let after = index.read().expect("readable");
        assert!(
            after.frames >= before.frames + 20,
            "100 KB more should be 20+ frames of 4 KiB: {before:?} -> {after:?}"
        );
        assert_eq!(after.copied, 0);
        let reported = Sql::new("PRAGMA wal_checkpoint(PASSIVE)")
            .typed::<(Integer, Integer, Integer)>()
            .load::<(i32, i32, i32)>(&mut conn)
            .unwrap();
        let checkpointed = index.read().expect("readable");
        assert_eq!(i64::from(checkpointed.frames), i64::from(reported[0].1));
        assert_eq!(checkpointed.copied, checkpointed.frames);
        assert_eq!(checkpointed.uncopied(), 0);
    }

    #[test]
    fn an_in_memory_database_has_no_index_to_read() {
        let sqlite = diesel::SqliteConnection::establish(":memory:").unwrap();
        assert!(WalIndex::open(&mut AnyConnection::Sqlite(sqlite)).is_none());
    }
}
