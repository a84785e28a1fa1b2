//! Tenant isolation in token mode: no route gives a non-admin another tenant's events, whatever
//! the q encoding, filters, all_tenants or markers they send.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use almanac::auth::Access;

use crate::backend_tests;
use crate::support::{bearer, event, make_token, s, t, token_app, Backend};

backend_tests!(no_route_leaks_another_tenants_events);

/// The member's own events (u1 in p1).
const OWN: [&str; 2] = ["own-1", "own-2"];
const FOREIGN: [&str; 4] = ["p1-u2", "p2-u1", "p2-u2", "no-tenant"];

fn seed() -> Value {
    let tenant = |id: &str, minute: u32, project: Option<&str>, user: Option<&str>| {
        let mut traits = vec![s("host", "h1"), t("memory_mb", "integer", "2048")];
        if let Some(p) = project {
            traits.push(s("project_id", p));
        }
        if let Some(u) = user {
            traits.push(s("user_id", u));
        }
        event(
            id,
            "compute.instance.create.end",
            &format!("2014-01-01T00:{minute:02}:00"),
            Value::Array(traits),
        )
    };
    json!([
        tenant("own-1", 1, Some("p1"), Some("u1")),
        tenant("p1-u2", 2, Some("p1"), Some("u2")),
        tenant("p2-u1", 3, Some("p2"), Some("u1")),
        tenant("own-2", 4, Some("p1"), Some("u1")),
        tenant("p2-u2", 5, Some("p2"), Some("u2")),
        tenant("no-tenant", 6, None, None),
    ])
}

/// The same filters in the three q encodings, as (uri, JSON body).
fn encodings(filters: &[(&str, &str, &str)]) -> Vec<(String, Option<Value>)> {
    let mut parallel = String::new();
    let mut indexed = String::new();
    let mut items = Vec::new();
    for (i, (field, op, value)) in filters.iter().enumerate() {
        parallel.push_str(&format!("q.field={field}&q.op={op}&q.value={value}&"));
        indexed.push_str(&format!(
            "q[{i}].field={field}&q[{i}].op={op}&q[{i}].value={value}&"
        ));
        items.push(json!({"field": field, "op": op, "value": value}));
    }
    vec![
        (format!("/v2/events?{parallel}"), None),
        (format!("/v2/events?{indexed}"), None),
        ("/v2/events".to_string(), Some(json!({"q": items}))),
    ]
}

async fn no_route_leaks_another_tenants_events(backend: Backend) {
    let app = token_app(backend).await;
    app.ingest_as_admin(&seed()).await;
    let member = make_token(&app.db, "u1", "p1", &["member"], Access::Full, None);
    let reader = make_token(&app.db, "u1", "p1", &["member"], Access::Read, None);

    let probes: Vec<Vec<(&str, &str, &str)>> = vec![
        vec![],
        vec![("project_id", "eq", "p2")],
        vec![("user_id", "eq", "u2")],
        vec![("project_id", "ne", "p1")],
        vec![("user_id", "ge", "")],
        vec![("all_tenants", "eq", "true")],
        vec![("host", "eq", "h1")],
        vec![("memory_mb", "ge", "0")],
        vec![("event_type", "eq", "compute.instance.create.end")],
        vec![("message_id", "eq", "p2-u1")],
        vec![("start_timestamp", "ge", "2000-01-01T00:00:00")],
    ];
    for token in [&member, &reader] {
        for filters in &probes {
            for (uri, body) in encodings(filters) {
                let mut req = TestRequest::get().uri(&uri);
                if let Some(body) = &body {
                    req = req.set_json(body);
                }
                let res = app.app.send(bearer(req, token)).await;
                // A 4xx (a filter the member may not use) leaks nothing either.
                if res.status.is_client_error() {
                    res.error(res.status.as_u16());
                    continue;
                }
                for id in res.ids() {
                    assert!(
                        OWN.contains(&id.as_str()),
                        "{filters:?} via {uri} {body:?}: {id}"
                    );
                }
            }
        }
        // Show by id.
        for id in FOREIGN {
            let text = app
                .app
                .send(bearer(
                    TestRequest::get().uri(&format!("/v2/events/{id}")),
                    token,
                ))
                .await
                .error(404);
            assert_eq!(text, format!("Event {id} Not Found"));
        }
        for id in OWN {
            app.app
                .send(bearer(
                    TestRequest::get().uri(&format!("/v2/events/{id}")),
                    token,
                ))
                .await
                .ok();
        }
        // Markers of other tenants are unknown, in every encoding of the page request.
        for id in FOREIGN {
            for uri in [
                format!("/v2/events?marker={id}&limit=1"),
                format!("/v2/events?marker={id}&sort=generated:desc"),
            ] {
                let text = app
                    .app
                    .send(bearer(TestRequest::get().uri(&uri), token))
                    .await
                    .error(400);
                assert!(
                    text.starts_with(&format!("Marker {id} not found")),
                    "{text}"
                );
            }
            let text = app
                .app
                .send(bearer(
                    TestRequest::get()
                        .uri("/v2/events")
                        .set_json(json!({"marker": id})),
                    token,
                ))
                .await
                .error(400);
            assert!(
                text.starts_with(&format!("Marker {id} not found")),
                "{text}"
            );
        }
        // Event types and traits stay admin-only, as Panko.
        for uri in [
            "/v2/event_types",
            "/v2/event_types/compute.instance.create.end",
            "/v2/event_types/compute.instance.create.end/traits",
            "/v2/event_types/compute.instance.create.end/traits/project_id",
        ] {
            let text = app
                .app
                .send(bearer(TestRequest::get().uri(uri), token))
                .await
                .error(403);
            assert_eq!(text, "RBAC Authorization Failed", "{uri}");
        }
    }
    // Paging through the member's own events visits exactly them.
    let first = app
        .app
        .send(bearer(
            TestRequest::get().uri("/v2/events?limit=1"),
            &member,
        ))
        .await
        .ids();
    assert_eq!(first, ["own-1"]);
    let next = app
        .app
        .send(bearer(
            TestRequest::get().uri("/v2/events?limit=1&marker=own-1"),
            &member,
        ))
        .await
        .ids();
    assert_eq!(next, ["own-2"]);
}
