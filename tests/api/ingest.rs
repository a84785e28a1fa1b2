//! `POST /v2/events`: ingestion of JSON-array and NDJSON batches, validation (a bad batch stores
//! nothing), duplicates, defaults, value rendering, limits, authorization and tenancy traits.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{
    admin, app, app_with, as_user, event, headers_config, member, s, t, Backend, Resp, TestApp,
};

backend_tests!(
    concurrent_batches_with_new_names_all_succeed,
    raw_nesting_depth_is_limited,
    good_batch_is_stored_and_read_back,
    ndjson_batch_skips_blank_lines,
    ndjson_bad_lines_are_indexed_among_non_blank_lines,
    one_bad_event_rejects_the_whole_batch,
    several_bad_events_are_all_listed,
    duplicates_within_a_batch_first_wins,
    duplicates_across_batches_first_wins,
    large_batch_crosses_every_chunk_boundary,
    event_without_traits,
    event_without_message_id_gets_a_uuid,
    event_without_generated_gets_the_receive_time,
    raw_is_kept_verbatim,
    raw_defaults_to_an_empty_object,
    bigints_round_trip_exactly,
    floats_render_like_python_repr,
    negative_zero_float_is_stored_as_zero,
    datetimes_are_stored_as_utc,
    types_are_inferred_from_json_values,
    ceilometer_array_traits,
    same_name_with_two_types_is_accepted,
    non_finite_floats_are_rejected,
    nan_literal_is_malformed_json,
    over_long_string_is_rejected,
    custom_string_limit_applies,
    the_largest_string_limit_is_storable_and_filterable,
    awkward_strings_round_trip_and_match,
    duplicate_trait_name_and_type_is_rejected,
    empty_batch_is_rejected,
    malformed_json_is_rejected,
    json_object_body_is_rejected,
    wrong_content_type_is_415,
    missing_content_type_is_415,
    content_type_parameters_are_accepted,
    content_type_is_case_insensitive,
    message_ids_with_special_characters_are_found_by_id,
    datetimes_at_the_ends_of_the_range,
    batch_over_max_events_is_413,
    body_over_max_bytes_is_413,
    unknown_event_keys_are_rejected,
    nul_characters_are_rejected,
    bad_values_are_rejected_with_reasons,
    too_many_traits_are_rejected,
    no_identity_is_403,
    member_is_403,
    tenancy_traits_scope_members,
    integer_project_id_does_not_grant_visibility,
);

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

const ALL: &str = "/v2/events?q.field=all_tenants&q.value=true&limit=10000";

fn text(res: &Resp) -> String {
    String::from_utf8(res.body.to_vec()).expect("a UTF-8 body")
}

/// Every stored event, as an admin with all_tenants, as body text.
async fn all_text<S, B>(app: &TestApp<S>) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = app.get_admin(ALL).await;
    res.ok();
    text(&res)
}

/// Every stored event, as JSON.
async fn all_events<S, B>(app: &TestApp<S>) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.get_admin(ALL).await.ok()
}

/// The message_ids of every stored event.
async fn all_ids<S, B>(app: &TestApp<S>) -> Vec<String>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.get_admin(ALL).await.ids()
}

/// What the store holds: every event and every event type.
async fn snapshot<S, B>(app: &TestApp<S>) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let events = all_text(app).await;
    let types = app.get_admin("/v2/event_types").await;
    types.ok();
    (events, text(&types))
}

/// Stores one event so that "nothing changed" is checked against a non-empty store.
async fn seed<S, B>(app: &TestApp<S>) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.ingest(json!([event(
        "seed",
        "seed.type",
        "2014-01-01T00:00:00",
        json!([s("k", "v"), t("n", "integer", "1")])
    )]))
    .await;
    let snap = snapshot(app).await;
    assert!(snap.0.contains("\"seed\""), "{}", snap.0);
    snap
}

/// POSTs a body with a content type, as an admin.
async fn post_body<S, B>(app: &TestApp<S>, content_type: &str, body: impl Into<String>) -> Resp
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.send(admin(
        TestRequest::post()
            .uri("/v2/events")
            .insert_header(("Content-Type", content_type))
            .set_payload(body.into()),
    ))
    .await
}

/// Asserts a 400 for an invalid batch and returns error_message.errors.
#[track_caller]
fn invalid_batch(res: &Resp, bad: usize) -> Vec<Value> {
    let fault = res.error(400);
    let expected = match bad {
        1 => "1 event of the batch is invalid; nothing was stored".to_string(),
        n => format!("{n} events of the batch are invalid; nothing was stored"),
    };
    assert_eq!(fault, expected);
    res.json()["error_message"]["errors"]
        .as_array()
        .expect("error_message.errors")
        .clone()
}

/// The one reason a one-event batch is refused for.
async fn single_reason<S, B>(app: &TestApp<S>, event: Value) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = app.post_events(json!([event])).await;
    let errors = invalid_batch(&res, 1);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["index"], 0);
    errors[0]["reason"].as_str().expect("a reason").to_string()
}

/// The single event of the store with this message_id, read back through the list.
async fn stored<S, B>(app: &TestApp<S>, message_id: &str) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let uri = format!("{ALL}&q.field=message_id&q.value={message_id}");
    let body = app.get_admin(&uri).await.ok();
    let events = body.as_array().expect("an array");
    assert_eq!(events.len(), 1, "{body}");
    events[0].clone()
}

/// The traits of one stored event.
async fn stored_traits<S, B>(app: &TestApp<S>, message_id: &str) -> Value
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    stored(app, message_id).await["traits"].clone()
}

/// `GET /v2/events` over all tenants with these q items `(field, op, value, type)`, sent as the
/// four parallel arrays (which must have equal lengths).
fn query(items: &[(&str, &str, &str, &str)]) -> String {
    let mut qs = form_urlencoded::Serializer::new(String::new());
    qs.append_pair("limit", "10000");
    for (field, op, value, ty) in [("all_tenants", "eq", "true", "")].iter().chain(items) {
        qs.append_pair("q.field", field)
            .append_pair("q.op", op)
            .append_pair("q.value", value)
            .append_pair("q.type", ty);
    }
    format!("/v2/events?{}", qs.finish())
}

fn tr(name: &str, value: &str, trait_type: &str) -> Value {
    json!({"name": name, "value": value, "type": trait_type})
}

fn outcome(received: usize, stored: usize, duplicates: &[&str], ids: &[&str]) -> Value {
    json!({"received": received, "stored": stored, "duplicates": duplicates, "message_ids": ids})
}

// ------------------------------------------------------------------------------------------------
// Good batches
// ------------------------------------------------------------------------------------------------

const M1_TEXT: &str = concat!(
    r#"{"message_id":"m-1","event_type":"compute.instance.create.end","traits":["#,
    r#"{"name":"host","value":"compute-1","type":"string"},"#,
    r#"{"name":"launched_at","value":"2014-01-01T05:00:00","type":"datetime"},"#,
    r#"{"name":"load","value":"0.25","type":"float"},"#,
    r#"{"name":"memory_mb","value":"2048","type":"integer"},"#,
    r#"{"name":"project_id","value":"p1","type":"string"},"#,
    r#"{"name":"user_id","value":"u1","type":"string"}],"#,
    r#""generated":"2014-01-01T05:00:00","raw":{"payload":{"memory_mb":2048}}}"#
);

const M2_TEXT: &str = concat!(
    r#"{"message_id":"m-2","event_type":"image.update","traits":[],"#,
    r#""generated":"2013-12-31T06:00:00.123456","raw":{}}"#
);

fn good_batch() -> Value {
    json!([
        {
            "message_id": "m-1",
            "event_type": "compute.instance.create.end",
            "generated": "2014-01-01T05:00:00.000000",
            "traits": [
                {"name": "project_id", "type": "string", "value": "p1"},
                {"name": "user_id", "type": "string", "value": "u1"},
                {"name": "memory_mb", "type": "integer", "value": 2048},
                {"name": "load", "type": "float", "value": "0.25"},
                {"name": "launched_at", "type": "datetime", "value": "2014-01-01T07:00:00+02:00"},
                {"name": "host", "type": "string", "value": "compute-1"}
            ],
            "raw": {"payload": {"memory_mb": 2048}}
        },
        {
            "message_id": "m-2",
            "event_type": "image.update",
            "generated": "2013-12-31T06:00:00.123456Z",
            "traits": [],
            "raw": {}
        }
    ])
}

async fn good_batch_is_stored_and_read_back(backend: Backend) {
    let app = app(backend).await;
    let res = app.post_events(good_batch()).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.header("content-type"), Some("application/json"));
    assert_eq!(res.json(), outcome(2, 2, &[], &["m-1", "m-2"]));

    // The list (generated ascending), byte for byte: key order, trait order and rendering.
    assert_eq!(all_text(&app).await, format!("[{M2_TEXT},{M1_TEXT}]"));

    // Each one by id, by a caller whose scope includes it.
    let res = app
        .send(as_user(
            TestRequest::get().uri("/v2/events/m-1"),
            "u1",
            "p1",
            "admin",
        ))
        .await;
    res.ok();
    assert_eq!(text(&res), M1_TEXT);
    let res = app.get_admin("/v2/events/m-2").await;
    res.ok();
    assert_eq!(text(&res), M2_TEXT);
}

async fn ndjson_batch_skips_blank_lines(backend: Backend) {
    let app = app(backend).await;
    let batch = good_batch();
    let lines: Vec<String> = batch
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    let body = format!("\n{}\r\n   \r\n\t\n\n  {}  \n\n", lines[0], lines[1]);
    let res = post_body(&app, "application/x-ndjson", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.json(), outcome(2, 2, &[], &["m-1", "m-2"]));
    assert_eq!(all_text(&app).await, format!("[{M2_TEXT},{M1_TEXT}]"));

    // A single line without a trailing newline is a batch of one.
    let res = post_body(
        &app,
        "application/x-ndjson",
        r#"{"message_id": "m-3", "event_type": "x", "generated": "2015-01-01"}"#,
    )
    .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.json(), outcome(1, 1, &[], &["m-3"]));
    assert_eq!(all_ids(&app).await, ["m-2", "m-1", "m-3"]);
}

async fn ndjson_bad_lines_are_indexed_among_non_blank_lines(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let body = concat!(
        "{\"message_id\": \"a\", \"event_type\": \"e\"}\n",
        "\n",
        "{\"message_id\": \"b\", \"event_type\": \n",
        "\r\n",
        "{\"message_id\": \"c\", \"event_type\": \"\"}\n",
        "[1]\n",
        "{\"message_id\": \"d\", \"event_type\": \"e\"}\n",
    );
    let res = post_body(&app, "application/x-ndjson", body).await;
    let errors = invalid_batch(&res, 3);
    assert_eq!(
        errors,
        vec![
            json!({"index": 1, "line": 3, "message_id": null,
                   "reason": "not valid JSON (column 34): EOF while parsing a value"}),
            json!({"index": 2, "line": 5, "message_id": "c", "reason": "event_type must not be empty"}),
            json!({"index": 3, "line": 6, "message_id": null,
                   "reason": "an event must be a JSON object, not an array"}),
        ]
    );
    assert_eq!(snapshot(&app).await, before);
}

// ------------------------------------------------------------------------------------------------
// Bad events reject the batch
// ------------------------------------------------------------------------------------------------

async fn one_bad_event_rejects_the_whole_batch(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let batch = json!([
        event("ok-0", "e", "2014-01-01T00:00:00", json!([s("a", "x")])),
        event(
            "bad-1",
            "e",
            "2014-01-01T00:00:00",
            json!([s("a", "x"), t("memory_mb", "integer", "lots")])
        ),
        event("ok-2", "new.type", "2014-01-01T00:00:00", json!([])),
    ]);
    let res = app.post_events(batch).await;
    let errors = invalid_batch(&res, 1);
    assert_eq!(
        errors,
        vec![json!({"index": 1, "message_id": "bad-1",
                    "reason": "trait 'memory_mb' (integer): 'lots' is not an integer"})]
    );
    // Nothing of the batch, not even its good events or its new event type.
    assert_eq!(snapshot(&app).await, before);
    assert_eq!(
        app.get_admin("/v2/events/ok-0").await.error(404),
        "Event ok-0 Not Found"
    );
}

async fn several_bad_events_are_all_listed(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let batch = json!([
        {"message_id": "ok-0", "event_type": "e"},
        {"message_id": "bad-1"},
        {"message_id": "ok-2", "event_type": "e"},
        {"event_type": "e", "generated": "never"},
        {"message_id": "bad-4", "event_type": "e",
         "traits": [{"name": "when", "type": "datetime", "value": "2014-13-01"},
                    {"name": "", "type": "string", "value": "x"}]},
        {"message_id": "bad-5", "event_type": "e", "traits": [{"name": "f", "type": "text", "value": "x"}]},
    ]);
    let res = app.post_events(batch).await;
    let errors = invalid_batch(&res, 4);
    let summary: Vec<(u64, Value)> = errors
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["message_id"].clone()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, json!("bad-1")),
            (3, Value::Null),
            (4, json!("bad-4")),
            (5, json!("bad-5"))
        ]
    );
    assert_eq!(
        errors[0]["reason"],
        "event_type is required (a string of 1 to 255 bytes)"
    );
    let generated = errors[1]["reason"].as_str().unwrap();
    assert!(
        generated.starts_with("generated: 'never' is not a valid time; expected ISO 8601"),
        "{generated}"
    );
    let reason4 = errors[2]["reason"].as_str().unwrap();
    assert!(
        reason4.starts_with("trait 'when' (datetime): '2014-13-01' is not a valid time"),
        "{reason4}"
    );
    assert!(
        reason4.ends_with("; trait #1: name must not be empty"),
        "{reason4}"
    );
    assert_eq!(
        errors[3]["reason"],
        "trait 'f': type must be string, integer, float or datetime, not 'text'"
    );
    assert_eq!(snapshot(&app).await, before);
}

// ------------------------------------------------------------------------------------------------
// Duplicates
// ------------------------------------------------------------------------------------------------

async fn duplicates_within_a_batch_first_wins(backend: Backend) {
    let app = app(backend).await;
    let batch = json!([
        event(
            "m-1",
            "first.type",
            "2014-01-01T00:00:00",
            json!([s("a", "first")])
        ),
        event("m-2", "other", "2014-01-02T00:00:00", json!([])),
        event(
            "m-1",
            "second.type",
            "2015-01-01T00:00:00",
            json!([s("a", "second"), t("b", "integer", "2")])
        ),
        event("m-1", "third.type", "2016-01-01T00:00:00", json!([])),
    ]);
    let res = app.post_events(batch).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(
        res.json(),
        outcome(4, 2, &["m-1", "m-1"], &["m-1", "m-2", "m-1", "m-1"])
    );
    let events = all_events(&app).await;
    assert_eq!(
        events,
        json!([
            {"message_id": "m-1", "event_type": "first.type", "traits": [tr("a", "first", "string")],
             "generated": "2014-01-01T00:00:00", "raw": {}},
            {"message_id": "m-2", "event_type": "other", "traits": [],
             "generated": "2014-01-02T00:00:00", "raw": {}},
        ])
    );
}

async fn duplicates_across_batches_first_wins(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event(
        "m-1",
        "first.type",
        "2014-01-01T00:00:00",
        json!([s("a", "first")])
    )]))
    .await;
    let before = all_text(&app).await;

    let res = app
        .post_events(json!([
            event(
                "m-1",
                "first.type",
                "2015-01-01T00:00:00",
                json!([s("a", "second"), t("n", "integer", "5")])
            ),
            event("m-3", "first.type", "2014-01-03T00:00:00", json!([])),
        ]))
        .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.json(), outcome(2, 1, &["m-1"], &["m-1", "m-3"]));

    // The same batch again: everything is a duplicate, nothing is stored.
    let again = app
        .post_events(json!([event(
            "m-3",
            "first.type",
            "2014-01-03T00:00:00",
            json!([])
        )]))
        .await;
    assert_eq!(again.status, 201, "{}", text(&again));
    assert_eq!(again.json(), outcome(1, 0, &["m-3"], &["m-3"]));

    let m1 = stored(&app, "m-1").await;
    assert_eq!(
        m1,
        json!({"message_id": "m-1", "event_type": "first.type", "traits": [tr("a", "first", "string")],
               "generated": "2014-01-01T00:00:00", "raw": {}})
    );
    assert_eq!(all_ids(&app).await, ["m-1", "m-3"]);
    assert!(all_text(&app)
        .await
        .starts_with(&before[..before.len() - 1]));
    // The rejected content left no trace in the trait catalogue either.
    assert_eq!(
        app.get_admin("/v2/event_types/first.type/traits")
            .await
            .ok(),
        json!([{"type": "string", "name": "a"}])
    );
}

/// 2,500 events in 600 types, each with its own two trait names and four traits: past the store's
/// chunk sizes for events (1,000 per INSERT on PostgreSQL), names (500) and type-trait pairs, and
/// on SQLite through statements of 2,048, 256, 128, 64 and 4 rows (`store::sqlite_inserts`); then
/// 2,047 more, which SQLite stores as one statement of each other size (1,024 down to 1 rows).
/// Every event is read back whole, so a row bound to the wrong event, name or value fails.
async fn large_batch_crosses_every_chunk_boundary(backend: Backend) {
    let app = app(backend).await;
    let n = 2500;
    let sent = |i: usize| {
        event(
            &format!("m{i:05}"),
            &format!("type.{:03}", i % 600),
            &format!("2014-01-01T00:00:00.{i:06}"),
            json!([
                s(&format!("s{i}"), &format!("v{i}")),
                t(&format!("n{i}"), "integer", &i.to_string()),
                t("shared", "float", &format!("{i}.5")),
                s("project_id", &format!("p{}", i % 7)),
            ]),
        )
    };
    let read_back = |i: usize| {
        json!({
            "message_id": format!("m{i:05}"),
            "event_type": format!("type.{:03}", i % 600),
            "traits": [
                tr(&format!("n{i}"), &i.to_string(), "integer"),
                tr("project_id", &format!("p{}", i % 7), "string"),
                tr(&format!("s{i}"), &format!("v{i}"), "string"),
                tr("shared", &format!("{i}.5"), "float"),
            ],
            "generated": format!("2014-01-01T00:00:00.{i:06}").trim_end_matches(".000000"),
            "raw": {},
        })
    };
    let events: Vec<Value> = (0..n).map(sent).collect();
    let res = app.post_events(Value::Array(events.clone())).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let body = res.json();
    assert_eq!(body["received"], n);
    assert_eq!(body["stored"], n);
    assert_eq!(body["duplicates"], json!([]));
    assert_eq!(body["message_ids"].as_array().unwrap().len(), n);
    assert_eq!(body["message_ids"][n - 1], format!("m{:05}", n - 1));

    let ids = all_ids(&app).await;
    assert_eq!(ids.len(), n);
    assert!(ids
        .iter()
        .enumerate()
        .all(|(i, id)| *id == format!("m{i:05}")));
    for i in [0, 999, 1000, 1001, 2499] {
        assert_eq!(
            stored(&app, &format!("m{i:05}")).await,
            read_back(i),
            "m{i:05}"
        );
    }
    let types = app.get_admin("/v2/event_types").await.ok();
    assert_eq!(types.as_array().unwrap().len(), 600);
    assert_eq!(types[599], "type.599");
    assert_eq!(
        app.get_admin("/v2/event_types/type.599/traits").await.ok(),
        json!([
            {"type": "string", "name": "project_id"},
            {"type": "string", "name": "s1199"},
            {"type": "string", "name": "s1799"},
            {"type": "string", "name": "s2399"},
            {"type": "string", "name": "s599"},
            {"type": "integer", "name": "n1199"},
            {"type": "integer", "name": "n1799"},
            {"type": "integer", "name": "n2399"},
            {"type": "integer", "name": "n599"},
            {"type": "float", "name": "shared"},
        ])
    );
    let uri = query(&[("n2499", "eq", "2499", "integer")]);
    assert_eq!(app.get_admin(&uri).await.ids(), ["m02499"]);

    // The same batch again: every event a duplicate, nothing stored twice.
    let res = app.post_events(Value::Array(events)).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let body = res.json();
    assert_eq!(body["stored"], 0);
    assert_eq!(body["duplicates"].as_array().unwrap().len(), n);
    assert_eq!(all_ids(&app).await.len(), n);

    // 2,047 more, then every event, whole.
    let more = 2047;
    let res = app
        .post_events(Value::Array((n..n + more).map(sent).collect()))
        .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.json()["stored"], more);
    let mut all = all_events(&app).await.as_array().unwrap().clone();
    all.sort_by_key(|e| e["message_id"].as_str().unwrap().to_string());
    assert_eq!(all.len(), n + more);
    for (i, e) in all.iter().enumerate() {
        assert_eq!(*e, read_back(i), "m{i:05}");
    }
}

// ------------------------------------------------------------------------------------------------
// Defaults
// ------------------------------------------------------------------------------------------------

async fn event_without_traits(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .post_events(json!([
            {"message_id": "none", "event_type": "e", "generated": "2014-01-01T00:00:00"},
            {"message_id": "null", "event_type": "e", "generated": "2014-01-01T00:00:01", "traits": null},
            {"message_id": "empty", "event_type": "e", "generated": "2014-01-01T00:00:02", "traits": []},
        ]))
        .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(res.json(), outcome(3, 3, &[], &["none", "null", "empty"]));
    let res = app.get_admin("/v2/events/none").await;
    res.ok();
    assert_eq!(
        text(&res),
        r#"{"message_id":"none","event_type":"e","traits":[],"generated":"2014-01-01T00:00:00","raw":{}}"#
    );
    for e in all_events(&app).await.as_array().unwrap() {
        assert_eq!(e["traits"], json!([]), "{e}");
    }
}

async fn event_without_message_id_gets_a_uuid(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .post_events(json!([
            {"event_type": "e", "generated": "2014-01-01T00:00:00"},
            {"message_id": "given", "event_type": "e", "generated": "2014-01-01T00:00:01"},
            {"message_id": null, "event_type": "e", "generated": "2014-01-01T00:00:02"},
        ]))
        .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let body = res.json();
    assert_eq!(body["received"], 3);
    assert_eq!(body["stored"], 3);
    assert_eq!(body["duplicates"], json!([]));
    let ids: Vec<String> = body["message_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[1], "given");
    for id in [&ids[0], &ids[2]] {
        let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(uuid.get_version_num(), 4, "{id}");
        assert_eq!(*id, uuid.hyphenated().to_string());
    }
    assert_ne!(ids[0], ids[2]);
    // Stored under the returned ids, in order.
    assert_eq!(all_ids(&app).await, ids);
    let one = app.get_admin(&format!("/v2/events/{}", ids[0])).await.ok();
    assert_eq!(one["message_id"], ids[0].as_str());
    assert_eq!(one["generated"], "2014-01-01T00:00:00");
}

async fn event_without_generated_gets_the_receive_time(backend: Backend) {
    use almanac::model::time::{now_micros, parse_instant};
    let app = app(backend).await;
    let before = now_micros();
    app.ingest(json!([
        {"message_id": "absent", "event_type": "e"},
        {"message_id": "null", "event_type": "e", "generated": null},
    ]))
    .await;
    let after = now_micros();
    for id in ["absent", "null"] {
        let e = app.get_admin(&format!("/v2/events/{id}")).await.ok();
        let generated = e["generated"].as_str().unwrap();
        assert!(
            !generated.ends_with('Z') && !generated.contains('+'),
            "{generated}"
        );
        let at = parse_instant(generated).unwrap_or_else(|| panic!("{generated}"));
        assert!(
            before <= at && at <= after,
            "{generated} is not between the request's start and end"
        );
    }
    // Found by a time-range query around now, too.
    let res = app
        .get_admin("/v2/events?q.field=start_timestamp&q.op=ge&q.value=2020-01-01")
        .await;
    assert_eq!(res.ids().len(), 2);
}

async fn raw_is_kept_verbatim(backend: Backend) {
    let app = app(backend).await;
    let raw = r#"{"zeta": 1.0, "alpha": [1e3, 1E+3, -0.0, 12345678901234567890123, 0.10],
        "nested": {"b": null, "a": "caf\u00e9 \"q\" \\ é", "t": true}, "empty": {}}"#;
    let minified = r#"{"zeta":1.0,"alpha":[1e3,1E+3,-0.0,12345678901234567890123,0.10],"nested":{"b":null,"a":"caf\u00e9 \"q\" \\ é","t":true},"empty":{}}"#;
    let body = format!(
        r#"[{{"message_id": "r", "event_type": "e", "generated": "2014-01-01T00:00:00", "raw": {raw}}},
            {{"message_id": "s", "event_type": "e", "generated": "2014-01-01T00:00:01", "raw": "just text"}},
            {{"message_id": "n", "event_type": "e", "generated": "2014-01-01T00:00:02", "raw": null}},
            {{"message_id": "a", "event_type": "e", "generated": "2014-01-01T00:00:03", "raw": [3, 2.50, "x\u0000y"]}}]"#
    );
    let res = post_body(&app, "application/json", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let one = app.get_admin("/v2/events/r").await;
    one.ok();
    assert_eq!(
        text(&one),
        format!(
            r#"{{"message_id":"r","event_type":"e","traits":[],"generated":"2014-01-01T00:00:00","raw":{minified}}}"#
        )
    );
    let list = all_text(&app).await;
    assert!(list.contains(&format!(r#""raw":{minified}}}"#)), "{list}");
    assert!(list.contains(r#""raw":"just text"}"#), "{list}");
    assert!(list.contains(r#""raw":null}"#), "{list}");
    assert!(list.contains(r#""raw":[3,2.50,"x\u0000y"]}"#), "{list}");
}

async fn raw_defaults_to_an_empty_object(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([{"message_id": "r", "event_type": "e", "generated": "2014-01-01"}]))
        .await;
    let res = app.get_admin("/v2/events/r").await;
    res.ok();
    assert_eq!(
        text(&res),
        r#"{"message_id":"r","event_type":"e","traits":[],"generated":"2014-01-01T00:00:00","raw":{}}"#
    );
}

// ------------------------------------------------------------------------------------------------
// Values
// ------------------------------------------------------------------------------------------------

async fn bigints_round_trip_exactly(backend: Backend) {
    let app = app(backend).await;
    let body = r#"[{"message_id": "big", "event_type": "e", "generated": "2014-01-01T00:00:00",
        "traits": [{"name": "max", "type": "integer", "value": 9223372036854775807},
                   {"name": "min", "type": "integer", "value": "-9223372036854775808"},
                   {"name": "plain", "value": 99999999999999},
                   {"name": "zero", "type": "integer", "value": " 0 "}]}]"#;
    let res = post_body(&app, "application/json", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(
        stored_traits(&app, "big").await,
        json!([
            tr("max", "9223372036854775807", "integer"),
            tr("min", "-9223372036854775808", "integer"),
            tr("plain", "99999999999999", "integer"),
            tr("zero", "0", "integer"),
        ])
    );
    // Found by exact integer filters at both ends of the range.
    for (name, value) in [
        ("max", "9223372036854775807"),
        ("min", "-9223372036854775808"),
    ] {
        let uri = query(&[(name, "eq", value, "integer")]);
        assert_eq!(app.get_admin(&uri).await.ids(), ["big"], "{name}");
    }
    // One past either end is refused, not wrapped or clamped.
    for (value, shown) in [
        ("9223372036854775808", "9223372036854775808"),
        ("\"-9223372036854775809\"", "'-9223372036854775809'"),
    ] {
        let body = format!(
            r#"[{{"message_id": "over", "event_type": "e", "traits": [{{"name": "n", "type": "integer", "value": {value}}}]}}]"#
        );
        let res = post_body(&app, "application/json", body).await;
        let errors = invalid_batch(&res, 1);
        assert_eq!(
            errors[0]["reason"],
            format!("trait 'n' (integer): {shown} is out of the 64-bit integer range")
        );
    }
    assert_eq!(all_ids(&app).await, ["big"]);
}

async fn floats_render_like_python_repr(backend: Backend) {
    let app = app(backend).await;
    let cases = [
        ("0.1", "0.1"),
        ("100", "100.0"),
        ("\"100\"", "100.0"),
        ("1e16", "1e+16"),
        ("1e15", "1000000000000000.0"),
        ("0.0001", "0.0001"),
        ("0.00001", "1e-05"),
        ("100.123456", "100.123456"),
        ("-2.5", "-2.5"),
        ("1.7976931348623157e308", "1.7976931348623157e+308"),
        ("5e-324", "5e-324"),
        ("\" 0.25 \"", "0.25"),
        ("123456789012345678", "1.2345678901234568e+17"),
    ];
    let traits: Vec<String> = cases
        .iter()
        .enumerate()
        .map(|(i, (value, _))| {
            format!(r#"{{"name": "f{i:02}", "type": "float", "value": {value}}}"#)
        })
        .collect();
    let body = format!(
        r#"[{{"message_id": "fl", "event_type": "e", "generated": "2014-01-01T00:00:00", "traits": [{}]}}]"#,
        traits.join(", ")
    );
    let res = post_body(&app, "application/json", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let expected: Vec<Value> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, shown))| tr(&format!("f{i:02}"), shown, "float"))
        .collect();
    assert_eq!(stored_traits(&app, "fl").await, Value::Array(expected));
    // An exact float filter finds the value as stored.
    let uri = query(&[("f00", "eq", "0.1", "float")]);
    assert_eq!(app.get_admin(&uri).await.ids(), ["fl"]);
}

/// -0.0 is stored as 0.0 on both backends (SQLite cannot keep the sign of an integral REAL, so
/// the decoder normalises it), and matches a 0.0 filter.
async fn negative_zero_float_is_stored_as_zero(backend: Backend) {
    let app = app(backend).await;
    let body = r#"[{"message_id": "z", "event_type": "e", "generated": "2014-01-01T00:00:00",
        "traits": [{"name": "neg", "type": "float", "value": -0.0},
                   {"name": "neg_text", "type": "float", "value": "-0.0"},
                   {"name": "neg_inferred", "value": -0e5},
                   {"name": "pos", "type": "float", "value": 0.0}]}]"#;
    let res = post_body(&app, "application/json", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(
        stored_traits(&app, "z").await,
        json!([
            tr("neg", "0.0", "float"),
            tr("neg_inferred", "0.0", "float"),
            tr("neg_text", "0.0", "float"),
            tr("pos", "0.0", "float")
        ])
    );
    for value in ["0.0", "-0.0"] {
        let uri = query(&[("neg", "eq", value, "float")]);
        assert_eq!(app.get_admin(&uri).await.ids(), ["z"], "{value}");
    }
}

async fn datetimes_are_stored_as_utc(backend: Backend) {
    let app = app(backend).await;
    let batch = json!([{
        "message_id": "dt",
        "event_type": "e",
        "generated": "2014-01-01T02:00:00+02:00",
        "traits": [
            t("a_offset", "datetime", "2014-01-01T02:00:00+02:00"),
            t("b_negative", "datetime", "2013-12-31T19:00:00-05:00"),
            t("c_zulu_micros", "datetime", "2020-01-01T00:00:00.000005Z"),
            t("d_date_only", "datetime", "2014-01-01"),
            t("e_zero_micros", "datetime", "2014-01-01T00:00:00.000000"),
            t("f_compact_offset", "datetime", "2014-01-01T05:30:00+0530"),
            t("g_over_six_digits", "datetime", "2014-01-01T00:00:00.1234567"),
        ],
    }]);
    app.ingest(batch).await;
    let e = stored(&app, "dt").await;
    assert_eq!(e["generated"], "2014-01-01T00:00:00");
    assert_eq!(
        e["traits"],
        json!([
            tr("a_offset", "2014-01-01T00:00:00", "datetime"),
            tr("b_negative", "2014-01-01T00:00:00", "datetime"),
            tr("c_zulu_micros", "2020-01-01T00:00:00.000005", "datetime"),
            tr("d_date_only", "2014-01-01T00:00:00", "datetime"),
            tr("e_zero_micros", "2014-01-01T00:00:00", "datetime"),
            tr("f_compact_offset", "2014-01-01T00:00:00", "datetime"),
            tr(
                "g_over_six_digits",
                "2014-01-01T00:00:00.123456",
                "datetime"
            ),
        ])
    );
    // The UTC instant is what queries compare.
    let uri = query(&[
        ("start_timestamp", "ge", "2014-01-01T00:00:00", ""),
        ("end_timestamp", "le", "2014-01-01T00:00:00", ""),
    ]);
    assert_eq!(app.get_admin(&uri).await.ids(), ["dt"]);
}

async fn types_are_inferred_from_json_values(backend: Backend) {
    let app = app(backend).await;
    let body = r#"[{"message_id": "inf", "event_type": "e", "generated": "2014-01-01T00:00:00",
        "traits": [{"name": "a_int", "value": 42},
                   {"name": "b_neg", "value": -7},
                   {"name": "c_float", "value": 2.50},
                   {"name": "d_exp", "value": 1e3},
                   {"name": "e_str", "value": "42"},
                   {"name": "f_null_type", "type": null, "value": 1.5},
                   {"name": "g_str_number", "type": "string", "value": 1.50},
                   {"name": "h_date_text", "value": "2014-01-01T00:00:00"}]}]"#;
    let res = post_body(&app, "application/json", body).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(
        stored_traits(&app, "inf").await,
        json!([
            tr("a_int", "42", "integer"),
            tr("b_neg", "-7", "integer"),
            tr("c_float", "2.5", "float"),
            tr("d_exp", "1000.0", "float"),
            tr("e_str", "42", "string"),
            tr("f_null_type", "1.5", "float"),
            tr("g_str_number", "1.50", "string"),
            tr("h_date_text", "2014-01-01T00:00:00", "string"),
        ])
    );
    // A value that is neither a string nor a number cannot be inferred.
    let reason = single_reason(
        &app,
        json!({"event_type": "e", "traits": [{"name": "b", "value": true}]}),
    )
    .await;
    assert_eq!(
        reason,
        "trait 'b': the value must be a string or a number, not a boolean"
    );
    assert_eq!(all_ids(&app).await, ["inf"]);
}

async fn ceilometer_array_traits(backend: Backend) {
    let app = app(backend).await;
    let batch = json!([{
        "message_id": "ceilo",
        "event_type": "compute.instance.exists",
        "generated": "2014-01-01T00:00:00",
        "traits": [
            ["a_none", 0, "stored as text"],
            ["b_text", 1, "x"],
            ["c_int", 2, 7],
            ["d_float", 3, 1.5],
            ["e_time", 4, "2014-01-01T01:00:00+01:00"],
            ["f_named", "integer", "8"],
            {"name": "g_object", "type": "string", "value": "mixed forms"}
        ]
    }]);
    app.ingest(batch).await;
    assert_eq!(
        stored_traits(&app, "ceilo").await,
        json!([
            tr("a_none", "stored as text", "string"),
            tr("b_text", "x", "string"),
            tr("c_int", "7", "integer"),
            tr("d_float", "1.5", "float"),
            tr("e_time", "2014-01-01T00:00:00", "datetime"),
            tr("f_named", "8", "integer"),
            tr("g_object", "mixed forms", "string"),
        ])
    );
    // A dtype out of range, or a wrong length, is refused.
    let reason = single_reason(
        &app,
        json!({"event_type": "e", "traits": [["x", 9, "v"], ["y", 1]]}),
    )
    .await;
    assert_eq!(
        reason,
        "trait 'x': dtype must be 0 to 4 or one of string, integer, float, datetime, not 9; \
         trait #1: an array trait must be [name, dtype, value], not 2 elements"
    );
    assert_eq!(all_ids(&app).await, ["ceilo"]);
}

async fn same_name_with_two_types_is_accepted(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event(
        "two",
        "e",
        "2014-01-01T00:00:00",
        json!([
            t("size", "integer", "5"),
            s("size", "five"),
            t("size", "float", "5.5"),
            t("size", "datetime", "2014-01-01T00:00:05")
        ])
    )]))
    .await;
    assert_eq!(
        stored_traits(&app, "two").await,
        json!([
            tr("size", "five", "string"),
            tr("size", "5", "integer"),
            tr("size", "5.5", "float"),
            tr("size", "2014-01-01T00:00:05", "datetime"),
        ])
    );
    // Each is found through its own type.
    for (ty, value) in [
        ("string", "five"),
        ("integer", "5"),
        ("float", "5.5"),
        ("datetime", "2014-01-01T00:00:05"),
    ] {
        let uri = query(&[("size", "eq", value, ty)]);
        assert_eq!(app.get_admin(&uri).await.ids(), ["two"], "{ty}");
    }
}

// ------------------------------------------------------------------------------------------------
// Rejected batches: nothing stored
// ------------------------------------------------------------------------------------------------

async fn non_finite_floats_are_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let cases = [
        (
            r#""NaN""#,
            "trait 'x' (float): 'NaN' is not a finite number",
        ),
        (
            r#""nan""#,
            "trait 'x' (float): 'nan' is not a finite number",
        ),
        (
            r#""Infinity""#,
            "trait 'x' (float): 'Infinity' is not a finite number",
        ),
        (
            r#""-inf""#,
            "trait 'x' (float): '-inf' is not a finite number",
        ),
        (
            "1e400",
            "trait 'x' (float): 1e400 is out of the 64-bit float range",
        ),
        (
            "-1e400",
            "trait 'x' (float): -1e400 is out of the 64-bit float range",
        ),
        (
            r#""1e400""#,
            "trait 'x' (float): '1e400' is not a finite number",
        ),
    ];
    for (value, expected) in cases {
        let body = format!(
            r#"[{{"message_id": "ok", "event_type": "e"}},
                {{"message_id": "bad", "event_type": "e", "traits": [{{"name": "x", "type": "float", "value": {value}}}]}}]"#
        );
        let res = post_body(&app, "application/json", body).await;
        let errors = invalid_batch(&res, 1);
        assert_eq!(
            errors,
            vec![json!({"index": 1, "message_id": "bad", "reason": expected})],
            "{value}"
        );
    }
    // Untyped 1e400 is inferred as a float and refused the same way.
    let body =
        r#"[{"message_id": "bad", "event_type": "e", "traits": [{"name": "x", "value": 1e400}]}]"#;
    let errors = invalid_batch(&post_body(&app, "application/json", body).await, 1);
    assert_eq!(
        errors[0]["reason"],
        "trait 'x' (float): 1e400 is out of the 64-bit float range"
    );
    assert_eq!(snapshot(&app).await, before);
}

async fn nan_literal_is_malformed_json(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    for literal in ["NaN", "Infinity", "-Infinity"] {
        let body = format!(
            r#"[{{"message_id": "bad", "event_type": "e", "traits": [{{"name": "x", "type": "float", "value": {literal}}}]}}]"#
        );
        let res = post_body(&app, "application/json", body).await;
        let fault = res.error(400);
        assert!(
            fault.starts_with("The body is not valid JSON: "),
            "{literal}: {fault}"
        );
        assert!(res.json()["error_message"].get("errors").is_none());
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn over_long_string_is_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let long = "x".repeat(1025);
    let res = app
        .post_events(json!([
            event("ok", "e", "2014-01-01T00:00:00", json!([])),
            event(
                "long",
                "e",
                "2014-01-01T00:00:00",
                json!([s("note", &long)])
            ),
        ]))
        .await;
    let errors = invalid_batch(&res, 1);
    assert_eq!(
        errors,
        vec![json!({"index": 1, "message_id": "long",
                    "reason": "trait 'note' (string): the value is 1025 bytes long; the limit is 1024 bytes"})]
    );
    // Bytes, not characters: 513 two-byte characters are 1026 bytes.
    let reason = single_reason(
        &app,
        event(
            "wide",
            "e",
            "2014-01-01T00:00:00",
            json!([s("note", &"é".repeat(513))]),
        ),
    )
    .await;
    assert_eq!(
        reason,
        "trait 'note' (string): the value is 1026 bytes long; the limit is 1024 bytes"
    );
    assert_eq!(snapshot(&app).await, before);

    // Exactly at the limit is stored whole, not truncated.
    let at_limit = "y".repeat(1024);
    app.ingest(json!([event(
        "max",
        "e",
        "2014-01-01T00:00:00",
        json!([s("note", &at_limit)])
    )]))
    .await;
    assert_eq!(
        stored_traits(&app, "max").await,
        json!([tr("note", &at_limit, "string")])
    );
}

/// String values that mean something in PostgreSQL's array literals (where its trait rows were
/// bound until its ingest wrote them with `COPY`), in `COPY`'s text format, or in JSON: stored as
/// sent, and matched by equality.
async fn awkward_strings_round_trip_and_match(backend: Backend) {
    let app = app(backend).await;
    let values = [
        "",
        "NULL",
        "null",
        r#"say "hi""#,
        r"back\slash \",
        "{braces}, commas",
        "  spaced  ",
        "tab\tnew\nline",
        "\u{e9}t\u{e9} \u{1F600}",
    ];
    let traits: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| s(&format!("s{i}"), v))
        .collect();
    app.ingest(json!([event(
        "awkward",
        "e",
        "2014-01-01T00:00:00",
        Value::Array(traits)
    )]))
    .await;
    let mut stored = stored_traits(&app, "awkward")
        .await
        .as_array()
        .unwrap()
        .clone();
    stored.sort_by_key(|t| t["name"].as_str().unwrap().to_string());
    let expected: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, v)| tr(&format!("s{i}"), v, "string"))
        .collect();
    assert_eq!(stored, expected);
    for (i, v) in values.iter().enumerate() {
        let found = app
            .send(admin(TestRequest::get().uri(&query(&[(
                &format!("s{i}"),
                "eq",
                v,
                "string",
            )]))))
            .await;
        assert_eq!(found.ids(), vec!["awkward"], "s{i} = {v:?}");
    }
}

/// `limits.max_string_bytes` is capped so that a value at the cap still fits the trait indexes
/// (PostgreSQL refuses B-tree entries over about 2,700 bytes).
async fn the_largest_string_limit_is_storable_and_filterable(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_string_bytes = almanac::config::MAX_STRING_BYTES;
    let app = app_with(backend, config).await;
    // Multi-byte text (3 bytes a character), not compressible to a small index entry.
    let long: String = (0..almanac::config::MAX_STRING_BYTES / 3)
        .map(|i| char::from_u32(0x4e00 + (i as u32 * 7919) % 20_000).unwrap())
        .collect();
    assert!(long.len() > almanac::config::MAX_STRING_BYTES - 3);
    app.ingest(json!([event(
        "long",
        "e",
        "2014-01-01T00:00:00",
        json!([s("note", &long)])
    )]))
    .await;
    assert_eq!(
        stored_traits(&app, "long").await,
        json!([tr("note", &long, "string")])
    );
    let found = app
        .send(admin(
            TestRequest::get().uri(&query(&[("note", "eq", &long, "string")])),
        ))
        .await;
    assert_eq!(found.ids(), vec!["long"]);
}

async fn custom_string_limit_applies(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_string_bytes = 8;
    let app = app_with(backend, config).await;
    let res = app
        .post_events(json!([event(
            "nine",
            "e",
            "2014-01-01T00:00:00",
            json!([s("s", "123456789")])
        )]))
        .await;
    let errors = invalid_batch(&res, 1);
    assert_eq!(
        errors[0]["reason"],
        "trait 's' (string): the value is 9 bytes long; the limit is 8 bytes"
    );
    // A number sent as a string trait counts its text.
    let body = r#"[{"message_id": "n", "event_type": "e", "traits": [{"name": "s", "type": "string", "value": 1234567890}]}]"#;
    let errors = invalid_batch(&post_body(&app, "application/json", body).await, 1);
    assert_eq!(
        errors[0]["reason"],
        "trait 's' (string): the value is 10 bytes long; the limit is 8 bytes"
    );
    assert_eq!(all_ids(&app).await, Vec::<String>::new());
    app.ingest(json!([event(
        "eight",
        "e",
        "2014-01-01T00:00:00",
        json!([s("s", "12345678")])
    )]))
    .await;
    assert_eq!(
        stored_traits(&app, "eight").await,
        json!([tr("s", "12345678", "string")])
    );
}

async fn duplicate_trait_name_and_type_is_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let res = app
        .post_events(json!([
            event(
                "ok",
                "e",
                "2014-01-01T00:00:00",
                json!([s("a", "1"), t("a", "integer", "1")])
            ),
            event(
                "dup",
                "e",
                "2014-01-01T00:00:00",
                json!([s("a", "x"), s("b", "y"), s("a", "z")])
            ),
            event(
                "dup-int",
                "e",
                "2014-01-01T00:00:00",
                json!([t("n", "integer", "1"), ["n", 2, 2]])
            ),
        ]))
        .await;
    let errors = invalid_batch(&res, 2);
    assert_eq!(
        errors,
        vec![
            json!({"index": 1, "message_id": "dup",
                   "reason": "trait 'a' (string) appears more than once; a name may repeat only with another type"}),
            json!({"index": 2, "message_id": "dup-int",
                   "reason": "trait 'n' (integer) appears more than once; a name may repeat only with another type"}),
        ]
    );
    // Even with equal values.
    let reason = single_reason(
        &app,
        event(
            "same",
            "e",
            "2014-01-01T00:00:00",
            json!([s("a", "x"), s("a", "x")]),
        ),
    )
    .await;
    assert_eq!(
        reason,
        "trait 'a' (string) appears more than once; a name may repeat only with another type"
    );
    assert_eq!(snapshot(&app).await, before);
}

async fn empty_batch_is_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    for (content_type, body) in [
        ("application/json", "[]"),
        ("application/json", " [ ]\n"),
        ("application/x-ndjson", ""),
        ("application/x-ndjson", "\n\r\n  \n"),
    ] {
        let res = post_body(&app, content_type, body).await;
        assert_eq!(
            res.error(400),
            "The batch is empty: send at least one event.",
            "{content_type} {body:?}"
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn malformed_json_is_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let cases = [
        (
            "[{\"event_type\": \"e\"},\n {\"event_type\" \"e\"}]",
            "The body is not valid JSON: expected `:` at line 2 column 16",
        ),
        (
            "[{\"event_type\": \"e\"",
            "The body is not valid JSON: EOF while parsing an object at line 1 column 19",
        ),
        (
            "[{\"event_type\": \"e\"}] x",
            "The body is not valid JSON: trailing characters at line 1 column 23",
        ),
        (
            "[{\"event_type\": \"e\"},]",
            "The body is not valid JSON: trailing comma at line 1 column 22",
        ),
    ];
    for (body, expected) in cases {
        let res = post_body(&app, "application/json", body).await;
        assert_eq!(res.error(400), expected, "{body}");
    }
    // Invalid UTF-8.
    let res = app
        .send(admin(
            TestRequest::post()
                .uri("/v2/events")
                .insert_header(("Content-Type", "application/json"))
                .set_payload(&b"[{\"event_type\": \"\xff\"}]"[..]),
        ))
        .await;
    let fault = res.error(400);
    assert!(fault.starts_with("The body is not valid UTF-8"), "{fault}");
    assert_eq!(snapshot(&app).await, before);
}

async fn json_object_body_is_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let not_an_array = "The body must be a JSON array of events, or NDJSON with Content-Type: \
                        application/x-ndjson";
    for body in [
        r#"{"message_id": "obj", "event_type": "e"}"#,
        r#""text""#,
        "5",
        "null",
        "",
    ] {
        let res = post_body(&app, "application/json", body).await;
        assert_eq!(res.error(400), not_an_array, "{body:?}");
    }
    assert_eq!(snapshot(&app).await, before);
}

const MIMETYPE_HINT: &str = ". Send events as application/json (a JSON array) or \
                             application/x-ndjson (one event per line).";

async fn wrong_content_type_is_415(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let body = r#"[{"message_id": "x", "event_type": "e"}]"#;
    for content_type in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
    ] {
        let res = post_body(&app, content_type, body).await;
        let fault = res.error(415);
        assert!(
            fault.starts_with(&format!("Unknown mimetype: {content_type}")),
            "{fault}"
        );
        assert_eq!(
            fault,
            format!("Unknown mimetype: {content_type}{MIMETYPE_HINT}")
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn missing_content_type_is_415(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let res = app
        .send(admin(
            TestRequest::post()
                .uri("/v2/events")
                .set_payload(r#"[{"message_id": "x", "event_type": "e"}]"#),
        ))
        .await;
    assert_eq!(
        res.error(415),
        format!("Unknown mimetype: (none){MIMETYPE_HINT}")
    );
    assert_eq!(snapshot(&app).await, before);
}

async fn content_type_parameters_are_accepted(backend: Backend) {
    let app = app(backend).await;
    let res = post_body(
        &app,
        "application/json; charset=utf-8",
        r#"[{"message_id": "j", "event_type": "e", "generated": "2014-01-01"}]"#,
    )
    .await;
    assert_eq!(res.status, 201, "{}", text(&res));
    for (i, content_type) in ["application/jsonl", "application/jsonlines"]
        .into_iter()
        .enumerate()
    {
        let res = post_body(
            &app,
            content_type,
            format!(r#"{{"message_id": "l{i}", "event_type": "e", "generated": "2014-01-02"}}"#),
        )
        .await;
        assert_eq!(res.status, 201, "{content_type}: {}", text(&res));
    }
    assert_eq!(all_ids(&app).await, ["j", "l0", "l1"]);
}

/// Media types are case-insensitive (RFC 9110 §8.3.1): `Application/JSON` is JSON.
async fn content_type_is_case_insensitive(backend: Backend) {
    let app = app(backend).await;
    for (i, content_type) in ["Application/JSON", "APPLICATION/X-NDJSON"]
        .into_iter()
        .enumerate()
    {
        let body = if content_type == "Application/JSON" {
            format!(r#"[{{"message_id": "c{i}", "event_type": "e", "generated": "2014-01-01"}}]"#)
        } else {
            format!(r#"{{"message_id": "c{i}", "event_type": "e", "generated": "2014-01-02"}}"#)
        };
        let res = post_body(&app, content_type, body).await;
        assert_eq!(res.status, 201, "{content_type}: {}", text(&res));
    }
    assert_eq!(all_ids(&app).await, ["c0", "c1"]);
}

async fn message_ids_with_special_characters_are_found_by_id(backend: Backend) {
    let app = app(backend).await;
    let ids = ["a/b", "x y", "100.json", "é-ü", "q?x=1", "50%"];
    let events: Vec<Value> = ids
        .iter()
        .map(|id| event(id, "e", "2014-01-01T00:00:00", json!([])))
        .collect();
    app.ingest(Value::Array(events)).await;
    for id in ids {
        let path: String = form_urlencoded::byte_serialize(id.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let res = app.get_admin(&format!("/v2/events/{path}")).await;
        assert_eq!(res.ok()["message_id"], id, "{path}");
    }
}

async fn datetimes_at_the_ends_of_the_range(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event(
            "first",
            "e",
            "0001-01-01T00:00:00",
            json!([t("at", "datetime", "0001-01-01")])
        ),
        event(
            "last",
            "e",
            "9999-12-31T23:59:59.999999",
            json!([t("at", "datetime", "9999-12-31T23:59:59.999999Z")])
        ),
        event(
            "epoch",
            "e",
            "1970-01-01T00:00:00",
            json!([t("at", "datetime", "1969-12-31T23:59:59.5")])
        ),
    ]))
    .await;
    let all = all_events(&app).await;
    let summary: Vec<(&str, &str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["message_id"].as_str().unwrap(),
                e["generated"].as_str().unwrap(),
                e["traits"][0]["value"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("first", "0001-01-01T00:00:00", "0001-01-01T00:00:00"),
            ("epoch", "1970-01-01T00:00:00", "1969-12-31T23:59:59.500000"),
            (
                "last",
                "9999-12-31T23:59:59.999999",
                "9999-12-31T23:59:59.999999"
            ),
        ]
    );
    // Past either end after conversion to UTC is refused.
    let reason = single_reason(
        &app,
        event("late", "e", "9999-12-31T23:59:59-01:00", json!([])),
    )
    .await;
    assert!(
        reason.starts_with("generated: '9999-12-31T23:59:59-01:00' is not a valid time"),
        "{reason}"
    );
    let reason = single_reason(
        &app,
        event(
            "early",
            "e",
            "2014-01-01T00:00:00",
            json!([t("at", "datetime", "0001-01-01T00:00:00+01:00")]),
        ),
    )
    .await;
    assert!(
        reason
            .starts_with("trait 'at' (datetime): '0001-01-01T00:00:00+01:00' is not a valid time"),
        "{reason}"
    );
    assert_eq!(all_ids(&app).await, ["first", "epoch", "last"]);
}

async fn batch_over_max_events_is_413(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_batch_events = 3;
    let app = app_with(backend, config).await;
    let four: Vec<Value> = (0..4)
        .map(|i| event(&format!("m{i}"), "e", "2014-01-01T00:00:00", json!([])))
        .collect();
    let res = app.post_events(Value::Array(four.clone())).await;
    assert_eq!(
        res.error(413),
        "The batch holds more than 3 events; split it into batches of at most 3."
    );
    let lines: Vec<String> = four.iter().map(|e| e.to_string()).collect();
    let res = post_body(&app, "application/x-ndjson", lines.join("\n")).await;
    assert_eq!(
        res.error(413),
        "The batch holds more than 3 events; split it into batches of at most 3."
    );
    assert_eq!(all_ids(&app).await, Vec::<String>::new());

    // Exactly at the limit is accepted.
    let res = app.post_events(Value::Array(four[..3].to_vec())).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    assert_eq!(all_ids(&app).await, ["m0", "m1", "m2"]);
}

async fn body_over_max_bytes_is_413(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_body_bytes = 200;
    let app = app_with(backend, config).await;
    let fits = format!(
        r#"[{{"message_id": "fits", "event_type": "e", "generated": "2014-01-01", "raw": "{}"}}]"#,
        "x".repeat(100)
    );
    assert!(fits.len() <= 200);
    let res = post_body(&app, "application/json", fits).await;
    assert_eq!(res.status, 201, "{}", text(&res));
    let before = snapshot(&app).await;

    let padding = "x".repeat(200);
    let too_big = format!(r#"[{{"message_id": "big", "event_type": "e", "raw": "{padding}"}}]"#);
    for content_type in ["application/json", "application/x-ndjson"] {
        let body = if content_type == "application/json" {
            too_big.clone()
        } else {
            too_big[1..too_big.len() - 1].to_string()
        };
        assert!(body.len() > 200);
        let res = post_body(&app, content_type, body).await;
        assert_eq!(
            res.error(413),
            "The request body is larger than the limit of 200 bytes; send smaller batches.",
            "{content_type}"
        );
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn unknown_event_keys_are_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let res = app
        .post_events(json!([
            {"message_id": "x", "event_type": "e", "timestamp": "2014-01-01T00:00:00"},
            {"message_id": "y", "event_type": "e", "traits": [{"name": "a", "value": "b", "vlaue": "c"}]},
        ]))
        .await;
    let errors = invalid_batch(&res, 2);
    assert_eq!(
        errors,
        vec![
            json!({"index": 0, "message_id": "x",
                   "reason": "unknown key 'timestamp'; an event has only message_id, event_type, generated, traits and raw"}),
            json!({"index": 1, "message_id": "y",
                   "reason": "trait #0: unknown key 'vlaue'; a trait has only name, type and value"}),
        ]
    );
    assert_eq!(snapshot(&app).await, before);
}

async fn nul_characters_are_rejected(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let body = r#"[
        {"message_id": "v", "event_type": "e", "traits": [{"name": "s", "value": "a\u0000b"}]},
        {"message_id": "t", "event_type": "e\u0000"},
        {"message_id": "n", "event_type": "e", "traits": [{"name": "s\u0000", "value": "x"}]},
        {"message_id": "m\u0000", "event_type": "e"}
    ]"#;
    let res = post_body(&app, "application/json", body).await;
    let errors = invalid_batch(&res, 4);
    assert_eq!(
        errors,
        vec![
            json!({"index": 0, "message_id": "v",
                   "reason": "trait 's' (string): the value must not contain NUL characters"}),
            json!({"index": 1, "message_id": "t",
                   "reason": "event_type must not contain NUL characters"}),
            json!({"index": 2, "message_id": "n",
                   "reason": "trait #0: name must not contain NUL characters"}),
            json!({"index": 3, "message_id": null,
                   "reason": "message_id must not contain NUL characters"}),
        ]
    );
    assert_eq!(snapshot(&app).await, before);
}

async fn bad_values_are_rejected_with_reasons(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let long_name = "n".repeat(256);
    let cases = [
        (
            json!({"event_type": "e", "traits": [{"name": "i", "type": "integer", "value": 1.5}]}),
            "trait 'i' (integer): 1.5 is not an integer".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"name": "i", "type": "integer", "value": "1.5"}]}),
            "trait 'i' (integer): '1.5' is not an integer".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"name": "f", "type": "float", "value": "abc"}]}),
            "trait 'f' (float): 'abc' is not a number".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"name": "d", "type": "datetime", "value": 5}]}),
            "trait 'd' (datetime): the value must be a string holding a time, not a number"
                .to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"name": "a", "type": "string"}]}),
            "trait 'a' (string): value is required".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"type": "string", "value": "x"}]}),
            "trait #0: name is required".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": [{"name": long_name, "value": "x"}]}),
            "trait #0: name is 256 bytes long; the limit is 255".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": {"a": 1}}),
            "traits must be an array, not an object".to_string(),
        ),
        (
            json!({"event_type": "e", "traits": ["a=b"]}),
            "trait #0 must be an object {\"name\", \"type\", \"value\"} or an array [name, dtype, value], not a string".to_string(),
        ),
        (
            json!({"event_type": 5}),
            "event_type must be a string, not a number".to_string(),
        ),
        (
            json!({"event_type": "n".repeat(256)}),
            "event_type is 256 bytes long; the limit is 255".to_string(),
        ),
        (
            json!({"message_id": "", "event_type": "e"}),
            "message_id must not be empty".to_string(),
        ),
        (
            json!({"event_type": "e", "generated": 1388552400}),
            "generated: the value must be a string holding a time, not a number".to_string(),
        ),
        (json!("not an event"), "an event must be a JSON object, not a string".to_string()),
    ];
    for (event, expected) in cases {
        let reason = single_reason(&app, event.clone()).await;
        assert_eq!(reason, expected, "{event}");
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn too_many_traits_are_rejected(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_traits_per_event = 3;
    let app = app_with(backend, config).await;
    let traits =
        |n: usize| -> Value { Value::Array((0..n).map(|i| s(&format!("t{i}"), "v")).collect()) };
    let reason = single_reason(&app, event("four", "e", "2014-01-01T00:00:00", traits(4))).await;
    assert_eq!(reason, "4 traits exceed the limit of 3 per event");
    assert_eq!(all_ids(&app).await, Vec::<String>::new());
    app.ingest(json!([event(
        "three",
        "e",
        "2014-01-01T00:00:00",
        traits(3)
    )]))
    .await;
    assert_eq!(all_ids(&app).await, ["three"]);
}

// ------------------------------------------------------------------------------------------------
// Authorization and tenancy
// ------------------------------------------------------------------------------------------------

async fn no_identity_is_403(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let batch = json!([event("x", "e", "2014-01-01T00:00:00", json!([]))]);
    let requests = [
        TestRequest::post().uri("/v2/events").set_json(&batch),
        TestRequest::post()
            .uri("/v2/events")
            .insert_header(("X-Roles", "admin"))
            .set_json(&batch),
        TestRequest::post()
            .uri("/v2/events")
            .insert_header(("X-Roles", "admin"))
            .insert_header(("X-Project-Id", "p"))
            .set_json(&batch),
        TestRequest::post()
            .uri("/v2/events")
            .insert_header(("X-Roles", "admin"))
            .insert_header(("X-User-Id", "u"))
            .set_json(&batch),
        // Authorization comes before the body is looked at.
        TestRequest::post()
            .uri("/v2/events")
            .insert_header(("Content-Type", "text/plain"))
            .set_payload("nonsense"),
    ];
    for req in requests {
        assert_eq!(app.send(req).await.error(403), "RBAC Authorization Failed");
    }
    assert_eq!(snapshot(&app).await, before);
}

async fn member_is_403(backend: Backend) {
    let app = app(backend).await;
    let before = seed(&app).await;
    let batch = json!([event(
        "x",
        "e",
        "2014-01-01T00:00:00",
        json!([s("project_id", "p1"), s("user_id", "u1")])
    )]);
    for roles in ["member", "reader,member", "member, admin", " admin"] {
        let res = app
            .send(as_user(
                TestRequest::post().uri("/v2/events").set_json(&batch),
                "u1",
                "p1",
                roles,
            ))
            .await;
        assert_eq!(res.error(403), "RBAC Authorization Failed", "{roles}");
    }
    let res = app
        .send(member(
            TestRequest::post()
                .uri("/v2/events")
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("[]"),
            "u1",
            "p1",
        ))
        .await;
    assert_eq!(res.error(403), "RBAC Authorization Failed");
    assert_eq!(snapshot(&app).await, before);
    // Role names match case-insensitively, as in Panko.
    let res = app
        .send(as_user(
            TestRequest::post().uri("/v2/events").set_json(&batch),
            "u1",
            "p1",
            "member,ADMIN",
        ))
        .await;
    assert_eq!(res.status, 201, "{}", text(&res));
}

async fn tenancy_traits_scope_members(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event(
            "mine",
            "e",
            "2014-01-01T00:00:00",
            json!([
                s("project_id", "p1"),
                s("user_id", "u1"),
                t("n", "integer", "1")
            ])
        ),
        event(
            "same-project-other-user",
            "e",
            "2014-01-01T00:00:01",
            json!([s("project_id", "p1"), s("user_id", "u2")])
        ),
        event(
            "other-project",
            "e",
            "2014-01-01T00:00:02",
            json!([s("project_id", "p2"), s("user_id", "u1")])
        ),
        event(
            "no-tenancy",
            "e",
            "2014-01-01T00:00:03",
            json!([s("k", "v")])
        ),
    ]))
    .await;

    let list = app
        .send(member(TestRequest::get().uri("/v2/events"), "u1", "p1"))
        .await;
    assert_eq!(list.ids(), ["mine"]);
    assert_eq!(
        list.json()[0]["traits"],
        json!([
            tr("n", "1", "integer"),
            tr("project_id", "p1", "string"),
            tr("user_id", "u1", "string")
        ])
    );
    let one = app
        .send(member(
            TestRequest::get().uri("/v2/events/mine"),
            "u1",
            "p1",
        ))
        .await
        .ok();
    assert_eq!(one["message_id"], "mine");
    for other in ["same-project-other-user", "other-project", "no-tenancy"] {
        let res = app
            .send(member(
                TestRequest::get().uri(&format!("/v2/events/{other}")),
                "u1",
                "p1",
            ))
            .await;
        assert_eq!(res.error(404), format!("Event {other} Not Found"));
    }
    let list = app
        .send(member(TestRequest::get().uri("/v2/events"), "u2", "p1"))
        .await;
    assert_eq!(list.ids(), ["same-project-other-user"]);
    // The tenancy traits filter like other string traits.
    let res = app
        .get_admin(&query(&[("project_id", "eq", "p1", "string")]))
        .await;
    assert_eq!(res.ids(), ["mine", "same-project-other-user"]);
    let res = app.get_admin(&query(&[("user_id", "ne", "u1", "")])).await;
    assert_eq!(res.ids(), ["same-project-other-user"]);
}

async fn integer_project_id_does_not_grant_visibility(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event(
            "int-project",
            "e",
            "2014-01-01T00:00:00",
            json!([t("project_id", "integer", "42"), s("user_id", "u1")])
        ),
        event(
            "both",
            "e",
            "2014-01-01T00:00:01",
            json!([
                t("project_id", "integer", "42"),
                s("project_id", "p9"),
                s("user_id", "u1")
            ])
        ),
    ]))
    .await;
    let list = app
        .send(member(TestRequest::get().uri("/v2/events"), "u1", "42"))
        .await;
    assert_eq!(list.ids(), Vec::<String>::new());
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events/int-project"),
            "u1",
            "42",
        ))
        .await;
    assert_eq!(res.error(404), "Event int-project Not Found");

    // The string one is what counts; the integer one is still an ordinary trait.
    let list = app
        .send(member(TestRequest::get().uri("/v2/events"), "u1", "p9"))
        .await;
    assert_eq!(list.ids(), ["both"]);
    assert_eq!(
        list.json()[0]["traits"],
        json!([
            tr("project_id", "p9", "string"),
            tr("project_id", "42", "integer"),
            tr("user_id", "u1", "string")
        ])
    );
    // An admin sees the integer-only one as having no project.
    let res = app.get_admin("/v2/events/int-project").await.ok();
    assert_eq!(
        res["traits"],
        json!([
            tr("project_id", "42", "integer"),
            tr("user_id", "u1", "string")
        ])
    );
}

/// `raw` may nest deeply, but not without bound: past `limits.max_raw_depth` (64) the batch is a
/// 400 that says so, in both formats, and nothing is stored.
async fn raw_nesting_depth_is_limited(backend: Backend) {
    let app = app(backend).await;
    let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let body = |id: &str, depth: usize| {
        format!(
            r#"{{"message_id": "{id}", "event_type": "x", "generated": "2014-01-01T00:00:00", "raw": {}}}"#,
            nested(depth)
        )
    };
    let ok = app
        .send(admin(
            TestRequest::post()
                .uri("/v2/events")
                .insert_header(("Content-Type", "application/json"))
                .set_payload(format!("[{}]", body("shallow", 64))),
        ))
        .await;
    assert_eq!(ok.status.as_u16(), 201, "{:?}", ok.body);
    for (content_type, payload) in [
        ("application/json", format!("[{}]", body("deep", 65))),
        ("application/x-ndjson", format!("{}\n", body("deep", 65))),
        // Far past anything a recursive parser's stack could take.
        ("application/json", format!("[{}]", body("deep", 1_000_000))),
    ] {
        let res = app
            .send(admin(
                TestRequest::post()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", content_type))
                    .set_payload(payload),
            ))
            .await;
        res.error(400);
        let body = res.json();
        let reason = body["error_message"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            reason.starts_with("raw nests"),
            "{content_type}: {body:.300}"
        );
        assert!(
            reason.ends_with("at most 64 are accepted"),
            "{content_type}: {reason}"
        );
    }
    app.get_admin("/v2/events/shallow").await.ok();
    app.get_admin("/v2/events/deep").await.error(404);
}

/// Many batches at once, each bringing new tenancy values, trait names and event types in its
/// own order: grouped into shared transactions by the writers (two on PostgreSQL), they must all
/// be stored. Before names were interned ahead of the group's transaction, two PostgreSQL
/// writers could each hold a new name the other needed ("deadlock detected", a 503).
async fn concurrent_batches_with_new_names_all_succeed(backend: Backend) {
    let app = app(backend).await;
    let batches = 96;
    let per_batch = 4;
    let requests = (0..batches).map(|b| {
        let events: Vec<Value> = (0..per_batch)
            .map(|i| {
                // Batches share new names with others, few per batch, in different orders.
                let k = (i * 7 + b * 11) % 23;
                event(
                    &format!("c{b:02}-{i:03}"),
                    &format!("type.{}", k % 13),
                    "2014-01-01T00:00:00",
                    json!([
                        s("project_id", &format!("proj-{k}")),
                        s("user_id", &format!("user-{}", (k * 5) % 23)),
                        s(&format!("name-{}", (k * 3) % 23), "v"),
                    ]),
                )
            })
            .collect();
        app.send(admin(
            TestRequest::post()
                .uri("/v2/events")
                .set_json(Value::Array(events)),
        ))
    });
    for res in futures_util::future::join_all(requests).await {
        assert_eq!(res.status, 201, "{}", text(&res));
        assert_eq!(res.json()["stored"], per_batch);
    }
    assert_eq!(all_ids(&app).await.len(), batches * per_batch);
}
