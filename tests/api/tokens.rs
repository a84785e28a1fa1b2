//! Token authentication (the default `auth = token`): 401 for every kind of bad token, 403 for
//! a caller without the right, token restrictions, and the token API (create, list, show,
//! revoke) with its bad inputs.

use actix_web::test::TestRequest;
use serde_json::{json, Value};

use almanac::auth::Access;
use almanac::config::Config;

use crate::backend_tests;
use crate::support::{
    admin, app, bearer, event, make_token, s, token_app, token_app_with, Backend,
};

backend_tests!(
    requests_without_a_valid_token_get_401,
    both_token_headers_work,
    identity_headers_are_ignored_in_token_mode,
    api_creates_lists_shows_and_revokes_tokens,
    token_requests_are_validated,
    non_admins_cannot_manage_tokens,
    read_only_and_ingest_only_tokens,
    secrets_are_stored_only_as_hashes,
    revocation_reaches_other_servers_after_the_cache,
    ingest_rate_limit_per_token,
    an_opened_token_policy_keeps_members_to_their_own,
    tokens_are_not_managed_in_headers_mode,
);

const UNAUTHENTICATED: &str = "Authentication required";

async fn requests_without_a_valid_token_get_401(backend: Backend) {
    let t = token_app(backend).await;
    let expired = make_token(&t.db, "u", "p", &["admin"], Access::Full, Some(1));
    let revoked = make_token(&t.db, "u", "p", &["admin"], Access::Full, None);
    let revoked_id = revoked.split('_').nth(1).unwrap().to_string();
    t.app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{revoked_id}")),
            &t.admin,
        ))
        .await
        .ok();
    // The admin token with its secret changed in one place.
    let mut wrong_secret = t.admin.clone();
    let last = wrong_secret.pop().unwrap();
    wrong_secret.push(if last == 'x' { 'y' } else { 'x' });
    let unknown_id = format!("alm_0000000000000000_{}", &t.admin[21..]);

    let routes = [
        TestRequest::get().uri("/v2/events"),
        TestRequest::get().uri("/v2/events/some-id"),
        TestRequest::post().uri("/v2/events").set_json(json!([])),
        TestRequest::get().uri("/v2/event_types"),
        TestRequest::get().uri("/v2/event_types/x/traits"),
        TestRequest::get().uri("/v2/tokens"),
    ];
    for route in routes {
        let req = route.to_request();
        let (method, uri) = (req.method().clone(), req.uri().to_string());
        let variants: Vec<(&str, Option<(&str, String)>)> = vec![
            ("no token", None),
            ("garbage", Some(("Authorization", "Bearer nope".into()))),
            (
                "basic auth",
                Some(("Authorization", "Basic YWRtaW46YWRtaW4=".into())),
            ),
            ("empty bearer", Some(("Authorization", "Bearer ".into()))),
            (
                "wrong secret",
                Some(("Authorization", format!("Bearer {wrong_secret}"))),
            ),
            ("unknown id", Some(("X-Auth-Token", unknown_id.clone()))),
            ("expired", Some(("X-Auth-Token", expired.clone()))),
            (
                "revoked",
                Some(("Authorization", format!("Bearer {revoked}"))),
            ),
        ];
        for (what, header) in variants {
            let mut req = TestRequest::default().method(method.clone()).uri(&uri);
            if let Some(h) = header {
                req = req.insert_header(h);
            }
            // Identity headers do not help.
            let req = req
                .insert_header(("X-User-Id", "admin-user"))
                .insert_header(("X-Project-Id", "admin-project"))
                .insert_header(("X-Roles", "admin"));
            let res = t.app.send(req).await;
            let text = res.error(401);
            assert!(
                text.starts_with(UNAUTHENTICATED),
                "{method} {uri} {what}: {text}"
            );
            assert_eq!(
                res.header("www-authenticate"),
                Some("Bearer realm=\"almanac\""),
                "{method} {uri} {what}"
            );
            res.request_id();
        }
    }
    // The public routes need no token.
    for uri in [
        "/",
        "/v2",
        "/healthcheck",
        "/v2/capabilities",
        "/openapi.json",
    ] {
        let res = t.app.send(TestRequest::get().uri(uri)).await;
        assert_eq!(res.status.as_u16(), 200, "{uri}");
    }
    // The ingest with a bad token stored nothing.
    let all = t
        .app
        .send(bearer(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=true"),
            &t.admin,
        ))
        .await
        .ok();
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["event_type"].as_str().unwrap().starts_with("almanac.")));
}

async fn both_token_headers_work(backend: Backend) {
    let t = token_app(backend).await;
    for (name, value) in [
        ("Authorization", format!("Bearer {}", t.admin)),
        ("Authorization", format!("bearer {}", t.admin)),
        ("Authorization", format!("BEARER  {} ", t.admin)),
        ("X-Auth-Token", t.admin.clone()),
    ] {
        let res = t
            .app
            .send(
                TestRequest::get()
                    .uri("/v2/event_types")
                    .insert_header((name, value.clone())),
            )
            .await;
        assert_eq!(res.status.as_u16(), 200, "{name}: {value}");
    }
}

async fn identity_headers_are_ignored_in_token_mode(backend: Backend) {
    let t = token_app(backend).await;
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    t.app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([
                event(
                    "mine",
                    "x",
                    "2014-01-01T00:00:01",
                    json!([s("project_id", "p1"), s("user_id", "u1")])
                ),
                event(
                    "theirs",
                    "x",
                    "2014-01-01T00:00:02",
                    json!([s("project_id", "p2"), s("user_id", "u2")])
                ),
            ])),
            &t.admin,
        ))
        .await;
    // A member token with admin identity headers is still the member.
    let as_admin = |req: TestRequest| {
        bearer(req, &member)
            .insert_header(("X-User-Id", "u2"))
            .insert_header(("X-Project-Id", "p2"))
            .insert_header(("X-Roles", "admin"))
    };
    let ids = t
        .app
        .send(as_admin(TestRequest::get().uri("/v2/events")))
        .await
        .ids();
    assert_eq!(ids, ["mine"]);
    // For a non-admin, all_tenants is an ordinary trait filter (Panko), matching nothing here.
    let ids = t
        .app
        .send(as_admin(
            TestRequest::get().uri("/v2/events?q.field=all_tenants&q.value=true"),
        ))
        .await
        .ids();
    assert!(ids.is_empty(), "{ids:?}");
    let text = t
        .app
        .send(as_admin(TestRequest::get().uri("/v2/event_types")))
        .await
        .error(403);
    assert_eq!(text, "RBAC Authorization Failed");
    t.app
        .send(as_admin(TestRequest::get().uri("/v2/tokens")))
        .await
        .error(403);
}

/// POSTs a token request as `token`.
fn create(token: &str, body: Value) -> TestRequest {
    bearer(TestRequest::post().uri("/v2/tokens").set_json(body), token)
}

async fn api_creates_lists_shows_and_revokes_tokens(backend: Backend) {
    let t = token_app(backend).await;
    let res = t
        .app
        .send(create(
            &t.admin,
            json!({"user_id": "svc", "project_id": "ops", "roles": ["admin", "publisher"],
                   "access": "ingest", "expires_in": 3600, "description": "ceilometer"}),
        ))
        .await;
    assert_eq!(res.status.as_u16(), 201, "{:?}", res.body);
    let made = res.json();
    let token = made["token"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert!(token.starts_with(&format!("alm_{id}_")), "{made}");
    assert_eq!(made["user_id"], "svc");
    assert_eq!(made["roles"], json!(["admin", "publisher"]));
    assert_eq!(made["access"], "ingest");
    assert_eq!(made["created_by"], "api:admin-user");
    assert_eq!(made["active"], true);
    assert!(made["expires_at"].is_string());
    assert!(made["revoked_at"].is_null());

    // The new token works for what it may do.
    let res = t
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([event(
                "e1",
                "x",
                "2014-01-01T00:00:00",
                json!([])
            )])),
            &token,
        ))
        .await;
    assert_eq!(res.status.as_u16(), 201);

    // Listing and showing never include a secret.
    let list = t
        .app
        .send(bearer(TestRequest::get().uri("/v2/tokens"), &t.admin))
        .await;
    let listed = list.ok();
    let secret = token.splitn(3, '_').nth(2).unwrap();
    assert!(!String::from_utf8_lossy(&list.body).contains(secret));
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{listed}");
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t.get("token").is_none()));
    let shown = t
        .app
        .send(bearer(
            TestRequest::get().uri(&format!("/v2/tokens/{id}")),
            &t.admin,
        ))
        .await
        .ok();
    assert_eq!(shown["description"], "ceilometer");
    assert!(shown.get("token").is_none());

    // Revoke: the token stops working at once; revoking again changes nothing.
    let revoked = t
        .app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{id}")),
            &t.admin,
        ))
        .await
        .ok();
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(revoked["active"], false);
    let res = t
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([event(
                "e2",
                "x",
                "2014-01-01T00:00:00",
                json!([])
            )])),
            &token,
        ))
        .await;
    res.error(401);
    let again = t
        .app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{id}")),
            &t.admin,
        ))
        .await
        .ok();
    assert_eq!(again["revoked_at"], revoked["revoked_at"]);

    for uri in ["/v2/tokens/0000000000000000", "/v2/tokens/nope"] {
        let text = t
            .app
            .send(bearer(TestRequest::get().uri(uri), &t.admin))
            .await
            .error(404);
        assert!(text.ends_with("Not Found"), "{text}");
        t.app
            .send(bearer(TestRequest::delete().uri(uri), &t.admin))
            .await
            .error(404);
    }
}

async fn token_requests_are_validated(backend: Backend) {
    let t = token_app(backend).await;
    let count = || async {
        t.app
            .send(bearer(TestRequest::get().uri("/v2/tokens"), &t.admin))
            .await
            .ok()
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;
    let cases = [
        (json!({"project_id": "p"}), "missing field `user_id`"),
        (json!({"user_id": "u"}), "missing field `project_id`"),
        (
            json!({"user_id": "", "project_id": "p"}),
            "user_id must be 1 to 255 bytes",
        ),
        (
            json!({"user_id": "u".repeat(256), "project_id": "p"}),
            "user_id must be 1 to 255 bytes",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "roles": ["a,b"]}),
            "may not contain a comma",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "roles": [""]}),
            "Each role must be",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "roles": "admin"}),
            "invalid type",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "access": "write"}),
            "unknown variant `write`",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "expires_in": 1, "expires_at": "2099-01-01"}),
            "not both",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "expires_at": "2001-01-01"}),
            "must be in the future",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "expires_at": "tomorrow"}),
            "is not a time",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "expires_in": -5}),
            "invalid value",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "expires_in": u64::MAX}),
            "too large",
        ),
        (
            json!({"user_id": "u", "project_id": "p", "admin": true}),
            "unknown field `admin`",
        ),
        (json!(["u", "p"]), "JSON object describing the token"),
        (json!("u"), "JSON object describing the token"),
    ];
    for (body, expected) in cases {
        let text = t.app.send(create(&t.admin, body.clone())).await.error(400);
        assert!(text.contains(expected), "{body}: {text}");
    }
    let res = t
        .app
        .send(bearer(
            TestRequest::post()
                .uri("/v2/tokens")
                .insert_header(("Content-Type", "text/plain"))
                .set_payload("user_id=u"),
            &t.admin,
        ))
        .await;
    res.error(415);
    let res = t
        .app
        .send(bearer(TestRequest::post().uri("/v2/tokens"), &t.admin))
        .await;
    assert!(res.error(400).contains("JSON object describing the token"));
    let res = t
        .app
        .send(create(
            &t.admin,
            json!({"user_id": "u", "project_id": "p", "description": "x".repeat(20_000)}),
        ))
        .await;
    res.error(413);
    assert_eq!(count().await, before, "no bad request created a token");
}

async fn non_admins_cannot_manage_tokens(backend: Backend) {
    let t = token_app(backend).await;
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    let admin_id = t.admin.split('_').nth(1).unwrap();
    for req in [
        create(&member, json!({"user_id": "u1", "project_id": "p1"})),
        bearer(TestRequest::get().uri("/v2/tokens"), &member),
        bearer(
            TestRequest::get().uri(&format!("/v2/tokens/{admin_id}")),
            &member,
        ),
        bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{admin_id}")),
            &member,
        ),
    ] {
        assert_eq!(
            t.app.send(req).await.error(403),
            "RBAC Authorization Failed"
        );
    }
    // The admin token still works: the member's revoke did nothing.
    t.app
        .send(bearer(TestRequest::get().uri("/v2/tokens"), &t.admin))
        .await
        .ok();
}

async fn read_only_and_ingest_only_tokens(backend: Backend) {
    let t = token_app(backend).await;
    let reader = make_token(&t.db, "r", "p", &["admin"], Access::Read, None);
    let ingester = make_token(&t.db, "i", "p", &["admin"], Access::Ingest, None);
    let batch = || json!([event("e", "x", "2014-01-01T00:00:00", json!([]))]);

    // Read-only: every GET, no change.
    for uri in ["/v2/events", "/v2/event_types", "/v2/tokens"] {
        t.app
            .send(bearer(TestRequest::get().uri(uri), &reader))
            .await
            .ok();
    }
    let text = t
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(batch()),
            &reader,
        ))
        .await
        .error(403);
    assert!(text.contains("read-only"), "{text}");
    t.app
        .send(create(&reader, json!({"user_id": "x", "project_id": "y"})))
        .await
        .error(403);

    // Ingest-only: POST /v2/events and nothing else.
    let res = t
        .app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(batch()),
            &ingester,
        ))
        .await;
    assert_eq!(res.status.as_u16(), 201);
    for uri in [
        "/v2/events",
        "/v2/events/e",
        "/v2/event_types",
        "/v2/tokens",
    ] {
        let text = t
            .app
            .send(bearer(TestRequest::get().uri(uri), &ingester))
            .await
            .error(403);
        assert!(text.contains("ingest-only"), "{uri}: {text}");
    }
}

async fn secrets_are_stored_only_as_hashes(backend: Backend) {
    use diesel::sql_types::Text;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        id: String,
        #[diesel(sql_type = Text)]
        secret_hash: String,
    }
    let t = token_app(backend).await;
    let made = t
        .app
        .send(create(&t.admin, json!({"user_id": "u", "project_id": "p"})))
        .await
        .json();
    let token = made["token"].as_str().unwrap();
    let secret = token.splitn(3, '_').nth(2).unwrap();
    let mut conn = t.db.get().unwrap();
    let rows: Vec<Row> = diesel::sql_query("SELECT id, secret_hash FROM api_tokens")
        .load(&mut *conn)
        .unwrap();
    let row = rows.iter().find(|r| r.id == made["id"]).expect("stored");
    assert_eq!(row.secret_hash.len(), 64, "a hex SHA-256");
    assert!(!row.secret_hash.contains(secret));
    assert_ne!(row.secret_hash, secret);
}

async fn revocation_reaches_other_servers_after_the_cache(backend: Backend) {
    // Two applications on one database, as two processes would be; the second trusts a verified
    // token for no time at all.
    let t = token_app(backend).await;
    let mut config = Config::default();
    config.tokens.cache_seconds = 0;
    let other = almanac::http::AppState::new(t.db.clone(), config).unwrap();
    let other = actix_web::test::init_service(almanac::http::app(other)).await;
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    let id = member.split('_').nth(1).unwrap();
    let get = || bearer(TestRequest::get().uri("/v2/events"), &member).to_request();
    assert_eq!(
        actix_web::test::call_service(&other, get()).await.status(),
        200
    );
    t.app
        .send(bearer(
            TestRequest::delete().uri(&format!("/v2/tokens/{id}")),
            &t.admin,
        ))
        .await
        .ok();
    assert_eq!(
        actix_web::test::call_service(&other, get()).await.status(),
        401
    );
}

async fn ingest_rate_limit_per_token(backend: Backend) {
    let mut config = Config::default();
    config.limits.max_batch_events = 10;
    config.limits.ingest_events_per_second = 1;
    config.limits.ingest_burst_events = 10;
    config.audit.ingest = false;
    let t = token_app_with(backend, config).await;
    let other = make_token(&t.db, "o", "p", &["admin"], Access::Full, None);
    let batch = |prefix: &str| {
        Value::Array(
            (0..10)
                .map(|i| {
                    event(
                        &format!("{prefix}{i}"),
                        "x",
                        "2014-01-01T00:00:00",
                        json!([]),
                    )
                })
                .collect(),
        )
    };
    let post = |token: &str, body: Value| {
        bearer(TestRequest::post().uri("/v2/events").set_json(body), token)
    };
    assert_eq!(
        t.app.send(post(&t.admin, batch("a"))).await.status.as_u16(),
        201
    );
    let res = t.app.send(post(&t.admin, batch("b"))).await;
    let text = res.error(429);
    assert!(text.contains("rate limit"), "{text}");
    let retry: u64 = res
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    // Another token has its own bucket.
    assert_eq!(
        t.app.send(post(&other, batch("c"))).await.status.as_u16(),
        201
    );
    // The refused batch stored nothing.
    let res = t
        .app
        .send(bearer(TestRequest::get().uri("/v2/events/b0"), &t.admin))
        .await;
    res.error(404);
}

async fn an_opened_token_policy_keeps_members_to_their_own(backend: Backend) {
    let mut config = Config::default();
    for rule in ["tokens:create", "tokens:index", "tokens:revoke"] {
        config.policy.insert(rule.into(), "".into());
    }
    let t = token_app_with(backend, config).await;
    let in_an_hour = almanac::model::time::now_micros() + 3_600_000_000;
    let member = make_token(
        &t.db,
        "u1",
        "p1",
        &["member", "viewer"],
        Access::Full,
        Some(in_an_hour),
    );
    let other = make_token(&t.db, "u2", "p1", &["member"], Access::Full, None);
    let other_id = other.split('_').nth(1).unwrap();
    let admin_id = t.admin.split('_').nth(1).unwrap();

    // Only their own tokens are visible; others' are "not found", also to revoke.
    let listed = t
        .app
        .send(bearer(TestRequest::get().uri("/v2/tokens"), &member))
        .await
        .ok();
    let users: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["u1"]);
    for id in [admin_id, other_id] {
        for req in [TestRequest::get(), TestRequest::delete()] {
            let req = bearer(req.uri(&format!("/v2/tokens/{id}")), &member);
            t.app.send(req).await.error(404);
        }
    }
    t.app
        .send(bearer(TestRequest::get().uri("/v2/events"), &other))
        .await
        .ok();

    // A copy of their own token only: same user, project and roles, no longer life.
    for body in [
        json!({"user_id": "u2", "project_id": "p1", "roles": ["member", "viewer"]}),
        json!({"user_id": "u1", "project_id": "p2", "roles": ["member", "viewer"]}),
        json!({"user_id": "u1", "project_id": "p1", "roles": ["admin"]}),
        json!({"user_id": "u1", "project_id": "p1", "roles": ["member"]}),
    ] {
        t.app.send(create(&member, body)).await.error(403);
    }
    let res = t
        .app
        .send(create(
            &member,
            json!({"user_id": "u1", "project_id": "p1", "roles": ["viewer", "member"]}),
        ))
        .await;
    assert_eq!(res.status.as_u16(), 201, "{:?}", res.body);
    let copy = res.json();
    assert_eq!(
        copy["expires_at"],
        json!(almanac::model::time::format_instant(in_an_hour)),
        "capped at the parent's expiry"
    );
}

async fn tokens_are_not_managed_in_headers_mode(backend: Backend) {
    let app = app(backend).await;
    for req in [
        TestRequest::get().uri("/v2/tokens"),
        TestRequest::post()
            .uri("/v2/tokens")
            .set_json(json!({"user_id": "u", "project_id": "p"})),
        TestRequest::delete().uri("/v2/tokens/0000000000000000"),
    ] {
        let text = app.send(admin(req)).await.error(403);
        assert!(text.contains("auth = token"), "{text}");
    }
}
