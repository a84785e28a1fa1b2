//! Recently measured match counts of trait filters, used only to choose a query plan.
//!
//! Choosing between "scan in sort order and probe" and "start from the trait index" needs a
//! capped count of the filter's matches (see `events::choose_driver`). Dashboards and scripts send
//! the same queries again and again, so the count is kept for a short while. A stale count can
//! only make a query slower, never wrong: both plans return the same events.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a measured count is trusted.
const TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; the cache is emptied when full (simple, and enough for repeated
/// query shapes).
const MAX_ENTRIES: usize = 4096;

#[derive(Default)]
pub struct PlanCache {
    counts: Mutex<HashMap<String, (i64, Instant)>>,
}

impl PlanCache {
    pub fn get(&self, key: &str) -> Option<i64> {
        let counts = self.counts.lock().ok()?;
        counts
            .get(key)
            .filter(|(_, at)| at.elapsed() < TTL)
            .map(|(n, _)| *n)
    }

    pub fn put(&self, key: String, count: i64) {
        if let Ok(mut counts) = self.counts.lock() {
            if counts.len() >= MAX_ENTRIES {
                counts.clear();
            }
            counts.insert(key, (count, Instant::now()));
        }
    }
}
