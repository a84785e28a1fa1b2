//! Every error case of Panko's error table (panko-v2.md §1.4), with Panko's status and text, and
//! Almanac's deliberate differences (almanac-api.md §2): 400 instead of 500 for bad input, the
//! admin scope fix, the message_id tiebreaker, `/v2`, one error shape, the limit maximum, and
//! request ids on errors.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use almanac::config::Config;

use crate::backend_tests;
use crate::support::{
    admin, app, app_with, as_user, event, headers_config, member, s, t, Backend, Resp, TestApp,
};

backend_tests!(
    unknown_q_op,
    unknown_q_type_and_boolean,
    value_not_convertible,
    event_type_and_message_id_take_eq_only,
    start_timestamp_takes_ge_only,
    end_timestamp_takes_le_only,
    limit_negative,
    limit_not_an_integer,
    limit_given_twice,
    limit_zero_means_the_default_page,
    limit_over_the_maximum,
    limit_maximum_is_configurable,
    bad_sort_key,
    bad_sort_direction,
    sort_has_no_comma_syntax,
    unknown_query_parameters,
    all_tenants_as_a_top_level_parameter,
    json_body_not_an_object,
    text_body_on_get_is_415,
    same_argument_in_query_string_and_body,
    unknown_attribute_in_a_q_item,
    event_not_found,
    event_out_of_scope_is_not_found,
    unknown_marker_is_400,
    marker_out_of_scope_is_400,
    unparsable_timestamp_is_400,
    q_item_without_field_is_400,
    q_arrays_of_unequal_length_are_400,
    non_admin_on_event_types_is_401,
    missing_identity_on_events_is_403,
    show_event_rejects_query_parameters,
    bad_input_never_gives_a_5xx,
    nul_in_a_path_is_not_a_5xx,
    admin_scope_includes_events_without_a_project,
    message_id_breaks_ties,
    v2_returns_the_version_entry,
    one_error_shape_everywhere,
    error_responses_carry_request_ids,
);

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

const OPS: &str = "('lt', 'le', 'eq', 'ne', 'ge', 'gt')";
const TYPES: &str = "['integer', 'float', 'string', 'datetime']";
const SORT_HINT: &str = "the sort parameter should be a pair of sort key and sort dir combined \
                         with ':', or only sort key specified and sort dir will be default 'asc'";
const FIELD_HINT: &str = "every q item needs a field (event_type, message_id, start_timestamp, \
                          end_timestamp, all_tenants or a trait name)";
const DATE_HINT: &str = "expected an ISO 8601 date or date-time such as 2014-01-01, \
                         2014-01-01T05:00:00 or 2014-01-01T05:00:00+02:00";

fn text(res: &Resp) -> String {
    String::from_utf8(res.body.to_vec()).expect("a UTF-8 body")
}

/// A few events across tenants, so that "nothing changed" and "nothing leaked" mean something.
async fn seed<S, B>(app: &TestApp<S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.ingest(json!([
        event(
            "ev-1",
            "compute.instance.create.end",
            "2014-01-01T05:00:00",
            json!([
                s("project_id", "p1"),
                s("user_id", "u1"),
                t("memory_mb", "integer", "2048")
            ])
        ),
        event(
            "ev-2",
            "compute.instance.delete.end",
            "2014-01-02T05:00:00",
            json!([s("project_id", "p2"), s("user_id", "u2")])
        ),
        event("ev-3", "image.update", "2014-01-03T05:00:00", json!([])),
    ]))
    .await;
}

/// GET as an admin, asserting a 400 and returning its faultstring.
async fn bad<S, B>(app: &TestApp<S>, uri: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = app.get_admin(uri).await;
    assert_eq!(res.status, 400, "{uri}: {}", text(&res));
    res.error(400)
}

/// GET /v2/events as an admin with a JSON body.
async fn get_with_body<S, B>(app: &TestApp<S>, uri: &str, body: &str) -> Resp
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.send(admin(
        TestRequest::get()
            .uri(uri)
            .insert_header(("Content-Type", "application/json"))
            .set_payload(body.to_string()),
    ))
    .await
}

// ------------------------------------------------------------------------------------------------
// Panko's 400s
// ------------------------------------------------------------------------------------------------

async fn unknown_q_op(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let expected =
        format!("Operator whats-up is not supported. The supported operators are: {OPS}");
    for uri in [
        "/v2/events?q.field=memory_mb&q.op=whats-up&q.value=1&q.type=integer",
        "/v2/events?q[0].field=memory_mb&q[0].op=whats-up&q[0].value=1",
        // The op is checked first, whatever the field.
        "/v2/events?q.field=event_type&q.op=whats-up&q.value=x",
    ] {
        assert_eq!(bad(&app, uri).await, expected, "{uri}");
    }
    let res = get_with_body(
        &app,
        "/v2/events",
        r#"{"q": [{"field": "memory_mb", "op": "whats-up", "value": "1"}]}"#,
    )
    .await;
    assert_eq!(res.error(400), expected);
}

async fn unknown_q_type_and_boolean(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for ty in ["whats-up", "boolean", "int", "String"] {
        let uri = format!("/v2/events?q.field=memory_mb&q.op=eq&q.value=1&q.type={ty}");
        assert_eq!(
            bad(&app, &uri).await,
            format!(
                "The data type {ty} is not supported. The supported data type list is: {TYPES}"
            )
        );
    }
}

async fn value_not_convertible(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let cases = [
        (
            "integer",
            "abc",
            "Unable to convert the value abc to the expected data type integer.",
        ),
        (
            "integer",
            "1.5",
            "Unable to convert the value 1.5 to the expected data type integer.",
        ),
        (
            "integer",
            "9223372036854775808",
            "Unable to convert the value 9223372036854775808 to the expected data type integer. \
             The value is outside the 64-bit integer range.",
        ),
        (
            "float",
            "abc",
            "Unable to convert the value abc to the expected data type float.",
        ),
        (
            "float",
            "nan",
            "Unable to convert the value nan to the expected data type float. NaN and infinite \
             values are not accepted.",
        ),
        (
            "datetime",
            "abc",
            "Unable to convert the value abc to the expected data type datetime.",
        ),
    ];
    for (ty, value, expected) in cases {
        let uri = format!("/v2/events?q.field=memory_mb&q.op=eq&q.value={value}&q.type={ty}");
        assert_eq!(bad(&app, &uri).await, expected, "{ty} {value}");
    }
}

async fn event_type_and_message_id_take_eq_only(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for field in ["event_type", "message_id"] {
        for op in ["ne", "gt", "lt", "le", "ge"] {
            let uri = format!("/v2/events?q.field={field}&q.op={op}&q.value=x");
            assert_eq!(
                bad(&app, &uri).await,
                format!(
                    "Operator {op} is not supported. Only `eq' operator is available for field {field}"
                )
            );
        }
        // eq given or defaulted is fine.
        let res = app
            .get_admin(&format!("/v2/events?q.field={field}&q.op=&q.value=nothing"))
            .await;
        assert_eq!(res.ids(), Vec::<String>::new());
    }
}

async fn start_timestamp_takes_ge_only(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    // Including the default eq: the op must be given.
    for (op_param, op) in [
        ("", "eq"),
        ("&q.op=", "eq"),
        ("&q.op=eq", "eq"),
        ("&q.op=gt", "gt"),
        ("&q.op=le", "le"),
    ] {
        let uri = format!("/v2/events?q.field=start_timestamp&q.value=2014-01-01{op_param}");
        assert_eq!(
            bad(&app, &uri).await,
            format!(
                "Operator {op} is not supported. Only `ge' operator is available for field start_timestamp"
            ),
            "{uri}"
        );
    }
}

async fn end_timestamp_takes_le_only(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for (op_param, op) in [("", "eq"), ("&q.op=gt", "gt"), ("&q.op=ge", "ge")] {
        let uri = format!("/v2/events?q.field=end_timestamp&q.value=2014-01-01{op_param}");
        assert_eq!(
            bad(&app, &uri).await,
            format!(
                "Operator {op} is not supported. Only `le' operator is available for field end_timestamp"
            ),
            "{uri}"
        );
    }
}

async fn limit_negative(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?limit=-1").await,
        "Invalid input for field/attribute limit. Value: '-1'. the limit should be a positive integer."
    );
    assert_eq!(
        bad(&app, "/v2/events?limit=-007").await,
        "Invalid input for field/attribute limit. Value: '-7'. the limit should be a positive integer."
    );
}

async fn limit_not_an_integer(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?limit=abc").await,
        "Invalid input for field/attribute limit. Value: 'abc'. unable to convert to int. Error: \
         invalid literal for int() with base 10: 'abc'"
    );
    assert_eq!(
        bad(&app, "/v2/events?limit=1.5").await,
        "Invalid input for field/attribute limit. Value: '1.5'. unable to convert to int. Error: \
         invalid literal for int() with base 10: '1.5'"
    );
}

async fn limit_given_twice(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?limit=1&limit=2").await,
        "Invalid input for field/attribute limit. Value: '['1', '2']'. unable to convert to int. \
         Error: int() argument must be a string, a bytes-like object or a number, not 'list'"
    );
}

async fn limit_zero_means_the_default_page(backend: Backend) {
    let mut config = headers_config();
    config.limits.default_limit = 3;
    let app = app_with(backend, config).await;
    let events: Vec<Value> = (0..5)
        .map(|i| {
            event(
                &format!("m{i}"),
                "e",
                &format!("2014-01-01T00:00:0{i}"),
                json!([]),
            )
        })
        .collect();
    app.ingest(Value::Array(events)).await;
    for uri in ["/v2/events", "/v2/events?limit=0", "/v2/events?limit=00"] {
        assert_eq!(app.get_admin(uri).await.ids(), ["m0", "m1", "m2"], "{uri}");
    }
    assert_eq!(
        app.get_admin("/v2/events?limit=4").await.ids(),
        ["m0", "m1", "m2", "m3"]
    );
    assert_eq!(app.get_admin("/v2/events?limit=1").await.ids(), ["m0"]);
}

async fn limit_over_the_maximum(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?limit=10001").await,
        "Invalid input for field/attribute limit. Value: '10001'. the limit should not be greater than 10000."
    );
    // Far past any integer type, still a 400 naming the maximum.
    assert_eq!(
        bad(&app, "/v2/events?limit=99999999999999999999999").await,
        "Invalid input for field/attribute limit. Value: '99999999999999999999999'. the limit \
         should not be greater than 10000."
    );
    assert_eq!(
        app.get_admin("/v2/events?limit=10000&q.field=all_tenants&q.value=true")
            .await
            .ids()
            .len(),
        3
    );
}

async fn limit_maximum_is_configurable(backend: Backend) {
    let mut config = headers_config();
    config.limits.max_limit = 500;
    let app = app_with(backend, config).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?limit=501").await,
        "Invalid input for field/attribute limit. Value: '501'. the limit should not be greater than 500."
    );
    assert_eq!(
        app.get_admin("/v2/events?limit=500&q.field=all_tenants&q.value=true")
            .await
            .ids()
            .len(),
        3
    );
}

async fn bad_sort_key(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for value in ["invalid_key:desc", "invalid_key", "event_type", ":asc"] {
        let uri = format!("/v2/events?sort={value}");
        assert_eq!(
            bad(&app, &uri).await,
            format!(
                "Invalid input for field/attribute sort. Value: '{value}'. {SORT_HINT}, the \
                 supported sort keys are: ('message_id', 'generated')"
            )
        );
    }
}

async fn bad_sort_direction(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for value in ["message_id:bah", "generated:DESC", "generated:asc:x"] {
        let uri = format!("/v2/events?sort={value}");
        assert_eq!(
            bad(&app, &uri).await,
            format!(
                "Invalid input for field/attribute sort direction. Value: '{value}'. {SORT_HINT}, \
                 the supported sort directions are: ('asc', 'desc')"
            )
        );
    }
}

async fn sort_has_no_comma_syntax(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?sort=a:asc,b:desc").await,
        format!(
            "Invalid input for field/attribute sort. Value: 'a:asc,b:desc'. {SORT_HINT}, the \
             supported sort keys are: ('message_id', 'generated')"
        )
    );
    assert_eq!(
        bad(&app, "/v2/events?sort=generated:asc,message_id:desc").await,
        format!(
            "Invalid input for field/attribute sort direction. Value: \
             'generated:asc,message_id:desc'. {SORT_HINT}, the supported sort directions are: \
             ('asc', 'desc')"
        )
    );
    // Repeating the parameter is the way.
    assert_eq!(
        app.get_admin(
            "/v2/events?q.field=all_tenants&q.value=true&sort=generated:desc&sort=message_id:asc"
        )
        .await
        .ids(),
        ["ev-3", "ev-2", "ev-1"]
    );
}

async fn unknown_query_parameters(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?bad_Stuff_here=1").await,
        "Unknown argument: \"bad_Stuff_here\""
    );
    assert_eq!(
        bad(&app, "/v2/events?foo=1&limit=2&bar=2&foo=3").await,
        "Unknown argument: \"foo, bar\""
    );
    assert_eq!(
        bad(&app, "/v2/events?Limit=2").await,
        "Unknown argument: \"Limit\""
    );
    // Unknown arguments are reported before any other problem.
    assert_eq!(
        bad(&app, "/v2/events?limit=abc&x=1").await,
        "Unknown argument: \"x\""
    );
}

async fn all_tenants_as_a_top_level_parameter(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events?all_tenants=True").await,
        "Unknown argument: \"all_tenants\""
    );
    // As a q item it works.
    assert_eq!(
        app.get_admin("/v2/events?q.field=all_tenants&q.value=True")
            .await
            .ids(),
        ["ev-1", "ev-2", "ev-3"]
    );
}

async fn json_body_not_an_object(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for body in ["[]", r#"[{"field": "a"}]"#, r#""q""#, "5", "null"] {
        let res = get_with_body(&app, "/v2/events", body).await;
        assert_eq!(res.error(400), "Request must be a JSON dict", "{body}");
    }
    let res = get_with_body(&app, "/v2/events", r#"{"foo": 1, "limit": 1, "bar": 2}"#).await;
    assert_eq!(res.error(400), "Unknown argument: \"foo, bar\"");
    let res = get_with_body(&app, "/v2/events", r#"{"limit": 1"#).await;
    let fault = res.error(400);
    assert!(
        fault.starts_with("Request body is not valid JSON: "),
        "{fault}"
    );
    // A valid body works, and whitespace alone is no body.
    let res = get_with_body(
        &app,
        "/v2/events",
        r#"{"q": [{"field": "all_tenants", "value": "true"}], "limit": 2, "sort": ["message_id:desc"]}"#,
    )
    .await;
    assert_eq!(res.ids(), ["ev-3", "ev-2"]);
    let res = get_with_body(&app, "/v2/events", " \n").await;
    assert_eq!(res.ids(), ["ev-3"]);
}

async fn text_body_on_get_is_415(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let res = app
        .send(admin(
            TestRequest::get()
                .uri("/v2/events")
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("limit=1"),
        ))
        .await;
    assert_eq!(res.error(415), "Unknown mimetype: text/plain");
    let res = app
        .send(admin(
            TestRequest::get()
                .uri("/v2/events")
                .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                .set_payload("limit=1"),
        ))
        .await;
    assert_eq!(
        res.error(415),
        "Unknown mimetype: application/x-www-form-urlencoded"
    );
}

async fn same_argument_in_query_string_and_body(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let res = get_with_body(&app, "/v2/events?limit=1", r#"{"limit": 2}"#).await;
    assert_eq!(res.error(400), "Parameter limit was given several times");
    let res = get_with_body(
        &app,
        "/v2/events?q.field=event_type&q.value=x",
        r#"{"q": [{"field": "message_id", "value": "y"}]}"#,
    )
    .await;
    assert_eq!(res.error(400), "Parameter q was given several times");
    let res = get_with_body(&app, "/v2/events", r#"{"limit": 1, "limit": 2}"#).await;
    assert_eq!(res.error(400), "Parameter limit was given several times");
    // Different parameters from each place combine.
    let res = get_with_body(
        &app,
        "/v2/events?sort=message_id:desc",
        r#"{"q": [{"field": "all_tenants", "value": "true"}], "limit": 1}"#,
    )
    .await;
    assert_eq!(res.ids(), ["ev-3"]);
}

async fn unknown_attribute_in_a_q_item(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let res = get_with_body(
        &app,
        "/v2/events",
        r#"{"q": [{"field": "a", "value": "b", "bogus": "x"}]}"#,
    )
    .await;
    assert_eq!(res.error(400), "Unknown attribute for argument q: bogus");
    assert_eq!(
        bad(&app, "/v2/events?q.field=a&q.bogus=x").await,
        "Unknown attribute for argument q: bogus"
    );
    assert_eq!(
        bad(&app, "/v2/events?q[0].field=a&q[0].bogus=x").await,
        "Unknown attribute for argument q: bogus"
    );
}

// ------------------------------------------------------------------------------------------------
// 404s
// ------------------------------------------------------------------------------------------------

async fn event_not_found(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for id in ["nope", "EV-3", "100.json", "ev-3 "] {
        let uri = format!("/v2/events/{}", id.replace(' ', "%20"));
        assert_eq!(
            app.get_admin(&uri).await.error(404),
            format!("Event {id} Not Found"),
            "{uri}"
        );
    }
    // With a trailing slash, the same.
    assert_eq!(
        app.get_admin("/v2/events/nope/").await.error(404),
        "Event nope Not Found"
    );
    assert_eq!(
        app.get_admin("/v2/events/ev-3").await.ok()["message_id"],
        "ev-3"
    );
}

async fn event_out_of_scope_is_not_found(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    // A member: another user's and another project's events.
    for id in ["ev-2", "ev-3"] {
        let res = app
            .send(member(
                TestRequest::get().uri(&format!("/v2/events/{id}")),
                "u1",
                "p1",
            ))
            .await;
        assert_eq!(res.error(404), format!("Event {id} Not Found"));
    }
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events/ev-1"),
            "u2",
            "p1",
        ))
        .await;
    assert_eq!(res.error(404), "Event ev-1 Not Found");
    // An admin of another project (no all_tenants on this route).
    assert_eq!(
        app.get_admin("/v2/events/ev-1").await.error(404),
        "Event ev-1 Not Found"
    );
    // In scope, the same requests succeed.
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events/ev-1"),
            "u1",
            "p1",
        ))
        .await;
    assert_eq!(res.ok()["message_id"], "ev-1");
}

// ------------------------------------------------------------------------------------------------
// Panko's 500s, Almanac's 400s
// ------------------------------------------------------------------------------------------------

async fn unknown_marker_is_400(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for uri in [
        "/v2/events?marker=nope",
        "/v2/events?marker=nope&sort=message_id:desc&limit=1",
    ] {
        let fault = bad(&app, uri).await;
        assert!(fault.starts_with("Marker nope not found."), "{fault}");
        assert!(fault.contains("message_id"), "{fault}");
    }
    // An empty marker means none.
    assert_eq!(app.get_admin("/v2/events?marker=").await.ids(), ["ev-3"]);
}

async fn marker_out_of_scope_is_400(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    // Another tenant's message_id is not a marker for this caller: it cannot probe for it.
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events?marker=ev-2"),
            "u1",
            "p1",
        ))
        .await;
    let fault = res.error(400);
    assert!(fault.starts_with("Marker ev-2 not found."), "{fault}");
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events?marker=nope"),
            "u1",
            "p1",
        ))
        .await;
    let fault = res.error(400);
    assert!(fault.starts_with("Marker nope not found."), "{fault}");
}

async fn unparsable_timestamp_is_400(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for (field, op) in [("start_timestamp", "ge"), ("end_timestamp", "le")] {
        for value in [
            "notadate",
            "2014-13-01",
            "2014-01-01T25:00:00",
            "10000-01-01",
        ] {
            let uri = format!("/v2/events?q.field={field}&q.op={op}&q.value={value}");
            assert_eq!(
                bad(&app, &uri).await,
                format!("Unable to parse date string '{value}': {DATE_HINT}"),
                "{uri}"
            );
        }
    }
}

async fn q_item_without_field_is_400(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let expected = format!("q item 0 has no field: {FIELD_HINT}");
    for uri in [
        "/v2/events?q.value=x",
        "/v2/events?q.field=&q.value=x",
        "/v2/events?q.field=&q.op=eq&q.value=x&q.type=string",
        "/v2/events?q[0].value=x",
    ] {
        assert_eq!(bad(&app, uri).await, expected, "{uri}");
    }
    let res = get_with_body(&app, "/v2/events", r#"{"q": [{"value": "x"}]}"#).await;
    assert_eq!(res.error(400), expected);
    // The item's position is named.
    assert_eq!(
        bad(
            &app,
            "/v2/events?q.field=event_type&q.field=&q.value=a&q.value=b"
        )
        .await,
        format!("q item 1 has no field: {FIELD_HINT}")
    );
    // A field without a value is refused too.
    assert_eq!(
        bad(&app, "/v2/events?q.field=event_type").await,
        "q item 0 (field event_type) has no value"
    );
}

async fn q_arrays_of_unequal_length_are_400(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let tail = "Send the same number of q.field, q.op, q.value and q.type values (use an empty \
                value where an item does not need one)";
    assert_eq!(
        bad(&app, "/v2/events?q.field=a&q.field=b&q.value=x").await,
        format!("The q arrays have different lengths: q.field has 2 values, q.value has 1. {tail}")
    );
    assert_eq!(
        bad(
            &app,
            "/v2/events?q.field=a&q.op=eq&q.op=eq&q.value=x&q.type=string"
        )
        .await,
        format!(
            "The q arrays have different lengths: q.field has 1 value, q.op has 2, q.value has 1, \
             q.type has 1. {tail}"
        )
    );
}

// ------------------------------------------------------------------------------------------------
// Identity
// ------------------------------------------------------------------------------------------------

async fn non_admin_on_event_types_is_401(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for uri in [
        "/v2/event_types",
        "/v2/event_types/",
        "/v2/event_types/image.update",
        "/v2/event_types/image.update/traits",
        "/v2/event_types/compute.instance.create.end/traits/memory_mb",
    ] {
        let res = app
            .send(member(TestRequest::get().uri(uri), "u1", "p1"))
            .await;
        assert_eq!(
            res.error(401),
            "Not Authorized to access project p1",
            "{uri}"
        );
        // "member, admin" is not admin: roles are split on ',' without trimming.
        let res = app
            .send(as_user(
                TestRequest::get().uri(uri),
                "u1",
                "the-project",
                "member, admin",
            ))
            .await;
        assert_eq!(
            res.error(401),
            "Not Authorized to access project the-project",
            "{uri}"
        );
    }
}

async fn missing_identity_on_events_is_403(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let partial = |uri: &str| {
        [
            TestRequest::get().uri(uri),
            TestRequest::get()
                .uri(uri)
                .insert_header(("X-Roles", "admin")),
            TestRequest::get()
                .uri(uri)
                .insert_header(("X-Roles", "admin"))
                .insert_header(("X-Project-Id", "p1")),
            TestRequest::get()
                .uri(uri)
                .insert_header(("X-Roles", "admin"))
                .insert_header(("X-User-Id", "u1")),
            TestRequest::get()
                .uri(uri)
                .insert_header(("X-Roles", "admin"))
                .insert_header(("X-User-Id", ""))
                .insert_header(("X-Project-Id", "p1")),
        ]
    };
    for uri in [
        "/v2/events",
        "/v2/events/",
        "/v2/events/ev-1",
        "/v2/events/ev-3",
        "/v2/events/nope",
        // Identity is checked before the arguments.
        "/v2/events?limit=abc",
        "/v2/events/ev-1?x=1",
    ] {
        for req in partial(uri) {
            assert_eq!(
                app.send(req).await.error(403),
                "RBAC Authorization Failed",
                "{uri}"
            );
        }
    }
}

async fn show_event_rejects_query_parameters(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        bad(&app, "/v2/events/ev-3?q.field=a&q.value=b").await,
        "Unknown argument: \"q.field, q.value\""
    );
    assert_eq!(
        bad(&app, "/v2/events/ev-3?limit=1").await,
        "Unknown argument: \"limit\""
    );
    assert_eq!(
        bad(&app, "/v2/events/nope?all_tenants=true").await,
        "Unknown argument: \"all_tenants\""
    );
}

// ------------------------------------------------------------------------------------------------
// Almanac's differences (almanac-api.md §2)
// ------------------------------------------------------------------------------------------------

async fn bad_input_never_gives_a_5xx(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let uris = [
        "/v2/events?marker=nope",
        "/v2/events?q.field=start_timestamp&q.op=ge&q.value=notadate",
        "/v2/events?q.field=end_timestamp&q.op=le&q.value=",
        "/v2/events?q.value=x",
        "/v2/events?q.field=a&q.field=b&q.value=x",
        "/v2/events?q.field=a&q.type=integer&q.value=x",
        "/v2/events?q.field=a&q.type=&q.value=101",
        "/v2/events?q.field=a&q.type=float&q.value=1e400",
        "/v2/events?q.field=a&q.type=datetime&q.value=0000-01-01",
        "/v2/events?q.field=a%00&q.value=x",
        "/v2/events?q.field=a&q.value=x%00",
        "/v2/events?q.field=event_type&q.value=x%00",
        "/v2/events?marker=x%00",
        "/v2/events?q=x",
        "/v2/events?q[0].field=a&q[2].value=x",
        "/v2/events?q[0].field=a&q.value=x",
        "/v2/events?q[99999999999999999999999].field=a",
        "/v2/events?limit=%FF",
        "/v2/events?sort=",
        "/v2/events/%FF",
        "/v2/events/%C3%A9t%C3%A9",
        "/v2/event_types/%FF/traits",
    ];
    assert_no_5xx(&app, &uris).await;
    let long_value = "v".repeat(2000);
    let res = app
        .get_admin(&format!("/v2/events?q.field=a&q.value={long_value}"))
        .await;
    assert_eq!(
        res.error(400),
        "The value of trait a is 2000 bytes long; string values are limited to 1024 bytes"
    );
    let many: String = (0..101)
        .map(|i| format!("q[{i}].field=f{i}&q[{i}].value=v&"))
        .collect();
    let res = app.get_admin(&format!("/v2/events?{many}")).await;
    assert_eq!(
        res.error(400),
        "Too many q items: 101 were given, at most 100 are accepted"
    );
}

/// GETs each URI as an admin and asserts a 2xx or a 4xx in the one error shape, listing every
/// URI that failed.
async fn assert_no_5xx<S, B>(app: &TestApp<S>, uris: &[&str])
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut failures = Vec::new();
    for uri in uris {
        let res = app.get_admin(uri).await;
        let shaped = res.status.is_success()
            || (res.status.is_client_error()
                && res.header("content-type") == Some("application/json")
                && serde_json::from_slice::<Value>(&res.body)
                    .ok()
                    .is_some_and(|b| b["error_message"]["faultstring"].is_string()));
        if !shaped {
            failures.push(format!("GET {uri} -> {} {}", res.status, text(&res)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A NUL in a path segment is bad input like any other: PostgreSQL cannot compare text holding
/// NUL, so it must be refused (or found absent) before the query, never a 500.
async fn nul_in_a_path_is_not_a_5xx(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let uris = [
        "/v2/events/x%00",
        "/v2/event_types/x%00/traits",
        "/v2/event_types/x%00/traits/y",
        "/v2/event_types/image.update/traits/y%00",
    ];
    assert_no_5xx(&app, &uris).await;
    let expected = [
        "The message_id in the path contains a NUL character; NUL characters are not accepted.",
        "The event type in the path contains a NUL character; NUL characters are not accepted.",
        "The event type in the path contains a NUL character; NUL characters are not accepted.",
        "The trait name in the path contains a NUL character; NUL characters are not accepted.",
    ];
    for (uri, fault) in uris.into_iter().zip(expected) {
        assert_eq!(bad(&app, uri).await, fault, "{uri}");
    }
}

async fn admin_scope_includes_events_without_a_project(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event(
            "own",
            "e",
            "2014-01-01T00:00:00",
            json!([s("project_id", "admin-project"), s("user_id", "x")])
        ),
        event(
            "other",
            "e",
            "2014-01-01T00:00:01",
            json!([s("project_id", "p2"), s("user_id", "u2")])
        ),
        event(
            "no-project",
            "e",
            "2014-01-01T00:00:02",
            json!([s("host", "h1")])
        ),
        event(
            "ints-only",
            "e",
            "2014-01-01T00:00:03",
            json!([t("n", "integer", "1"), t("f", "float", "1.5")])
        ),
        event("no-traits", "e", "2014-01-01T00:00:04", json!([])),
        event(
            "int-project",
            "e",
            "2014-01-01T00:00:05",
            json!([t("project_id", "integer", "7")])
        ),
    ]))
    .await;
    let visible = ["own", "no-project", "ints-only", "no-traits", "int-project"];
    assert_eq!(app.get_admin("/v2/events").await.ids(), visible);
    for id in visible {
        let res = app.get_admin(&format!("/v2/events/{id}")).await;
        assert_eq!(res.ok()["message_id"], id);
    }
    assert_eq!(
        app.get_admin("/v2/events/other").await.error(404),
        "Event other Not Found"
    );
    assert_eq!(
        app.get_admin("/v2/events?q.field=all_tenants&q.value=true")
            .await
            .ids(),
        [
            "own",
            "other",
            "no-project",
            "ints-only",
            "no-traits",
            "int-project"
        ]
    );
    // all_tenants=false leaves the restriction; an admin of p2 sees p2's and project-less events.
    assert_eq!(
        app.get_admin("/v2/events?q.field=all_tenants&q.value=false")
            .await
            .ids(),
        visible
    );
    let res = app
        .send(as_user(
            TestRequest::get().uri("/v2/events"),
            "a",
            "p2",
            "admin",
        ))
        .await;
    assert_eq!(
        res.ids(),
        [
            "other",
            "no-project",
            "ints-only",
            "no-traits",
            "int-project"
        ]
    );
}

async fn message_id_breaks_ties(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([
        event("c", "e", "2014-01-01T00:00:00", json!([])),
        event("a", "e", "2014-01-01T00:00:00", json!([])),
        event("b", "e", "2014-01-01T00:00:00", json!([])),
    ]))
    .await;
    assert_eq!(app.get_admin("/v2/events").await.ids(), ["a", "b", "c"]);
    assert_eq!(
        app.get_admin("/v2/events?sort=generated").await.ids(),
        ["a", "b", "c"]
    );
    assert_eq!(
        app.get_admin("/v2/events?sort=generated:desc").await.ids(),
        ["c", "b", "a"]
    );
    // Paging one at a time over equal generated values neither skips nor repeats.
    let mut seen = Vec::new();
    let mut marker = String::new();
    loop {
        let uri = format!("/v2/events?sort=generated:desc&limit=1&marker={marker}");
        let page = app.get_admin(&uri).await.ids();
        if page.is_empty() {
            break;
        }
        marker = page[0].clone();
        seen.push(marker.clone());
        assert!(seen.len() <= 3, "{seen:?}");
    }
    assert_eq!(seen, ["c", "b", "a"]);
}

async fn v2_returns_the_version_entry(backend: Backend) {
    let app = app(backend).await;
    for uri in ["/v2", "/v2/"] {
        let res = app
            .send(
                TestRequest::get()
                    .uri(uri)
                    .insert_header(("Host", "h:8977")),
            )
            .await;
        let body = res.ok();
        assert_eq!(res.header("content-type"), Some("application/json"));
        let v = &body["version"];
        assert_eq!(v["id"], "v2", "{uri}");
        assert_eq!(v["status"], "stable");
        assert_eq!(
            v["links"][0],
            json!({"href": "http://h:8977/v2", "rel": "self"})
        );
        assert!(res.header("x-openstack-request-id").is_some());
    }
}

/// Each error status the API can give for bad requests, with its faultstring.
async fn error_responses<S, B>(app: &TestApp<S>) -> Vec<(u16, Resp, String)>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let big_body = format!(r#"{{"marker": "{}"}}"#, "x".repeat(300));
    let requests = vec![
        (
            400,
            admin(TestRequest::get().uri("/v2/events?limit=abc")),
            "Invalid input for field/attribute limit. Value: 'abc'. unable to convert to int. \
             Error: invalid literal for int() with base 10: 'abc'"
                .to_string(),
        ),
        (
            400,
            admin(
                TestRequest::post()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", "application/json"))
                    .set_payload("[]"),
            ),
            "The batch is empty: send at least one event.".to_string(),
        ),
        (
            401,
            member(TestRequest::get().uri("/v2/event_types"), "u", "p"),
            "Not Authorized to access project p".to_string(),
        ),
        (
            403,
            TestRequest::get().uri("/v2/events"),
            "RBAC Authorization Failed".to_string(),
        ),
        (
            404,
            admin(TestRequest::get().uri("/v2/nope")),
            "The resource could not be found.".to_string(),
        ),
        (
            404,
            admin(TestRequest::get().uri("/v2/events/nope")),
            "Event nope Not Found".to_string(),
        ),
        (
            404,
            admin(TestRequest::get().uri("/v2/event_types/e")),
            "The resource could not be found.".to_string(),
        ),
        (
            405,
            admin(TestRequest::delete().uri("/v2/events")),
            "Method DELETE is not allowed on this resource. Allowed: GET, POST".to_string(),
        ),
        (
            405,
            admin(TestRequest::put().uri("/v2/events/ev-1")),
            "Method PUT is not allowed on this resource. Allowed: GET".to_string(),
        ),
        (
            406,
            admin(
                TestRequest::get()
                    .uri("/v2/events")
                    .insert_header(("Accept", "application/xml")),
            ),
            "Only application/json responses are served; the Accept header does not allow them"
                .to_string(),
        ),
        (
            413,
            admin(
                TestRequest::get()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", "application/json"))
                    .set_payload(big_body),
            ),
            "The request body is larger than the limit of 256 bytes.".to_string(),
        ),
        (
            413,
            admin(
                TestRequest::post()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", "application/json"))
                    .set_payload(format!("[{}]", "{}, ".repeat(100))),
            ),
            "The request body is larger than the limit of 256 bytes; send smaller batches."
                .to_string(),
        ),
        (
            415,
            admin(
                TestRequest::get()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", "text/plain"))
                    .set_payload("x"),
            ),
            "Unknown mimetype: text/plain".to_string(),
        ),
        (
            415,
            admin(
                TestRequest::post()
                    .uri("/v2/events")
                    .insert_header(("Content-Type", "text/plain"))
                    .set_payload("x"),
            ),
            "Unknown mimetype: text/plain. Send events as application/json (a JSON array) or \
             application/x-ndjson (one event per line)."
                .to_string(),
        ),
    ];
    let mut out = Vec::new();
    for (status, req, fault) in requests {
        out.push((status, app.send(req).await, fault));
    }
    out
}

fn small_body_config() -> Config {
    let mut config = headers_config();
    config.limits.max_body_bytes = 256;
    config
}

async fn one_error_shape_everywhere(backend: Backend) {
    let app = app_with(backend, small_body_config()).await;
    for (status, res, fault) in error_responses(&app).await {
        assert_eq!(res.error(status), fault);
        // Exactly the envelope: no other keys (the ingest `errors` list only for invalid events).
        let body = res.json();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["error_message"], "{body}");
        let mut inner: Vec<&String> = body["error_message"].as_object().unwrap().keys().collect();
        inner.sort();
        assert_eq!(inner, ["debuginfo", "faultcode", "faultstring"], "{body}");
    }
}

async fn error_responses_carry_request_ids(backend: Backend) {
    let app = app_with(backend, small_body_config()).await;
    let mut seen = std::collections::HashSet::new();
    for (status, res, _) in error_responses(&app).await {
        assert_eq!(res.status.as_u16(), status);
        assert!(seen.insert(res.request_id()), "request ids are unique");
    }
}
