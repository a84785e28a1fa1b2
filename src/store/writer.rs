//! Group commit for ingestion.
//!
//! Ingest requests do not each open a write transaction. They queue their validated batches for
//! a small set of writer threads (one on SQLite, which has a single write lock anyway); a writer
//! takes every batch waiting, stores them in one transaction with a savepoint each, commits once,
//! then answers each request with its own outcome. Under load this turns many small commits into
//! few large ones, and on SQLite it removes the contention for the write lock: writers waiting
//! for the lock each hold a read snapshot, which keeps checkpoints from ever resetting the WAL
//! (seen as a 17 GB WAL and timeouts at 1M events before this existed).
//!
//! A request is answered only after the commit of the transaction that holds its batch.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tracing::Span;

use super::audit::AuditEntry;
use super::ingest::{insert_batches, BatchWrite, IngestOutcome};
use diesel::r2d2::R2D2Connection;

use crate::db::{AnyConnection, Backend, Db};
use crate::error::ApiError;
use crate::model::NewEvent;

/// Events a writer puts in one transaction at most (it always takes at least one batch).
const MAX_GROUP_EVENTS: usize = 20_000;
/// Batches that may wait for a writer before new requests wait for room.
const QUEUE: usize = 64;

type Reply = oneshot::Sender<Result<IngestOutcome, ApiError>>;

struct Job {
    batch: Vec<NewEvent>,
    audit: Option<AuditEntry>,
    reply: Reply,
    span: Span,
}

/// The handle requests use; cheap to clone.
#[derive(Clone)]
pub struct IngestWriter {
    queue: mpsc::Sender<Job>,
    wait: Duration,
}

impl IngestWriter {
    /// Starts the writer threads: one on SQLite, two on PostgreSQL (which can use both cores'
    /// worth of server processes). `wait` bounds how long a request waits for room in the queue.
    pub fn start(db: Db, wait: Duration) -> IngestWriter {
        let threads = match db.backend() {
            Backend::Sqlite => 1,
            Backend::Postgres => 2,
        };
        let (queue, jobs) = mpsc::channel(QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let (db, jobs) = (db.clone(), Arc::clone(&jobs));
            std::thread::Builder::new()
                .name(format!("almanac-writer-{n}"))
                .spawn(move || run(&db, &jobs))
                .expect("the writer thread starts");
        }
        IngestWriter { queue, wait }
    }

    /// Stores a batch, and its audit record in the same transaction; returns once it is
    /// committed.
    pub async fn submit(
        &self,
        batch: Vec<NewEvent>,
        audit: Option<AuditEntry>,
    ) -> Result<IngestOutcome, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            batch,
            audit,
            reply,
            span: Span::current(),
        };
        let busy = || ApiError::Unavailable("The ingest queue is full; retry the request.".into());
        tokio::time::timeout(self.wait, self.queue.send(job))
            .await
            .map_err(|_| busy())?
            .map_err(|_| ApiError::Unavailable("The ingest writer has stopped.".into()))?;
        answer
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("the ingest writer dropped a batch")))?
    }
}

/// A writer thread: waits for a batch, takes all others waiting (up to the group size), stores
/// them in one transaction, answers each. Ends when every `IngestWriter` handle is gone.
fn run(db: &Db, jobs: &Mutex<mpsc::Receiver<Job>>) {
    let mut conn: Option<AnyConnection> = None;
    loop {
        let group = {
            let Ok(mut jobs) = jobs.lock() else { return };
            let Some(first) = jobs.blocking_recv() else {
                return;
            };
            let mut total = first.batch.len();
            let mut group = vec![first];
            while total < MAX_GROUP_EVENTS {
                match jobs.try_recv() {
                    Ok(job) => {
                        total += job.batch.len();
                        group.push(job);
                    }
                    Err(_) => break,
                }
            }
            group
        };
        store_group(db, &mut conn, group);
    }
}

/// Stores a group on the writer's own connection, opening it (again) when needed.
fn store_group(db: &Db, conn: &mut Option<AnyConnection>, group: Vec<Job>) {
    // Log lines of the group carry the first request's id.
    let span = group[0].span.clone();
    let _entered = span.enter();
    if conn.as_mut().is_none_or(|c| c.is_broken()) {
        *conn = db.dedicated().ok();
    }
    let result = match conn.as_mut() {
        Some(c) => {
            let batches: Vec<BatchWrite<'_>> = group
                .iter()
                .map(|j| BatchWrite {
                    events: &j.batch,
                    audit: j.audit.as_ref(),
                })
                .collect();
            insert_batches(c, &batches)
        }
        None => Err(ApiError::Unavailable(
            "The database is unavailable; retry later.".into(),
        )),
    };
    match result {
        Ok(outcomes) => {
            for (job, outcome) in group.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(error) => {
            // The commit failed: nothing of the group is stored, and every request says so.
            for job in group {
                let _ = job.reply.send(Err(error.replicate()));
            }
        }
    }
}
