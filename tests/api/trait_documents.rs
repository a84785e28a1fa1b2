//! Each event's row keeps a copy of its traits: all of them on PostgreSQL (`events.traits`, see
//! `store::trait_doc`), the numeric ones on SQLite (`events.numbers`, `store::trait_numbers`).
//! Pages and filters read the copy.
//! - SQLite rows stored before that column existed have none, and their traits still come from
//!   the trait tables: both kinds of row give the same page (also mixed in one page) and match
//!   the same filters.
//! - PostgreSQL rows stored before documents existed get one from the `unkeyed_trait_rows`
//!   migration, equal to the one ingest writes, and its document filters match what SQLite's
//!   trait tables match.

use actix_web::test::TestRequest;
use diesel::connection::SimpleConnection;
use serde_json::json;

use almanac::db::migrations;

use crate::backend_tests;
use crate::support::{bearer, count, event, s, t, token_app_with, Backend};

backend_tests!(
    rows_without_a_trait_copy_give_the_same_pages,
    filters_match_the_same_events_with_and_without_copies,
);

/// The column holding each row's copy of its traits.
fn copy_column(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "numbers",
        Backend::Postgres => "traits",
    }
}

const ALL: &str = "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&limit=100";

async fn rows_without_a_trait_copy_give_the_same_pages(backend: Backend) {
    let column = copy_column(backend);
    let mut config = almanac::config::Config::default();
    config.audit.ingest = false;
    let app = token_app_with(backend, config).await;
    let events: Vec<_> = (0..6)
        .map(|i| {
            event(
                &format!("ev-{i}"),
                if i % 2 == 0 {
                    "compute.instance.create.end"
                } else {
                    "image.upload"
                },
                &format!("2025-12-0{}T00:00:00.12345{i}", i + 1),
                json!([
                    s("project_id", "p1"),
                    s("user_id", &format!("u{i}")),
                    s("host", &format!("compute-{i} \"quoted\" \\ ünïcode")),
                    t("memory_mb", "integer", &format!("{}", 512 << i)),
                    t("big", "integer", "-9223372036854775808"),
                    t("cpu_util", "float", &format!("0.{i}00000000000001")),
                    t("launched_at", "datetime", "2025-11-25T06:57:30.876213"),
                ]),
            )
        })
        .collect();
    app.ingest_as_admin(&json!(events)).await;

    let page = |uri: &'static str| {
        let req = bearer(TestRequest::get().uri(uri), &app.admin);
        let app = &app.app;
        async move {
            let res = app.send(req).await;
            assert_eq!(
                res.status,
                200,
                "{uri}: {}",
                String::from_utf8_lossy(&res.body)
            );
            res.body
        }
    };
    let one = "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&q.field=message_id&q.op=eq&q.value=ev-3";
    let filtered =
        "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&q.type=&q.field=memory_mb&q.op=gt&q.value=1000&q.type=integer";
    let before = (page(ALL).await, page(one).await, page(filtered).await);
    let listed = serde_json::from_slice::<serde_json::Value>(&before.0).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(6));
    assert_eq!(
        listed[3]["traits"][1],
        json!({"name": "cpu_util", "value": "0.300000000000001", "type": "float"}),
        "{listed}"
    );

    // Every row stored now has its copy: the pages above were read from them.
    let mut conn = app.db.get().expect("a connection");
    let without = count(
        &mut conn,
        &format!("SELECT COUNT(*) AS n FROM events WHERE {column} IS NULL"),
    );
    assert_eq!(without, 0);

    // As if ev-0, ev-3 and ev-5 had been stored before the copy existed.
    let old_rows = "UPDATE events SET {column} = NULL WHERE message_id IN ('ev-0', 'ev-3', 'ev-5')"
        .replace("{column}", column);
    match backend {
        // Their traits are read from the trait tables.
        Backend::Sqlite => conn.batch_execute(&old_rows).expect("clear three copies"),
        // Without its last migration the column takes NULL and the trait tables have their keys;
        // the migration, applied again, gives those rows the documents ingest gave them.
        Backend::Postgres => {
            let reverted = migrations::revert_last(&mut conn).expect("revert");
            assert_eq!(
                reverted, "20261207000008",
                "the last migration is unkeyed_trait_rows"
            );
            conn.batch_execute(&format!(
                "CREATE TEMPORARY TABLE written AS SELECT id, traits FROM events; {old_rows}"
            ))
            .expect("clear three copies");
            assert_eq!(
                count(
                    &mut conn,
                    "SELECT COUNT(*) AS n FROM events WHERE traits IS NULL"
                ),
                3
            );
            migrations::run_pending(&mut conn).expect("migrate again");
            let differ = count(
                &mut conn,
                "SELECT COUNT(*) AS n FROM events e JOIN written w USING (id) \
                 WHERE e.traits IS DISTINCT FROM w.traits",
            );
            assert_eq!(differ, 0, "the migration wrote the documents ingest writes");
            assert_eq!(count(&mut conn, "SELECT COUNT(*) AS n FROM written"), 6);
        }
    }
    let after = (page(ALL).await, page(one).await, page(filtered).await);
    assert_eq!(
        String::from_utf8_lossy(&after.0),
        String::from_utf8_lossy(&before.0)
    );
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);

    // A copy the store cannot read is a 500, never an event shown without its traits; on
    // SQLite, where the filter's function decodes the copy, nor a filter that treats the trait
    // as missing (a `jsonb` document that lacks the type's object reads as a missing trait).
    let broken = match backend {
        Backend::Postgres => "'{\"s\":{\"1\":2}}'",
        Backend::Sqlite => "x'ffffffffffffffffffffff'",
    };
    conn.batch_execute(&format!(
        "UPDATE events SET {column} = {broken} WHERE message_id = 'ev-1'"
    ))
    .expect("break one copy");
    let filtered_ne =
        "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&q.type=&q.field=memory_mb&q.op=ne&q.value=1&q.type=integer";
    let uris = match backend {
        Backend::Postgres => vec![ALL],
        Backend::Sqlite => vec![ALL, filtered_ne],
    };
    for uri in uris {
        let res = app
            .app
            .send(bearer(TestRequest::get().uri(uri), &app.admin))
            .await;
        assert_eq!(res.status, 500, "{uri}");
        let body = String::from_utf8_lossy(&res.body);
        assert!(
            !body.contains("does not") && !body.contains("decode"),
            "internal detail leaked: {body}"
        );
    }
}

/// Filters read a trait's value from the row's copy. On SQLite, rows without one are probed in the
/// trait tables; PostgreSQL's rows all have one. Every comparison must give the same events either
/// way, for each type and operator, at the edges of each type (the extreme integers, floats that
/// `jsonb` writes in another notation, strings that sort differently outside the "C" collation):
/// SQLite's answers from its copies against its answers from the trait tables, and PostgreSQL's
/// answers from its documents against SQLite's from the trait tables.
async fn filters_match_the_same_events_with_and_without_copies(backend: Backend) {
    let with_copies = filter_answers(backend, false).await;
    // The answers are not all alike: the comparisons select different events.
    let distinct: std::collections::BTreeSet<_> =
        with_copies.iter().map(|(_, ids)| ids.clone()).collect();
    assert!(
        distinct.len() > 40,
        "only {} distinct answers",
        distinct.len()
    );
    assert!(with_copies.iter().any(|(_, ids)| ids.is_empty()));
    assert!(with_copies.iter().any(|(_, ids)| ids.len() == 24 - 5));

    let from_tables = filter_answers(Backend::Sqlite, true).await;
    assert_eq!(with_copies.len(), from_tables.len());
    for ((uri, a), (_, b)) in with_copies.iter().zip(&from_tables) {
        assert_eq!(
            a, b,
            "{uri}: {backend:?} from the copies, then SQLite from the trait tables"
        );
    }
}

/// The events each query of the filter mix returns on a new store of `backend` holding the same
/// 24 events, read from the rows' copies, or, with `from_tables` (SQLite only), from the trait
/// tables.
async fn filter_answers(backend: Backend, from_tables: bool) -> Vec<(String, Vec<String>)> {
    let column = copy_column(backend);
    let mut config = almanac::config::Config::default();
    config.audit.ingest = false;
    let app = token_app_with(backend, config).await;
    let strings = ["", "B", "a", "a b", "ä", "Z", "compute-1", "\"q\"", "\\"];
    let integers = [i64::MIN, -1, 0, 1, 2048, 2049, i64::MAX];
    let floats = [
        "-1.7976931348623157e308",
        "-1.5",
        "0",
        "5e-324",
        "0.1",
        "0.30000000000000004",
        "1.5",
        "1e300",
    ];
    let datetimes = [
        "1970-01-01T00:00:00",
        "2025-11-25T06:57:30.876213",
        "2025-11-25T06:57:30.876214",
        "9999-12-31T23:59:59.999999",
    ];
    let events: Vec<_> = (0..24)
        .map(|i| {
            let mut traits = vec![s("project_id", "p1"), s("user_id", "u1")];
            // Each event lacks one trait type in turn, so a missing trait is compared too.
            if i % 5 != 0 {
                traits.push(s("name", strings[i % strings.len()]));
            }
            if i % 5 != 1 {
                traits.push(t("n", "integer", &integers[i % integers.len()].to_string()));
            }
            if i % 5 != 2 {
                traits.push(t("x", "float", floats[i % floats.len()]));
            }
            if i % 5 != 3 {
                traits.push(t("at", "datetime", datetimes[i % datetimes.len()]));
            }
            event(
                &format!("ev-{i:02}"),
                "compute.instance.update",
                &format!("2025-12-01T00:00:{i:02}"),
                json!(traits),
            )
        })
        .collect();
    app.ingest_as_admin(&json!(events)).await;

    let mut queries = Vec::new();
    let mut add = |name: &str, ty: &str, value: &str| {
        for op in ["eq", "ne", "lt", "le", "gt", "ge"] {
            let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
            queries.push(format!(
                "{ALL}&q.type=&q.field={name}&q.op={op}&q.value={value}&q.type={ty}"
            ));
        }
    };
    for v in strings {
        add("name", "string", v);
    }
    for v in integers {
        add("n", "integer", &v.to_string());
    }
    for v in floats {
        add("x", "float", v);
    }
    for v in datetimes {
        add("at", "datetime", v);
    }
    // Two filters, one of them able to drive the query from its index.
    queries.push(format!(
        "{ALL}&q.type=&q.field=name&q.op=eq&q.value=a&q.type=string&q.field=n&q.op=ge&q.value=0&q.type=integer"
    ));

    let run = |queries: &[String]| {
        let app = &app;
        let queries = queries.to_vec();
        async move {
            let mut pages = Vec::new();
            for uri in queries {
                let res = app
                    .app
                    .send(bearer(TestRequest::get().uri(&uri), &app.admin))
                    .await;
                assert_eq!(
                    res.status,
                    200,
                    "{uri}: {}",
                    String::from_utf8_lossy(&res.body)
                );
                let page: Vec<serde_json::Value> =
                    serde_json::from_slice(&res.body).expect("a JSON list");
                let ids: Vec<String> = page
                    .iter()
                    .map(|e| e["message_id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                pages.push((uri, ids));
            }
            pages
        }
    };
    let mut conn = app.db.get().expect("a connection");
    let without = count(
        &mut conn,
        &format!("SELECT COUNT(*) AS n FROM events WHERE {column} IS NULL"),
    );
    assert_eq!(without, 0, "every row stored has its copy");
    if from_tables {
        assert_eq!(
            backend,
            Backend::Sqlite,
            "PostgreSQL rows always have their copy"
        );
        conn.batch_execute(&format!("UPDATE events SET {column} = NULL"))
            .expect("clear the copies");
    }
    run(&queries).await
}
