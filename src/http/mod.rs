//! The HTTP API: routes, middleware and the OpenAPI document, all built from one route list
//! (`api_routes`) so that what is served and what is documented cannot drift apart.

mod body;
pub mod event_json;
mod fallback;
mod middleware;
pub mod openapi;
mod rate_limit;
mod routes;
pub mod views;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::auth::{Authenticator, Policy, RequestMeta};
use crate::config::Config;
use crate::db::Db;
use crate::store::audit::{Actor, AuditEntry};
use crate::store::writer::{IngestWriter, WriterOptions};
use crate::store::ReadCaches;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub policy: Arc<Policy>,
    /// The auth mode, with the token cache.
    pub auth: Arc<Authenticator>,
    /// Group commit for ingestion (starts its writer threads).
    pub writer: IngestWriter,
    /// Plan choices and interned names, kept between requests.
    pub caches: Arc<ReadCaches>,
    pub ingest_rate: Arc<rate_limit::IngestRateLimit>,
}

impl AppState {
    /// Fails only on a bad policy (which `Config::load` has already ruled out).
    pub fn new(db: Db, config: Config) -> anyhow::Result<AppState> {
        let policy = config.policy()?;
        let options = config.db_options();
        let writer = IngestWriter::start(
            db.clone(),
            &WriterOptions {
                // NORMAL syncs nothing at commit, so there is nothing to move off the writer.
                sync_off_thread: options.sqlite_synchronous != "NORMAL",
                ..WriterOptions::new(options.connect_timeout, options.sqlite_wal_autocheckpoint)
            },
        );
        let audit = &config.audit;
        let auth = Authenticator::new(
            config.auth,
            db.clone(),
            std::time::Duration::from_secs(config.tokens.cache_seconds),
            writer.clone(),
            audit
                .tracks(crate::store::audit::AUTH_FAILURE)
                .then_some(audit.auth_failures_per_minute),
        );
        let ingest_rate = rate_limit::IngestRateLimit::new(
            config.limits.ingest_events_per_second,
            config.limits.ingest_burst_events,
        );
        Ok(AppState {
            db,
            config: Arc::new(config),
            policy: Arc::new(policy),
            auth: Arc::new(auth),
            writer,
            caches: Arc::new(ReadCaches::default()),
            ingest_rate: Arc::new(ingest_rate),
        })
    }

    /// An audit record of this request by `actor`, if that action is tracked.
    pub fn audit_entry(
        &self,
        meta: &RequestMeta,
        action: &'static str,
        actor: Actor,
    ) -> Option<AuditEntry> {
        self.config
            .audit
            .tracks(action)
            .then(|| meta.entry(action, actor))
    }
}

/// The request's id (set by the middleware) and the peer's address, for audit records. The
/// address is the TCP peer's: forwarding headers are set by clients and not trusted here.
pub fn request_meta(req: &actix_web::HttpRequest) -> RequestMeta {
    use actix_web::HttpMessage;
    RequestMeta {
        request_id: req
            .extensions()
            .get::<middleware::RequestId>()
            .map(|id| id.0.clone()),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
    }
}

/// Every documented route. Registered through utoipa-actix-web so each one is also in the
/// OpenAPI document.
fn api_routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    routes::configure(cfg);
}

/// The OpenAPI document of the API (what `/openapi.json` serves and `api-spec/` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(api_routes)
        .split_for_parts()
        .1
}

/// The application, for `HttpServer::new` and for tests.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::ApiDoc::openapi())
        .configure(api_routes)
        .split_for_parts();
    let allowed = Arc::new(fallback::RouteTable::from_openapi(&api));
    app.app_data(web::Data::new(state))
        .app_data(web::Data::from(allowed))
        .service(
            SwaggerUi::new("/docs/{_:.*}")
                .url("/openapi.json", api)
                // No call to the online validator: the page works without a network.
                .config(SwaggerConfig::new(["/openapi.json"]).validator_url("none")),
        )
        .default_service(web::to(fallback::fallback))
        .wrap(actix_web::middleware::from_fn(middleware::entry))
}
