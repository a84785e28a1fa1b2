//! SQLite WAL writes gathered into large ones: a VFS, registered as the process's default, that is
//! SQLite's own default VFS (`unix`) except that a connection's writes to its WAL file are kept in
//! a buffer and written out together.
//!
//! Why: a commit writes every page it changed to the WAL as a frame, and SQLite writes each frame
//! with two `pwrite` calls, its 24-byte header and then its page. An ingest group of 4,000 events
//! is about 8,400 frames, so 17,000 calls, and the kernel's work per call (the call itself, and
//! the page-cache bookkeeping for each of the two or three 4 KiB file pages a frame's two writes
//! touch) was about a seventh of the SQLite ingest writer's CPU at 1M events
//! (docs/PERFORMANCE.md, session 14). Written 64 KiB at a time, the same bytes take 32 times
//! fewer calls, and touch each file page about once.
//!
//! Why it is safe: no one needs a buffered byte before it is written out.
//! - Other connections read a frame only after a commit has published it in the WAL index, and
//!   SQLite publishes a commit only after writing its last frame (the commit frame, whose header
//!   carries the database size after the commit, and which is the only kind of frame with a size
//!   there) and, with `synchronous = FULL`, syncing the WAL. The buffer is written out as soon as
//!   a commit frame's page is in it, and before every sync.
//! - The connection's own reads of the WAL, size queries, truncations, file controls and its
//!   close write the buffer out first; so does any write that does not continue the buffer, so
//!   bytes reach the file in the order SQLite wrote them.
//! - A failed write-out is returned as the error of the call that made it, which fails the
//!   transaction as a failed write would have; nothing in the buffer was published.
//!
//! Frames of a transaction that spilled them (one larger than the page cache) and then rolled
//! back can stay in the buffer until the connection's next write, which writes them out first:
//! past the WAL's last commit, where nothing reads them, as it would have been without the
//! buffer. A crash loses only buffered bytes, which no commit had published: the state a crash in the
//! middle of SQLite's own frame writes leaves, which recovery already handles. Files other than
//! WAL files (the database, its shared-memory index, journals) are the default VFS's own, opened
//! as they would be without this module.

use std::ffi::{c_int, c_void, CStr};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::OnceLock;

use libsqlite3_sys as ffi;

/// The VFS's name (it is also the default).
const NAME: &CStr = c"almanac-wal-buffer";
/// Bytes gathered before they are written out (the buffer's capacity). The default VFS writes at
/// most 128 KiB - 1 bytes a call (its `seekAndWriteFd` masks the length with `0x1ffff`, and a
/// longer write comes out as a short one, which it reports as a full disk).
const BUFFER: usize = 64 << 10;
/// A WAL frame header's size: SQLite writes it in a call of its own, before the frame's page.
const FRAME_HEADER: usize = 24;
/// The WAL file header's size: frames start after it.
const WAL_HEADER: i64 = 32;

/// The default VFS this one wraps.
static BASE: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(ptr::null_mut());

/// Makes this VFS SQLite's default for the process, once; later calls return the first result.
/// Connections opened before the first call keep the VFS they had.
pub fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED.get_or_init(register_once).clone()
}

fn register_once() -> Result<(), String> {
    // SAFETY: `sqlite3_vfs_find` and `sqlite3_vfs_register` are thread-safe; the VFS struct is
    // leaked, so it outlives every connection, as SQLite requires.
    unsafe {
        let rc = ffi::sqlite3_initialize();
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_initialize failed ({rc})"));
        }
        let base = ffi::sqlite3_vfs_find(ptr::null());
        if base.is_null() {
            return Err("SQLite has no default VFS".into());
        }
        BASE.store(base, Ordering::SeqCst);
        // Everything as the default VFS has it (its other methods read only `pAppData`, copied
        // too), but the name, the file size and `xOpen`.
        let mut vfs = *base;
        vfs.zName = NAME.as_ptr();
        vfs.pNext = ptr::null_mut();
        vfs.szOsFile = vfs.szOsFile.max(std::mem::size_of::<WalFile>() as c_int);
        vfs.xOpen = Some(x_open);
        let vfs = Box::leak(Box::new(vfs));
        let rc = ffi::sqlite3_vfs_register(vfs, 1);
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_vfs_register failed ({rc})"));
        }
    }
    Ok(())
}

/// A WAL file: what SQLite sees (`base`, first), the default VFS's file it wraps, and the
/// buffer. SQLite allocates `szOsFile` bytes for it; `x_open` writes it there and `x_close`
/// drops it.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// The default VFS's file, in `real_memory`.
    real: *mut ffi::sqlite3_file,
    real_memory: Vec<u64>,
    /// Bytes written by SQLite and not yet to the file, which belong at `start`.
    buffer: Vec<u8>,
    start: i64,
    /// A commit frame's header is in the buffer, and its page is next.
    commit_next: bool,
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 1: no shared memory or memory mapping, which SQLite uses only on database files.
    iVersion: 1,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let base = BASE.load(Ordering::SeqCst);
    let Some(open) = (*base).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Not a WAL file: the default VFS's file, in the memory SQLite gave (at least its size).
        return open(base, name, file, flags, out_flags);
    }
    let words = ((*base).szOsFile as usize).div_ceil(std::mem::size_of::<u64>());
    let mut real_memory = vec![0u64; words.max(1)];
    let real = real_memory.as_mut_ptr().cast::<ffi::sqlite3_file>();
    let rc = open(base, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite does not close a file whose open failed when its methods are null.
        (*file).pMethods = ptr::null();
        if !(*real).pMethods.is_null() {
            if let Some(close) = (*(*real).pMethods).xClose {
                close(real);
            }
        }
        return rc;
    }
    ptr::write(
        file.cast::<WalFile>(),
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            real,
            real_memory,
            buffer: Vec::new(),
            start: 0,
            commit_next: false,
        },
    );
    ffi::SQLITE_OK
}

/// The WAL file behind a `sqlite3_file` that `x_open` made.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

/// The wrapped file's methods.
unsafe fn real(wal: &WalFile) -> &ffi::sqlite3_io_methods {
    &*(*wal.real).pMethods
}

impl WalFile {
    /// Writes the buffer out (if it holds anything) and empties it; returns SQLite's result code.
    unsafe fn write_out(&mut self) -> c_int {
        if self.buffer.is_empty() {
            return ffi::SQLITE_OK;
        }
        let Some(write) = real(self).xWrite else {
            return ffi::SQLITE_IOERR_WRITE;
        };
        let rc = write(
            self.real,
            self.buffer.as_ptr().cast::<c_void>(),
            self.buffer.len() as c_int,
            self.start,
        );
        self.buffer.clear();
        self.commit_next = false;
        rc
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let wal = wal(file);
    let amount = amount.max(0) as usize;
    if !wal.buffer.is_empty() && offset != wal.start + wal.buffer.len() as i64 {
        let rc = wal.write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if amount > BUFFER || offset < WAL_HEADER {
        // The WAL header, or a write too large to gather: straight to the file, in order.
        let rc = wal.write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        return match real(wal).xWrite {
            Some(write) => write(wal.real, data, amount as c_int, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        };
    }
    if wal.buffer.is_empty() {
        wal.buffer.reserve(BUFFER);
        wal.start = offset;
    }
    let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount);
    wal.buffer.extend_from_slice(bytes);
    let commit_page = wal.commit_next;
    // A frame header's bytes 4..8 are the database size after the commit in a commit frame, and
    // zero in every other frame.
    wal.commit_next = amount == FRAME_HEADER && bytes[4..8] != [0; 4];
    if commit_page || wal.buffer.len() >= BUFFER {
        return wal.write_out();
    }
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    out: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let wal = wal(file);
    let rc = wal.write_out();
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match real(wal).xRead {
        Some(read) => read(wal.real, out, amount, offset),
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let written = wal.write_out();
    let closed = match real(wal).xClose {
        Some(close) => close(wal.real),
        None => ffi::SQLITE_OK,
    };
    ptr::drop_in_place(file.cast::<WalFile>());
    (*file).pMethods = ptr::null();
    if written != ffi::SQLITE_OK {
        written
    } else {
        closed
    }
}

/// Methods that write the buffer out first, then call the wrapped file's.
macro_rules! after_write_out {
    ($name:ident, $method:ident, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let wal = wal(file);
            let rc = wal.write_out();
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match real(wal).$method {
                Some(method) => method(wal.real, $($arg),*),
                None => ffi::SQLITE_IOERR,
            }
        }
    };
}
after_write_out!(x_truncate, xTruncate, (size: i64));
after_write_out!(x_sync, xSync, (flags: c_int));
after_write_out!(x_file_size, xFileSize, (size: *mut i64));
after_write_out!(x_file_control, xFileControl, (op: c_int, arg: *mut c_void));

/// Methods that only call the wrapped file's (locks, geometry).
macro_rules! pass_through {
    ($name:ident, $method:ident, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> c_int {
            let wal = wal(file);
            match real(wal).$method {
                Some(method) => method(wal.real, $($arg),*),
                None => $missing,
            }
        }
    };
}
pass_through!(x_lock, xLock, ffi::SQLITE_OK, (level: c_int));
pass_through!(x_unlock, xUnlock, ffi::SQLITE_OK, (level: c_int));
pass_through!(x_check_reserved_lock, xCheckReservedLock, ffi::SQLITE_OK, (out: *mut c_int));
pass_through!(x_sector_size, xSectorSize, 4096, ());
pass_through!(x_device_characteristics, xDeviceCharacteristics, 0, ());

#[cfg(test)]
mod tests {
    use std::ffi::CStr;

    use diesel::connection::SimpleConnection;
    use diesel::sql_types::BigInt;
    use diesel::{Connection, RunQueryDsl, SqliteConnection};

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn count(conn: &mut SqliteConnection) -> i64 {
        diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result::<Count>(conn)
            .expect("count")
            .n
    }

    fn writes_in_one_connection_are_read_by_another(synchronous: &str) {
        register().expect("registered");
        // SAFETY: the default VFS is registered and lives for the process.
        let default = unsafe { CStr::from_ptr((*ffi::sqlite3_vfs_find(ptr::null())).zName) };
        assert_eq!(default, NAME);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("buffered.db");
        let path = path.to_str().unwrap();
        let mut writer = SqliteConnection::establish(path).unwrap();
        writer
            .batch_execute(&format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                 PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v);"
            ))
            .unwrap();
        let mut reader = SqliteConnection::establish(path).unwrap();
        let mut stored = 0;
        // Commits of one frame to a few hundred (more than a buffer), each read at once through
        // the other connection's own file handle; random index keys dirty pages all over.
        for rows in [1, 2, 50, 400, 3, 1000, 1] {
            writer
                .batch_execute(&format!(
                    "INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
                     FROM n WHERE i < {rows}) SELECT randomblob(300) FROM n"
                ))
                .unwrap();
            stored += rows;
            assert_eq!(count(&mut reader), stored, "after a commit of {rows} rows");
        }
        // A checkpoint by the reader copies back frames the writer wrote.
        reader
            .batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        let check = diesel::sql_query("PRAGMA integrity_check")
            .load::<IntegrityCheck>(&mut reader)
            .unwrap();
        assert_eq!(check.len(), 1);
        assert_eq!(check[0].integrity_check, "ok");
        // A third connection, opened after the writer's frames were written, agrees.
        drop(writer);
        let mut fresh = SqliteConnection::establish(path).unwrap();
        assert_eq!(count(&mut fresh), stored);
    }

    #[derive(diesel::QueryableByName)]
    struct IntegrityCheck {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }

    /// With `synchronous = NORMAL` a commit does not sync the WAL: only the write-out on the
    /// commit frame makes it readable by other connections.
    #[test]
    fn commits_are_readable_at_once_without_syncs() {
        writes_in_one_connection_are_read_by_another("NORMAL");
    }

    #[test]
    fn commits_are_readable_at_once_with_syncs() {
        writes_in_one_connection_are_read_by_another("FULL");
    }

    /// A transaction larger than the page cache spills frames before its commit, and reads some
    /// of them back; a rolled-back one leaves nothing.
    #[test]
    fn spilled_and_rolled_back_transactions() {
        register().expect("registered");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.db");
        let path = path.to_str().unwrap();
        let mut conn = SqliteConnection::establish(path).unwrap();
        conn.batch_execute(
            "PRAGMA journal_mode = WAL; PRAGMA cache_size = 10; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v);",
        )
        .unwrap();
        let insert = "INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
                      FROM n WHERE i < 2000) SELECT randomblob(200) FROM n";
        conn.batch_execute(&format!("BEGIN; {insert}; {insert}; COMMIT;"))
            .unwrap();
        conn.batch_execute(&format!("BEGIN; {insert}; ROLLBACK;"))
            .unwrap();
        let mut other = SqliteConnection::establish(path).unwrap();
        assert_eq!(count(&mut other), 4000);
        assert_eq!(count(&mut conn), 4000);
        let check = diesel::sql_query("PRAGMA integrity_check")
            .load::<IntegrityCheck>(&mut other)
            .unwrap();
        assert_eq!(check[0].integrity_check, "ok");
    }
}
