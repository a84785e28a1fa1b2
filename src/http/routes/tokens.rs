//! `/v2/tokens`: API tokens (Almanac; `auth = token`). Create (the secret is shown once), list
//! and show without secrets, revoke. Each change is audited in its own transaction.

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{policy, Access, AuthMode, Identity, Need};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::{body, request_meta, AppState};
use crate::model::time;
use crate::query::ensure_no_arguments;
use crate::store::tokens::{NewToken, TokenRecord};
use crate::store::{self, audit};

/// Longest user id, project id, role and description accepted, in bytes.
const MAX_FIELD_BYTES: usize = 255;
const MAX_ROLES: usize = 32;
/// Largest token-creation body.
const MAX_BODY: usize = 16 * 1024;

/// A token to create.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// The identity the token acts as.
    #[schema(example = "svc-ceilometer")]
    user_id: String,
    #[schema(example = "service")]
    project_id: String,
    /// Roles; `admin` is admin under the default policy.
    #[serde(default)]
    #[schema(example = json!(["admin"]))]
    roles: Vec<String>,
    /// `full` (default), `read` (GET only) or `ingest` (POST /v2/events only).
    #[serde(default)]
    access: Option<Access>,
    /// When the token stops working (ISO 8601, in the future).
    #[serde(default)]
    #[schema(example = "2027-01-01T00:00:00Z")]
    expires_at: Option<String>,
    /// Or: seconds from now.
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    description: String,
}

/// A token, without its secret.
#[derive(Serialize, ToSchema)]
pub struct TokenView {
    /// The public id: names the token when listing and revoking.
    #[schema(example = "3f9c0a1b2c3d4e5f")]
    id: String,
    user_id: String,
    project_id: String,
    roles: Vec<String>,
    access: Access,
    description: String,
    created_at: String,
    /// The creator's user id, or `cli` / `bootstrap`.
    created_by: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    /// Neither revoked nor expired.
    active: bool,
}

impl From<TokenRecord> for TokenView {
    fn from(r: TokenRecord) -> TokenView {
        TokenView {
            active: r.is_active(time::now_micros()),
            id: r.id,
            user_id: r.user_id,
            project_id: r.project_id,
            roles: r.roles,
            access: r.access,
            description: r.description,
            created_at: time::format_instant(r.created_at),
            created_by: r.created_by,
            expires_at: r.expires_at.map(time::format_instant),
            revoked_at: r.revoked_at.map(time::format_instant),
        }
    }
}

/// A new token: the only response that holds its secret.
#[derive(Serialize, ToSchema)]
pub struct CreatedToken {
    /// Send as `Authorization: Bearer <token>` or `X-Auth-Token: <token>`. Shown only now.
    #[schema(example = "alm_3f9c0a1b2c3d4e5f_Zm9vYmFyYmF6cXV4cXV1eGZvb2JhcmJhenF1eHF1dXg")]
    token: String,
    #[serde(flatten)]
    details: TokenView,
}

/// Checks a creation request and turns it into what the store keeps.
fn validate(request: CreateToken, who: &Identity, admin: bool, now: i64) -> ApiResult<NewToken> {
    let field = |name: &str, value: &str| -> ApiResult<()> {
        if value.is_empty() || value.len() > MAX_FIELD_BYTES || value.chars().any(char::is_control)
        {
            return Err(ApiError::bad_request(format!(
                "{name} must be 1 to {MAX_FIELD_BYTES} bytes, without control characters"
            )));
        }
        Ok(())
    };
    field("user_id", &request.user_id)?;
    field("project_id", &request.project_id)?;
    if request.roles.len() > MAX_ROLES {
        return Err(ApiError::bad_request(format!(
            "At most {MAX_ROLES} roles per token"
        )));
    }
    for role in &request.roles {
        field("Each role", role)?;
        if role.contains(',') {
            return Err(ApiError::bad_request("A role may not contain a comma"));
        }
    }
    if request.description.len() > 4 * MAX_FIELD_BYTES
        || request.description.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(format!(
            "description must be at most {} bytes, without control characters",
            4 * MAX_FIELD_BYTES
        )));
    }
    let expires_at = match (&request.expires_at, request.expires_in) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "Give expires_at or expires_in, not both",
            ))
        }
        (Some(text), None) => Some(time::parse_instant(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "expires_at {text:?} is not a time; expected ISO 8601 such as 2027-01-01T00:00:00Z"
            ))
        })?),
        (None, Some(seconds)) => Some(
            i64::try_from(seconds)
                .ok()
                .and_then(|s| s.checked_mul(1_000_000))
                .and_then(|us| now.checked_add(us))
                .filter(|t| time::parse_instant("9999-12-31T23:59:59").is_some_and(|max| *t <= max))
                .ok_or_else(|| ApiError::bad_request("expires_in is too large"))?,
        ),
        (None, None) => None,
    };
    if expires_at.is_some_and(|t| t <= now) {
        return Err(ApiError::bad_request("The expiry must be in the future"));
    }
    // Someone who may create tokens but is not admin (a policy that opens tokens:create) may
    // only copy their own token: same identity, the same roles (a subset is not safe: rules can
    // say `not role:…`), and no later expiry. Never a way to more rights or a longer life.
    let mut expires_at = expires_at;
    if !admin {
        let mut wanted: Vec<String> = request.roles.iter().map(|r| r.to_lowercase()).collect();
        let mut own_roles: Vec<String> = who.roles.iter().map(|r| r.to_lowercase()).collect();
        wanted.sort();
        own_roles.sort();
        let own = who.user_id.as_deref() == Some(request.user_id.as_str())
            && who.project_id.as_deref() == Some(request.project_id.as_str())
            && wanted == own_roles;
        if !own {
            return Err(ApiError::Forbidden(
                "Only admins may create tokens for another user or project, or with other roles \
                 than the caller's"
                    .into(),
            ));
        }
        if let Some(limit) = who.token.as_ref().and_then(|t| t.expires_at) {
            if expires_at.is_none_or(|t| t > limit) {
                expires_at = Some(limit);
            }
        }
    }
    Ok(NewToken {
        user_id: request.user_id,
        project_id: request.project_id,
        roles: request.roles,
        access: request.access.unwrap_or(Access::Full),
        description: request.description,
        expires_at,
        // `api:` keeps API creators apart from the `cli` and `bootstrap` of the server itself.
        created_by: format!("api:{}", who.user_id.as_deref().unwrap_or_default()),
    })
}

/// The caller, if allowed by the rule and by their token's own restriction.
async fn caller(
    req: &HttpRequest,
    state: &AppState,
    rule: &str,
    need: Need,
) -> ApiResult<Identity> {
    // Tokens are not used in headers mode: minting them there would leave credentials behind
    // that start working the day the deployment switches to tokens.
    if state.auth.mode() != AuthMode::Token {
        return Err(ApiError::Forbidden(
            "Tokens are managed only with auth = token; use `almanac token` on the server".into(),
        ));
    }
    let who = state.auth.identify(req, &request_meta(req)).await?;
    who.require(need)?;
    if !who.has_context() || !state.policy.allows(rule, &who) {
        return Err(ApiError::rbac());
    }
    Ok(who)
}

/// Whether the caller may see or revoke this token: admins any, others (a policy that opens the
/// token rules) only their own.
fn may_touch(state: &AppState, who: &Identity, record: &TokenRecord) -> bool {
    state.policy.is_admin(who)
        || (who.user_id.as_deref() == Some(record.user_id.as_str())
            && who.project_id.as_deref() == Some(record.project_id.as_str()))
}

/// Create a token (policy `tokens:create`, admins by default). The response holds the token
/// itself, which is never shown again: the store keeps only its hash.
#[utoipa::path(
    tag = "tokens",
    request_body(content = CreateToken, content_type = "application/json"),
    responses(
        (status = 201, description = "Created; `token` is shown only now", body = CreatedToken),
        (status = 400, description = "An invalid field", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The policy or the caller's token does not allow it", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "Not application/json", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []))
)]
#[post("/v2/tokens")]
pub async fn create_token(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let who = caller(&req, &state, policy::TOKENS_CREATE, Need::Manage).await?;
    ensure_no_arguments(req.query_string(), None)?;
    let raw = body::read(&req, payload, MAX_BODY, ".").await?;
    let not_object = || ApiError::bad_request("A JSON object describing the token is required");
    let json = body::query_body(&req, &raw)?.ok_or_else(not_object)?;
    // serde would also take a JSON array as the struct's fields in order: only objects.
    if json.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(not_object());
    }
    let request: CreateToken = serde_json::from_slice(json)
        .map_err(|e| ApiError::bad_request(format!("Invalid token request: {e}")))?;
    let now = time::now_micros();
    let new = validate(request, &who, state.policy.is_admin(&who), now)?;
    let entry = state.audit_entry(&request_meta(&req), audit::TOKEN_CREATE, who.actor());
    let (record, token) = state
        .db
        .run(move |conn| store::tokens::create(conn, &new, entry.as_ref(), now))
        .await?;
    // This server may have cached the id as unknown.
    state.auth.forget(&record.id);
    Ok(HttpResponse::Created().json(CreatedToken {
        token,
        details: record.into(),
    }))
}

/// Every token, oldest first, without secrets (policy `tokens:index`).
#[utoipa::path(
    tag = "tokens",
    responses(
        (status = 200, description = "The tokens", body = Vec<TokenView>),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The policy or the caller's token does not allow it", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []))
)]
#[get("/v2/tokens")]
pub async fn list_tokens(req: HttpRequest, state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let who = caller(&req, &state, policy::TOKENS_INDEX, Need::Read).await?;
    ensure_no_arguments(req.query_string(), None)?;
    let tokens = state.db.run(store::tokens::list).await?;
    let views: Vec<TokenView> = tokens
        .into_iter()
        .filter(|t| may_touch(&state, &who, t))
        .map(TokenView::from)
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// One token, without its secret (policy `tokens:index`).
#[utoipa::path(
    tag = "tokens",
    params(("token_id" = String, Path, description = "The token's public id")),
    responses(
        (status = 200, description = "The token", body = TokenView),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The policy or the caller's token does not allow it", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []))
)]
#[get("/v2/tokens/{token_id}")]
pub async fn show_token(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let who = caller(&req, &state, policy::TOKENS_INDEX, Need::Read).await?;
    ensure_no_arguments(req.query_string(), None)?;
    let id = body::path_text("token id", path.into_inner())?;
    let lookup = id.clone();
    let record = state
        .db
        .run(move |conn| store::tokens::get(conn, &lookup))
        .await?
        .filter(|t| may_touch(&state, &who, t))
        .ok_or_else(|| ApiError::not_found(format!("Token {id} Not Found")))?;
    Ok(HttpResponse::Ok().json(TokenView::from(record)))
}

/// Revoke a token (policy `tokens:revoke`): it stops working at once on this server, and within
/// `tokens.cache_seconds` on others sharing the database. Revoking again changes nothing. The
/// revoked token stays listed (with `revoked_at`, `active: false`), so that admins see what was
/// revoked and when; it is never deleted.
#[utoipa::path(
    tag = "tokens",
    params(("token_id" = String, Path, description = "The token's public id")),
    responses(
        (status = 200, description = "The token, now revoked", body = TokenView),
        (status = 400, description = "A query parameter was given", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody),
        (status = 403, description = "The policy or the caller's token does not allow it", body = ErrorBody),
        (status = 404, description = "No such token", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    ),
    security(("bearer" = []), ("x_auth_token" = []))
)]
#[delete("/v2/tokens/{token_id}")]
pub async fn revoke_token(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let who = caller(&req, &state, policy::TOKENS_REVOKE, Need::Manage).await?;
    ensure_no_arguments(req.query_string(), None)?;
    let id = body::path_text("token id", path.into_inner())?;
    let entry = state.audit_entry(&request_meta(&req), audit::TOKEN_REVOKE, who.actor());
    // Another user's token is "not found" to a non-admin, before anything changes. (Admins may
    // revoke any token: no read is needed first.)
    if !state.policy.is_admin(&who) {
        let lookup = id.clone();
        let visible = state
            .db
            .run(move |conn| store::tokens::get(conn, &lookup))
            .await?
            .is_some_and(|t| may_touch(&state, &who, &t));
        if !visible {
            return Err(ApiError::not_found(format!("Token {id} Not Found")));
        }
    }
    let lookup = id.clone();
    let now = time::now_micros();
    let record = state
        .db
        .run(move |conn| store::tokens::revoke(conn, &lookup, entry.as_ref(), now))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Token {id} Not Found")))?;
    state.auth.forget(&record.id);
    Ok(HttpResponse::Ok().json(TokenView::from(record)))
}
