//! `/`, `/v2`, `/healthcheck`, `/v2/capabilities`, 404/405/406, request ids.

use actix_web::test::TestRequest;

use crate::backend_tests;
use crate::support::{app, Backend};

backend_tests!(
    versions_document,
    v2_version_entry,
    healthcheck_is_plain_ok,
    capabilities_with_and_without_slash,
    capabilities_rejects_arguments,
    unknown_path_is_404_json,
    other_methods_get_405_with_allow,
    options_lists_methods,
    xml_only_accept_gets_406,
    every_response_has_a_request_id,
);

async fn versions_document(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .send(
            TestRequest::get()
                .uri("/")
                .insert_header(("Host", "example.test:8977")),
        )
        .await;
    let body = res.ok();
    let v = &body["versions"]["values"][0];
    assert_eq!(v["id"], "v2");
    assert_eq!(v["status"], "stable");
    assert_eq!(v["updated"], "2013-02-13T00:00:00Z");
    assert_eq!(v["links"][0]["href"], "http://example.test:8977/v2");
    assert_eq!(v["links"][0]["rel"], "self");
    assert_eq!(v["links"][1]["rel"], "describedby");
    assert_eq!(
        v["media-types"][0]["type"],
        "application/vnd.openstack.telemetry-v2+json"
    );
    assert_eq!(res.header("content-type"), Some("application/json"));
}

async fn v2_version_entry(backend: Backend) {
    let app = app(backend).await;
    for uri in ["/v2", "/v2/"] {
        let body = app.send(TestRequest::get().uri(uri)).await.ok();
        assert_eq!(body["version"]["id"], "v2", "{uri}");
    }
}

async fn healthcheck_is_plain_ok(backend: Backend) {
    let app = app(backend).await;
    let res = app.send(TestRequest::get().uri("/healthcheck")).await;
    assert_eq!(res.status, 200);
    assert_eq!(&res.body[..], b"OK");
    assert_eq!(
        res.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
}

async fn capabilities_with_and_without_slash(backend: Backend) {
    let app = app(backend).await;
    for uri in ["/v2/capabilities", "/v2/capabilities/"] {
        let body = app.send(TestRequest::get().uri(uri)).await.ok();
        assert_eq!(
            body,
            serde_json::json!({"api": {"events:query:simple": true},
                               "event_storage": {"storage:production_ready": true}}),
            "{uri}"
        );
    }
}

async fn capabilities_rejects_arguments(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .send(TestRequest::get().uri("/v2/capabilities?bad_Stuff_here=1"))
        .await;
    assert_eq!(res.error(400), "Unknown argument: \"bad_Stuff_here\"");
}

async fn unknown_path_is_404_json(backend: Backend) {
    let app = app(backend).await;
    for uri in ["/v2/nope", "/nope", "/v2/events/a/b/c"] {
        let res = app.send(TestRequest::get().uri(uri)).await;
        assert_eq!(res.error(404), "The resource could not be found.", "{uri}");
    }
}

async fn other_methods_get_405_with_allow(backend: Backend) {
    let app = app(backend).await;
    let cases = [
        (TestRequest::delete().uri("/v2/events"), "GET, POST"),
        (TestRequest::put().uri("/v2/events/x"), "GET"),
        (TestRequest::post().uri("/v2/event_types"), "GET"),
        (TestRequest::patch().uri("/v2/event_types/a/traits/"), "GET"),
        (TestRequest::post().uri("/v2/capabilities"), "GET"),
        (
            TestRequest::default()
                .method(actix_web::http::Method::HEAD)
                .uri("/v2/events"),
            "GET, POST",
        ),
        (TestRequest::delete().uri("/"), "GET"),
    ];
    for (req, allow) in cases {
        let res = app.send(req).await;
        let fault = res.error(405);
        assert!(fault.starts_with("Method "), "{fault}");
        assert_eq!(res.header("allow"), Some(allow));
    }
}

async fn options_lists_methods(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .send(
            TestRequest::default()
                .method(actix_web::http::Method::OPTIONS)
                .uri("/v2/events"),
        )
        .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.header("allow"), Some("GET, POST"));
    assert!(res.body.is_empty());
}

async fn xml_only_accept_gets_406(backend: Backend) {
    let app = app(backend).await;
    let res = app
        .send(
            TestRequest::get()
                .uri("/")
                .insert_header(("Accept", "application/xml")),
        )
        .await;
    assert!(res.error(406).contains("application/json"));
    // JSON among the accepted types, or anything at all, is served.
    for accept in [
        "application/xml, application/json;q=0.5",
        "*/*",
        "text/html,*/*;q=0.8",
    ] {
        let res = app
            .send(
                TestRequest::get()
                    .uri("/")
                    .insert_header(("Accept", accept)),
            )
            .await;
        assert_eq!(res.status, 200, "{accept}");
    }
    let res = app
        .send(
            TestRequest::get()
                .uri("/")
                .insert_header(("Accept", "application/json;q=0")),
        )
        .await;
    res.error(406);
}

async fn every_response_has_a_request_id(backend: Backend) {
    let app = app(backend).await;
    let mut seen = std::collections::HashSet::new();
    for uri in ["/", "/v2/events", "/nope", "/v2/capabilities"] {
        let res = app.send(TestRequest::get().uri(uri)).await;
        assert!(seen.insert(res.request_id()), "request ids are unique");
    }
}
