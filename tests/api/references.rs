//! What the stored rows refer to exists, on both backends, although neither backend checks it
//! row by row at ingest: SQLite's ingest writer leaves foreign keys unchecked, and PostgreSQL's
//! event and trait tables carry no foreign keys since `…_ingest_without_row_checks` (the check
//! of each row was about 30% of PostgreSQL's ingest work; docs/PERFORMANCE.md, session 9).
//! And deleting events still deletes their traits: by `ON DELETE CASCADE` on SQLite, by a
//! statement trigger on PostgreSQL.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{bearer, count, event, s, t, token_app_with, Backend};

const ALL: &str = "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&limit=1000";

/// For each kind of reference, a count of the rows whose reference points at no row.
fn dangling() -> Vec<(String, String)> {
    let mut checks = vec![(
        "event types".to_owned(),
        "SELECT COUNT(*) AS n FROM events e \
         WHERE NOT EXISTS (SELECT 1 FROM event_types x WHERE x.id = e.event_type_id)"
            .to_owned(),
    )];
    for (kind, column) in [("projects", "project_ref"), ("users", "user_ref")] {
        checks.push((
            kind.to_owned(),
            format!(
                "SELECT COUNT(*) AS n FROM events e WHERE e.{column} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM tenants x WHERE x.id = e.{column})"
            ),
        ));
    }
    for table in [
        "traits_string",
        "traits_integer",
        "traits_float",
        "traits_datetime",
    ] {
        checks.push((
            table.to_owned(),
            format!(
                "SELECT COUNT(*) AS n FROM {table} x \
                 WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.id = x.event_id)"
            ),
        ));
    }
    checks
}

/// Trait rows of all four tables.
const TRAIT_ROWS: &str = "SELECT (SELECT COUNT(*) FROM traits_string) \
     + (SELECT COUNT(*) FROM traits_integer) + (SELECT COUNT(*) FROM traits_float) \
     + (SELECT COUNT(*) FROM traits_datetime) AS n";

/// A batch whose every event brings a new event type, trait names and tenants, and one of each
/// trait type besides the tenancy traits.
fn batch(prefix: &str, n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| {
            event(
                &format!("{prefix}-{i}"),
                &format!("{prefix}.type.{}", i % 3),
                &format!("2025-12-01T00:00:{:02}.{i:06}", i % 60),
                json!([
                    s("project_id", &format!("{prefix}-project-{}", i % 4)),
                    s("user_id", &format!("{prefix}-user-{i}")),
                    s(&format!("{prefix}_host"), &format!("host-{i}")),
                    t(
                        &format!("{prefix}_memory_mb"),
                        "integer",
                        &format!("{}", 512 * i)
                    ),
                    t("cpu_util", "float", &format!("{i}.5")),
                    t("launched_at", "datetime", "2025-11-25T06:57:30.876213"),
                ]),
            )
        })
        .collect();
    Value::Array(events)
}

backend_tests!(references_hold_after_concurrent_ingest_and_deleting_events_deletes_their_traits);

async fn references_hold_after_concurrent_ingest_and_deleting_events_deletes_their_traits(
    backend: Backend,
) {
    // With the ingest audit records, which bring names of their own.
    let app = token_app_with(backend, almanac::config::Config::default()).await;
    let requests = ["a", "b", "c", "d"].map(|prefix| {
        let req = bearer(
            TestRequest::post()
                .uri("/v2/events")
                .set_json(batch(prefix, 30)),
            &app.admin,
        );
        app.app.send(req)
    });
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    }

    let mut conn = app.db.get().expect("a connection");
    for (kind, sql) in dangling() {
        assert_eq!(count(&mut conn, &sql), 0, "dangling references to {kind}");
    }
    let events = count(&mut conn, "SELECT COUNT(*) AS n FROM events");
    assert!(events >= 120, "{events} events: 120 and the audit records");
    // Four trait rows an event of the batches (the tenancy traits are columns).
    let traits = count(&mut conn, TRAIT_ROWS);
    assert!(traits >= 480, "{traits} trait rows");
    let listed = app
        .app
        .send(bearer(TestRequest::get().uri(ALL), &app.admin))
        .await;
    let before: Vec<Value> = serde_json::from_slice(&listed.body).expect("a JSON list");
    let kept = |page: &[Value]| -> Vec<Value> {
        page.iter()
            .filter(|e| {
                !e["message_id"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("b-"))
            })
            .cloned()
            .collect()
    };

    // Deleting events deletes their traits and nothing else: by hand, as an operator would,
    // a statement that deletes several events at once, and one that deletes none.
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DELETE FROM events WHERE message_id LIKE 'b-%'"),
        &mut conn,
    )
    .expect("delete b's events");
    diesel::RunQueryDsl::execute(
        diesel::sql_query("DELETE FROM events WHERE message_id = 'no-such-event'"),
        &mut conn,
    )
    .expect("delete nothing");
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) AS n FROM events"),
        events - 30
    );
    assert_eq!(
        count(&mut conn, TRAIT_ROWS),
        traits - 30 * 4,
        "the deleted events' traits, and only theirs"
    );
    for (kind, sql) in dangling() {
        assert_eq!(count(&mut conn, &sql), 0, "dangling references to {kind}");
    }
    // The other events read back as before, traits included.
    let listed = app
        .app
        .send(bearer(TestRequest::get().uri(ALL), &app.admin))
        .await;
    let after: Vec<Value> = serde_json::from_slice(&listed.body).expect("a JSON list");
    assert_eq!(after, kept(&before));
    assert_eq!(after.len() as i64, events - 30);
}
