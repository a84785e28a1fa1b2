//! The policy from the config file (its effect, and bad policies that name their line), the
//! project-only member scope, and the refusal of `auth = headers` on a public address.

use std::path::Path;

use actix_web::test::TestRequest;
use serde_json::json;

use almanac::auth::{Access, MemberScope};
use almanac::config::{Config, ConfigOverrides};

use crate::backend_tests;
use crate::support::{app, as_user, bearer, event, make_token, s, token_app_with, Backend};

backend_tests!(
    policy_rules_from_the_config_take_effect,
    members_scoped_by_project_alone,
    event_types_stay_admin_only_whatever_the_policy,
    long_identity_headers_are_refused,
);

async fn policy_rules_from_the_config_take_effect(backend: Backend) {
    let mut config = Config::default();
    config.policy.insert(
        "events:create".into(),
        "rule:segregation or role:publisher".into(),
    );
    config
        .policy
        .insert("events:index".into(), "not role:banned".into());
    let t = token_app_with(backend, config).await;
    let publisher = make_token(&t.db, "pub", "p1", &["publisher"], Access::Full, None);
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    let banned = make_token(&t.db, "u2", "p1", &["member", "banned"], Access::Full, None);
    let post = |token: &str, id: &str| {
        bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([event(
                id,
                "x",
                "2014-01-01T00:00:00",
                json!([])
            )])),
            token,
        )
    };
    assert_eq!(t.app.send(post(&publisher, "a")).await.status.as_u16(), 201);
    assert_eq!(
        t.app.send(post(&member, "b")).await.error(403),
        "RBAC Authorization Failed"
    );
    t.app
        .send(bearer(TestRequest::get().uri("/v2/events"), &member))
        .await
        .ok();
    t.app
        .send(bearer(TestRequest::get().uri("/v2/events"), &banned))
        .await
        .error(403);
}

async fn members_scoped_by_project_alone(backend: Backend) {
    let mut config = Config {
        member_scope: MemberScope::Project,
        ..Config::default()
    };
    config.audit.ingest = false;
    let t = token_app_with(backend, config).await;
    t.app
        .send(bearer(
            TestRequest::post().uri("/v2/events").set_json(json!([
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
                    "p1",
                    "x",
                    "2014-01-01T00:00:03",
                    json!([s("project_id", "p1")])
                ),
                event(
                    "p2u1",
                    "x",
                    "2014-01-01T00:00:04",
                    json!([s("project_id", "p2"), s("user_id", "u1")])
                ),
            ])),
            &t.admin,
        ))
        .await;
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    let ids = t
        .app
        .send(bearer(TestRequest::get().uri("/v2/events"), &member))
        .await
        .ids();
    assert_eq!(ids, ["p1u1", "p1u2", "p1"]);
    t.app
        .send(bearer(TestRequest::get().uri("/v2/events/p2u1"), &member))
        .await
        .error(404);
}

fn load(dir: &Path, toml: &str) -> anyhow::Result<Config> {
    let file = dir.join("almanac.toml");
    std::fs::write(&file, toml).unwrap();
    Config::load(Some(&file), &ConfigOverrides::default())
}

#[test]
fn a_bad_policy_names_the_file_line_and_rule() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "log = \"info\"\n\n[policy]\n\"events:index\" = \"\"\n\"events:craete\" = \"role:admin\"\n",
            5,
            "policy rule \"events:craete\": no such rule",
        ),
        (
            "[policy]\n\"events:create\" = \"role:admin or\"\n",
            2,
            "policy rule \"events:create\": the rule ends where a check was expected",
        ),
        (
            "[policy]\n\n\"event_types:index\" = \"rule:admins\"\n",
            3,
            "policy rule \"event_types:index\": rule:admins refers to no rule",
        ),
        (
            "[policy]\n\"segregation\" = \"rule:events:create\"\n\"events:create\" = \"rule:segregation\"\n",
            2,
            "cycle",
        ),
    ];
    for (toml, line, expected) in cases {
        let error = format!("{:#}", load(dir.path(), toml).unwrap_err());
        let file = dir.path().join("almanac.toml");
        assert!(
            error.starts_with(&format!("{}:{line}: ", file.display())),
            "{toml}: {error}"
        );
        assert!(error.contains(expected), "{toml}: {error}");
    }
    let good = load(
        dir.path(),
        "[policy]\n\"events:create\" = \"rule:segregation or role:publisher\"\n",
    )
    .unwrap();
    assert_eq!(good.policy.len(), 1);
}

#[test]
fn headers_mode_is_refused_on_a_public_address_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let error = format!(
        "{:#}",
        load(dir.path(), "auth = \"headers\"\nbind = \"0.0.0.0:8977\"\n").unwrap_err()
    );
    assert!(error.contains("not a loopback address"), "{error}");
    assert!(
        error.contains("allow_headers_auth_on_public_bind"),
        "{error}"
    );
    load(
        dir.path(),
        "auth = \"headers\"\nbind = \"0.0.0.0:8977\"\nallow_headers_auth_on_public_bind = true\n",
    )
    .unwrap();
    for bind in ["127.0.0.1:8977", "[::1]:8977", "localhost:8977"] {
        load(
            dir.path(),
            &format!("auth = \"headers\"\nbind = \"{bind}\"\n"),
        )
        .unwrap_or_else(|e| panic!("{bind}: {e:#}"));
    }
    // Tokens are fine anywhere.
    load(dir.path(), "bind = \"0.0.0.0:8977\"\n").unwrap();
}

#[test]
fn audit_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let error = format!(
        "{:#}",
        load(
            dir.path(),
            "[audit]\nignore_actions = [\"almanac.token.craete\"]\n"
        )
        .unwrap_err()
    );
    assert!(
        error.contains("unknown action \"almanac.token.craete\""),
        "{error}"
    );
    let error = format!(
        "{:#}",
        load(
            dir.path(),
            "[limits]\nmax_batch_events = 100\ningest_events_per_second = 10\ningest_burst_events = 50\n"
        )
        .unwrap_err()
    );
    assert!(error.contains("ingest_burst_events"), "{error}");
}

async fn event_types_stay_admin_only_whatever_the_policy(backend: Backend) {
    // Event types and trait values are read across tenants: a member may not read them even
    // where the policy says anyone may.
    let mut config = Config::default();
    config.policy.insert("event_types:index".into(), "".into());
    let t = token_app_with(backend, config).await;
    let member = make_token(&t.db, "u1", "p1", &["member"], Access::Full, None);
    for uri in ["/v2/event_types", "/v2/event_types/x/traits/project_id"] {
        t.app
            .send(bearer(TestRequest::get().uri(uri), &member))
            .await
            .error(403);
        t.app
            .send(bearer(TestRequest::get().uri(uri), &t.admin))
            .await
            .ok();
    }
}

async fn long_identity_headers_are_refused(backend: Backend) {
    let app = app(backend).await;
    let long = "u".repeat(256);
    for (user, project, roles) in [
        (long.as_str(), "p", "admin"),
        ("u", long.as_str(), "admin"),
        ("u", "p", long.as_str()),
    ] {
        let text = app
            .send(as_user(
                TestRequest::get().uri("/v2/events"),
                user,
                project,
                roles,
            ))
            .await
            .error(400);
        assert!(text.contains("longer than 255 bytes"), "{text}");
    }
    let ok = "u".repeat(255);
    app.send(as_user(
        TestRequest::get().uri("/v2/events"),
        &ok,
        "p",
        "admin",
    ))
    .await
    .ok();
}
