//! The numbers of a run, as one markdown table (a column per run) and as JSON.

use serde::Serialize;

#[derive(Serialize)]
pub struct RunReport {
    pub backend: &'static str,
    pub events: usize,
    pub seed: u64,
    /// Wall time of the load step.
    pub load_seconds: f64,
    pub ingest_events_per_s: f64,
    /// The server process's cost of the load step per event (Linux only).
    pub load_usage: Option<LoadUsage>,
    /// The database on disk after the run (SQLite: the file after a WAL checkpoint;
    /// PostgreSQL: `pg_database_size`).
    pub store_bytes: u64,
    /// The same, freshly migrated and empty.
    pub empty_store_bytes: u64,
    /// (store_bytes - empty_store_bytes) / events.
    pub bytes_per_event: f64,
    /// The server process's largest resident set during the query step.
    pub max_rss_bytes: u64,
    pub query_seconds: u64,
    pub connections: usize,
    pub queries: Vec<QueryReport>,
}

/// What the load step cost the Almanac server process, per event stored: CPU time of all its
/// threads, and bytes it caused to be written to storage (on SQLite the WAL and the checkpoints'
/// copies; on PostgreSQL nearly nothing, since the database server writes).
#[derive(Clone, Copy, Serialize)]
pub struct LoadUsage {
    pub cpu_us_per_event: f64,
    pub write_bytes_per_event: f64,
}

#[derive(Serialize)]
pub struct QueryReport {
    pub id: &'static str,
    pub name: String,
    /// How many different requests wrk cycled over.
    pub variants: usize,
    pub requests: u64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// 1234567 → "1,234,567".
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Rows are measures, columns are runs, so runs on both backends and sizes compare side by side.
pub fn table(runs: &[RunReport]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = vec![
        (
            "ingest, events/s".into(),
            runs.iter()
                .map(|r| grouped(r.ingest_events_per_s.round() as u64))
                .collect(),
        ),
        (
            "ingest, server CPU µs/event".into(),
            runs.iter()
                .map(|r| {
                    r.load_usage
                        .map_or("–".into(), |u| format!("{:.1}", u.cpu_us_per_event))
                })
                .collect(),
        ),
        (
            "ingest, server disk writes, bytes/event".into(),
            runs.iter()
                .map(|r| {
                    r.load_usage.map_or("–".into(), |u| {
                        grouped(u.write_bytes_per_event.round() as u64)
                    })
                })
                .collect(),
        ),
        (
            "storage, bytes/event".into(),
            runs.iter()
                .map(|r| grouped(r.bytes_per_event.round() as u64))
                .collect(),
        ),
        (
            "server RSS, max during queries, MiB".into(),
            runs.iter()
                .map(|r| format!("{:.0}", r.max_rss_bytes as f64 / (1024.0 * 1024.0)))
                .collect(),
        ),
    ];
    if let Some(first) = runs.first() {
        for q in &first.queries {
            let cells = runs
                .iter()
                .map(|r| match r.queries.iter().find(|x| x.id == q.id) {
                    Some(x) => format!(
                        "{} · {:.2} · {:.2}",
                        grouped(x.rps.round() as u64),
                        x.p50_ms,
                        x.p99_ms
                    ),
                    None => "–".into(),
                })
                .collect();
            rows.push((format!("{} {}: req/s · p50 · p99 ms", q.id, q.name), cells));
        }
    }

    let mut out = String::from("| measure |");
    for r in runs {
        out.push_str(&format!(
            " {}, {} events |",
            r.backend,
            grouped(r.events as u64)
        ));
    }
    out.push_str("\n|---|");
    out.push_str(&"---:|".repeat(runs.len()));
    out.push('\n');
    for (label, cells) in rows {
        out.push_str(&format!("| {label} |"));
        for cell in cells {
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
    }
}
