//! The committed OpenAPI document is the one the code generates, and the one the server serves.
//! Regenerate it with `UPDATE_API_SPEC=1 scripts/test` (or `almanac openapi --output …`).

use actix_web::test::TestRequest;

use crate::support::{app, Backend};

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/api-spec/openapi.json");

#[test]
fn committed_spec_matches_the_code() {
    let generated = almanac::cli::openapi_json();
    if std::env::var_os("UPDATE_API_SPEC").is_some() {
        std::fs::write(SPEC, &generated).expect("write api-spec/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(SPEC).unwrap_or_default();
    assert!(
        committed == generated,
        "api-spec/openapi.json differs from the document the code generates; \
         run `UPDATE_API_SPEC=1 cargo test --release --test api openapi` and commit the result"
    );
}

#[actix_web::test]
async fn served_spec_is_the_committed_one() {
    let app = app(Backend::Sqlite).await;
    let res = app.send(TestRequest::get().uri("/openapi.json")).await;
    let served = res.ok();
    let generated: serde_json::Value =
        serde_json::from_str(&almanac::cli::openapi_json()).expect("valid JSON");
    assert_eq!(served, generated);
}

#[test]
fn spec_documents_every_route_and_error_shape() {
    let spec: serde_json::Value =
        serde_json::from_str(&almanac::cli::openapi_json()).expect("valid JSON");
    let paths = spec["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/", "get"),
        ("/v2", "get"),
        ("/healthcheck", "get"),
        ("/v2/capabilities", "get"),
        ("/v2/events", "get"),
        ("/v2/events", "post"),
        ("/v2/events/{message_id}", "get"),
        ("/v2/event_types", "get"),
        ("/v2/event_types/{event_type}", "get"),
        ("/v2/event_types/{event_type}/traits", "get"),
        ("/v2/event_types/{event_type}/traits/{trait_name}", "get"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} is not documented");
        let responses = op["responses"].as_object().expect("responses");
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status} must use the error shape"
                );
            }
        }
    }
    assert!(paths["/v2/events"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .any(|p| p["name"] == "q.field"));
}

#[actix_web::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = app(Backend::Sqlite).await;
    let res = app.send(TestRequest::get().uri("/docs/")).await;
    assert_eq!(res.status, 200);
    let html = String::from_utf8_lossy(&res.body);
    assert!(html.contains("swagger"), "{html}");
    assert!(
        !html.contains("https://"),
        "the docs page must not load anything remote"
    );
    let init = app
        .send(TestRequest::get().uri("/docs/swagger-initializer.js"))
        .await;
    assert_eq!(init.status, 200);
    let js = String::from_utf8_lossy(&init.body);
    assert!(js.contains("/openapi.json"), "{js}");
    assert!(js.contains("\"validatorUrl\": \"none\""), "{js}");
}
