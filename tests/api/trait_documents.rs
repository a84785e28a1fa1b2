//! PostgreSQL keeps a copy of each event's traits in its row (`events.traits`, see
//! `store::trait_doc`) and builds pages from it. Rows stored before that column existed have no
//! copy, and their traits must still come from the trait tables: both kinds of row give the same
//! page, also mixed in one page.

use actix_web::test::TestRequest;
use diesel::connection::SimpleConnection;
use serde_json::json;

use crate::support::{bearer, count, event, s, t, token_app_with, Backend};

const ALL: &str = "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&limit=100";

#[actix_web::test]
async fn postgres_rows_without_a_trait_document_give_the_same_pages() {
    let mut config = almanac::config::Config::default();
    config.audit.ingest = false;
    let app = token_app_with(Backend::Postgres, config).await;
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
    let res = app
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(&events),
            &app.admin,
        ))
        .await;
    assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));

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

    // Every row stored now has its document: the pages above were read from them.
    let mut conn = app.db.get().expect("a connection");
    let without = count(
        &mut conn,
        "SELECT COUNT(*) AS n FROM events WHERE traits IS NULL",
    );
    assert_eq!(without, 0);

    // As if ev-0, ev-3 and ev-5 had been stored before the migration.
    conn.batch_execute(
        "UPDATE events SET traits = NULL WHERE message_id IN ('ev-0', 'ev-3', 'ev-5')",
    )
    .expect("clear three documents");
    let after = (page(ALL).await, page(one).await, page(filtered).await);
    assert_eq!(
        String::from_utf8_lossy(&after.0),
        String::from_utf8_lossy(&before.0)
    );
    assert_eq!(after.1, before.1);
    assert_eq!(after.2, before.2);

    // A document the store cannot read is a 500, never an event shown without its traits.
    conn.batch_execute("UPDATE events SET traits = '{\"s\":[[1]]}' WHERE message_id = 'ev-1'")
        .expect("break one document");
    let res = app
        .app
        .send(bearer(TestRequest::get().uri(ALL), &app.admin))
        .await;
    assert_eq!(res.status, 500);
    let body = String::from_utf8_lossy(&res.body);
    assert!(
        !body.contains("does not parse"),
        "internal detail leaked: {body}"
    );
}
