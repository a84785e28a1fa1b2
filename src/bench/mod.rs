//! `almanac bench`: the benchmark harness (docs/PERFORMANCE.md).
//!
//! - `gen` writes a deterministic data set as NDJSON in the ingest shape (`gen`).
//! - `run` generates it in memory, starts `almanac serve` (this executable) on a fresh database,
//!   loads the data through the HTTP API (`load`), runs the standard query mix (`query`)
//!   under wrk (`wrk`) while sampling the server's memory, and prints one table (`report`).
//!
//! Every request goes to 127.0.0.1, and every loop is bounded by the data set or a deadline.

mod credentials;
mod gen;
mod load;
mod query;
mod report;
mod server;
mod wrk;

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use load::Dataset;
use report::{LoadUsage, QueryReport, RunReport};
use server::{Server, Store};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Write a deterministic data set as NDJSON in the ingest shape (`almanac import` or
    /// `POST /v2/events` take it as is).
    Gen(GenArgs),
    /// Generate, load through the HTTP API, run the query mix under wrk, print one table.
    Run(RunArgs),
}

#[derive(Args, Debug)]
pub struct GenArgs {
    /// How many events.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// The same seed gives the same bytes, on every run and every machine.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write to this file instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BenchBackend {
    Sqlite,
    Postgres,
}

impl BenchBackend {
    fn name(self) -> &'static str {
        match self {
            BenchBackend::Sqlite => "sqlite",
            BenchBackend::Postgres => "postgres",
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Events to generate and load; several sizes (100000,1000000) run one after another.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    events: Vec<usize>,
    /// Storage backend; both (sqlite,postgres) run one after another on the same data.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sqlite")]
    backend: Vec<BenchBackend>,
    /// A PostgreSQL database to connect to for creating (and dropping) the run's own database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    postgres_url: String,
    /// Seconds of wrk load per query.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// wrk connections (the query step's concurrency).
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Concurrent ingest requests in the load step.
    #[arg(long, default_value_t = 4)]
    load_connections: usize,
    /// Events per ingest request.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
    /// Data set seed (as for `bench gen`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Keep the database (SQLite file or PostgreSQL database) and the working directory (server
    /// log, wrk scripts and outputs) afterwards.
    #[arg(long)]
    keep: bool,
    /// Also write the numbers as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Gen(args) => generate(&args),
        BenchCommand::Run(args) => bench(&args),
    }
}

fn generate(args: &GenArgs) -> anyhow::Result<()> {
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = std::io::BufWriter::new(sink);
    for event in gen::Generator::new(args.seed, args.events) {
        serde_json::to_writer(&mut out, &event)?;
        out.write_all(b"\n")?;
    }
    out.flush().context("writing the events")?;
    Ok(())
}

fn bench(args: &RunArgs) -> anyhow::Result<()> {
    // Checked first: a missing wrk should not cost a million generated events.
    wrk::ensure_installed()?;
    anyhow::ensure!(
        args.events.iter().all(|&n| n > 0),
        "--events must be positive"
    );
    anyhow::ensure!(args.duration >= 1, "--duration must be at least 1 second");
    anyhow::ensure!(args.connections >= 1, "--connections must be at least 1");
    anyhow::ensure!(
        (1..=10_000).contains(&args.batch_size),
        "--batch-size must be 1 to 10000 (the server's default limit)"
    );

    let mut reports = Vec::new();
    for &events in &args.events {
        eprintln!("bench: generating {events} events (seed {})", args.seed);
        let dataset = Dataset::generate(args.seed, events, args.batch_size);
        for &backend in &args.backend {
            reports.push(run_once(args, backend, &dataset)?);
        }
    }

    print!("{}", report::table(&reports));
    println!(
        "\nseed {} · ingest in batches of {} over {} connections · each query {} s under wrk \
         at {} connections",
        args.seed, args.batch_size, args.load_connections, args.duration, args.connections
    );
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&reports)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// One backend and one size: fresh database, fresh server, load, queries, size.
fn run_once(args: &RunArgs, backend: BenchBackend, data: &Dataset) -> anyhow::Result<RunReport> {
    let label = format!("{}, {} events", backend.name(), data.facts.events);
    let dir = tempfile::Builder::new()
        .prefix("almanac-bench-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    let store = match backend {
        BenchBackend::Sqlite => Store::sqlite(dir.path()),
        BenchBackend::Postgres => Store::postgres(&args.postgres_url, args.keep)?,
    };
    let mut server = Server::start(&store, dir.path())?;
    eprintln!("bench: {label}: server at {}", server.base);
    let creds = credentials::Credentials::new(&server.base, &server.admin_token);
    // The migrated, empty store: subtracted, so that bytes/event is what an event costs, not a
    // share of PostgreSQL's catalog (about 7 MB) that would weigh on small runs.
    let empty_store_bytes = store.size_bytes()?;

    let usage_before = server.pid().and_then(server::Usage::of);
    let loaded = with_log(
        &server,
        load::load(&server.base, &creds.admin(), data, args.load_connections),
    )?;
    // Steadier than events/s on a shared machine: what each event cost the server.
    let load_usage = server
        .pid()
        .and_then(server::Usage::of)
        .zip(usage_before)
        .map(|(after, before)| {
            let events = loaded.events.max(1) as f64;
            LoadUsage {
                cpu_us_per_event: (after.cpu_seconds - before.cpu_seconds) * 1e6 / events,
                write_bytes_per_event: after.write_bytes.saturating_sub(before.write_bytes) as f64
                    / events,
            }
        });
    eprintln!(
        "bench: {label}: loaded {} events in {:.1} s",
        loaded.events, loaded.seconds
    );

    store.settle()?;
    let mix = query::mix(&data.facts, &server.base, &creds)
        .and_then(|mix| query::verify(&server.base, &mix).map(|()| mix));
    let mix = with_log(&server, mix)?;

    let sampler = RssSampler::start(server.pid().context("the server is not running")?);
    let duration = Duration::from_secs(args.duration);
    let mut queries = Vec::new();
    for query in &mix {
        eprintln!("bench: {label}: query {} ({})", query.id, query.name);
        let result = wrk::run(&server.base, query, args.connections, duration, dir.path())
            .and_then(|r| server.ensure_running().map(|()| r));
        let result = with_log(&server, result)?;
        queries.push(QueryReport {
            id: query.id,
            name: query.name.clone(),
            variants: query.requests.len(),
            requests: result.requests,
            rps: result.rps(),
            p50_ms: result.p50_ms,
            p99_ms: result.p99_ms,
        });
    }
    let max_rss_bytes = sampler.stop();

    server.stop()?;
    let store_bytes = store.size_bytes()?;
    if args.keep {
        // The working directory holds the server log, wrk's scripts and outputs, and the SQLite
        // file: what one needs to look into a surprising number.
        eprintln!("bench: kept {}", dir.keep().display());
    }
    Ok(RunReport {
        backend: backend.name(),
        events: data.facts.events,
        seed: args.seed,
        load_seconds: loaded.seconds,
        ingest_events_per_s: loaded.events as f64 / loaded.seconds.max(f64::EPSILON),
        load_usage,
        store_bytes,
        empty_store_bytes,
        bytes_per_event: store_bytes.saturating_sub(empty_store_bytes) as f64
            / data.facts.events as f64,
        max_rss_bytes,
        query_seconds: args.duration,
        connections: args.connections,
        queries,
    })
}

/// On failure, shows the end of the server's log first: the cause is often there.
fn with_log<T>(server: &Server, result: anyhow::Result<T>) -> anyhow::Result<T> {
    if result.is_err() {
        eprintln!("{}", server.log_tail());
    }
    result
}

/// Samples a process's resident set every 100 ms on a thread of its own and keeps the maximum.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut max = 0;
            // Ends when stopped, or when the process is gone (its /proc entry disappears).
            while !flag.load(Ordering::Relaxed) {
                match server::rss_bytes(pid) {
                    Some(rss) => max = max.max(rss),
                    None => break,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            max
        });
        RssSampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}
