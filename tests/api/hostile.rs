//! Hostile input at the API: arbitrary query strings and bodies on `GET /v2/events`, arbitrary
//! JSON and NDJSON (and bytes) on `POST /v2/events`. Never a 5xx; every 4xx is the error
//! envelope; and a rejected batch stores nothing (what is stored is exactly the sum of what the
//! 201s said they stored).
//!
//! The cases come from proptest strategies run with a fixed seed (`TestRunner::deterministic`),
//! generated up front because the requests are async; there is no shrinking, so a failure prints
//! the whole case.

use actix_web::http::StatusCode;
use actix_web::test::TestRequest;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{json, Value};

use almanac::auth::AuthMode;
use almanac::config::Config;

use crate::backend_tests;
use crate::support::{admin, app_with, Backend};

backend_tests!(hostile_queries_and_batches_never_get_a_server_error);

const CASES: usize = 300;

/// A query string key: mostly the ones the parser knows, in all three encodings, sometimes junk.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "q.field",
            "q.op",
            "q.value",
            "q.type",
            "limit",
            "sort",
            "marker",
            "q",
            "q[0].field",
            "q[0].op",
            "q[0].value",
            "q[0].type",
            "q[1].field",
            "q[1].value",
            "q[99999999999].field",
            "q[-1].op",
            "q.field[]",
            "all_tenants",
        ])
        .prop_map(str::to_string),
        "[a-zA-Z0-9.\\[\\]_%-]{0,10}",
    ]
}

/// A query string value: words the parser gives meaning to, odd numbers and dates, raw percent
/// sequences (invalid escapes, partial UTF-8), or any text (percent-encoded).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "all_tenants",
            "event_type",
            "message_id",
            "start_timestamp",
            "end_timestamp",
            "project_id",
            "eq",
            "ne",
            "lt",
            "le",
            "gt",
            "ge",
            "like",
            "string",
            "integer",
            "float",
            "datetime",
            "true",
            "false",
            "2014-01-01T05:00:00",
            "2014-13-45",
            "99999-01-01",
            "0",
            "-1",
            "10001",
            "18446744073709551616",
            "1e400",
            "NaN",
            "inf",
            "generated:desc",
            "message_id:sideways",
            ":",
            "%00",
            "%zz",
            "%C3",
            "%F0%9F",
        ])
        .prop_map(str::to_string),
        any::<String>().prop_map(|s| form_urlencoded::byte_serialize(s.as_bytes()).collect()),
    ]
}

fn query_string() -> impl Strategy<Value = String> {
    prop::collection::vec((key(), value()), 0..8).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(vec![
                        "message_id",
                        "event_type",
                        "generated",
                        "traits",
                        "raw",
                        "name",
                        "type",
                        "value",
                        "q",
                        "limit",
                    ])
                    .prop_map(str::to_string),
                    ".{0,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Something shaped like an event, with any of its parts wrong.
fn event_like() -> impl Strategy<Value = Value> {
    let trait_like = prop_oneof![
        (
            ".{0,6}",
            prop::sample::select(vec!["string", "integer", "float", "datetime", "bogus", ""]),
            json_value()
        )
            .prop_map(|(n, t, v)| json!({"name": n, "type": t, "value": v})),
        (".{0,6}", json_value()).prop_map(|(n, v)| json!({"name": n, "value": v})),
        (".{0,6}", 0..6u8, json_value()).prop_map(|(n, t, v)| json!([n, t, v])),
        json_value(),
    ];
    (
        prop::option::of(".{0,10}"),
        prop::option::of(".{0,10}"),
        prop::option::of(prop_oneof![
            Just("2014-01-01T05:00:00Z".to_string()),
            ".{0,25}"
        ]),
        prop::collection::vec(trait_like, 0..5),
        prop::option::of(json_value()),
    )
        .prop_map(|(id, ty, generated, traits, raw)| {
            let mut e = serde_json::Map::new();
            if let Some(id) = id {
                e.insert("message_id".into(), json!(id));
            }
            e.insert(
                "event_type".into(),
                json!(ty.unwrap_or_else(|| "hostile".into())),
            );
            if let Some(g) = generated {
                e.insert("generated".into(), json!(g));
            }
            e.insert("traits".into(), Value::Array(traits));
            if let Some(raw) = raw {
                e.insert("raw".into(), raw);
            }
            Value::Object(e)
        })
}

/// A valid event with odd but acceptable content (any string text, extreme numbers, any raw
/// JSON), so that batches are accepted too.
fn valid_event() -> impl Strategy<Value = Value> {
    let trait_value = prop_oneof![
        ".{0,20}".prop_map(|v| json!({"name": "s", "type": "string", "value": v})),
        any::<i64>().prop_map(|v| json!({"name": "i", "type": "integer", "value": v})),
        (-1e300f64..1e300).prop_map(|v| json!({"name": "f", "type": "float", "value": v})),
        Just(json!({"name": "d", "type": "datetime", "value": "2014-01-01T05:00:00.5+02:00"})),
    ];
    (
        "[a-zA-Z0-9_.-]{1,12}",
        prop::collection::vec(trait_value, 0..4),
        json_value(),
    )
        .prop_map(|(id, mut traits, raw)| {
            // One trait per (name, type): the strategies give each type one name.
            traits.sort_by_key(|t| t["type"].to_string());
            traits.dedup_by_key(|t| t["type"].to_string());
            json!({"message_id": id, "event_type": "hostile.valid", "traits": traits, "raw": raw})
        })
}

#[derive(Debug, Clone)]
struct Post {
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn post() -> impl Strategy<Value = Post> {
    let content_type = prop::sample::select(vec![
        Some("application/json"),
        Some("application/json"),
        Some("application/x-ndjson"),
        Some("text/plain"),
        None,
    ]);
    let body = prop_oneof![
        prop::collection::vec(valid_event(), 1..4)
            .prop_map(|events| serde_json::to_vec(&events).expect("JSON")),
        prop::collection::vec(event_like(), 0..4)
            .prop_map(|events| { serde_json::to_vec(&events).expect("JSON") }),
        prop::collection::vec(event_like(), 0..4).prop_map(|events| {
            events
                .iter()
                .map(|e| e.to_string() + "\n")
                .collect::<String>()
                .into_bytes()
        }),
        json_value().prop_map(|v| serde_json::to_vec(&v).expect("JSON")),
        prop::collection::vec(any::<u8>(), 0..64),
    ];
    (content_type, body).prop_map(|(content_type, body)| Post { content_type, body })
}

fn cases<S: Strategy>(strategy: S, runner: &mut TestRunner) -> Vec<S::Value> {
    (0..CASES)
        .map(|_| strategy.new_tree(runner).expect("a case").current())
        .collect()
}

async fn hostile_queries_and_batches_never_get_a_server_error(backend: Backend) {
    let config = Config {
        auth: AuthMode::Headers,
        ..Config::default()
    };
    let app = app_with(backend, config).await;
    let mut runner = TestRunner::deterministic();

    let gets = cases(
        (query_string(), prop::option::of(json_value())),
        &mut runner,
    );
    let mut statuses = std::collections::BTreeMap::<(&str, u16), usize>::new();
    for (query, body) in gets {
        let uri = format!("/v2/events?{query}");
        // A request line no client could send is not a case.
        if uri.parse::<actix_web::http::Uri>().is_err() {
            continue;
        }
        let mut req = TestRequest::get().uri(&uri);
        if let Some(body) = &body {
            req = req.set_json(body);
        }
        let res = app.send(admin(req)).await;
        check(
            res.status,
            &res.body,
            || res.error(res.status.as_u16()),
            &uri,
        );
        *statuses.entry(("GET", res.status.as_u16())).or_default() += 1;
    }

    let mut acknowledged = 0u64;
    let posts = cases(post(), &mut runner);
    for case in posts {
        let mut req = TestRequest::post()
            .uri("/v2/events")
            .set_payload(case.body.clone());
        if let Some(ct) = case.content_type {
            req = req.insert_header(("Content-Type", ct));
        }
        let res = app.send(admin(req)).await;
        let what = format!("{case:?} ({})", String::from_utf8_lossy(&case.body));
        check(
            res.status,
            &res.body,
            || res.error(res.status.as_u16()),
            &what,
        );
        *statuses.entry(("POST", res.status.as_u16())).or_default() += 1;
        if res.status == StatusCode::CREATED {
            acknowledged += res.json()["stored"].as_u64().expect("stored");
        }
    }

    // The cases reach both sides of the parsers: accepted and refused, queries and batches.
    let count = |method: &str, status: u16| statuses.get(&(method, status)).copied().unwrap_or(0);
    let sent: usize = statuses.values().sum();
    assert!(
        sent > CASES * 3 / 2,
        "too few cases were sendable: {statuses:?}"
    );
    for (method, status) in [("GET", 200), ("GET", 400), ("POST", 201), ("POST", 400)] {
        assert!(
            count(method, status) > 0,
            "no {method} got {status}: {statuses:?}"
        );
    }

    // Nothing but what the 201s reported is stored: no rejected batch left anything behind.
    let all = app
        .get_admin("/v2/events?q.field=all_tenants&q.value=true&limit=10000")
        .await;
    // Almanac's own audit records (one per accepted batch) are not the client's events.
    let stored = all
        .ok()
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| {
            !e["event_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("almanac."))
        })
        .count() as u64;
    assert_eq!(stored, acknowledged);
}

/// Never a 5xx; a 4xx has the error envelope (`envelope` asserts it).
#[track_caller]
fn check(status: StatusCode, body: &[u8], envelope: impl FnOnce() -> String, case: &str) {
    assert!(
        !status.is_server_error(),
        "{status} for {case}: {}",
        String::from_utf8_lossy(body)
    );
    if status.is_client_error() {
        envelope();
    }
}
