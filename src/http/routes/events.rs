//! `/v2/events`: query (Panko), show one, and ingest (Almanac).

use actix_web::http::header::ContentType;
use actix_web::{get, post, web, HttpRequest, HttpResponse};

use crate::auth::{self, policy, Identity, Need};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::http::event_json;
use crate::http::views::EventView;
use crate::http::{body, request_meta, AppState};
use crate::ingest::decode_batch;
use crate::model::time;
use crate::query::{ensure_no_arguments, parse_event_query, ParseOptions};
use crate::store;
use crate::store::audit;
use crate::store::ingest::IngestOutcome;

const Q_DOC: &str = "The q language: each item is (field, op, value, type), sent as parallel \
arrays (q.field=a&q.op=eq&q.value=b&q.type=string&q.field=…), as indexed items \
(q[0].field=a&q[0].value=b), or as a JSON body {\"q\": [{\"field\", \"op\", \"value\", \"type\"}]}. \
Fields event_type and message_id take op eq; start_timestamp takes ge; end_timestamp takes le; \
all_tenants (admins) lists every tenant's events; any other field is a trait filter of the given \
type (default string).";

/// A JSON body on GET: the same parameters as the query string (each in one place only).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct EventQueryBody {
    q: Option<Vec<QueryItem>>,
    limit: Option<u32>,
    sort: Option<Vec<String>>,
    marker: Option<String>,
}

/// One q item.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct QueryItem {
    #[schema(example = "memory_mb")]
    field: String,
    /// lt, le, eq (default), ne, ge, gt.
    #[schema(example = "gt")]
    op: Option<String>,
    #[schema(example = "2048")]
    value: String,
    /// string (default), integer, float, datetime.
    #[schema(example = "integer")]
    r#type: Option<String>,
}

/// List events matching the query, within the caller's scope, one page at a time.
///
/// Members see their own events (project_id and user_id traits); admins see their project's
/// events and events without a project, or every event with the q item all_tenants=true.
/// Page with `marker` = the last message_id of the previous page and the same q and sort.
#[utoipa::path(
    tag = "events",
    params(
        ("q.field" = Option<Vec<String>>, Query, description = Q_DOC),
        ("q.op" = Option<Vec<String>>, Query, description = "lt, le, eq (default), ne, ge, gt; one per q.field"),
        ("q.value" = Option<Vec<String>>, Query, description = "One per q.field"),
        ("q.type" = Option<Vec<String>>, Query, description = "string (default), integer, float, datetime; one per q.field"),
        ("limit" = Option<u32>, Query, description = "Page size; absent or 0: the configured default (100). At most the configured maximum (10,000)."),
        ("sort" = Option<Vec<String>>, Query, description = "key[:dir], repeatable; keys generated, message_id; dir asc (default) or desc. Default generated:asc. message_id always ends the order as a tiebreaker."),
        ("marker" = Option<String>, Query, description = "The message_id of the last event of the previous page"),
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers); admin is admin"),
    ),
    request_body(content = Option<EventQueryBody>, content_type = "application/json", description = "Optional: the parameters as a JSON body instead of the query string"),
    responses(
        (status = 200, description = "A page of events", body = Vec<EventView>),
        (status = 400, description = "A bad query: the faultstring says what and what is accepted", body = ErrorBody),
        (status = 401, description = "auth = token: no valid token (missing, unknown, revoked or expired)", body = ErrorBody),
        (status = 403, description = "No user or project identity, the policy refused, or the token does not allow reading", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 413, description = "The body is too large", body = ErrorBody),
        (status = 415, description = "A body that is not JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/v2/events")]
pub async fn list_events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let who = state.auth.identify(&req, &request_meta(&req)).await?;
    // Authorization before input validation: an unidentified caller learns nothing.
    who.require(Need::Read)?;
    if !who.has_context() || !state.policy.allows(policy::EVENTS_INDEX, &who) {
        return Err(ApiError::rbac());
    }
    let limits = &state.config.limits;
    let raw_body = body::read(&req, payload, limits.max_body_bytes, ".").await?;
    let json_body = body::query_body(&req, &raw_body)?;
    let options = ParseOptions {
        admin: state.policy.is_admin(&who),
        max_limit: limits.max_limit,
        max_q_items: limits.max_q_items,
        max_value_bytes: limits.max_string_bytes,
    };
    let query = parse_event_query(req.query_string(), json_body, &options)?;
    let scope = auth::event_scope(
        &state.policy,
        state.config.member_scope,
        &who,
        policy::EVENTS_INDEX,
        query.all_tenants,
    )?;
    let limit = query.limit.unwrap_or(limits.default_limit);
    let caches = state.caches.clone();
    // Rendered on the blocking thread that read the page, which then frees it there: freeing
    // a page's many small allocations on another thread (the executor's) made the allocator
    // collect them across threads, 5% of a list request's CPU.
    let json = state
        .db
        .run(move |conn| {
            store::events::list(conn, &caches, &query, &scope, limit)
                .map(|page| event_json::page(&page))
        })
        .await?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json))
}

/// One event by message_id, if it is within the caller's scope.
#[utoipa::path(
    tag = "events",
    params(
        ("message_id" = String, Path, description = "The event's message_id"),
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers)"),
    ),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 400, description = "A query parameter was given (none are accepted)", body = ErrorBody),
        (status = 401, description = "auth = token: no valid token (missing, unknown, revoked or expired)", body = ErrorBody),
        (status = 403, description = "No user or project identity, the policy refused, or the token does not allow reading", body = ErrorBody),
        (status = 404, description = "No such event in the caller's scope", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 503, description = "The database is unavailable", body = ErrorBody),
    )
)]
#[get("/v2/events/{message_id}")]
pub async fn show_event(
    req: HttpRequest,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let who = state.auth.identify(&req, &request_meta(&req)).await?;
    let scope = auth::event_scope(
        &state.policy,
        state.config.member_scope,
        &who,
        policy::EVENTS_SHOW,
        false,
    )?;
    ensure_no_arguments(req.query_string(), None)?;
    let message_id = body::path_text("message_id", path.into_inner())?;
    let lookup = message_id.clone();
    let caches = state.caches.clone();
    // Rendered where it was read, as in `list_events`.
    let json = state
        .db
        .run(move |conn| {
            let page = store::events::get(conn, &caches, &lookup, &scope)?;
            Ok(page
                .events
                .first()
                .map(|event| event_json::event(&page, event)))
        })
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Event {message_id} Not Found")))?;
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(json))
}

/// Ingest a batch of events (Almanac; Panko has no write API).
///
/// A JSON array of events in the shape the API returns (trait values as strings or JSON
/// numbers; `type` may be omitted for strings and numbers), or NDJSON with
/// `Content-Type: application/x-ndjson`. Ceilometer's `[name, dtype, value]` traits are accepted. Event types starting with `almanac.`
/// are reserved for Almanac's audit records.
/// The batch is validated whole: one invalid event rejects the batch with a 400 listing every
/// invalid event, and nothing is stored. An event whose message_id is already stored (or repeats
/// in the batch) is skipped and reported. A 201 is sent only after the batch is committed.
#[utoipa::path(
    tag = "events",
    params(
        ("X-User-Id" = Option<String>, Header, description = "The caller's user (auth = headers)"),
        ("X-Project-Id" = Option<String>, Header, description = "The caller's project (auth = headers)"),
        ("X-Roles" = Option<String>, Header, description = "Comma-separated roles (auth = headers); events:create needs admin by default"),
    ),
    request_body(content(
        (Vec<IngestEvent> = "application/json"),
        (IngestEvent = "application/x-ndjson"),
    )),
    responses(
        (status = 201, description = "Committed", body = IngestOutcome),
        (status = 400, description = "Malformed body or invalid events (each listed in error_message.errors); nothing stored", body = ErrorBody),
        (status = 401, description = "auth = token: no valid token (missing, unknown, revoked or expired)", body = ErrorBody),
        (status = 403, description = "The policy events:create refused, or the token does not allow ingesting", body = ErrorBody),
        (status = 406, description = "The client does not accept JSON", body = ErrorBody),
        (status = 413, description = "Body or batch too large", body = ErrorBody),
        (status = 415, description = "Neither application/json nor application/x-ndjson", body = ErrorBody),
        (status = 429, description = "The caller's ingest rate limit (limits.ingest_events_per_second); Retry-After says when to retry", body = ErrorBody),
        (status = 503, description = "The database is unavailable (nothing stored), or (SQLite) the batch was committed but its sync to disk failed; retrying stores what is missing and reports the rest as duplicates", body = ErrorBody),
    )
)]
#[post("/v2/events")]
pub async fn ingest_events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> ApiResult<HttpResponse> {
    let meta = request_meta(&req);
    let who = state.auth.identify(&req, &meta).await?;
    auth::require_ingest(&state.policy, &who)?;
    // A caller past its rate is refused before its body is read or decoded: one event is taken
    // now, the rest of the batch once it is counted.
    let caller = rate_key(&who);
    state.ingest_rate.check(&caller, 1)?;
    let format = body::batch_format(&req)?;
    let arrival = state.writer.arriving();
    let raw_body = body::read(
        &req,
        payload,
        state.config.limits.max_body_bytes,
        "; send smaller batches.",
    )
    .await?;
    let limits = state.config.ingest_limits();
    // Decoding a large batch takes milliseconds of CPU: not on the async executor.
    let batch = web::block(move || decode_batch(&raw_body, format, &limits, time::now_micros()))
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("decoding task failed: {e}")))??;
    if batch.len() > 1 {
        state.ingest_rate.check(&caller, batch.len() - 1)?;
    }
    let audit = state.audit_entry(&meta, audit::EVENTS_INGEST, who.actor());
    let outcome = state.writer.submit(batch, audit, Some(arrival)).await?;
    crate::metrics::events_ingested(outcome.stored, outcome.duplicates.len());
    Ok(HttpResponse::Created().json(outcome))
}

/// Whose ingest bucket a batch is taken from: the token, or in `headers` mode the user.
fn rate_key(who: &Identity) -> String {
    match &who.token {
        Some(grant) => format!("token:{}", grant.id),
        None => format!(
            "user:{}@{}",
            who.user_id.as_deref().unwrap_or(""),
            who.project_id.as_deref().unwrap_or("")
        ),
    }
}

/// An event to ingest.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IngestEvent {
    /// 1..255 bytes, unique; a UUID is generated when absent.
    message_id: Option<String>,
    /// 1..255 bytes.
    #[schema(example = "compute.instance.create.end")]
    event_type: String,
    /// ISO 8601 (an offset is converted to UTC; none means UTC); receive time when absent.
    #[schema(example = "2014-01-01T05:00:00Z")]
    generated: Option<String>,
    traits: Option<Vec<IngestTrait>>,
    /// Any JSON; `{}` when absent.
    #[schema(value_type = Option<Object>)]
    raw: Option<serde_json::Value>,
}

/// A trait to ingest. `[name, dtype, value]` arrays (Ceilometer) are accepted too.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct IngestTrait {
    /// 1..255 bytes; unique per type within an event.
    #[schema(example = "memory_mb")]
    name: String,
    /// string, integer, float or datetime; inferred from a JSON string or number when absent.
    #[schema(example = "integer")]
    r#type: Option<String>,
    /// A string or a JSON number.
    #[schema(value_type = crate::http::openapi::TraitValue, example = 2048)]
    value: serde_json::Value,
}
