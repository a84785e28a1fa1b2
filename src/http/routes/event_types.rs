//! `/v2/event_types…`: the event types and their traits (admins, as Panko).

use actix_web::{get, web, HttpRequest, HttpResponse};

use crate::auth::require_event_types_access;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::views::{TraitDescriptionView, TraitView};
use crate::http::{body, request_meta, AppState};
use crate::query::ensure_no_arguments;
use crate::store;

/// Identity and arguments check shared by the event-type routes.
async fn admit(req: &HttpRequest, state: &AppState) -> ApiResult<()> {
    let who = state.auth.identify(req, &request_meta(req)).await?;
    require_event_types_access(state.auth.mode(), &state.policy, &who)?;
    ensure_no_arguments(req.query_string(), None)?;
    Ok(())
}

/// Every event type, in byte order (`/v2/event_types/` too).
#[utoipa::path(
    tag = "event_types",
    params(
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers)"),
    ),
    responses(
        (status = 200, description = "Event type names", body = Vec<String>, example = json!(["compute.instance.create.end", "image.upload"])),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "auth = headers: an identified caller who is not admin (Panko's status and text). auth = token: no valid token", body = ErrorBody),
        (status = 403, description = "auth = token: the policy event_types:index refused, or the token does not allow reading", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/v2/event_types")]
pub async fn list_event_types(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    admit(&req, &state).await?;
    let types = state.db.run(store::event_types::list).await?;
    Ok(HttpResponse::Ok().json(types))
}

/// An event type's definition. None are defined yet, so this is always 404, as in Panko.
#[utoipa::path(
    tag = "event_types",
    params(
        ("event_type" = String, Path, description = "The event type"),
    ),
    responses(
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "auth = headers: an identified caller who is not admin. auth = token: no valid token", body = ErrorBody),
        (status = 403, description = "auth = token: the policy event_types:index refused, or the token does not allow reading", body = ErrorBody),
        (status = 404, description = "No definition", body = ErrorBody),
    )
)]
#[get("/v2/event_types/{event_type}")]
pub async fn show_event_type(
    req: HttpRequest,
    _event_type: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    admit(&req, &state).await?;
    Err(ApiError::not_found("The resource could not be found."))
}

/// The trait names and types seen on events of a type (`…/traits/` too); `[]` for an unknown
/// type.
#[utoipa::path(
    tag = "event_types",
    params(
        ("event_type" = String, Path, description = "The event type"),
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers)"),
    ),
    responses(
        (status = 200, description = "Trait descriptions, grouped by type (string, integer, float, datetime), by name within a type", body = Vec<TraitDescriptionView>),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "auth = headers: an identified caller who is not admin. auth = token: no valid token", body = ErrorBody),
        (status = 403, description = "auth = token: the policy event_types:index refused, or the token does not allow reading", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/v2/event_types/{event_type}/traits")]
pub async fn list_traits(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    admit(&req, &state).await?;
    let event_type = body::path_text("event type", path.into_inner())?;
    let traits = state
        .db
        .run(move |conn| store::event_types::trait_descriptions(conn, &event_type))
        .await?;
    let views: Vec<TraitDescriptionView> = traits
        .into_iter()
        .map(|(name, t)| TraitDescriptionView {
            trait_type: t.into(),
            name,
        })
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// Every stored value of one trait across the events of a type (one per event, duplicates
/// kept, as Panko); `[]` for an unknown type or name.
#[utoipa::path(
    tag = "event_types",
    params(
        ("event_type" = String, Path, description = "The event type"),
        ("trait_name" = String, Path, description = "The trait name"),
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers)"),
    ),
    responses(
        (status = 200, description = "Trait instances", body = Vec<TraitView>),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "auth = headers: an identified caller who is not admin. auth = token: no valid token", body = ErrorBody),
        (status = 403, description = "auth = token: the policy event_types:index refused, or the token does not allow reading", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/v2/event_types/{event_type}/traits/{trait_name}")]
pub async fn list_trait_values(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    admit(&req, &state).await?;
    let (event_type, name) = path.into_inner();
    let event_type = body::path_text("event type", event_type)?;
    let name = body::path_text("trait name", name)?;
    let traits = state
        .db
        .run(move |conn| store::event_types::trait_values(conn, &event_type, &name))
        .await?;
    let views: Vec<TraitView> = traits.into_iter().map(TraitView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}
