//! The threads that run request handlers' blocking database work: one per pooled connection,
//! fed from one first-come-first-served queue.
//!
//! Before, each request took a thread of actix's blocking pool and waited there for a
//! connection. Under load most of those threads sat parked on the pool's condition variable,
//! the one the scheduler woke first won (no order among waiters: a long latency tail), and the
//! work was spread over more threads than connections (the pool's size per actix worker), whose
//! allocator caches were cold each time one ran.
//! Here exactly as many threads as connections take jobs in arrival order.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::Span;

use super::{AnyConnection, Pool};
use crate::error::ApiError;

type Job = Box<dyn FnOnce() + Send>;

/// The queue into the database threads. Cheap to clone. When the last clone is dropped, the
/// threads finish the jobs already queued and end, and the drop waits for them: no database work
/// may still be running when the process exits (libpq and OpenSSL tear down their state at
/// exit; a thread inside them then crashed the process, seen as "double free" at the end of the
/// test run). Actix's blocking pool gave the same guarantee: dropping its runtime waited.
#[derive(Clone)]
pub struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pool: Pool,
    /// The longest a job may wait in the queue: one that waited longer is answered 503
    /// without running, like a request that could not get a connection in time.
    max_wait: Duration,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue ends each thread once the queue is empty.
        self.jobs.take();
        let current = std::thread::current().id();
        for thread in self.threads.drain(..) {
            // A job that held the last handle would otherwise wait for its own thread.
            if thread.thread().id() != current {
                let _ = thread.join();
            }
        }
    }
}

impl Runner {
    pub fn start(pool: Pool, threads: u32, max_wait: Duration) -> std::io::Result<Runner> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::with_capacity(threads as usize);
        for i in 0..threads {
            let queue = queue.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("almanac-db-{i}"))
                    .spawn(move || loop {
                        // The lock is held only while waiting for the next job, never while one
                        // runs.
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        // A panicking job loses its answer (its caller gets an internal error),
                        // not this thread.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                    })?,
            );
        }
        Ok(Runner {
            inner: Arc::new(Inner {
                jobs: Some(jobs),
                threads: handles,
                pool,
                max_wait,
            }),
        })
    }

    /// Runs `f` with a pooled connection on one of the database threads, in queue order. The
    /// caller's tracing span (which carries the request id) is entered there.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let pool = self.inner.pool.clone();
        let max_wait = self.inner.max_wait;
        let queued = Instant::now();
        let span = Span::current();
        let job: Job = Box::new(move || {
            let _entered = span.enter();
            let result = if queued.elapsed() > max_wait {
                Err(ApiError::no_connection_in_time())
            } else {
                pool.get()
                    .map_err(ApiError::from_pool)
                    .and_then(|mut conn| f(&mut conn))
            };
            // The caller may have gone (client disconnected): nothing to do then.
            let _ = answer.send(result);
        });
        let queue = self.inner.jobs.as_ref();
        if queue.is_none_or(|jobs| jobs.send(job).is_err()) {
            return Err(ApiError::internal(anyhow::anyhow!(
                "the database threads have ended"
            )));
        }
        answered
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("a database task panicked")))?
    }
}
