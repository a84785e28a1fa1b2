//! Group commit for ingestion.
//!
//! Ingest requests do not each open a write transaction. They queue their validated batches for
//! a small set of writer threads (one on SQLite, which has a single write lock anyway); a writer
//! takes every batch waiting, stores them in one transaction, commits once, then answers each
//! request with its own outcome (if the transaction fails, each batch is stored again alone:
//! `store::ingest::insert_growing_group`). Under load this turns many small commits into
//! few large ones, and on SQLite it removes the contention for the write lock: writers waiting
//! for the lock each hold a read snapshot, which keeps checkpoints from ever resetting the WAL
//! (seen as a 17 GB WAL and timeouts at 1M events before this existed).
//!
//! A writer that holds a batch waits briefly for the batches it expects, so that clients sending
//! in step share commits; on SQLite it stores the first while the others arrive, and leaves one
//! batch of those in flight out of each group, to store while the group's clients get their
//! answers and send again (see `run`). On SQLite, WAL checkpoints run beside the writer, on a
//! thread of their own (`store::checkpointer`), and so does the WAL sync that makes a commit
//! durable (`store::wal_sync`).
//!
//! A request is answered only after the commit of the transaction that holds its batch, and on
//! SQLite under `synchronous = FULL` only after the WAL sync that follows it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Span;

use super::audit::AuditEntry;
use super::checkpointer::Checkpointer;
use super::ingest::{insert_growing_group, BatchWrite, GroupOutcome, IngestOutcome};
use super::wal_index;
use super::wal_sync::WalSync;
use diesel::connection::SimpleConnection;
use diesel::r2d2::R2D2Connection;

use crate::db::{AnyConnection, Backend, Db};
use crate::error::ApiError;
use crate::model::NewEvent;

/// Events a writer puts in one transaction at most (it always takes at least one batch).
const MAX_GROUP_EVENTS: usize = 20_000;
/// Batches that may wait for a writer before new requests wait for room.
const QUEUE: usize = 64;
/// Groups whose sizes the writers remember (see [`run`]).
const RECENT_GROUPS: usize = 8;

type Reply = oneshot::Sender<Result<IngestOutcome, ApiError>>;

struct Job {
    batch: Vec<NewEvent>,
    audit: Option<AuditEntry>,
    reply: Reply,
    span: Span,
    in_flight: InFlight,
}

/// Counts a batch as in flight from its announcement (or submission) until it is answered.
struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    fn new(count: &Arc<AtomicUsize>) -> InFlight {
        count.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(count))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A stored group's outcome for one batch, on its way to the request (through `store::wal_sync`
/// when the commit's WAL sync runs there). The batch counts as in flight until it is sent.
pub struct Answer {
    reply: Reply,
    outcome: Result<IngestOutcome, ApiError>,
    _in_flight: InFlight,
}

impl Answer {
    /// Sends the outcome; if `durable` is an error, a stored batch gets that error instead (a
    /// batch that failed keeps its own).
    pub fn send(self, durable: Result<(), &ApiError>) {
        let Answer {
            reply,
            outcome,
            _in_flight,
        } = self;
        let outcome = match (outcome, durable) {
            (Ok(_), Err(error)) => Err(error.replicate()),
            (outcome, _) => outcome,
        };
        // No longer in flight before the client can send again, so it is never counted twice.
        drop(_in_flight);
        let _ = reply.send(outcome);
    }
}

/// How the writers group and store batches.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// How long a request waits at most for room in the queue.
    pub wait: Duration,
    /// How long a writer that holds a batch waits at most for the others it expects (see
    /// `run`).
    pub linger: Duration,
    /// SQLite: the WAL pages after which the checkpoint thread lets the WAL start over (see
    /// `store::checkpointer`).
    pub wal_restart_pages: u32,
    /// SQLite: how long the writer must be idle before the checkpoint thread copies back the WAL
    /// frames it has let accumulate (see `store::checkpointer`).
    pub checkpoint_idle: Duration,
    /// SQLite: the writer commits with `synchronous = NORMAL` and each commit's WAL sync runs on a
    /// thread of its own before the answers go out (`store::wal_sync`). For stores configured
    /// `FULL` or `EXTRA`; with `NORMAL` nothing is synced at commit anyway.
    pub sync_off_thread: bool,
}

impl WriterOptions {
    pub fn new(wait: Duration, wal_restart_pages: u32) -> WriterOptions {
        WriterOptions {
            wait,
            linger: Duration::from_millis(20),
            wal_restart_pages,
            checkpoint_idle: Duration::from_secs(1),
            sync_off_thread: true,
        }
    }
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct IngestWriter {
    threads: Arc<WriterThreads>,
    wait: Duration,
    /// Batches being read or decoded right now, not queued yet.
    arriving: Arc<AtomicUsize>,
    /// Batches announced or submitted and not answered yet.
    in_flight: Arc<AtomicUsize>,
    /// Transactions committed by the writers.
    commits: Arc<AtomicU64>,
}

/// The queue into the writer threads, and the threads. When the last handle is dropped, the
/// queue closes, the writers store the batches already queued and end, and the drop waits for
/// them (and they for their checkpoint threads): no database work may still be running when the
/// process exits, for the reason given in `db::runner` (a test binary that had passed all its
/// tests crashed at exit with SIGSEGV while writer threads were still closing their
/// connections).
struct WriterThreads {
    /// `None` only while dropping.
    queue: Option<mpsc::Sender<Job>>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for WriterThreads {
    fn drop(&mut self) {
        self.queue.take();
        for handle in self.handles.drain(..) {
            let _ = handle.join();
        }
    }
}

/// A batch on its way to the queue (its body being read or decoded); see `run`.
pub struct Arrival {
    arriving: Arc<AtomicUsize>,
    /// Handed to the batch's job when it is submitted.
    in_flight: Option<InFlight>,
}

impl Drop for Arrival {
    fn drop(&mut self) {
        self.arriving.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What the writer threads share: the queue's receiving end, and the sizes of the last groups
/// stored (by any writer), behind one lock that a writer holds while it gathers a group.
struct Intake {
    jobs: mpsc::Receiver<Job>,
    recent: VecDeque<usize>,
}

/// What a writer thread works with.
struct Writer {
    db: Db,
    intake: Arc<Mutex<Intake>>,
    arriving: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
    commits: Arc<AtomicU64>,
    linger: Duration,
    sync_off_thread: bool,
    checkpointer: Option<Checkpointer>,
    /// Writer threads in all, and how many are storing a group right now.
    threads: usize,
    storing: Arc<AtomicUsize>,
}

impl IngestWriter {
    /// Starts the writer threads: one on SQLite, two on PostgreSQL (which can use both cores'
    /// worth of server processes). On SQLite the writer leaves checkpoints to a thread of its
    /// own (`store::checkpointer`).
    pub fn start(db: Db, options: &WriterOptions) -> IngestWriter {
        let threads = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let (queue, jobs) = mpsc::channel(QUEUE);
        let intake = Arc::new(Mutex::new(Intake {
            jobs,
            recent: VecDeque::from([1; RECENT_GROUPS]),
        }));
        let arriving = Arc::new(AtomicUsize::new(0));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let commits = Arc::new(AtomicU64::new(0));
        let storing = Arc::new(AtomicUsize::new(0));
        let mut handles = Vec::with_capacity(threads);
        for n in 0..threads {
            let writer = Writer {
                db: db.clone(),
                intake: Arc::clone(&intake),
                arriving: Arc::clone(&arriving),
                in_flight: Arc::clone(&in_flight),
                commits: Arc::clone(&commits),
                linger: options.linger,
                sync_off_thread: options.sync_off_thread,
                checkpointer: (db.backend() == Backend::Sqlite).then(|| {
                    Checkpointer::start(
                        db.clone(),
                        options.wal_restart_pages,
                        options.checkpoint_idle,
                        Arc::clone(&commits),
                    )
                }),
                threads,
                storing: Arc::clone(&storing),
            };
            let handle = std::thread::Builder::new()
                .name(format!("almanac-writer-{n}"))
                .spawn(move || run(&writer))
                .expect("the writer thread starts");
            handles.push(handle);
        }
        IngestWriter {
            threads: Arc::new(WriterThreads {
                queue: Some(queue),
                handles,
            }),
            wait: options.wait,
            arriving,
            in_flight,
            commits,
        }
    }

    /// Announces a batch whose body is about to be read and decoded; pass the guard to
    /// [`IngestWriter::submit`], or drop it if the batch is refused.
    pub fn arriving(&self) -> Arrival {
        self.arriving.fetch_add(1, Ordering::SeqCst);
        Arrival {
            arriving: Arc::clone(&self.arriving),
            in_flight: Some(InFlight::new(&self.in_flight)),
        }
    }

    /// Transactions the writers have committed: each holds one or more batches.
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// Stores a batch, and its audit record in the same transaction; returns once it is
    /// committed. `arrival`, if the batch was announced, is released once it is queued.
    pub async fn submit(
        &self,
        batch: Vec<NewEvent>,
        audit: Option<AuditEntry>,
        mut arrival: Option<Arrival>,
    ) -> Result<IngestOutcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        let in_flight = arrival
            .as_mut()
            .and_then(|a| a.in_flight.take())
            .unwrap_or_else(|| InFlight::new(&self.in_flight));
        let job = Job {
            batch,
            audit,
            reply,
            span: Span::current(),
            in_flight,
        };
        let busy = || ApiError::Unavailable("The ingest queue is full; retry the request.".into());
        let stopped = || ApiError::Unavailable("The ingest writer has stopped.".into());
        let queue = self.threads.queue.as_ref().ok_or_else(stopped)?;
        tokio::time::timeout(self.wait, queue.send(job))
            .await
            .map_err(|_| busy())?
            .map_err(|_| stopped())?;
        drop(arrival);
        answer
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the ingest writer dropped a batch")))?
    }
}

/// A writer thread: waits for a batch, takes the others waiting or expected (up to the group
/// size), stores them in one transaction, answers each. Ends when every `IngestWriter` handle is
/// gone.
///
/// A writer that took only the batches already queued would, with a few clients that each send
/// their next batch once the last is acknowledged, split them into cohorts answered at different
/// times, and commit each cohort apart: at 1M events on SQLite with 4 clients it stored 500
/// groups of exactly 2 batches. Most of a commit's cost is index pages dirtied at random, which
/// a group twice as large shares in good part. So once it holds a batch, a writer waits while
/// batches are being read or decoded, and until it holds as many batches as the largest of the
/// last groups: the clients answered together come back together. It waits `linger` at most in
/// all for one group. With one client, groups are of one batch and nothing waits; after a burst,
/// it waits for at most [`RECENT_GROUPS`] groups. With several writers (PostgreSQL) a writer waits
/// only while every other writer is storing a group: a batch that an idle writer could store at
/// once is better stored in parallel than added to a group.
///
/// The single writer (SQLite) stores each batch as soon as it has taken it, and takes or waits
/// for the next ones only when it has stored every batch it holds, all in the group's
/// transaction (`store::ingest::insert_growing_group`): the batches its clients send together
/// are decoded while it stores the first. Gathering the whole group first left the writer idle
/// for the ~20 ms in which a group's last batches were read and decoded, a tenth of the time of
/// a 1M-event load. It holds the queue meanwhile, which no other writer needs. PostgreSQL's
/// writers gather the whole group first (its names are interned before its transaction: see
/// `store::ingest`).
///
/// The single writer also leaves one of the batches in flight out of each group (a group holds
/// at most all but one of them: [`Taking::cap`]). With every batch in one group, the writer had
/// nothing to do from its commit until the group's clients had their answers and their next
/// batches were decoded: the commit's WAL sync, the round trip and the decoding, about a fifth of
/// a 1M-event load with four clients sending in step. The batch left out is stored in that time,
/// and the clients answered meanwhile join it: with four clients, groups of three batches in
/// rotation. Smaller groups dirty more index pages per event (a fifth more bytes written), but
/// the writer is seldom idle; 1M-event ingest gained about 6% (docs/PERFORMANCE.md, "SQLite
/// ingest, session 15"). With a single client nothing changes: its group is its batch.
fn run(writer: &Writer) {
    // Only for waiting on the queue with a timeout.
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    else {
        tracing::error!("the ingest writer cannot start its timer");
        return;
    };
    let mut conn: Option<AnyConnection> = None;
    // Declared after `conn`, so dropped before it: the last answers are sent first.
    let mut wal_sync: Option<WalSync> = None;
    loop {
        let Ok(mut intake) = writer.intake.lock() else {
            return;
        };
        let expected = intake.recent.iter().copied().max().unwrap_or(1);
        let Some(first) = intake.jobs.blocking_recv() else {
            return;
        };
        let mut taking = Taking {
            writer,
            expected,
            events: first.batch.len(),
            linger_left: writer.linger,
        };
        let mut group = vec![first];
        if writer.threads == 1 {
            let intake = &mut *intake;
            let batches = store_group(writer, &mut conn, &mut wal_sync, group, |group| {
                taking.more(&mut intake.jobs, group, &runtime)
            });
            intake.recent.pop_front();
            intake.recent.push_back(batches);
        } else {
            while taking.more(&mut intake.jobs, &mut group, &runtime) {}
            intake.recent.pop_front();
            intake.recent.push_back(group.len());
            drop(intake);
            store_group(writer, &mut conn, &mut wal_sync, group, |_| false);
        }
    }
}

/// A writer taking batches for one group (see [`run`]).
struct Taking<'w> {
    writer: &'w Writer,
    /// Batches the group should have, from the sizes of the last groups.
    expected: usize,
    /// Events in the group so far.
    events: usize,
    /// What is left of the time the writer may wait for this group's batches.
    linger_left: Duration,
}

impl Taking<'_> {
    /// The most batches the group may hold: on the single writer (SQLite) all but one of the
    /// batches in flight, at least one (see [`run`]); no limit with several writers.
    fn cap(&self) -> usize {
        if self.writer.threads > 1 {
            return usize::MAX;
        }
        let in_flight = self.writer.in_flight.load(Ordering::SeqCst);
        in_flight.saturating_sub(1).max(1)
    }

    /// Adds to `group` every batch queued, up to the group size; if none is queued but more are
    /// expected, first waits for one (within what is left of the linger). Returns whether it
    /// added any.
    fn more(
        &mut self,
        jobs: &mut mpsc::Receiver<Job>,
        group: &mut Vec<Job>,
        runtime: &tokio::runtime::Runtime,
    ) -> bool {
        let before = group.len();
        while self.events < MAX_GROUP_EVENTS && group.len() < self.cap() {
            let job = match jobs.try_recv() {
                Ok(job) => job,
                Err(_) if group.len() > before => break,
                Err(_) => {
                    let more_coming = self.writer.arriving.load(Ordering::SeqCst) > 0
                        || group.len() < self.expected;
                    let others_busy =
                        self.writer.storing.load(Ordering::SeqCst) + 1 >= self.writer.threads;
                    if !more_coming || !others_busy || self.linger_left.is_zero() {
                        break;
                    }
                    // Woken by a batch, or after 1 ms to look at the count again (a batch
                    // refused while decoding never arrives).
                    let wait = self.linger_left.min(Duration::from_millis(1));
                    let started = Instant::now();
                    let next =
                        runtime.block_on(async { tokio::time::timeout(wait, jobs.recv()).await });
                    self.linger_left = self.linger_left.saturating_sub(started.elapsed());
                    match next {
                        Ok(Some(job)) => job,
                        Ok(None) => break,
                        Err(_) => continue,
                    }
                }
            };
            self.events += job.batch.len();
            group.push(job);
        }
        group.len() > before
    }
}

/// Stores a group on the writer's own connection, opening it (again) when needed; `more` may add
/// batches while it is stored (see `store::ingest::insert_growing_group`). Answers each batch,
/// through `wal_sync` when the commit's sync runs there. Returns the number of batches stored.
fn store_group(
    writer: &Writer,
    conn: &mut Option<AnyConnection>,
    wal_sync: &mut Option<WalSync>,
    mut group: Vec<Job>,
    more: impl FnMut(&mut Vec<Job>) -> bool,
) -> usize {
    writer.storing.fetch_add(1, Ordering::SeqCst);
    let checkpointer = writer.checkpointer.as_ref();
    // Log lines of the group carry the first request's id.
    let span = group[0].span.clone();
    let _entered = span.enter();
    if conn.as_mut().is_none_or(|c| c.is_broken()) {
        *conn = open(writer, wal_sync);
    }
    let started = Instant::now();
    let gate = checkpointer.map(Checkpointer::gate);
    let gate_wait = started.elapsed();
    let stored = match conn.as_mut() {
        Some(c) => insert_growing_group(
            c,
            &mut group,
            |j| BatchWrite {
                events: &j.batch,
                audit: j.audit.as_ref(),
            },
            more,
        ),
        None => GroupOutcome::failed(
            group.len(),
            &ApiError::Unavailable("The database is unavailable; retry later.".into()),
        ),
    };
    drop(gate);
    writer.storing.fetch_sub(1, Ordering::SeqCst);
    if stored.commits > 0 {
        writer
            .commits
            .fetch_add(stored.commits as u64, Ordering::SeqCst);
        if let Some(checkpointer) = checkpointer {
            checkpointer.committed();
        }
    }
    tracing::debug!(
        batches = group.len(),
        events = group.iter().map(|j| j.batch.len()).sum::<usize>(),
        commits = stored.commits,
        ms = started.elapsed().as_secs_f64() * 1e3,
        checkpoint_wait_ms = gate_wait.as_secs_f64() * 1e3,
        "ingest group stored"
    );
    let batches = group.len();
    let answers = group
        .into_iter()
        .zip(stored.outcomes)
        .map(|(job, outcome)| Answer {
            reply: job.reply,
            outcome,
            _in_flight: job.in_flight,
        });
    match wal_sync {
        Some(sync) if stored.commits > 0 => sync.acknowledge(answers.collect()),
        _ => answers.for_each(|answer| answer.send(Ok(()))),
    }
    batches
}

/// The writer's connection. On SQLite it never checkpoints itself (its checkpoint thread does:
/// `store::checkpointer`), it leaves foreign keys unchecked, and with
/// [`WriterOptions::sync_off_thread`] it commits with `synchronous = NORMAL`, its WAL synced by
/// `wal_sync` (started here with the first connection; `store::wal_sync`).
///
/// An immediate foreign-key check in a multi-row `INSERT` makes SQLite keep a statement journal,
/// a copy of every page the statement changes first, so that it can undo the statement alone if
/// a row fails the check; at ingest that copied every index page a batch touched (see
/// `store::sqlite_inserts`). The writer writes no reference it has not just read or
/// created itself in the same transaction: event type, trait name and tenant ids interned there,
/// event ids returned by the insert of the events. SQLite has one writer at a time, so nothing
/// can delete a referenced row in between. Every other connection checks them, and the tests run
/// `PRAGMA foreign_key_check` after ingest. PostgreSQL cannot leave them unchecked for one
/// connection, so its event and trait tables have none for the writer to check (migration
/// `…_ingest_without_row_checks`; `tests/api/references.rs` checks what the writers store).
fn open(writer: &Writer, wal_sync: &mut Option<WalSync>) -> Option<AnyConnection> {
    let mut conn = writer.db.dedicated().ok()?;
    if conn.backend() == Backend::Sqlite {
        if let Err(error) =
            conn.batch_execute("PRAGMA foreign_keys = OFF; PRAGMA wal_autocheckpoint = 0;")
        {
            tracing::warn!(%error, "the ingest writer's connection could not be set up");
            return None;
        }
        if writer.sync_off_thread && wal_sync.is_none() {
            // An in-memory database has no file, and nothing to sync.
            if let Some(file) = wal_index::database_file(&mut conn) {
                match WalSync::start(&file) {
                    Ok(sync) => *wal_sync = Some(sync),
                    Err(error) => {
                        tracing::warn!(%error, "no WAL sync thread: the ingest writer syncs its own commits")
                    }
                }
            }
        }
        if wal_sync.is_some() {
            if let Err(error) = conn.batch_execute("PRAGMA synchronous = NORMAL") {
                tracing::warn!(%error, "the ingest writer's connection could not be set up");
                return None;
            }
        }
    }
    Some(conn)
}
