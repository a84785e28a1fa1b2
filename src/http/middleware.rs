//! The one middleware every request goes through: request id, tracing span, trailing-slash
//! normalisation, content negotiation, and the access log.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::Uri;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError};
use tracing::Instrument;

use crate::error::ApiError;

static OPENSTACK_REQUEST_ID: HeaderName = HeaderName::from_static("x-openstack-request-id");
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in the request's extensions for handlers (audit records carry it).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Gives each request an id (`req-<uuid>`), sent back in `x-openstack-request-id` and
/// `X-Request-Id` and carried by every log line of the request.
pub async fn entry(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.path(),
    );
    trim_trailing_slash(&mut req);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let started = Instant::now();
    let _in_flight = crate::metrics::request_started();

    let mut res = async {
        if !accepts_json(&req) {
            let response = ApiError::NotAcceptable.error_response();
            return Ok(req.into_response(response));
        }
        next.call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body)
    }
    .instrument(span.clone())
    .await?;

    if let Ok(value) = HeaderValue::from_str(&request_id) {
        res.headers_mut()
            .insert(OPENSTACK_REQUEST_ID.clone(), value.clone());
        res.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = res.status();
    // Labelled by the matched route pattern (bounded), not the path.
    crate::metrics::observe_request(
        res.request().method().as_str(),
        res.request().match_pattern().as_deref(),
        status.as_u16(),
        started.elapsed(),
    );
    let _entered = span.enter();
    if let Some(ApiError::Internal(error)) = res.response().error().and_then(|e| e.as_error()) {
        tracing::error!(
            status = status.as_u16(),
            error = format!("{error:#}"),
            "request failed"
        );
    }
    tracing::info!(
        status = status.as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    Ok(res)
}

/// `/v2/events/` is `/v2/events` (Panko accepts the trailing slash, and pankoclient sends it).
/// Limited to the API so that the Swagger UI's `/docs/` keeps its own.
fn trim_trailing_slash(req: &mut ServiceRequest) {
    let path = req.path();
    if !(path.starts_with("/v2") && path.len() > 1 && path.ends_with('/')) {
        return;
    }
    let trimmed = path.trim_end_matches('/');
    let new = match req.query_string() {
        "" => trimmed.to_string(),
        q => format!("{trimmed}?{q}"),
    };
    if let Ok(uri) = new.parse::<Uri>() {
        req.match_info_mut().get_mut().update(&uri);
        req.head_mut().uri = uri;
    }
}

/// Whether the client accepts JSON. Absent or empty `Accept` does; XML alone does not (Almanac
/// serves no XML). The docs page and the health check have their own media types.
fn accepts_json(req: &ServiceRequest) -> bool {
    let path = req.path();
    if path.starts_with("/docs") || path == "/healthcheck" || path == "/metrics" {
        return true;
    }
    let Some(accept) = req.headers().get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            let p = p.trim();
            p.strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && (media == "*/*"
                || media == "application/*"
                || media == "application/json"
                || media.ends_with("+json"))
    })
}
