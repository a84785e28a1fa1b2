//! The `almanac` command: `serve`, `migrate`, `import`, `token`, `openapi`, `bench`.

mod token;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::auth::AuthMode;
use crate::config::{Config, ConfigOverrides, LogFormat};
use crate::db::{migrations, AnyConnection, DatabaseUrl, Db};
use crate::http::{self, AppState};
use crate::ingest::{decode_batch, BatchError, BatchFormat, IngestLimits};
use crate::model::time;
use crate::store;

#[derive(Parser, Debug)]
#[command(
    name = "almanac",
    version,
    about = "An event store that speaks the OpenStack Panko v2 API"
)]
struct Cli {
    /// TOML config file (default: almanac.toml in the working directory, if present).
    #[arg(long, env = "ALMANAC_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB (also ALMANAC_DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API (migrations are applied first).
    Serve {
        /// Address and port, e.g. 127.0.0.1:8977 (also ALMANAC_BIND).
        #[arg(long)]
        bind: Option<String>,
        /// How callers are identified (also ALMANAC_AUTH).
        #[arg(long, value_enum)]
        auth: Option<AuthMode>,
        /// HTTP worker threads; 0 = one per core (also ALMANAC_WORKERS).
        #[arg(long)]
        workers: Option<usize>,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Load events from an NDJSON file (one event per line; `-` reads standard input).
    /// The whole file is validated first: if any event is invalid, nothing is stored.
    Import {
        file: PathBuf,
        /// Events per transaction.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
    },
    /// Manage API tokens directly in the database (no running server or token needed).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// The benchmark harness: generate data, load it, run the query mix (docs/PERFORMANCE.md).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// Print the OpenAPI document (the one api-spec/openapi.json holds).
    Openapi {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("almanac: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let mut overrides = ConfigOverrides {
        database_url: cli.database_url.clone(),
        ..ConfigOverrides::default()
    };
    if let Command::Serve {
        bind,
        auth,
        workers,
    } = &cli.command
    {
        overrides.bind = bind.clone();
        overrides.auth = *auth;
        overrides.workers = *workers;
    }
    let config = Config::load(cli.config.as_deref(), &overrides)?;
    init_logging(&config);
    match cli.command {
        Command::Serve { .. } => serve(config),
        Command::Migrate => {
            let conn = migrated_connection(&config)?;
            println!("database is up to date ({})", conn.backend().name());
            Ok(())
        }
        Command::Import { file, batch_size } => import(&config, &file, batch_size),
        Command::Token(command) => {
            let mut conn = migrated_connection(&config)?;
            token::run(&config, &mut conn, command)
        }
        Command::Bench(cmd) => crate::bench::run(cmd),
        Command::Openapi { output } => {
            let doc = openapi_json();
            match output {
                Some(path) => std::fs::write(&path, doc)?,
                None => print!("{doc}"),
            }
            Ok(())
        }
    }
}

/// The OpenAPI document as committed in `api-spec/openapi.json` (pretty, with a final newline).
pub fn openapi_json() -> String {
    let mut doc = http::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    doc.push('\n');
    doc
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        // The request span's fields (request_id, method, path) go on every line.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Connects (waiting up to 30 s for the database to come up, as under docker compose) and
/// applies pending migrations, on one connection of its own (no pool, no background threads).
fn migrated_connection(config: &Config) -> anyhow::Result<AnyConnection> {
    let url = DatabaseUrl::parse(&config.database_url)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut conn = loop {
        match Db::connect(&url, &config.db_options()) {
            Ok(conn) => break conn,
            Err(error) if Instant::now() < deadline => {
                tracing::warn!(%error, database = ?url, "database not reachable yet; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
            Err(error) => return Err(anyhow::anyhow!("cannot open the database {url:?}: {error}")),
        }
    };
    let applied =
        migrations::run_pending(&mut conn).map_err(|e| anyhow::anyhow!("migration failed: {e}"))?;
    for version in applied {
        tracing::info!(%version, "migration applied");
    }
    Ok(conn)
}

fn serve(config: Config) -> anyhow::Result<()> {
    let mut conn = migrated_connection(&config)?;
    match config.auth {
        AuthMode::Token => token::bootstrap(&config, &mut conn)?,
        AuthMode::Headers => tracing::warn!(
            bind = %config.bind,
            allow_headers_auth_on_public_bind = config.allow_headers_auth_on_public_bind,
            "auth = headers: X-User-Id, X-Project-Id and X-Roles are trusted from every client \
             that can reach this address; only a gateway that sets them should"
        ),
    }
    drop(conn);
    let url = DatabaseUrl::parse(&config.database_url)?;
    let db = Db::open(&url, &config.db_options())
        .map_err(|error| anyhow::anyhow!("cannot open the database {url:?}: {error}"))?;
    let workers = match config.workers {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    };
    let bind = config.bind.clone();
    tracing::info!(
        bind = %bind,
        backend = db.backend().name(),
        auth = ?config.auth,
        workers,
        "almanac listening"
    );
    // actix's blocking threads now only decode ingest batches (request handlers' database work
    // has threads of its own, `db::runner`). Capped: each thread costs an allocator heap
    // (measured: RSS under load tracked the number of blocking threads, not SQLite's page cache).
    let blocking_threads = (config.database.pool_size as usize).max(2);
    let http_config = config.http.clone();
    let state = AppState::new(db.clone(), config)?;
    let served = actix_web::rt::System::new().block_on(async move {
        actix_web::HttpServer::new(move || http::app(state.clone()))
            .workers(workers)
            .worker_max_blocking_threads(blocking_threads)
            .client_request_timeout(Duration::from_millis(http_config.client_request_timeout_ms))
            .client_disconnect_timeout(Duration::from_millis(
                http_config.client_disconnect_timeout_ms,
            ))
            .keep_alive(match http_config.keep_alive_secs {
                0 => actix_web::http::KeepAlive::Disabled,
                s => actix_web::http::KeepAlive::Timeout(Duration::from_secs(s)),
            })
            // SIGTERM (handled by actix): stop accepting, let in-flight requests finish for
            // up to this long, then stop the workers.
            .shutdown_timeout(http_config.shutdown_timeout_secs)
            .bind(&bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?
            .run()
            .await
            .map_err(anyhow::Error::from)
    });
    tracing::info!("HTTP server stopped; draining the ingest writer");
    close_database(db);
    served
}

/// After the HTTP server has stopped: every worker and its application state are gone, so the
/// ingest writer has no more senders; it stores the batches still queued and ends. Waits for
/// that, then closes the pool's connections here, on this thread, so that no connection is
/// being used (or closed) inside libpq while the process exits.
fn close_database(db: Db) {
    const DRAIN: Duration = Duration::from_secs(30);
    if db.close(DRAIN) {
        tracing::info!("database closed; shutdown complete");
    } else {
        tracing::warn!(
            "the database was still in use {}s after the server stopped; exiting anyway",
            DRAIN.as_secs()
        );
    }
}

fn import(config: &Config, file: &Path, batch_size: usize) -> anyhow::Result<()> {
    anyhow::ensure!(batch_size >= 1, "--batch-size must be at least 1");
    let batch_size = batch_size.min(config.limits.max_batch_events);
    let now = time::now_micros();
    // An operator restoring a dump may load Almanac's own audit records too.
    let limits = IngestLimits {
        reserved_type_prefix: None,
        ..config.ingest_limits()
    };

    // Both passes must read the same bytes: standard input is kept in a temporary file.
    let stdin_copy;
    let path = if file == Path::new("-") {
        let mut tmp = tempfile::NamedTempFile::new()?;
        std::io::copy(&mut std::io::stdin().lock(), &mut tmp)?;
        stdin_copy = tmp;
        stdin_copy.path()
    } else {
        file
    };

    // Pass 1 validates everything, before the database is even opened; pass 2 stores. Nothing
    // is stored from an invalid file.
    let mut problems = Vec::new();
    let mut events = 0;
    for_each_chunk(path, batch_size, |lines, body| {
        events += lines.len();
        if let Err(error) = decode_batch(body, BatchFormat::Ndjson, &limits, now) {
            problems.extend(describe(error, lines));
        }
        Ok(())
    })?;
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::bail!(
            "{}: {} invalid event(s); nothing was imported",
            file.display(),
            problems.len()
        );
    }
    anyhow::ensure!(events > 0, "{}: no events to import", file.display());

    let mut conn = migrated_connection(config)?;
    let (mut stored, mut duplicates, mut received) = (0, 0, 0);
    for_each_chunk(path, batch_size, |_, body| {
        let batch = decode_batch(body, BatchFormat::Ndjson, &limits, now)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let outcome = store::ingest::insert_batch(&mut conn, &batch)
            .map_err(|e| anyhow::anyhow!("storing a batch failed: {e}"))?;
        received += outcome.received;
        stored += outcome.stored;
        duplicates += outcome.duplicates.len();
        Ok(())
    })?;
    println!(
        "{}: {received} events read, {stored} stored, {duplicates} duplicates skipped",
        file.display()
    );
    Ok(())
}

/// Calls `f` with each chunk of up to `size` non-blank lines: their 1-based line numbers and
/// the chunk as an NDJSON body.
fn for_each_chunk(
    file: &Path,
    size: usize,
    mut f: impl FnMut(&[usize], &[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let opened = std::fs::File::open(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let reader = std::io::BufReader::new(opened);
    let mut lines = Vec::with_capacity(size);
    let mut body = Vec::new();
    for (n, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines.push(n + 1);
        body.extend_from_slice(&line);
        body.push(b'\n');
        if lines.len() == size {
            f(&lines, &body)?;
            lines.clear();
            body.clear();
        }
    }
    if !lines.is_empty() {
        f(&lines, &body)?;
    }
    Ok(())
}

fn describe(error: BatchError, lines: &[usize]) -> Vec<String> {
    match error {
        BatchError::Invalid(problems) => problems
            .into_iter()
            .map(|p| {
                let line = lines.get(p.index).copied().unwrap_or(0);
                format!("line {line}: {}", p.reason)
            })
            .collect(),
        other => vec![format!(
            "lines {}-{}: {other}",
            lines[0],
            lines[lines.len() - 1]
        )],
    }
}
