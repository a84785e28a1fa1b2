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
//! Why it is safe: no one needs a buffered byte before it is written out, and at the end of a
//! write transaction the file is as it would be without the buffer.
//! - Other connections read a frame only after a commit has published it in the WAL index. The
//!   buffer is written out as soon as a commit frame's page is in it (a frame header whose
//!   "database size after commit" field is not zero: only commit frames have one), where a failed
//!   write fails the commit as an unbuffered one would. The rarer commits that write something
//!   after that page (checksums rewritten after a spilled page was written twice; padding frames)
//!   are caught by the database file's shared-memory barrier, which SQLite calls between writing
//!   the two copies of the WAL index header that publish a commit: the buffer is written out
//!   there, first. A barrier cannot report an error, so a write-out that fails there stops the
//!   process rather than publish frames that are not in the file.
//! - When the connection releases the WAL write lock, the buffer is written out first, while no
//!   other connection can write: frames of a transaction that spilled them (one larger than the
//!   page cache) and rolled back land past the last commit, where nothing reads them and the next
//!   writer overwrites them, as without the buffer; written later, they would overwrite that
//!   writer's frames.
//! - The connection's own reads of the WAL, syncs, size queries, truncations, file controls and
//!   its close write the buffer out first; so does any write that does not continue the buffer,
//!   so bytes reach the file in the order SQLite wrote them.
//! - A write-out that fails where SQLite fails only the statement (a read, a size query) would
//!   leave the transaction able to commit without those frames: after a failed write-out every
//!   write fails until the write lock is released.
//! - Writes are gathered only while the WAL index is in shared memory, where SQLite calls the
//!   barrier and the lock; with `locking_mode = EXCLUSIVE` it keeps the index in heap memory and
//!   calls neither, and every write goes straight to the file. Any other change of the WAL
//!   index's or the database file's locks writes the buffer out too.
//!
//! A crash loses only buffered bytes, which no commit had published: the state a crash in the
//! middle of SQLite's own frame writes leaves, which recovery already handles. The database file
//! is the default VFS's, wrapped only to see the barrier, the locks and the shared-memory
//! mapping; other files (journals, temporary files) are the default VFS's own. Both versions of
//! this module were reviewed against SQLite 3.50's `wal.c` and `os_unix.c` (docs/PERFORMANCE.md,
//! session 14).

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
        vfs.szOsFile = vfs
            .szOsFile
            .max(std::mem::size_of::<WalFile>() as c_int)
            .max(std::mem::size_of::<DbFile>() as c_int);
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
/// drops it (the same for [`DbFile`]).
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    /// The default VFS's file, in `_real_memory`.
    real: *mut ffi::sqlite3_file,
    _real_memory: Vec<u64>,
    /// Bytes written by SQLite and not yet to the file, which belong at `start`.
    buffer: Vec<u8>,
    start: i64,
    /// A commit frame's header is in the buffer, and its page is next.
    commit_next: bool,
    /// A write-out failed in this write transaction: its frames are not all in the file, so
    /// nothing more may be written or published until the write lock is released.
    lost: bool,
    /// The database file whose WAL this is, linked both ways while both are open (null if it is
    /// not one of this VFS's).
    db: *mut DbFile,
}

/// A database file: the default VFS's, wrapped to write out its WAL's buffer at the shared-memory
/// barrier and when the WAL write lock is released (see the module's comment).
#[repr(C)]
struct DbFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    _real_memory: Vec<u64>,
    /// The open WAL file of the same connection, or null.
    wal: *mut WalFile,
    /// The WAL index is in shared memory (`xShmMap` was called): SQLite then calls the barrier
    /// and the lock that the buffer relies on. Not in heap-memory (exclusive) mode.
    shm_mapped: bool,
}

/// Index of the WAL write lock among the WAL index's locks (`WAL_WRITE_LOCK` in SQLite's wal.c).
const WAL_WRITE_LOCK: c_int = 0;

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
    let wrapped = flags & (ffi::SQLITE_OPEN_WAL | ffi::SQLITE_OPEN_MAIN_DB) != 0;
    if !wrapped {
        // The default VFS's file, in the memory SQLite gave (at least its size).
        return open(base, name, file, flags, out_flags);
    }
    let words = ((*base).szOsFile as usize).div_ceil(std::mem::size_of::<u64>());
    let mut real_memory = vec![0u64; words.max(1)];
    let real = real_memory.as_mut_ptr().cast::<ffi::sqlite3_file>();
    let rc = open(base, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        // SQLite does not close a file whose methods are null; the default VFS leaves them null
        // when its open fails, and closes what it opened itself.
        (*file).pMethods = ptr::null();
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_MAIN_DB != 0 {
        ptr::write(
            file.cast::<DbFile>(),
            DbFile {
                base: ffi::sqlite3_file {
                    pMethods: &DB_METHODS,
                },
                real,
                _real_memory: real_memory,
                wal: ptr::null_mut(),
                shm_mapped: false,
            },
        );
        return ffi::SQLITE_OK;
    }
    // The WAL's database file, made by `x_open` too (this VFS is every connection's default,
    // but a connection may name another VFS in its URI; then nothing is linked).
    let db = ffi::sqlite3_database_file_object(name).cast::<DbFile>();
    let db = if !db.is_null() && ptr::eq((*db).base.pMethods, &DB_METHODS) {
        db
    } else {
        ptr::null_mut()
    };
    let wal = file.cast::<WalFile>();
    ptr::write(
        wal,
        WalFile {
            base: ffi::sqlite3_file {
                pMethods: &WAL_METHODS,
            },
            real,
            _real_memory: real_memory,
            buffer: Vec::new(),
            start: 0,
            commit_next: false,
            lost: false,
            db,
        },
    );
    if !db.is_null() {
        (*db).wal = wal;
    }
    ffi::SQLITE_OK
}

/// The WAL file behind a `sqlite3_file` that `x_open` made.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    &mut *file.cast::<WalFile>()
}

/// The methods of a wrapped (default VFS) file.
unsafe fn methods<'a>(real: *mut ffi::sqlite3_file) -> &'a ffi::sqlite3_io_methods {
    &*(*real).pMethods
}

impl WalFile {
    /// Writes the buffer out (if it holds anything) and empties it; returns SQLite's result code.
    unsafe fn write_out(&mut self) -> c_int {
        if self.lost {
            return ffi::SQLITE_IOERR_WRITE;
        }
        if self.buffer.is_empty() {
            return ffi::SQLITE_OK;
        }
        let rc = match methods(self.real).xWrite {
            Some(write) => write(
                self.real,
                self.buffer.as_ptr().cast::<c_void>(),
                self.buffer.len() as c_int,
                self.start,
            ),
            None => ffi::SQLITE_IOERR_WRITE,
        };
        self.buffer.clear();
        self.commit_next = false;
        if rc != ffi::SQLITE_OK {
            // SQLite treats a failed write as the end of the transaction, but a failed read or
            // size query (where a write-out can happen too) as a failed statement only: refuse
            // every later write, so the transaction cannot commit without these frames.
            self.lost = true;
        }
        rc
    }

    /// Whether writes are gathered: only while SQLite calls the hooks the buffer relies on (see
    /// [`DbFile::shm_mapped`]); otherwise every write goes straight to the file.
    unsafe fn buffering(&self) -> bool {
        !self.db.is_null() && (*self.db).shm_mapped
    }

    /// The end of a write transaction (or a change of lock that may end it): the buffer is
    /// written out while no other connection can write, and a lost write-out is forgotten, since
    /// its transaction is over.
    unsafe fn end_of_write(&mut self) {
        let already_lost = self.lost;
        let rc = self.write_out();
        if rc != ffi::SQLITE_OK && !already_lost {
            tracing::warn!(
                rc,
                "SQLite WAL frames past the last commit could not be written"
            );
        }
        self.lost = false;
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
    if wal.lost {
        return ffi::SQLITE_IOERR_WRITE;
    }
    if amount == 0 {
        return ffi::SQLITE_OK;
    }
    if !wal.buffer.is_empty() && offset != wal.start + wal.buffer.len() as i64 {
        let rc = wal.write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if amount > BUFFER || offset < WAL_HEADER || !wal.buffering() {
        // The WAL header, a write too large to gather, or a connection that is not buffering:
        // straight to the file, in order.
        let rc = wal.write_out();
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        return match methods(wal.real).xWrite {
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
    let commit_header = amount == FRAME_HEADER && bytes[4..8] != [0; 4];
    let rc = if commit_page || wal.buffer.len() >= BUFFER {
        wal.write_out()
    } else {
        ffi::SQLITE_OK
    };
    // After the write-out, which forgets it: a commit header that filled the buffer still makes
    // its page write the buffer out.
    wal.commit_next = commit_header;
    rc
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
    match methods(wal.real).xRead {
        Some(read) => read(wal.real, out, amount, offset),
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = wal(file);
    let written = wal.write_out();
    if !wal.db.is_null() {
        (*wal.db).wal = ptr::null_mut();
    }
    let closed = match methods(wal.real).xClose {
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
            match methods(wal.real).$method {
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

/// Methods that only call the wrapped file's; `$file` is `WalFile` or `DbFile`.
macro_rules! pass_through {
    ($file:ty, $name:ident, $method:ident, $ret:ty, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file, $($arg: $ty),*) -> $ret {
            let real = (*file.cast::<$file>()).real;
            match methods(real).$method {
                Some(method) => method(real, $($arg),*),
                None => $missing,
            }
        }
    };
}
pass_through!(WalFile, x_lock, xLock, c_int, ffi::SQLITE_OK, (level: c_int));
pass_through!(WalFile, x_unlock, xUnlock, c_int, ffi::SQLITE_OK, (level: c_int));
pass_through!(WalFile, x_check_reserved_lock, xCheckReservedLock, c_int, ffi::SQLITE_OK, (out: *mut c_int));
pass_through!(WalFile, x_sector_size, xSectorSize, c_int, 4096, ());
pass_through!(
    WalFile,
    x_device_characteristics,
    xDeviceCharacteristics,
    c_int,
    0,
    ()
);

static DB_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    // Version 3, as the default VFS's: shared memory and memory mapping, passed through.
    iVersion: 3,
    xClose: Some(db_close),
    xRead: Some(db_read),
    xWrite: Some(db_write),
    xTruncate: Some(db_truncate),
    xSync: Some(db_sync),
    xFileSize: Some(db_file_size),
    xLock: Some(db_lock),
    xUnlock: Some(db_unlock),
    xCheckReservedLock: Some(db_check_reserved_lock),
    xFileControl: Some(db_file_control),
    xSectorSize: Some(db_sector_size),
    xDeviceCharacteristics: Some(db_device_characteristics),
    xShmMap: Some(db_shm_map),
    xShmLock: Some(db_shm_lock),
    xShmBarrier: Some(db_shm_barrier),
    xShmUnmap: Some(db_shm_unmap),
    xFetch: Some(db_fetch),
    xUnfetch: Some(db_unfetch),
};

const NO_METHOD: c_int = ffi::SQLITE_IOERR;
pass_through!(DbFile, db_read, xRead, c_int, NO_METHOD, (out: *mut c_void, amount: c_int, offset: i64));
pass_through!(DbFile, db_write, xWrite, c_int, NO_METHOD, (data: *const c_void, amount: c_int, offset: i64));
pass_through!(DbFile, db_truncate, xTruncate, c_int, NO_METHOD, (size: i64));
pass_through!(DbFile, db_sync, xSync, c_int, NO_METHOD, (flags: c_int));
pass_through!(DbFile, db_file_size, xFileSize, c_int, NO_METHOD, (size: *mut i64));
pass_through!(DbFile, db_lock, xLock, c_int, NO_METHOD, (level: c_int));
pass_through!(DbFile, db_check_reserved_lock, xCheckReservedLock, c_int, NO_METHOD, (out: *mut c_int));
pass_through!(DbFile, db_file_control, xFileControl, c_int, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void));
pass_through!(DbFile, db_sector_size, xSectorSize, c_int, 4096, ());
pass_through!(
    DbFile,
    db_device_characteristics,
    xDeviceCharacteristics,
    c_int,
    0,
    ()
);
pass_through!(DbFile, db_shm_unmap, xShmUnmap, c_int, NO_METHOD, (delete: c_int));
pass_through!(DbFile, db_fetch, xFetch, c_int, NO_METHOD, (offset: i64, amount: c_int, out: *mut *mut c_void));
pass_through!(DbFile, db_unfetch, xUnfetch, c_int, NO_METHOD, (offset: i64, page: *mut c_void));

unsafe extern "C" fn db_close(file: *mut ffi::sqlite3_file) -> c_int {
    let db = &mut *file.cast::<DbFile>();
    if !db.wal.is_null() {
        (*db.wal).db = ptr::null_mut();
    }
    let closed = match methods(db.real).xClose {
        Some(close) => close(db.real),
        None => ffi::SQLITE_OK,
    };
    ptr::drop_in_place(file.cast::<DbFile>());
    (*file).pMethods = ptr::null();
    closed
}

/// Called between the writes of the WAL index header's two copies that publish a commit (and
/// elsewhere): everything written to the WAL before it must be in the file.
unsafe extern "C" fn db_shm_barrier(file: *mut ffi::sqlite3_file) {
    let db = &mut *file.cast::<DbFile>();
    // After a lost write-out every write fails, so no commit can reach its publication.
    if !db.wal.is_null() && !(*db.wal).lost {
        let rc = (*db.wal).write_out();
        if rc != ffi::SQLITE_OK {
            // The barrier cannot fail, and what follows it may publish the frames that were not
            // written: stop before that (nothing acknowledged depends on them).
            tracing::error!(
                rc,
                "SQLite WAL frames could not be written before a commit was published; stopping"
            );
            std::process::abort();
        }
    }
    if let Some(barrier) = methods(db.real).xShmBarrier {
        barrier(db.real);
    }
}

/// Releasing the WAL write lock ends a write transaction: the buffer is written out first, while
/// no other connection may write (see the module's comment). Any other change of the WAL index's
/// locks writes it out too (it is empty then, but for a connection leaving exclusive locking mode
/// with frames of a rolled-back transaction still buffered).
unsafe extern "C" fn db_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let db = &mut *file.cast::<DbFile>();
    if !db.wal.is_null() {
        let wal = &mut *db.wal;
        let releases_write_lock = flags & ffi::SQLITE_SHM_UNLOCK != 0
            && flags & ffi::SQLITE_SHM_EXCLUSIVE != 0
            && offset <= WAL_WRITE_LOCK
            && WAL_WRITE_LOCK < offset + n;
        if releases_write_lock {
            wal.end_of_write();
        } else {
            let _ = wal.write_out();
        }
    }
    match methods(db.real).xShmLock {
        Some(lock) => lock(db.real, offset, n, flags),
        None => NO_METHOD,
    }
}

/// A change of the database file's lock: the buffer is written out, as for the WAL index's
/// locks (see [`db_shm_lock`]).
unsafe extern "C" fn db_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let db = &mut *file.cast::<DbFile>();
    if !db.wal.is_null() {
        let _ = (*db.wal).write_out();
    }
    match methods(db.real).xUnlock {
        Some(unlock) => unlock(db.real, level),
        None => NO_METHOD,
    }
}

unsafe extern "C" fn db_shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let db = &mut *file.cast::<DbFile>();
    db.shm_mapped = true;
    match methods(db.real).xShmMap {
        Some(map) => map(db.real, page, size, extend, out),
        None => NO_METHOD,
    }
}

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

    /// `PRAGMA integrity_check`'s one row ("ok" for a sound database).
    fn integrity(conn: &mut SqliteConnection) -> String {
        let check = diesel::sql_query("PRAGMA integrity_check")
            .load::<IntegrityCheck>(conn)
            .unwrap();
        assert_eq!(check.len(), 1, "one row per problem");
        check.into_iter().next().unwrap().integrity_check
    }

    fn count(conn: &mut SqliteConnection) -> i64 {
        diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result::<Count>(conn)
            .expect("count")
            .n
    }

    /// A new database file in a directory of its own (removed with the returned guard), with this
    /// VFS as the default, and a connection to it that has run `setup`.
    fn new_database(setup: &str) -> (tempfile::TempDir, String, SqliteConnection) {
        register().expect("registered");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("test.db").to_str().unwrap().to_string();
        let mut conn = SqliteConnection::establish(&path).unwrap();
        conn.batch_execute(setup).unwrap();
        (dir, path, conn)
    }

    fn writes_in_one_connection_are_read_by_another(synchronous: &str) {
        let (_dir, path, mut writer) = new_database(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
             PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v);"
        ));
        // SAFETY: the default VFS is registered (by `new_database`) and lives for the process.
        let default = unsafe { CStr::from_ptr((*ffi::sqlite3_vfs_find(ptr::null())).zName) };
        assert_eq!(default, NAME);
        let path = path.as_str();
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
        assert_eq!(integrity(&mut reader), "ok");
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
        let (_dir, path, mut conn) = new_database(
            "PRAGMA journal_mode = WAL; PRAGMA cache_size = 10; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v);",
        );
        let path = path.as_str();
        let insert = "INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
                      FROM n WHERE i < 2000) SELECT randomblob(200) FROM n";
        conn.batch_execute(&format!("BEGIN; {insert}; {insert}; COMMIT;"))
            .unwrap();
        conn.batch_execute(&format!("BEGIN; {insert}; ROLLBACK;"))
            .unwrap();
        let mut other = SqliteConnection::establish(path).unwrap();
        assert_eq!(count(&mut other), 4000);
        assert_eq!(count(&mut conn), 4000);
        assert_eq!(integrity(&mut other), "ok");
    }

    /// Rollbacks of transactions that spilled frames, each followed by another connection's
    /// commit over the same WAL offsets and by reads in the first: the store stays whole. This
    /// does not leave frames in the buffer at the rollback (SQLite's rollback reads the WAL,
    /// which writes the buffer out), and it passed with the write-lock hook removed: it guards
    /// the scenario, not that hook, whose reason is in the module's comment.
    #[test]
    fn frames_of_a_rolled_back_transaction_never_overwrite_a_later_commit() {
        let (_dir, path, mut first) = new_database(
            "PRAGMA journal_mode = WAL; PRAGMA cache_size = 10; \
                 CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); CREATE INDEX t_v ON t (v); \
                 CREATE TABLE big (v BLOB);",
        );
        let path = path.as_str();
        let mut second = SqliteConnection::establish(path).unwrap();
        for round in 1..=5 {
            first
                .batch_execute(
                    "BEGIN; INSERT INTO big (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                     SELECT i + 1 FROM n WHERE i < 40) SELECT randomblob(3000) FROM n; ROLLBACK;",
                )
                .unwrap();
            second
                .batch_execute(
                    "INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL \
                     SELECT i + 1 FROM n WHERE i < 500) SELECT randomblob(200) FROM n",
                )
                .unwrap();
            assert_eq!(count(&mut first), 500 * round, "round {round}");
            assert_eq!(count(&mut second), 500 * round, "round {round}");
            assert_eq!(integrity(&mut second), "ok", "round {round}");
        }
        drop(first);
        let mut fresh = SqliteConnection::establish(path).unwrap();
        assert_eq!(integrity(&mut fresh), "ok");
        assert_eq!(count(&mut fresh), 2500);
    }

    /// A commit whose last write is not its commit frame's page (SQLite rewrites the checksums of
    /// the frames after one it overwrote, ending with the commit frame's header) is in the file
    /// when the transaction ends, without a sync: a copy of the files taken then, as a crash
    /// would leave them, recovers it.
    fn a_commit_that_rewrites_checksums_is_in_the_file(locking_mode: &str) {
        let (dir, path, mut conn) = new_database(&format!(
            "PRAGMA locking_mode = {locking_mode}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = NORMAL; PRAGMA cache_size = 10; PRAGMA wal_autocheckpoint = 0; \
             CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB);"
        ));
        let path = path.as_str();
        // Spilled pages written again in the same transaction overwrite their frames.
        conn.batch_execute(
            "BEGIN; INSERT INTO t (v) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 \
             FROM n WHERE i < 1000) SELECT randomblob(200) FROM n; \
             UPDATE t SET v = randomblob(200); UPDATE t SET v = randomblob(200) WHERE k < 50; \
             COMMIT;",
        )
        .unwrap();
        // `conn` stays open: nothing is written out by its close.
        let copy = dir.path().join("copy.db");
        std::fs::copy(path, &copy).unwrap();
        std::fs::copy(format!("{path}-wal"), format!("{}-wal", copy.display())).unwrap();
        let mut recovered = SqliteConnection::establish(copy.to_str().unwrap()).unwrap();
        assert_eq!(count(&mut recovered), 1000);
        assert_eq!(integrity(&mut recovered), "ok");
        drop(conn);
    }

    /// Fails with both the barrier and the write-lock hooks removed (either one alone writes the
    /// last header out here).
    #[test]
    fn a_commit_that_rewrites_checksums_is_in_the_file_when_published() {
        a_commit_that_rewrites_checksums_is_in_the_file("NORMAL");
    }

    /// In exclusive locking mode SQLite keeps the WAL index in heap memory and calls neither
    /// hook, so nothing is buffered (fails if the connection buffers all the same).
    #[test]
    fn exclusive_locking_mode_writes_straight_through() {
        a_commit_that_rewrites_checksums_is_in_the_file("EXCLUSIVE");
    }
}
