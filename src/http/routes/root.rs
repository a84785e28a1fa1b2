//! `/`, `/v2`, `/healthcheck`, `/readyz`, `/metrics`, `/v2/capabilities`: no identity needed.

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::AppState;
use crate::query::ensure_no_arguments;

#[derive(Serialize, ToSchema)]
pub struct Link {
    pub href: String,
    pub rel: String,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MediaType {
    pub base: String,
    #[serde(rename = "type")]
    pub media_type: String,
}

/// An API version entry (Panko's shape).
#[derive(Serialize, ToSchema)]
pub struct Version {
    #[schema(example = "v2")]
    pub id: String,
    pub links: Vec<Link>,
    #[serde(rename = "media-types")]
    pub media_types: Vec<MediaType>,
    #[schema(example = "stable")]
    pub status: String,
    #[schema(example = "2013-02-13T00:00:00Z")]
    pub updated: String,
}

#[derive(Serialize, ToSchema)]
pub struct VersionList {
    pub values: Vec<Version>,
}

#[derive(Serialize, ToSchema)]
pub struct Versions {
    pub versions: VersionList,
}

#[derive(Serialize, ToSchema)]
pub struct VersionEntry {
    pub version: Version,
}

/// The v2 entry; `href` follows the request's scheme and host (and X-Forwarded-* headers).
fn v2_entry(req: &HttpRequest) -> Version {
    let info = req.connection_info();
    let prefix = req
        .headers()
        .get("X-Forwarded-Prefix")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim_end_matches('/');
    Version {
        id: "v2".into(),
        links: vec![
            Link {
                href: format!("{}://{}{}/v2", info.scheme(), info.host(), prefix),
                rel: "self".into(),
                media_type: None,
            },
            Link {
                href: "https://docs.openstack.org/".into(),
                rel: "describedby".into(),
                media_type: Some("text/html".into()),
            },
        ],
        media_types: vec![
            MediaType {
                base: "application/json".into(),
                media_type: "application/vnd.openstack.telemetry-v2+json".into(),
            },
            MediaType {
                base: "application/xml".into(),
                media_type: "application/vnd.openstack.telemetry-v2+xml".into(),
            },
        ],
        status: "stable".into(),
        updated: "2013-02-13T00:00:00Z".into(),
    }
}

/// The API versions.
#[utoipa::path(
    tag = "versions",
    security(()),
    responses(
        (status = 200, description = "The versions document", body = Versions),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
    )
)]
#[get("/")]
pub async fn versions(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().json(Versions {
        versions: VersionList {
            values: vec![v2_entry(&req)],
        },
    })
}

/// The v2 version entry (`/v2/` too). Panko answers 404 here although `/` links to it.
#[utoipa::path(
    tag = "versions",
    security(()),
    responses(
        (status = 200, description = "The v2 version entry", body = VersionEntry),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
    )
)]
#[get("/v2")]
pub async fn v2_version(req: HttpRequest) -> HttpResponse {
    HttpResponse::Ok().json(VersionEntry {
        version: v2_entry(&req),
    })
}

/// Liveness: the process answers HTTP. `OK` as text, as oslo.middleware's health check.
#[utoipa::path(
    tag = "versions",
    security(()),
    responses((status = 200, description = "The server is alive", body = String, content_type = "text/plain"))
)]
#[get("/healthcheck")]
pub async fn healthcheck() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=UTF-8")
        .body("OK")
}

/// The server can serve requests: its database answers.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    #[schema(example = "ready")]
    pub status: String,
    /// The database backend: `sqlite` or `postgresql`.
    #[schema(example = "postgresql")]
    pub database: String,
}

/// Readiness: the database answers a query within `database.connect_timeout_ms`. Unlike the
/// liveness check (`/healthcheck`, which only says the process is up), this is `503` while the
/// database is unreachable, so a load balancer can route around this server.
#[utoipa::path(
    tag = "versions",
    security(()),
    responses(
        (status = 200, description = "The database answers", body = Readiness),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 503, description = "The database is unreachable", body = ErrorBody),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    use diesel::r2d2::R2D2Connection;
    state
        .db
        .run(|conn| {
            conn.ping().map_err(|error| {
                tracing::warn!(%error, "readiness check: the database does not answer");
                ApiError::Unavailable("The database does not answer; not ready.".into())
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(Readiness {
        status: "ready".into(),
        database: state.db.backend().name().into(),
    }))
}

/// Metrics in the Prometheus text format: requests by route pattern and status, latency
/// histograms, ingested events, pool connections and database errors.
#[utoipa::path(
    tag = "versions",
    security(()),
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain; version=0.0.4"))
)]
#[get("/metrics")]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(crate::metrics::CONTENT_TYPE)
        .body(crate::metrics::render(&state.db))
}

/// What this server supports.
#[derive(Serialize, ToSchema)]
pub struct Capabilities {
    #[schema(example = json!({"events:query:simple": true}))]
    pub api: std::collections::BTreeMap<String, bool>,
    #[schema(example = json!({"storage:production_ready": true}))]
    pub event_storage: std::collections::BTreeMap<String, bool>,
}

/// Capabilities (`/v2/capabilities/` too). No identity needed.
#[utoipa::path(
    tag = "capabilities",
    security(()),
    responses(
        (status = 200, description = "The capabilities", body = Capabilities),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
    )
)]
#[get("/v2/capabilities")]
pub async fn capabilities(req: HttpRequest) -> ApiResult<HttpResponse> {
    ensure_no_arguments(req.query_string(), None)?;
    Ok(HttpResponse::Ok().json(Capabilities {
        api: [("events:query:simple".to_string(), true)].into(),
        event_storage: [("storage:production_ready".to_string(), true)].into(),
    }))
}
