//! The benchmark harness as CI runs it: a small `almanac bench run` on each backend, which fails
//! only if something errors (never on timing), and `almanac bench gen`'s determinism and output.
//!
//! The runs need wrk (`apt-get install wrk`); without it they fail with that hint. The
//! PostgreSQL run needs a server, found by the rule of the API tests (ALMANAC_TEST_POSTGRES_URL,
//! default postgres://postgres@127.0.0.1:5432/postgres): it fails, never skips, without one.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::{Read, Seek};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use almanac::config::Config;
use almanac::ingest::{decode_batch, BatchFormat};
use almanac::model::{NewEvent, TraitType, TraitValue};
use diesel::{Connection, PgConnection};

const BIN: &str = env!("CARGO_BIN_EXE_almanac");
/// A 20k-event run takes well under a minute; this bound only catches a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);
/// The runs share a 2-core machine: one at a time, so neither starves the other into timeouts.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

fn read_all(mut file: File) -> String {
    file.rewind().expect("rewind an output file");
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).expect("read an output file");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Runs `almanac ARGS` in `cwd` without this process's ALMANAC_* variables, killing it after
/// `timeout`.
fn almanac(cwd: &Path, args: &[&str], timeout: Duration) -> Finished {
    let out = tempfile::tempfile().expect("a stdout file");
    let err = tempfile::tempfile().expect("a stderr file");
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone stdout"))
        .stderr(err.try_clone().expect("clone stderr"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ALMANAC_") {
            cmd.env_remove(&key);
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().expect("start almanac");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll almanac") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "almanac {args:?} did not finish within {timeout:?}\nstdout: {}\nstderr: {}",
                read_all(out),
                read_all(err)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Finished {
        status,
        stdout: read_all(out),
        stderr: read_all(err),
    }
}

/// The PostgreSQL server of the API tests; fails (never skips) when none answers.
fn postgres_url() -> String {
    let url = std::env::var("ALMANAC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    if let Err(e) = PgConnection::establish(&url) {
        panic!(
            "the PostgreSQL bench smoke test needs a server, and none answered at {url}: {e}. \
             Run the tests with scripts/test (it starts the machine's PostgreSQL), or start one \
             (`pg_ctlcluster 15 main start`) or set ALMANAC_TEST_POSTGRES_URL."
        );
    }
    url
}

/// Every row of the table, with a number in every cell.
#[track_caller]
fn assert_complete_table(stdout: &str, columns: usize) {
    let rows = [
        "ingest, events/s",
        "storage, bytes/event",
        "server RSS, max during queries, MiB",
        "1 ",
        "2 ",
        "3 ",
        "4 ",
        "5 ",
        "6 ",
        "7 ",
        "8a ",
        "8b ",
    ];
    for label in rows {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("| {label}")))
            .unwrap_or_else(|| panic!("no row {label:?} in the table:\n{stdout}"));
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        assert_eq!(cells.len(), columns + 1, "row {line:?}");
        for cell in &cells[1..] {
            assert!(
                cell.starts_with(|c: char| c.is_ascii_digit()),
                "row {line:?} has a cell without a number:\n{stdout}"
            );
        }
    }
}

fn bench_run(extra: &[&str]) {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("bench.json");
    let json_arg = json.display().to_string();
    let mut args = vec![
        "bench",
        "run",
        "--events",
        "20000",
        "--duration",
        "2",
        "--json",
        &json_arg,
    ];
    args.extend_from_slice(extra);
    let run = almanac(dir.path(), &args, RUN_TIMEOUT);
    assert!(
        run.status.success(),
        "almanac {args:?} failed ({})\nstdout: {}\nstderr: {}",
        run.status,
        run.stdout,
        run.stderr
    );
    assert_complete_table(&run.stdout, 1);

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the --json file"))
            .expect("the --json file is JSON");
    let run = &report[0];
    assert_eq!(run["events"], 20000);
    assert_eq!(run["queries"].as_array().map(Vec::len), Some(9), "{report}");
    assert!(run["store_bytes"].as_u64() > Some(0), "{report}");
}

#[test]
fn bench_run_on_sqlite() {
    bench_run(&["--backend", "sqlite"]);
}

#[test]
fn bench_run_on_postgres() {
    let url = postgres_url();
    bench_run(&["--backend", "postgres", "--postgres-url", &url]);
}

fn gen(cwd: &Path, args: &[&str]) -> String {
    let mut all = vec!["bench", "gen"];
    all.extend_from_slice(args);
    let run = almanac(cwd, &all, Duration::from_secs(60));
    assert!(
        run.status.success(),
        "almanac {all:?} failed: {}",
        run.stderr
    );
    run.stdout
}

/// FNV-1a (64-bit) of `bench gen --events 3000 --seed 7`.
const GEN_FINGERPRINT: &str = "f7dbd230354abba2";

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn bench_gen_is_deterministic_and_valid() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = gen(dir.path(), &["--events", "3000", "--seed", "7"]);
    let b = gen(dir.path(), &["--events", "3000", "--seed", "7"]);
    assert!(a == b, "the same seed gave different output");
    let c = gen(dir.path(), &["--events", "3000", "--seed", "8"]);
    assert!(a != c, "another seed gave the same output");
    gen(
        dir.path(),
        &["--events", "3000", "--seed", "7", "--output", "out.ndjson"],
    );
    let file = std::fs::read_to_string(dir.path().join("out.ndjson")).expect("the output file");
    assert!(
        file == a,
        "--output wrote something else than standard output"
    );

    // The data set is pinned: published results are comparable only on the same data, so a
    // change to the generator must be deliberate (update this fingerprint and say so in
    // docs/PERFORMANCE.md).
    assert_eq!(
        format!("{:016x}", fnv1a(a.as_bytes())),
        GEN_FINGERPRINT,
        "bench gen --events 3000 --seed 7 changed"
    );

    // The ingest decoder accepts every event as it is.
    let limits = Config::default().ingest_limits();
    let events: Vec<NewEvent> = decode_batch(a.as_bytes(), BatchFormat::Ndjson, &limits, 0)
        .unwrap_or_else(|e| panic!("bench gen's output is not a valid batch: {e:?}"));
    assert_eq!(events.len(), 3000);

    let mut project_of_user = HashMap::new();
    let mut types = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        assert!(ids.insert(e.message_id.clone()), "repeated message_id");
        assert_eq!(e.message_id.len(), 36, "UUID-shaped: {}", e.message_id);
        assert_eq!(e.raw.get(), "{}");
        if i > 0 {
            assert!(events[i - 1].generated <= e.generated, "not in time order");
        }
        types.insert(e.event_type.clone());
        assert!(
            (8..=12).contains(&e.traits.len()),
            "{} traits",
            e.traits.len()
        );
        let kinds: BTreeSet<TraitType> = e.traits.iter().map(|t| t.value.trait_type()).collect();
        assert_eq!(kinds.len(), 4, "all four trait types in {}", e.message_id);
        let (project, user) = (
            e.string_trait("project_id").expect("project_id"),
            e.string_trait("user_id").expect("user_id"),
        );
        let known = project_of_user.entry(user.to_string()).or_insert(project);
        assert_eq!(*known, project, "a user in two projects");
        for name in ["resource_id", "host", "state"] {
            assert!(e.string_trait(name).is_some(), "{name} missing");
        }
        let value = |name: &str| e.traits.iter().find(|t| t.name == name).map(|t| &t.value);
        assert!(
            matches!(value("memory_mb"), Some(TraitValue::Integer(m)) if [512, 1024, 2048, 4096, 8192, 16384].contains(m))
        );
        assert!(matches!(value("disk_gb"), Some(TraitValue::Integer(_))));
        assert!(matches!(value("cpu_util"), Some(TraitValue::Float(c)) if (0.0..4.0).contains(c)));
        assert!(matches!(
            value("launched_at"),
            Some(TraitValue::Datetime(_))
        ));
    }
    assert_eq!(types.len(), 10, "event types: {types:?}");
    assert!(project_of_user.len() <= 200);
    let projects: BTreeSet<_> = project_of_user.values().collect();
    assert_eq!(projects.len(), 20);
    // The month ends at a fixed instant (2026-01-01T00:00:00Z), not at "now".
    let last = events.last().expect("events").generated;
    assert!(last < 1_767_225_600_000_000 && last > 1_767_225_600_000_000 - 86_400_000_000);
}
