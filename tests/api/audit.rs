//! The audit trail: Almanac's own actions as `almanac.*` events, with the actor, target, request
//! id and remote address, never a secret; trackers that turn off; rate-limited failure records;
//! and the reserved prefix clients cannot write.

use std::time::{Duration, Instant};

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use almanac::auth::Access;
use almanac::config::Config;

use crate::backend_tests;
use crate::support::{bearer, event, make_token, s, token_app, token_app_with, Backend};

backend_tests!(
    token_actions_are_recorded_with_actor_and_target,
    ingest_batches_are_recorded_with_counts,
    authentication_failures_are_recorded_and_rate_limited,
    clients_cannot_write_reserved_types,
    trackers_turn_off_and_actions_are_ignored,
);

/// The admin's query for audit records of one type (all tenants).
fn records_of(event_type: &str) -> String {
    format!(
        "/v2/events?q.field=all_tenants&q.op=eq&q.value=true&q.field=event_type&q.op=eq&q.value={event_type}"
    )
}

/// A trait's value in an event as the API renders it.
fn trait_of<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    event["traits"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)
        .and_then(|t| t["value"].as_str())
}

async fn token_actions_are_recorded_with_actor_and_target(backend: Backend) {
    let t = token_app(backend).await;
    let res = t
        .app
        .send(bearer(
            TestRequest::post()
                .uri("/v2/tokens")
                .set_json(json!({"user_id": "svc", "project_id": "ops", "roles": ["reader"], "access": "read"})),
            &t.admin,
        ))
        .await;
    let create_request = res.request_id();
    let made = res.json();
    let (id, token) = (
        made["id"].as_str().unwrap(),
        made["token"].as_str().unwrap(),
    );
    let res = t
        .app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{id}")),
            &t.admin,
        ))
        .await;
    let revoke_request = res.request_id();
    res.ok();
    let admin_id = t.admin.split('_').nth(1).unwrap();

    let created = t
        .app
        .send(bearer(
            TestRequest::get().uri(&records_of("almanac.token.create")),
            &t.admin,
        ))
        .await;
    let body = String::from_utf8_lossy(&created.body).to_string();
    let secret = token.splitn(3, '_').nth(2).unwrap();
    assert!(!body.contains(secret), "no secret in the audit trail");
    let created = created.ok();
    let created = created.as_array().unwrap();
    assert_eq!(created.len(), 1, "{created:?}");
    let c = &created[0];
    assert_eq!(trait_of(c, "user_id"), Some("admin-user"));
    assert_eq!(trait_of(c, "project_id"), Some("admin-project"));
    assert_eq!(trait_of(c, "token_id"), Some(admin_id));
    assert_eq!(trait_of(c, "target"), Some(id));
    assert_eq!(trait_of(c, "request_id"), Some(create_request.as_str()));
    assert_eq!(trait_of(c, "token_user_id"), Some("svc"));
    assert_eq!(trait_of(c, "token_access"), Some("read"));
    assert_eq!(trait_of(c, "token_roles"), Some("reader"));
    assert_eq!(c["raw"]["action"], "almanac.token.create");

    let revoked = t
        .app
        .send(bearer(
            TestRequest::get().uri(&records_of("almanac.token.revoke")),
            &t.admin,
        ))
        .await
        .ok();
    let revoked = revoked.as_array().unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(trait_of(&revoked[0], "target"), Some(id));
    assert_eq!(
        trait_of(&revoked[0], "request_id"),
        Some(revoke_request.as_str())
    );

    // "Who created tokens since yesterday?": a filter on the actor and a time window.
    let yesterday = chrono::Utc::now() - chrono::Duration::days(1);
    let uri = format!(
        "{}&q.field=user_id&q.op=eq&q.value=admin-user&q.field=start_timestamp&q.op=ge&q.value={}",
        records_of("almanac.token.create"),
        yesterday.format("%Y-%m-%dT%H:%M:%S")
    );
    let found = t
        .app
        .send(bearer(TestRequest::get().uri(&uri), &t.admin))
        .await
        .ids();
    assert_eq!(found.len(), 1);

    // A member sees no audit records of others.
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    let ids = t
        .app
        .send(bearer(TestRequest::get().uri("/v2/events"), &member))
        .await
        .ids();
    assert!(ids.is_empty(), "{ids:?}");
}

async fn ingest_batches_are_recorded_with_counts(backend: Backend) {
    let t = token_app(backend).await;
    let publisher = make_token(&t.db, "pub", "ops", &["admin"], Access::Ingest, None);
    let publisher_id = publisher.split('_').nth(1).unwrap();
    let batch = json!([
        event(
            "a",
            "x",
            "2014-01-01T00:00:00",
            json!([s("project_id", "p1")])
        ),
        event("b", "x", "2014-01-01T00:00:01", json!([])),
        event("a", "x", "2014-01-01T00:00:02", json!([])),
    ]);
    let post = |body: Value| {
        bearer(
            TestRequest::post().uri("/v2/events").set_json(body),
            &publisher,
        )
    };
    let res = t.app.send(post(batch.clone())).await;
    assert_eq!(res.status.as_u16(), 201);
    let first_request = res.request_id();
    assert_eq!(t.app.send(post(batch)).await.status.as_u16(), 201);
    // A rejected batch is not an ingest, and leaves no record.
    let bad = json!([event("c", "", "2014-01-01T00:00:00", json!([]))]);
    t.app.send(post(bad)).await.error(400);

    let records = t
        .app
        .send(bearer(
            TestRequest::get().uri(&format!(
                "{}&sort=generated:asc",
                records_of("almanac.events.ingest")
            )),
            &t.admin,
        ))
        .await
        .ok();
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    let counts = |r: &Value| {
        (
            trait_of(r, "received").map(str::to_string),
            trait_of(r, "stored").map(str::to_string),
            trait_of(r, "duplicates").map(str::to_string),
        )
    };
    let first = records
        .iter()
        .find(|r| trait_of(r, "request_id") == Some(first_request.as_str()))
        .expect("the first batch's record");
    assert_eq!(
        counts(first),
        (Some("3".into()), Some("2".into()), Some("1".into()))
    );
    let second = records.iter().find(|r| *r != first).unwrap();
    assert_eq!(
        counts(second),
        (Some("3".into()), Some("0".into()), Some("3".into()))
    );
    for r in records {
        assert_eq!(trait_of(r, "user_id"), Some("pub"));
        assert_eq!(trait_of(r, "project_id"), Some("ops"));
        assert_eq!(trait_of(r, "token_id"), Some(publisher_id));
    }
}

/// Polls the admin's view of one audit type until `done` says so, or 10 s pass.
macro_rules! poll_records {
    ($t:expr, $event_type:expr, $done:expr) => {{
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = $t
                .app
                .send(bearer(
                    TestRequest::get().uri(&records_of($event_type)),
                    &$t.admin,
                ))
                .await
                .ok();
            let found = found.as_array().unwrap().clone();
            if $done(&found) || Instant::now() > deadline {
                break found;
            }
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }};
}

async fn authentication_failures_are_recorded_and_rate_limited(backend: Backend) {
    let mut config = Config::default();
    config.audit.auth_failures_per_minute = 3;
    let t = token_app_with(backend, config).await;
    let wrong = format!("{}x", &t.admin[..t.admin.len() - 1]);
    for _ in 0..10 {
        let res = t
            .app
            .send(bearer(TestRequest::get().uri("/v2/events"), &wrong))
            .await;
        res.error(401);
    }
    t.app
        .send(TestRequest::get().uri("/v2/events"))
        .await
        .error(401);
    let found = poll_records!(t, "almanac.auth.failure", |f: &Vec<Value>| f.len() >= 3);
    assert_eq!(found.len(), 3, "at most 3 a minute: {found:?}");
    let admin_id = t.admin.split('_').nth(1).unwrap();
    for r in &found {
        assert_eq!(trait_of(r, "target"), Some(admin_id), "the public id only");
        assert_eq!(trait_of(r, "reason"), Some("wrong secret"));
        assert!(trait_of(r, "request_id").is_some_and(|id| id.starts_with("req-")));
        assert_eq!(trait_of(r, "user_id"), None, "no actor is known");
        let text = r.to_string();
        assert!(
            !text.contains(&wrong[21..]),
            "no presented secret in {text}"
        );
    }
    // Nothing more arrives later: the rest were counted, not written.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let again = poll_records!(t, "almanac.auth.failure", |_: &Vec<Value>| true);
    assert_eq!(again.len(), 3);
}

async fn clients_cannot_write_reserved_types(backend: Backend) {
    let t = token_app(backend).await;
    let res = t
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([
                event("ok", "x", "2014-01-01T00:00:00", json!([])),
                event(
                    "forged",
                    "almanac.token.create",
                    "2014-01-01T00:00:00",
                    json!([])
                ),
            ])),
            &t.admin,
        ))
        .await;
    let text = res.error(400);
    let body = res.json();
    let errors = body["error_message"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{text}");
    assert_eq!(errors[0]["index"], 1);
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("reserved"),
        "{body}"
    );
    for id in ["ok", "forged"] {
        t.app
            .send(bearer(
                TestRequest::get().uri(&format!("/v2/events/{id}")),
                &t.admin,
            ))
            .await
            .error(404);
    }
}

async fn trackers_turn_off_and_actions_are_ignored(backend: Backend) {
    let mut config = Config::default();
    config.audit.ingest = false;
    config.audit.auth_failures = false;
    config.audit.ignore_actions = vec!["almanac.token.create".into()];
    let t = token_app_with(backend, config).await;
    let made = t
        .app
        .send(bearer(
            TestRequest::post()
                .uri("/v2/tokens")
                .set_json(json!({"user_id": "u", "project_id": "p"})),
            &t.admin,
        ))
        .await
        .json();
    t.app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{}", made["id"].as_str().unwrap())),
            &t.admin,
        ))
        .await
        .ok();
    t.app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([event(
                "e",
                "x",
                "2014-01-01T00:00:00",
                json!([])
            )])),
            &t.admin,
        ))
        .await;
    t.app
        .send(TestRequest::get().uri("/v2/events"))
        .await
        .error(401);
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let all = t
        .app
        .send(bearer(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=true"),
            &t.admin,
        ))
        .await
        .ok();
    let types: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    // The event, and the revocation, which is still tracked; nothing else.
    let mut sorted = types.clone();
    sorted.sort();
    assert_eq!(sorted, ["almanac.token.revoke", "x"], "{types:?}");
    assert!(types.contains(&"almanac.token.revoke"), "{types:?}");
    assert!(!types.contains(&"almanac.token.create"), "{types:?}");
    assert!(!types.contains(&"almanac.events.ingest"), "{types:?}");
    assert!(!types.contains(&"almanac.auth.failure"), "{types:?}");
}
