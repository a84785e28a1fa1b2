//! SQLite on a full disk: ingestion gets a 507 in the error envelope with a clear message (never
//! a panic or a 500), nothing of the refused batch is stored, reads go on, and once space is
//! freed the same process stores again.
//!
//! The "disk" is a 4 MiB tmpfs mounted in a user and mount namespace of the server's own
//! (`unshare --user --map-root-user --mount`), which needs no root: it works as root, where chmod
//! would not stop writes, and as any user on kernels that allow unprivileged user namespaces.
//! A ballast file takes 1 MiB of it, so that deleting it (through `/proc/PID/root`, the
//! server's view of the filesystem) frees space again.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::process::{event, Server};

const BATCH: usize = 100;

fn batch(k: usize) -> Value {
    let padding = "x".repeat(2000);
    Value::Array(
        (0..BATCH)
            .map(|i| {
                let mut e = event(&format!("disk-{k}-{i}"), (k * BATCH + i) as u64);
                e["raw"] = json!({"padding": padding});
                e
            })
            .collect(),
    )
}

#[test]
fn sqlite_full_disk_gives_507_and_recovers_when_space_is_freed() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let disk = dir.path().join("disk");
    std::fs::create_dir(&disk).expect("the mount point");
    let disk = disk.display().to_string();
    let script = r#"mount -t tmpfs -o size=4m almanac-test "$0" && head -c 1048576 /dev/zero > "$0/ballast" && exec "$@""#;
    let wrapper = [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        &disk,
    ];
    let url = format!("sqlite://{disk}/almanac.db");
    let server = Server::start_wrapped(&wrapper, &url, &[], &[]);

    // Fill the disk, one acknowledged batch after another, until a batch is refused.
    let mut acked = 0;
    let refused = loop {
        assert!(acked < 200, "the 4 MiB disk never filled up");
        let reply = server.post("/v2/events", &batch(acked));
        if reply.status != 201 {
            break reply;
        }
        acked += 1;
    };
    let text = refused.error(507);
    assert!(text.contains("storage is full"), "{text}");
    assert!(acked > 0, "the first batch already failed: {text}");

    // The process is fine: liveness, reads, and the failure counted in the metrics.
    assert_eq!(server.get("/healthcheck").status, 200);
    assert_eq!(server.get("/v2/events?limit=5").status, 200);
    let metrics = server.get("/metrics").body;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("almanac_db_errors_total{kind=\"full\"}")),
        "{metrics}"
    );
    // Nothing of the refused batch is stored.
    for i in [0, BATCH - 1] {
        let reply = server.get(&format!("/v2/events/disk-{acked}-{i}"));
        assert_eq!(reply.status, 404, "{}", reply.body);
    }

    // Free space: the same process stores again (retrying the refused batch).
    let ballast = format!("/proc/{}/root{disk}/ballast", server.pid());
    std::fs::remove_file(&ballast).unwrap_or_else(|e| panic!("remove {ballast}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = server.post("/v2/events", &batch(acked));
        if reply.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still refused after space was freed: {} {}",
            reply.status,
            reply.body
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    acked += 1;
    assert_eq!(server.all_ids().len(), acked * BATCH);
}
