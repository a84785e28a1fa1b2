//! The load step: the data set through `POST /v2/events`, in batches, over a few connections.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::credentials::Headers;
use super::gen::{Facts, Generator};

/// The generated events as ready-to-send NDJSON batch bodies, and what the queries need to know.
pub struct Dataset {
    pub batches: Vec<Vec<u8>>,
    pub facts: Facts,
}

impl Dataset {
    /// Generates everything before the clock starts, so the load step measures only the server.
    pub fn generate(seed: u64, events: usize, batch_size: usize) -> Dataset {
        let generator = Generator::new(seed, events);
        let mut facts = Facts::new(&generator);
        let mut batches = Vec::with_capacity(events.div_ceil(batch_size));
        let mut body = Vec::new();
        let mut in_body = 0;
        for event in generator {
            facts.observe(&event);
            body.extend_from_slice(event.to_json().as_bytes());
            body.push(b'\n');
            in_body += 1;
            if in_body == batch_size {
                batches.push(std::mem::take(&mut body));
                in_body = 0;
            }
        }
        if in_body > 0 {
            batches.push(body);
        }
        Dataset { batches, facts }
    }
}

pub struct LoadResult {
    pub events: usize,
    pub seconds: f64,
}

/// Sends every batch once, `connections` requests at a time, and checks that every event was
/// stored (a duplicate would mean the database was not fresh). The first error stops all senders.
pub fn load(
    base: &str,
    admin: &Headers,
    dataset: &Dataset,
    connections: usize,
) -> anyhow::Result<LoadResult> {
    let url = format!("{base}/v2/events");
    let next = AtomicUsize::new(0);
    let stored = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error = Mutex::new(None);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..connections.max(1) {
            scope.spawn(|| {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(300))
                    .build();
                // Each sender takes the next unsent batch; the loop ends when none is left.
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = dataset.batches.get(i) else {
                        break;
                    };
                    match send(&agent, &url, admin, body) {
                        Ok(n) => {
                            stored.fetch_add(n, Ordering::Relaxed);
                        }
                        Err(error) => {
                            failed.store(true, Ordering::Relaxed);
                            let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                            slot.get_or_insert(error.context(format!("batch {i}")));
                        }
                    }
                }
            });
        }
    });
    let seconds = started.elapsed().as_secs_f64();
    if let Some(error) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(error.context("the load step failed"));
    }
    Ok(LoadResult {
        events: stored.into_inner(),
        seconds,
    })
}

/// One batch; returns how many events were stored.
fn send(agent: &ureq::Agent, url: &str, admin: &Headers, body: &[u8]) -> anyhow::Result<usize> {
    let lines = body.iter().filter(|&&b| b == b'\n').count();
    let mut request = agent.post(url).set("Content-Type", "application/x-ndjson");
    for (name, value) in admin {
        request = request.set(name, value);
    }
    let outcome: serde_json::Value = match request.send_bytes(body) {
        Ok(response) => response
            .into_json()
            .context("reading the ingest response")?,
        Err(ureq::Error::Status(status, response)) => {
            let text = response.into_string().unwrap_or_default();
            anyhow::bail!("POST /v2/events answered {status}: {text}");
        }
        Err(error) => return Err(error).context("POST /v2/events"),
    };
    let stored = outcome["stored"].as_u64().unwrap_or(0) as usize;
    anyhow::ensure!(
        stored == lines,
        "POST /v2/events stored {stored} of {lines} events: {outcome}"
    );
    Ok(stored)
}
