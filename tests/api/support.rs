//! Test support: a real database per test (an SQLite file, or a fresh PostgreSQL schema), the
//! application built exactly as `almanac serve` builds it, and request/response helpers.

use std::sync::OnceLock;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::test::{self, TestRequest};
use actix_web::web::Bytes;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};
use serde_json::Value;

use almanac::auth::Access;
use almanac::config::Config;
use almanac::db::{migrations, DatabaseUrl, Db};
use almanac::http::{self, AppState};
use almanac::store::tokens::NewToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each listed `async fn name(backend: Backend)` once per backend, as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[actix_web::test]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }
                #[actix_web::test]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )*
    };
}

/// The PostgreSQL server the tests use. `scripts/test` starts the machine's server if needed.
pub fn postgres_base_url() -> String {
    std::env::var("ALMANAC_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

const TEST_DATABASE: &str = "almanac_test";

/// Creates the shared test database once per process. A PostgreSQL test never skips: when no
/// server can be reached, it fails and says how to get one.
fn postgres_test_database_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let base = postgres_base_url();
        let mut conn = PgConnection::establish(&base).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL tests need a server, and none answered at {base}: {e}. \
                 Run the tests with scripts/test (it starts the machine's PostgreSQL), or start \
                 one (`pg_ctlcluster 15 main start`) or set ALMANAC_TEST_POSTGRES_URL."
            )
        });
        // Parallel test processes may race to create it; "already exists" is fine.
        if let Err(e) = conn.batch_execute(&format!("CREATE DATABASE {TEST_DATABASE}")) {
            let msg = e.to_string();
            assert!(
                msg.contains("already exists") || msg.contains("duplicate key"),
                "cannot create the test database: {msg}"
            );
        }
        let (head, _) = base
            .rsplit_once('/')
            .expect("a postgres URL has a database part");
        format!("{head}/{TEST_DATABASE}")
    })
}

/// A database of its own for one test; dropped with it.
pub struct TestDb {
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    SqliteDir(#[allow(dead_code)] tempfile::TempDir),
    PostgresSchema { admin_url: String, schema: String },
}

impl TestDb {
    pub fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let url = format!("sqlite://{}", dir.path().join("almanac.db").display());
                TestDb {
                    url,
                    cleanup: Cleanup::SqliteDir(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = postgres_test_database_url().to_string();
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let mut conn = PgConnection::establish(&admin_url)
                    .unwrap_or_else(|e| panic!("cannot connect to {admin_url}: {e}"));
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create the test schema");
                // Every connection of the test resolves unqualified names in its own schema.
                let url = format!("{admin_url}?options=-csearch_path%3D{schema}");
                TestDb {
                    url,
                    cleanup: Cleanup::PostgresSchema { admin_url, schema },
                }
            }
        }
    }

    /// A pool on this database, migrated.
    pub fn open_migrated(&self) -> Db {
        let db = Db::open(
            &DatabaseUrl::parse(&self.url).expect("a valid test URL"),
            &Config::default().db_options(),
        )
        .expect("open the test database");
        let mut conn = db.get().expect("a connection");
        migrations::run_pending(&mut conn).expect("migrations apply");
        db
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Cleanup::PostgresSchema { admin_url, schema } = &self.cleanup {
            if let Ok(mut conn) = PgConnection::establish(admin_url) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    /// Reads a service response whole.
    pub async fn read<B: MessageBody>(res: ServiceResponse<B>) -> Resp {
        let status = res.status();
        let headers = res.headers().clone();
        let body = test::read_body(res).await;
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts `x-openstack-request-id: req-<uuid>` and the same `X-Request-Id`; returns the id.
    #[track_caller]
    pub fn request_id(&self) -> String {
        let id = self
            .header("x-openstack-request-id")
            .unwrap_or_else(|| panic!("no request id on the {}", self.status))
            .to_string();
        assert!(
            id.starts_with("req-") && uuid::Uuid::parse_str(&id[4..]).is_ok(),
            "{id}"
        );
        assert_eq!(self.header("x-request-id"), Some(id.as_str()));
        id
    }

    /// Asserts the status and the one error shape, and returns the faultstring.
    #[track_caller]
    pub fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        let err = &body["error_message"];
        let expected_code = if status >= 500 { "Server" } else { "Client" };
        assert_eq!(err["faultcode"], expected_code, "body: {body}");
        assert!(err["debuginfo"].is_null(), "body: {body}");
        err["faultstring"]
            .as_str()
            .unwrap_or_else(|| panic!("no faultstring in {body}"))
            .to_string()
    }

    /// Asserts 200 and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        self.json()
    }

    /// The message_ids of a JSON array of events.
    #[track_caller]
    pub fn ids(&self) -> Vec<String> {
        self.ok()
            .as_array()
            .expect("an array of events")
            .iter()
            .map(|e| e["message_id"].as_str().expect("a message_id").to_string())
            .collect()
    }
}

/// Identity headers (auth = headers).
pub fn admin(req: TestRequest) -> TestRequest {
    as_user(req, "admin-user", "admin-project", "admin")
}

pub fn member(req: TestRequest, user: &str, project: &str) -> TestRequest {
    as_user(req, user, project, "member")
}

pub fn as_user(req: TestRequest, user: &str, project: &str, roles: &str) -> TestRequest {
    req.insert_header(("X-User-Id", user))
        .insert_header(("X-Project-Id", project))
        .insert_header(("X-Roles", roles))
}

/// The application on a fresh database. The database is dropped with it.
pub struct TestApp<S> {
    pub service: S,
    _db: TestDb,
}

pub async fn app(
    backend: Backend,
) -> TestApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    app_with(backend, headers_config()).await
}

/// The default configuration with `auth = headers`, which most tests use to name their caller
/// with [`admin`], [`member`] and [`as_user`], and without the ingest audit records (which
/// would appear among the events those tests list); token mode and the audit trail have their
/// own tests.
pub fn headers_config() -> Config {
    let mut config = Config {
        auth: almanac::auth::AuthMode::Headers,
        ..Config::default()
    };
    config.audit.ingest = false;
    config
}

pub async fn app_with(
    backend: Backend,
    config: Config,
) -> TestApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    let db = TestDb::new(backend);
    let pool = db.open_migrated();
    let service = test::init_service(http::app(
        AppState::new(pool, config).expect("a valid config"),
    ))
    .await;
    TestApp { service, _db: db }
}

/// A token-mode application (the default `auth`) on a fresh database, with an admin token made
/// the way `almanac token create` makes it (straight in the store).
pub struct TokenApp<S> {
    pub app: TestApp<S>,
    /// `admin-user` in `admin-project` with role `admin`.
    pub admin: String,
    /// The application's own pool, for tokens made outside the API.
    pub db: Db,
}

pub async fn token_app(
    backend: Backend,
) -> TokenApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    token_app_with(backend, Config::default()).await
}

pub async fn token_app_with(
    backend: Backend,
    config: Config,
) -> TokenApp<
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
> {
    assert_eq!(config.auth, almanac::auth::AuthMode::Token);
    let db = TestDb::new(backend);
    let pool = db.open_migrated();
    let admin = make_token(
        &pool,
        "admin-user",
        "admin-project",
        &["admin"],
        Access::Full,
        None,
    );
    let service = test::init_service(http::app(
        AppState::new(pool.clone(), config).expect("a valid config"),
    ))
    .await;
    TokenApp {
        app: TestApp { service, _db: db },
        admin,
        db: pool,
    }
}

impl<S, B> TokenApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// POSTs a JSON array of events with the admin token and asserts the 201.
    pub async fn ingest_as_admin(&self, events: &Value) {
        let res = self
            .app
            .send(bearer(
                TestRequest::post().uri("/v2/events").set_json(events),
                &self.admin,
            ))
            .await;
        assert_eq!(res.status, 201, "{}", String::from_utf8_lossy(&res.body));
    }
}

/// Creates a token in the store (no audit record) and returns its text.
pub fn make_token(
    db: &Db,
    user: &str,
    project: &str,
    roles: &[&str],
    access: Access,
    expires_at: Option<i64>,
) -> String {
    let new = NewToken {
        user_id: user.into(),
        project_id: project.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        access,
        description: String::new(),
        expires_at,
        created_by: "test".into(),
    };
    let mut conn = db.get().expect("a connection");
    let now = almanac::model::time::now_micros();
    almanac::store::tokens::create(&mut conn, &new, None, now)
        .expect("create a token")
        .1
}

/// `Authorization: Bearer <token>`.
pub fn bearer(req: TestRequest, token: &str) -> TestRequest {
    req.insert_header(("Authorization", format!("Bearer {token}")))
}

impl<S, B> TestApp<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    pub async fn send(&self, req: TestRequest) -> Resp {
        Resp::read(test::call_service(&self.service, req.to_request()).await).await
    }

    /// GET as an admin.
    pub async fn get_admin(&self, uri: &str) -> Resp {
        self.send(admin(TestRequest::get().uri(uri))).await
    }

    /// Ingests a JSON array as an admin and asserts the 201.
    pub async fn ingest(&self, events: Value) -> Value {
        let res = self.post_events(events).await;
        assert_eq!(
            res.status,
            StatusCode::CREATED,
            "ingest failed: {}",
            String::from_utf8_lossy(&res.body)
        );
        res.json()
    }

    /// POSTs a JSON array as an admin and returns the response as is.
    pub async fn post_events(&self, events: Value) -> Resp {
        self.send(admin(
            TestRequest::post().uri("/v2/events").set_json(events),
        ))
        .await
    }
}

/// An event in the ingest shape.
pub fn event(message_id: &str, event_type: &str, generated: &str, traits: Value) -> Value {
    serde_json::json!({
        "message_id": message_id,
        "event_type": event_type,
        "generated": generated,
        "traits": traits,
        "raw": {},
    })
}

/// A string trait.
pub fn s(name: &str, value: &str) -> Value {
    serde_json::json!({"name": name, "type": "string", "value": value})
}

/// A trait of any type, value given as a string.
pub fn t(name: &str, trait_type: &str, value: &str) -> Value {
    serde_json::json!({"name": name, "type": trait_type, "value": value})
}

/// Rows of a one-number query (`SELECT COUNT(*) AS n …`), on either backend.
pub fn count(conn: &mut almanac::db::AnyConnection, sql: &str) -> i64 {
    use diesel::sql_types::BigInt;
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
}
