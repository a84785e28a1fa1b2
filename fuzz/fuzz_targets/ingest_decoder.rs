//! The ingest batch decoder must answer every body with events or problems, never panic, and
//! never accept more than the limits allow. The first byte picks the format.
#![no_main]

use almanac::ingest::{decode_batch, BatchFormat, IngestLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = if selector % 2 == 0 {
        BatchFormat::JsonArray
    } else {
        BatchFormat::Ndjson
    };
    let limits = IngestLimits {
        max_batch_events: 50,
        max_string_bytes: 64,
        max_traits_per_event: 8,
    };
    if let Ok(events) = decode_batch(body, format, &limits, 1_700_000_000_000_000) {
        assert!(!events.is_empty() && events.len() <= limits.max_batch_events);
        for event in &events {
            assert!((1..=255).contains(&event.message_id.len()));
            assert!((1..=255).contains(&event.event_type.len()));
            assert!(event.traits.len() <= limits.max_traits_per_event);
        }
    }
});
