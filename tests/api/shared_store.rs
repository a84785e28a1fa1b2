//! Several servers over one store (as several `almanac serve` over one PostgreSQL): what one
//! stores, the others find at once, although each caches interned names.

use actix_web::test::{self, TestRequest};
use almanac::http::{self, AppState};
use serde_json::json;

use crate::backend_tests;
use crate::support::{admin, event, headers_config, s, t, Backend, Resp, TestDb};

backend_tests!(names_stored_by_another_server_are_found);

/// Server B looks up an event type, a trait name and a tenant that do not exist yet (and caches
/// what it finds), then server A stores them: B must find them on the next request.
async fn names_stored_by_another_server_are_found(backend: Backend) {
    let db = TestDb::new(backend);
    let a = test::init_service(http::app(
        AppState::new(db.open_migrated(), headers_config()).unwrap(),
    ))
    .await;
    let b = test::init_service(http::app(
        AppState::new(db.open_migrated(), headers_config()).unwrap(),
    ))
    .await;
    let get = |uri: &str| admin(TestRequest::get().uri(uri)).to_request();
    let by_type = "/v2/events?q.field=event_type&q.value=new.type&q.field=all_tenants&q.value=true";
    let by_trait = "/v2/events?q.field=zone&q.value=z1&q.field=all_tenants&q.value=true";
    let by_project = "/v2/events?q.field=project_id&q.value=p-new&q.field=all_tenants&q.value=true";
    for uri in [by_type, by_trait, by_project] {
        let res = Resp::read(test::call_service(&b, get(uri)).await).await;
        assert_eq!(res.ids(), Vec::<String>::new(), "{uri} before the ingest");
    }

    let stored = test::call_service(
        &a,
        admin(TestRequest::post().uri("/v2/events").set_json(json!([event(
            "e1",
            "new.type",
            "2026-01-01T00:00:00",
            json!([
                s("zone", "z1"),
                s("project_id", "p-new"),
                t("size", "integer", "3")
            ])
        )])))
        .to_request(),
    )
    .await;
    assert_eq!(stored.status(), 201);

    for uri in [by_type, by_trait, by_project] {
        let res = Resp::read(test::call_service(&b, get(uri)).await).await;
        assert_eq!(res.ids(), vec!["e1".to_string()], "{uri} after the ingest");
    }
    // The page's names (type, trait names, tenancy values) come from B's cache or store.
    let listed = Resp::read(test::call_service(&b, get(by_project)).await).await;
    let body = listed.ok();
    assert_eq!(body[0]["event_type"], "new.type");
    assert_eq!(
        body[0]["traits"],
        json!([
            {"name": "project_id", "value": "p-new", "type": "string"},
            {"name": "size", "value": "3", "type": "integer"},
            {"name": "zone", "value": "z1", "type": "string"},
        ])
    );
}
