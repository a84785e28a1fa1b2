//! `/v2/event_types`, `/v2/event_types/{t}`, `/v2/event_types/{t}/traits` and
//! `/v2/event_types/{t}/traits/{name}`: contents, order, key order, and Panko's access rules.

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::TestRequest;
use serde_json::{json, Value};

use crate::backend_tests;
use crate::support::{app, as_user, event, member, s, t, Backend, Resp, TestApp};

backend_tests!(
    event_types_in_byte_order_each_once,
    empty_store_lists_nothing,
    event_type_definition_is_always_404,
    traits_grouped_by_type_then_name,
    traits_of_an_unknown_type_are_empty,
    trait_values_every_instance,
    trait_values_of_a_name_with_two_types,
    trait_values_of_tenancy_traits,
    trait_values_unknown_type_or_name_are_empty,
    event_type_names_are_percent_decoded,
    admin_is_allowed,
    identified_non_admin_is_401,
    no_identity_headers_is_allowed,
    query_parameters_are_refused,
    a_type_seen_only_on_a_skipped_duplicate_is_not_listed,
);

// ------------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------------

fn text(res: &Resp) -> String {
    String::from_utf8(res.body.to_vec()).expect("a UTF-8 body")
}

/// GET as an admin, asserting a 200, returning the body text.
async fn ok_text<S, B>(app: &TestApp<S>, uri: &str) -> String
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = app.get_admin(uri).await;
    res.ok();
    assert_eq!(res.header("content-type"), Some("application/json"));
    text(&res)
}

/// A trait description as Panko's key order writes it.
fn desc(trait_type: &str, name: &str) -> String {
    format!(r#"{{"type":"{trait_type}","name":"{name}"}}"#)
}

/// A trait instance as Panko's key order writes it.
fn inst(name: &str, value: &str, trait_type: &str) -> String {
    format!(r#"{{"name":"{name}","value":"{value}","type":"{trait_type}"}}"#)
}

fn list(items: &[String]) -> String {
    format!("[{}]", items.join(","))
}

/// Events of three types with traits of every kind.
async fn seed<S, B>(app: &TestApp<S>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    app.ingest(json!([
        event(
            "c-1",
            "compute.instance.create.end",
            "2014-01-01T00:00:00",
            json!([
                s("project_id", "p1"),
                s("user_id", "u1"),
                s("host", "h1"),
                t("memory_mb", "integer", "2048"),
                t("load", "float", "0.1"),
                t("launched_at", "datetime", "2014-01-01T02:00:00+02:00"),
                t("size", "integer", "5"),
            ])
        ),
        event(
            "c-2",
            "compute.instance.create.end",
            "2014-01-01T00:00:01",
            json!([
                s("project_id", "p2"),
                s("user_id", "u2"),
                s("host", "h1"),
                t("memory_mb", "integer", "512"),
                t("load", "float", "100"),
                t("launched_at", "datetime", "2020-01-01T00:00:00.000005"),
                s("size", "large"),
                s("availability_zone", "nova"),
            ])
        ),
        event(
            "c-3",
            "compute.instance.create.end",
            "2014-01-01T00:00:02",
            json!([s("host", "h2"), t("memory_mb", "integer", "2048")])
        ),
        event(
            "i-1",
            "image.update",
            "2014-01-01T00:00:03",
            json!([s("image_id", "img"), t("host", "integer", "7")])
        ),
        event("n-1", "no.traits", "2014-01-01T00:00:04", json!([])),
    ]))
    .await;
}

// ------------------------------------------------------------------------------------------------
// /v2/event_types
// ------------------------------------------------------------------------------------------------

async fn event_types_in_byte_order_each_once(backend: Backend) {
    let app = app(backend).await;
    let types = [
        "admin_ev", "Zoo", "Bar", "élan", "_under", "123", "Foo", "Bar", "admin_ev", "zeta", "Zoo",
    ];
    let events: Vec<Value> = types
        .iter()
        .enumerate()
        .map(|(i, ty)| event(&format!("m{i:02}"), ty, "2014-01-01T00:00:00", json!([])))
        .collect();
    app.ingest(Value::Array(events)).await;
    // A second batch adds events of known types and one new type.
    app.ingest(json!([
        event("n1", "Foo", "2014-01-01T00:00:00", json!([])),
        event("n2", "Baz", "2014-01-01T00:00:00", json!([])),
    ]))
    .await;
    let expected =
        r#"["123","Bar","Baz","Foo","Zoo","_under","admin_ev","zeta","élan"]"#.to_string();
    for uri in ["/v2/event_types", "/v2/event_types/"] {
        assert_eq!(ok_text(&app, uri).await, expected, "{uri}");
    }
}

async fn empty_store_lists_nothing(backend: Backend) {
    let app = app(backend).await;
    for uri in [
        "/v2/event_types",
        "/v2/event_types/",
        "/v2/event_types/e/traits",
        "/v2/event_types/e/traits/",
        "/v2/event_types/e/traits/n",
    ] {
        assert_eq!(ok_text(&app, uri).await, "[]", "{uri}");
    }
}

async fn event_type_definition_is_always_404(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for uri in [
        "/v2/event_types/compute.instance.create.end",
        "/v2/event_types/compute.instance.create.end/",
        "/v2/event_types/no.traits",
        "/v2/event_types/unknown",
    ] {
        assert_eq!(
            app.get_admin(uri).await.error(404),
            "The resource could not be found.",
            "{uri}"
        );
    }
}

// ------------------------------------------------------------------------------------------------
// /v2/event_types/{t}/traits
// ------------------------------------------------------------------------------------------------

async fn traits_grouped_by_type_then_name(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let expected = list(&[
        desc("string", "availability_zone"),
        desc("string", "host"),
        desc("string", "project_id"),
        desc("string", "size"),
        desc("string", "user_id"),
        desc("integer", "memory_mb"),
        desc("integer", "size"),
        desc("float", "load"),
        desc("datetime", "launched_at"),
    ]);
    for uri in [
        "/v2/event_types/compute.instance.create.end/traits",
        "/v2/event_types/compute.instance.create.end/traits/",
    ] {
        assert_eq!(ok_text(&app, uri).await, expected, "{uri}");
    }
    // Only the type's own traits; the same name with another type elsewhere does not leak in.
    assert_eq!(
        ok_text(&app, "/v2/event_types/image.update/traits").await,
        list(&[desc("string", "image_id"), desc("integer", "host")])
    );
    assert_eq!(
        ok_text(&app, "/v2/event_types/no.traits/traits").await,
        "[]"
    );
    // Later events add their new traits, each pair still once.
    app.ingest(json!([event(
        "i-2",
        "image.update",
        "2014-01-02T00:00:00",
        json!([
            s("image_id", "img2"),
            t("checksum", "integer", "1"),
            s("Name", "n")
        ])
    )]))
    .await;
    assert_eq!(
        ok_text(&app, "/v2/event_types/image.update/traits").await,
        list(&[
            desc("string", "Name"),
            desc("string", "image_id"),
            desc("integer", "checksum"),
            desc("integer", "host"),
        ])
    );
}

async fn traits_of_an_unknown_type_are_empty(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for uri in [
        "/v2/event_types/unknown/traits",
        "/v2/event_types/unknown/traits/",
        "/v2/event_types/Compute.Instance.Create.End/traits",
        "/v2/event_types/compute.instance/traits",
    ] {
        assert_eq!(ok_text(&app, uri).await, "[]", "{uri}");
    }
}

// ------------------------------------------------------------------------------------------------
// /v2/event_types/{t}/traits/{name}
// ------------------------------------------------------------------------------------------------

async fn trait_values_every_instance(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let base = "/v2/event_types/compute.instance.create.end/traits";
    let cases = [
        (
            "host",
            list(&[
                inst("host", "h1", "string"),
                inst("host", "h1", "string"),
                inst("host", "h2", "string"),
            ]),
        ),
        (
            "memory_mb",
            list(&[
                inst("memory_mb", "2048", "integer"),
                inst("memory_mb", "512", "integer"),
                inst("memory_mb", "2048", "integer"),
            ]),
        ),
        (
            "load",
            list(&[inst("load", "0.1", "float"), inst("load", "100.0", "float")]),
        ),
        (
            "launched_at",
            list(&[
                inst("launched_at", "2014-01-01T00:00:00", "datetime"),
                inst("launched_at", "2020-01-01T00:00:00.000005", "datetime"),
            ]),
        ),
        (
            "availability_zone",
            list(&[inst("availability_zone", "nova", "string")]),
        ),
    ];
    for (name, expected) in cases {
        assert_eq!(
            ok_text(&app, &format!("{base}/{name}")).await,
            expected,
            "{name}"
        );
        assert_eq!(
            ok_text(&app, &format!("{base}/{name}/")).await,
            expected,
            "{name}/"
        );
    }
    // Only events of that type: image.update's integer host is not among compute's hosts.
    assert_eq!(
        ok_text(&app, "/v2/event_types/image.update/traits/host").await,
        list(&[inst("host", "7", "integer")])
    );
}

async fn trait_values_of_a_name_with_two_types(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    assert_eq!(
        ok_text(
            &app,
            "/v2/event_types/compute.instance.create.end/traits/size"
        )
        .await,
        list(&[
            inst("size", "large", "string"),
            inst("size", "5", "integer")
        ])
    );
    // Both types on one event, too.
    app.ingest(json!([event(
        "d-1",
        "dual",
        "2014-01-01T00:00:00",
        json!([
            t("x", "datetime", "2014-01-01"),
            t("x", "float", "1e16"),
            t("x", "integer", "-1"),
            s("x", "text")
        ])
    )]))
    .await;
    assert_eq!(
        ok_text(&app, "/v2/event_types/dual/traits/x").await,
        list(&[
            inst("x", "text", "string"),
            inst("x", "-1", "integer"),
            inst("x", "1e+16", "float"),
            inst("x", "2014-01-01T00:00:00", "datetime"),
        ])
    );
    assert_eq!(
        ok_text(&app, "/v2/event_types/dual/traits").await,
        list(&[
            desc("string", "x"),
            desc("integer", "x"),
            desc("float", "x"),
            desc("datetime", "x"),
        ])
    );
}

async fn trait_values_of_tenancy_traits(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    // An integer project_id elsewhere in the type is listed after the string ones.
    app.ingest(json!([event(
        "c-4",
        "compute.instance.create.end",
        "2014-01-01T00:00:05",
        json!([t("project_id", "integer", "42")])
    )]))
    .await;
    let base = "/v2/event_types/compute.instance.create.end/traits";
    assert_eq!(
        ok_text(&app, &format!("{base}/project_id")).await,
        list(&[
            inst("project_id", "p1", "string"),
            inst("project_id", "p2", "string"),
            inst("project_id", "42", "integer"),
        ])
    );
    assert_eq!(
        ok_text(&app, &format!("{base}/user_id")).await,
        list(&[
            inst("user_id", "u1", "string"),
            inst("user_id", "u2", "string")
        ])
    );
    // Not project-scoped: the admin of another project sees every tenant's values.
    let res = app
        .send(as_user(
            TestRequest::get().uri(&format!("{base}/project_id")),
            "a",
            "elsewhere",
            "admin",
        ))
        .await;
    res.ok();
    assert_eq!(
        text(&res),
        list(&[
            inst("project_id", "p1", "string"),
            inst("project_id", "p2", "string"),
            inst("project_id", "42", "integer"),
        ])
    );
    // image.update has no tenancy traits at all.
    assert_eq!(
        ok_text(&app, "/v2/event_types/image.update/traits/project_id").await,
        "[]"
    );
}

async fn trait_values_unknown_type_or_name_are_empty(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for uri in [
        "/v2/event_types/unknown/traits/host",
        "/v2/event_types/compute.instance.create.end/traits/unknown",
        "/v2/event_types/compute.instance.create.end/traits/Host",
        // A name known only on another type.
        "/v2/event_types/compute.instance.create.end/traits/image_id",
        "/v2/event_types/no.traits/traits/host",
    ] {
        assert_eq!(ok_text(&app, uri).await, "[]", "{uri}");
    }
}

async fn event_type_names_are_percent_decoded(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event(
        "sp",
        "odd type é",
        "2014-01-01T00:00:00",
        json!([s("a b", "v w")])
    )]))
    .await;
    assert_eq!(ok_text(&app, "/v2/event_types").await, r#"["odd type é"]"#);
    assert_eq!(
        ok_text(&app, "/v2/event_types/odd%20type%20%C3%A9/traits").await,
        list(&[desc("string", "a b")])
    );
    assert_eq!(
        ok_text(&app, "/v2/event_types/odd%20type%20%C3%A9/traits/a%20b").await,
        list(&[inst("a b", "v w", "string")])
    );
}

// ------------------------------------------------------------------------------------------------
// Access
// ------------------------------------------------------------------------------------------------

const ROUTES: [&str; 4] = [
    "/v2/event_types",
    "/v2/event_types/image.update/traits",
    "/v2/event_types/image.update/traits/image_id",
    "/v2/event_types/image.update",
];

/// The status and body expected of each of [`ROUTES`] for an allowed caller.
fn allowed(res: &Resp, route: &str) {
    if route == "/v2/event_types/image.update" {
        assert_eq!(res.error(404), "The resource could not be found.");
        return;
    }
    let body = res.ok();
    let expected = match route {
        "/v2/event_types" => json!(["compute.instance.create.end", "image.update", "no.traits"]),
        "/v2/event_types/image.update/traits" => json!([
            {"type": "string", "name": "image_id"},
            {"type": "integer", "name": "host"}
        ]),
        _ => json!([{"name": "image_id", "value": "img", "type": "string"}]),
    };
    assert_eq!(body, expected, "{route}");
}

async fn admin_is_allowed(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for route in ROUTES {
        allowed(&app.get_admin(route).await, route);
        for roles in ["ADMIN", "member,admin", "Admin,reader"] {
            let res = app
                .send(as_user(TestRequest::get().uri(route), "u9", "p9", roles))
                .await;
            allowed(&res, route);
        }
    }
}

async fn identified_non_admin_is_401(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for route in ROUTES {
        let res = app
            .send(member(TestRequest::get().uri(route), "u1", "p1"))
            .await;
        assert_eq!(
            res.error(401),
            "Not Authorized to access project p1",
            "{route}"
        );
        for roles in ["", "member, admin", "reader", "admin_like"] {
            let res = app
                .send(as_user(TestRequest::get().uri(route), "u1", "P-7", roles))
                .await;
            assert_eq!(
                res.error(401),
                "Not Authorized to access project P-7",
                "{route} {roles:?}"
            );
        }
    }
}

async fn no_identity_headers_is_allowed(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for route in ROUTES {
        // Panko's noauth pipeline with pankoclient: no headers at all.
        allowed(&app.send(TestRequest::get().uri(route)).await, route);
        // requires_admin only refuses a caller with both a user and a project.
        let partial = [
            TestRequest::get()
                .uri(route)
                .insert_header(("X-Roles", "member")),
            TestRequest::get()
                .uri(route)
                .insert_header(("X-User-Id", "u1"))
                .insert_header(("X-Roles", "member")),
            TestRequest::get()
                .uri(route)
                .insert_header(("X-Project-Id", "p1"))
                .insert_header(("X-Roles", "member")),
        ];
        for req in partial {
            allowed(&app.send(req).await, route);
        }
    }
}

async fn query_parameters_are_refused(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    for route in ROUTES {
        let res = app.get_admin(&format!("{route}?limit=1")).await;
        assert_eq!(res.error(400), "Unknown argument: \"limit\"", "{route}");
        let res = app
            .get_admin(&format!("{route}?q.field=a&q.value=b&q.field=c"))
            .await;
        assert_eq!(
            res.error(400),
            "Unknown argument: \"q.field, q.value\"",
            "{route}"
        );
        // With no identity, too.
        let res = app
            .send(TestRequest::get().uri(&format!("{route}/?x=")))
            .await;
        assert_eq!(res.error(400), "Unknown argument: \"x\"", "{route}/");
    }
}

/// A duplicate event is not stored, so its event type must not appear as if it had been: Panko
/// creates the type in the same transaction as the event and rolls both back on a duplicate.
async fn a_type_seen_only_on_a_skipped_duplicate_is_not_listed(backend: Backend) {
    let app = app(backend).await;
    app.ingest(json!([event(
        "m-1",
        "first",
        "2014-01-01T00:00:00",
        json!([s("a", "x")])
    )]))
    .await;
    let outcome = app
        .ingest(json!([event(
            "m-1",
            "phantom",
            "2014-01-01T00:00:00",
            json!([s("b", "y")])
        )]))
        .await;
    assert_eq!(outcome["stored"], 0);
    assert_eq!(outcome["duplicates"], json!(["m-1"]));
    assert_eq!(ok_text(&app, "/v2/event_types").await, r#"["first"]"#);
    assert_eq!(ok_text(&app, "/v2/event_types/phantom/traits").await, "[]");
    assert_eq!(
        ok_text(&app, "/v2/event_types/phantom/traits/b").await,
        "[]"
    );
}
