//! The Panko q-language parser (`GET /v2/events` arguments) must answer every input with a
//! query or a 400 text, never panic. Input: a query string, then optionally `\n` and a body.
#![no_main]

use almanac::query::{ensure_no_arguments, parse_event_query, ParseOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (query_string, body) = match text.split_once('\n') {
        Some((q, b)) => (q, Some(b.as_bytes())),
        None => (text, None),
    };
    for admin in [false, true] {
        let opts = ParseOptions {
            admin,
            max_limit: 10_000,
            max_q_items: 100,
            max_value_bytes: 1024,
        };
        if let Ok(query) = parse_event_query(query_string, body, &opts) {
            // What the parser accepts stays within the limits it was given.
            assert!(query.limit.is_none_or(|l| l >= 1 && l <= opts.max_limit));
        }
    }
    let _ = ensure_no_arguments(query_string, body);
});
