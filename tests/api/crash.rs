//! Crash safety: `almanac serve` killed with SIGKILL in the middle of concurrent ingestion loses
//! nothing it acknowledged and never leaves half a batch behind.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::backend_tests;
use crate::process::{agent, event, send, Server};
use crate::support::{Backend, TestDb};

backend_tests!(sigkill_during_ingest_keeps_every_acknowledged_batch_whole);

const CLIENTS: usize = 4;
const BATCH: usize = 25;
/// Acknowledged batches to wait for before the kill, so that the kill lands mid-stream.
const ACKS_BEFORE_KILL: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// 201: the batch was committed.
    Acked,
    /// An HTTP error status (e.g. 503): not acknowledged.
    Refused(u16),
    /// No answer (the server died): unknown, may be stored or not, but never in part.
    NoAnswer,
}

fn batch_events(client: usize, batch: usize) -> Value {
    Value::Array(
        (0..BATCH)
            .map(|i| {
                let n = (client * 1_000_000 + batch * 1000 + i) as u64;
                event(&format!("c{client}-b{batch}-e{i}"), n)
            })
            .collect(),
    )
}

/// The batch a message_id belongs to: `c1-b7-e3` is (1, 7).
fn batch_of(id: &str) -> (usize, usize) {
    let mut parts = id.split('-');
    let mut num = |prefix: char| -> usize {
        let part = parts.next().unwrap_or_else(|| panic!("unexpected id {id}"));
        part.strip_prefix(prefix)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected id {id}"))
    };
    (num('c'), num('b'))
}

async fn sigkill_during_ingest_keeps_every_acknowledged_batch_whole(backend: Backend) {
    let db = TestDb::new(backend);
    let mut server = Server::start(&db.url, &[], &[]);
    let url = server.url("/v2/events");

    // Each client sends batch after batch until the server stops answering.
    let acks = Arc::new(AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(BTreeMap::<(usize, usize), Outcome>::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (url, acks, outcomes) = (url.clone(), Arc::clone(&acks), Arc::clone(&outcomes));
            std::thread::spawn(move || {
                let agent = agent(Duration::from_secs(30));
                for batch in 0.. {
                    let outcome =
                        match send(&agent, "POST", &url, Some(&batch_events(client, batch))) {
                            Ok(reply) if reply.status == 201 => {
                                acks.fetch_add(1, Ordering::SeqCst);
                                Outcome::Acked
                            }
                            Ok(reply) => Outcome::Refused(reply.status),
                            Err(_) => Outcome::NoAnswer,
                        };
                    outcomes.lock().unwrap().insert((client, batch), outcome);
                    if outcome == Outcome::NoAnswer {
                        return;
                    }
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    while acks.load(Ordering::SeqCst) < ACKS_BEFORE_KILL {
        assert!(
            Instant::now() < deadline,
            "only {} batches acknowledged in time; stderr:\n{}",
            acks.load(Ordering::SeqCst),
            server.stderr()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    for client in clients {
        client.join().expect("a client thread");
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let unexpected: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Refused(s) if *s != 503))
        .collect();
    assert!(
        unexpected.is_empty(),
        "only 201 or 503 before the kill: {unexpected:?}"
    );

    // Restart on the same database and count what each batch left behind.
    let server = Server::start(&db.url, &[], &[]);
    let mut stored: HashMap<(usize, usize), usize> = HashMap::new();
    for id in server.all_ids() {
        let key = batch_of(&id);
        assert!(outcomes.contains_key(&key), "{id} was never sent");
        *stored.entry(key).or_default() += 1;
    }
    for (key, outcome) in &outcomes {
        let count = stored.get(key).copied().unwrap_or(0);
        if *outcome == Outcome::Acked {
            assert_eq!(count, BATCH, "acknowledged batch {key:?} lost events");
        } else {
            assert!(
                count == 0 || count == BATCH,
                "batch {key:?} ({outcome:?}) is half-stored: {count} of {BATCH}"
            );
        }
    }
    let acked = outcomes.values().filter(|o| **o == Outcome::Acked).count();
    assert!(acked >= ACKS_BEFORE_KILL);

    // Clients may safely send again what was not acknowledged: each batch ends up whole, once.
    for (&(client, batch), outcome) in &outcomes {
        if *outcome == Outcome::Acked {
            continue;
        }
        let reply = server.post("/v2/events", &batch_events(client, batch));
        assert_eq!(reply.status, 201, "{}", reply.body);
        let body = reply.json();
        let dups = body["duplicates"].as_array().expect("duplicates").len();
        assert_eq!(
            body["stored"].as_u64().unwrap() as usize + dups,
            BATCH,
            "{body}"
        );
    }
    assert_eq!(server.all_ids().len(), outcomes.len() * BATCH);
}
