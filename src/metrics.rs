//! Process metrics in the Prometheus text format, served at `GET /metrics`.
//!
//! One registry per process (not the `prometheus` crate's global default one, so that nothing a
//! dependency registers leaks into our output). Requests are labelled by the route *pattern*
//! (`/v2/events/{message_id}`), never the raw path, so the number of series stays bounded.
//! Pool gauges are read from the pool when scraped, not tracked on every checkout.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::db::Db;

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    in_flight: IntGauge,
    latency: HistogramVec,
    events_stored: IntCounter,
    events_duplicate: IntCounter,
    pool: IntGaugeVec,
    db_errors: IntCounterVec,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new(
            "almanac_http_requests_total",
            "HTTP requests answered, by method, route pattern and status",
        ),
        &["method", "route", "status"],
    )
    .expect("a valid metric");
    let in_flight = IntGauge::new(
        "almanac_http_requests_in_flight",
        "Requests being handled now (this scrape included)",
    )
    .expect("a valid metric");
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "almanac_http_request_duration_seconds",
            "Time from request to response head, by method and route pattern",
        )
        .buckets(vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]),
        &["method", "route"],
    )
    .expect("a valid metric");
    let events_stored = IntCounter::new(
        "almanac_events_ingested_total",
        "Events stored by POST /v2/events (committed)",
    )
    .expect("a valid metric");
    let events_duplicate = IntCounter::new(
        "almanac_events_duplicate_total",
        "Events of acknowledged batches skipped as duplicates",
    )
    .expect("a valid metric");
    let pool = IntGaugeVec::new(
        Opts::new(
            "almanac_db_pool_connections",
            "Connections of the request pool: in_use, idle, and max (its size)",
        ),
        &["state"],
    )
    .expect("a valid metric");
    let db_errors = IntCounterVec::new(
        Opts::new(
            "almanac_db_errors_total",
            "Database failures seen by requests, by kind (unavailable, busy, read_only, full, \
             io, other)",
        ),
        &["kind"],
    )
    .expect("a valid metric");
    for metric in [
        Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
        Box::new(in_flight.clone()),
        Box::new(latency.clone()),
        Box::new(events_stored.clone()),
        Box::new(events_duplicate.clone()),
        Box::new(pool.clone()),
        Box::new(db_errors.clone()),
    ] {
        registry.register(metric).expect("metric names are unique");
    }
    Metrics {
        registry,
        requests,
        in_flight,
        latency,
        events_stored,
        events_duplicate,
        pool,
        db_errors,
    }
});

/// Counts a request as in flight until the returned guard is dropped (also when the client goes
/// away and the request's future is dropped).
pub fn request_started() -> InFlight {
    METRICS.in_flight.inc();
    InFlight(())
}

pub struct InFlight(());

impl Drop for InFlight {
    fn drop(&mut self) {
        METRICS.in_flight.dec();
    }
}

/// One answered request. `route` is the matched pattern, or `None` for a path no route matched.
pub fn observe_request(method: &str, route: Option<&str>, status: u16, elapsed: Duration) {
    let m = &*METRICS;
    let route = route.unwrap_or("unmatched");
    m.requests
        .with_label_values(&[method, route, &status.to_string()])
        .inc();
    m.latency
        .with_label_values(&[method, route])
        .observe(elapsed.as_secs_f64());
}

/// An acknowledged ingest batch.
pub fn events_ingested(stored: usize, duplicates: usize) {
    METRICS.events_stored.inc_by(stored as u64);
    METRICS.events_duplicate.inc_by(duplicates as u64);
}

/// The kinds of database failure counted in `almanac_db_errors_total`.
#[derive(Clone, Copy, Debug)]
pub enum DbErrorKind {
    Unavailable,
    Busy,
    ReadOnly,
    Full,
    Io,
    Other,
}

pub fn db_error(kind: DbErrorKind) {
    let label = match kind {
        DbErrorKind::Unavailable => "unavailable",
        DbErrorKind::Busy => "busy",
        DbErrorKind::ReadOnly => "read_only",
        DbErrorKind::Full => "full",
        DbErrorKind::Io => "io",
        DbErrorKind::Other => "other",
    };
    METRICS.db_errors.with_label_values(&[label]).inc();
}

/// Everything, in the Prometheus text exposition format (version 0.0.4).
pub fn render(db: &Db) -> String {
    let m = &*METRICS;
    let (connections, idle, max) = db.pool_state();
    m.pool
        .with_label_values(&["in_use"])
        .set(i64::from(connections.saturating_sub(idle)));
    m.pool.with_label_values(&["idle"]).set(i64::from(idle));
    m.pool.with_label_values(&["max"]).set(i64::from(max));
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut out)
        .expect("metrics encode");
    String::from_utf8(out).expect("the text format is UTF-8")
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
