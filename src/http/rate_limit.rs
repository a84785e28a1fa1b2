//! The per-caller ingest rate limit: a token bucket per token (or per user in `headers` mode),
//! counted in events, so one busy publisher cannot starve the others. Past it, a 429 says when
//! to come back (`Retry-After`).

use std::num::NonZeroU32;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Callers tracked before idle ones are dropped (their buckets are full again anyway).
const TRACKED_CALLERS: usize = 10_000;

pub struct IngestRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

impl IngestRateLimit {
    /// `per_second` events on average, `burst` at once; `per_second` 0 turns the limit off.
    pub fn new(per_second: u32, burst: u32) -> IngestRateLimit {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        IngestRateLimit { limiter }
    }

    /// Takes `events` from the caller's bucket, or says how long to wait.
    pub fn check(&self, caller: &str, events: usize) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > TRACKED_CALLERS {
            limiter.retain_recent();
        }
        let n =
            NonZeroU32::new(u32::try_from(events).unwrap_or(u32::MAX)).unwrap_or(NonZeroU32::MIN);
        match limiter.check_key_n(&caller.to_string(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                Err(ApiError::TooManyRequests {
                    message: format!(
                        "Ingest rate limit reached for this caller; retry after {:.1} s",
                        wait.as_secs_f64()
                    ),
                    retry_after: wait.as_secs_f64().ceil().max(1.0) as u64,
                })
            }
            // More events in one batch than the burst allows: never acceptable as one batch.
            Err(_) => Err(ApiError::PayloadTooLarge(
                "The batch holds more events than this caller's ingest burst allows; send \
                 smaller batches"
                    .into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_past_its_burst_waits_and_others_do_not() {
        let limit = IngestRateLimit::new(10, 100);
        limit.check("a", 100).unwrap();
        match limit.check("a", 10) {
            Err(ApiError::TooManyRequests { retry_after, .. }) => assert!(retry_after >= 1),
            other => panic!("expected a 429, got {other:?}"),
        }
        limit.check("b", 100).unwrap();
        assert!(matches!(
            limit.check("c", 101),
            Err(ApiError::PayloadTooLarge(_))
        ));
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = IngestRateLimit::new(0, 0);
        for _ in 0..100 {
            limit.check("a", 1_000_000).unwrap();
        }
    }
}
