//! Tenancy: members see their own events only; admins see their project plus events without a
//! project (including events with no string traits at all), or everything with all_tenants.

use actix_web::test::TestRequest;
use serde_json::json;

use crate::backend_tests;
use crate::support::{admin, app, as_user, event, member, s, t, Backend};

backend_tests!(
    member_sees_own_events_only,
    admin_scope_without_all_tenants,
    all_tenants_values,
    roles_are_parsed_as_panko_does,
    markers_of_other_tenants_are_not_found,
    filters_cannot_widen_the_scope,
);

/// p1/u1, p1/u2, p2/u1, a user without project, an event with only an integer trait, and an
/// event without traits.
async fn seed<S, B>(app: &crate::support::TestApp<S>)
where
    S: actix_web::dev::Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    B: actix_web::body::MessageBody,
{
    app.ingest(json!([
        event(
            "p1u1",
            "x",
            "2014-01-01T00:00:01",
            json!([s("project_id", "p1"), s("user_id", "u1")])
        ),
        event(
            "p1u2",
            "x",
            "2014-01-01T00:00:02",
            json!([s("project_id", "p1"), s("user_id", "u2")])
        ),
        event(
            "p2u1",
            "x",
            "2014-01-01T00:00:03",
            json!([s("project_id", "p2"), s("user_id", "u1")])
        ),
        event(
            "noproj",
            "x",
            "2014-01-01T00:00:04",
            json!([s("user_id", "u1")])
        ),
        event(
            "intonly",
            "x",
            "2014-01-01T00:00:05",
            json!([t("project_id", "integer", "1")])
        ),
        event("bare", "x", "2014-01-01T00:00:06", json!([])),
    ]))
    .await;
}

const ALL: [&str; 6] = ["p1u1", "p1u2", "p2u1", "noproj", "intonly", "bare"];

async fn member_sees_own_events_only(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let list =
        |user: &str, project: &str| member(TestRequest::get().uri("/v2/events"), user, project);
    assert_eq!(app.send(list("u1", "p1")).await.ids(), ["p1u1"]);
    assert_eq!(app.send(list("u2", "p1")).await.ids(), ["p1u2"]);
    assert!(
        app.send(list("u3", "p1")).await.ids().is_empty(),
        "wrong user"
    );
    assert!(
        app.send(list("u1", "p3")).await.ids().is_empty(),
        "wrong project"
    );
    for id in ALL {
        let res = app
            .send(member(
                TestRequest::get().uri(&format!("/v2/events/{id}")),
                "u1",
                "p1",
            ))
            .await;
        if id == "p1u1" {
            assert_eq!(res.ok()["message_id"], id);
        } else {
            assert_eq!(res.error(404), format!("Event {id} Not Found"));
        }
    }
}

async fn admin_scope_without_all_tenants(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let p1_admin = |uri: &str| as_user(TestRequest::get().uri(uri), "boss", "p1", "admin");
    // Panko would lose "intonly" and "bare" (no string traits); Almanac does not.
    assert_eq!(
        app.send(p1_admin("/v2/events")).await.ids(),
        ["p1u1", "p1u2", "noproj", "intonly", "bare"]
    );
    for id in ALL {
        let res = app.send(p1_admin(&format!("/v2/events/{id}"))).await;
        if id == "p2u1" {
            res.error(404);
        } else {
            assert_eq!(res.ok()["message_id"], id);
        }
    }
}

async fn all_tenants_values(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let p1_admin = |q: &str| {
        as_user(
            TestRequest::get().uri(&format!("/v2/events?{q}")),
            "boss",
            "p1",
            "admin",
        )
    };
    for value in ["true", "True", "1", "yes", "on", "t", "y", "TRUE"] {
        let ids = app
            .send(p1_admin(&format!("q.field=all_tenants&q.value={value}")))
            .await
            .ids();
        assert_eq!(ids, ALL, "all_tenants={value}");
    }
    for value in ["false", "0", "no", "nope", ""] {
        let ids = app
            .send(p1_admin(&format!("q.field=all_tenants&q.value={value}")))
            .await
            .ids();
        assert_eq!(ids.len(), 5, "all_tenants={value} keeps the project scope");
    }
    // op and type are ignored for all_tenants (Panko).
    let ids = app
        .send(p1_admin(
            "q.field=all_tenants&q.op=ne&q.value=True&q.type=integer",
        ))
        .await
        .ids();
    assert_eq!(ids, ALL);
    // For a member, all_tenants is an ordinary trait filter: nothing has such a trait.
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=true"),
            "u1",
            "p1",
        ))
        .await;
    assert!(res.ids().is_empty());
}

async fn roles_are_parsed_as_panko_does(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let list = |roles: &str| {
        as_user(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=1"),
            "u1",
            "p1",
            roles,
        )
    };
    // "member, admin" has the role " admin" (no trimming): not admin.
    for (roles, is_admin) in [
        ("member, admin", false),
        ("Member,admin", true),
        ("ADMIN", true),
        ("adm", false),
    ] {
        let ids = app.send(list(roles)).await.ids();
        if is_admin {
            assert_eq!(ids, ALL, "{roles}");
        } else {
            assert!(
                ids.is_empty(),
                "{roles}: all_tenants is a trait filter for members"
            );
        }
    }
}

async fn markers_of_other_tenants_are_not_found(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events?marker=p2u1"),
            "u1",
            "p1",
        ))
        .await;
    let fault = res.error(400);
    assert!(fault.starts_with("Marker p2u1 not found."), "{fault}");
    // The caller's own event works as a marker.
    let res = app
        .send(member(
            TestRequest::get().uri("/v2/events?marker=p1u1"),
            "u1",
            "p1",
        ))
        .await;
    assert!(res.ids().is_empty());
    // An admin with all_tenants may use any event as a marker.
    let res = app
        .send(admin(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=1&marker=p2u1"),
        ))
        .await;
    assert_eq!(res.ids(), ["noproj", "intonly", "bare"]);
    // A caller whose project or user no event has sees nothing, and no marker is theirs; an
    // unknown project_id filter value matches nothing but still checks the marker.
    for (user, project) in [("u-none", "p1"), ("u1", "p-none")] {
        let res = app
            .send(member(TestRequest::get().uri("/v2/events"), user, project))
            .await;
        assert!(res.ids().is_empty(), "{user}/{project}");
        let res = app
            .send(member(
                TestRequest::get().uri("/v2/events?marker=p1u1"),
                user,
                project,
            ))
            .await;
        assert!(res.error(400).starts_with("Marker p1u1 not found."));
    }
    let res = app
        .send(admin(TestRequest::get().uri(
            "/v2/events?q.field=all_tenants&q.value=1&q.field=project_id&q.value=p-none&marker=nope",
        )))
        .await;
    assert!(res.error(400).starts_with("Marker nope not found."));
}

async fn filters_cannot_widen_the_scope(backend: Backend) {
    let app = app(backend).await;
    seed(&app).await;
    let as_u1 = |uri: &str| member(TestRequest::get().uri(uri), "u1", "p1");
    for uri in [
        "/v2/events?q.field=project_id&q.value=p2",
        "/v2/events?q[0].field=project_id&q[0].value=p2",
        "/v2/events?q.field=project_id&q.op=ne&q.value=p1",
        "/v2/events?q.field=message_id&q.value=p2u1",
        "/v2/events?q.field=user_id&q.op=ge&q.value=",
    ] {
        let ids = app.send(as_u1(uri)).await.ids();
        assert!(ids.iter().all(|id| id == "p1u1"), "{uri}: {ids:?}");
    }
    let res = app
        .send(as_u1("/v2/events").set_json(json!({"q": [{"field": "project_id", "value": "p2"}]})))
        .await;
    assert!(res.ids().is_empty());
    // Tenancy traits filter like any string trait for an admin with all_tenants.
    let res = app
        .get_admin("/v2/events?q.field=all_tenants&q.op=eq&q.value=1&q.field=project_id&q.op=gt&q.value=p1")
        .await;
    assert_eq!(res.ids(), ["p2u1"]);
}
