//! `GET /metrics` (Prometheus text format): counters move by exactly what the test did. Each test
//! runs a server process of its own, so no other test's requests are counted.

use std::collections::BTreeMap;

use serde_json::json;

use crate::backend_tests;
use crate::process::{event, Server};
use crate::support::{Backend, TestDb};

backend_tests!(metrics_count_requests_ingested_events_and_pool);

/// One sample: its labels and value.
type Samples = Vec<(String, BTreeMap<String, String>, f64)>;

/// Parses the text format (enough of it for our own output: no escaped quotes in labels).
fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let labels = rest
                        .trim_end_matches('}')
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|pair| {
                            let (k, v) = pair.split_once('=').expect("a label pair");
                            (k.to_string(), v.trim_matches('"').to_string())
                        })
                        .collect();
                    (name.to_string(), labels)
                }
                None => (series.to_string(), BTreeMap::new()),
            };
            (name, labels, value)
        })
        .collect()
}

/// The value of the sample `name` whose labels are exactly `labels` (0 when absent: a labelled
/// series appears on first use).
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map_or(0.0, |(_, _, v)| *v)
}

async fn metrics_count_requests_ingested_events_and_pool(backend: Backend) {
    let db = TestDb::new(backend);
    let server = Server::start(&db.url, &[], &[("ALMANAC_DATABASE__POOL_SIZE", "3")]);

    let scrape = |server: &Server| {
        let reply = server.get("/metrics");
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.content_type.as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        parse(&reply.body)
    };
    let before = scrape(&server);

    let first = server.post(
        "/v2/events",
        &json!([event("m-1", 1), event("m-2", 2), event("m-3", 3)]),
    );
    assert_eq!(first.status, 201, "{}", first.body);
    let second = server.post("/v2/events", &json!([event("m-3", 3), event("m-4", 4)]));
    assert_eq!(second.status, 201, "{}", second.body);
    for _ in 0..2 {
        assert_eq!(server.get("/v2/events/m-1").status, 200);
    }
    assert_eq!(server.get("/v2/events/no-such-event").status, 404);
    assert_eq!(server.get("/no/such/path").status, 404);

    let after = scrape(&server);
    let delta = |name: &str, labels: &[(&str, &str)]| {
        value(&after, name, labels) - value(&before, name, labels)
    };
    assert_eq!(delta("almanac_events_ingested_total", &[]), 4.0);
    assert_eq!(delta("almanac_events_duplicate_total", &[]), 1.0);
    let requests = "almanac_http_requests_total";
    let show = "/v2/events/{message_id}";
    assert_eq!(
        delta(
            requests,
            &[
                ("method", "POST"),
                ("route", "/v2/events"),
                ("status", "201")
            ]
        ),
        2.0
    );
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", show), ("status", "200")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", show), ("status", "404")]
        ),
        1.0
    );
    // A path no route matches is counted under one label, not under its own path.
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert!(after
        .iter()
        .all(|(_, l, _)| l.get("route").map(String::as_str) != Some("/no/such/path")));
    // The first scrape was counted by the second.
    assert_eq!(
        delta(
            requests,
            &[("method", "GET"), ("route", "/metrics"), ("status", "200")]
        ),
        1.0
    );
    // Latency: one observation per request, in the histogram's count and its +Inf bucket.
    let latency = "almanac_http_request_duration_seconds";
    assert_eq!(
        delta(
            &format!("{latency}_count"),
            &[("method", "GET"), ("route", show)]
        ),
        3.0
    );
    assert_eq!(
        delta(
            &format!("{latency}_bucket"),
            &[("method", "GET"), ("route", show), ("le", "+Inf")]
        ),
        3.0
    );
    // The pool: its size as configured; nothing in use between requests, some connection idle.
    let pool = "almanac_db_pool_connections";
    assert_eq!(value(&after, pool, &[("state", "max")]), 3.0);
    assert_eq!(value(&after, pool, &[("state", "in_use")]), 0.0);
    assert!(value(&after, pool, &[("state", "idle")]) >= 1.0);
    // No database failure happened.
    assert!(after
        .iter()
        .filter(|(n, _, _)| n == "almanac_db_errors_total")
        .all(|(_, _, v)| *v == 0.0));
}
