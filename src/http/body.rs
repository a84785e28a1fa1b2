//! Request bodies: read with a size limit (413 before and while reading), and content types.

use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpMessage, HttpRequest};
use futures_util::StreamExt;

use crate::error::ApiError;
use crate::ingest::BatchFormat;

/// Reads the whole body, refusing more than `max` bytes; `advice` ends the 413's text.
pub async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    max: usize,
    advice: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "The request body is larger than the limit of {max} bytes{advice}"
        ))
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body = BytesMut::with_capacity(declared.unwrap_or(0).min(max));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("Could not read the request body: {e}")))?;
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn unknown_mimetype(req: &HttpRequest) -> ApiError {
    let ct = req.content_type();
    ApiError::UnsupportedMediaType(format!(
        "Unknown mimetype: {}",
        if ct.is_empty() { "(none)" } else { ct }
    ))
}

/// A query body on GET: none when empty; otherwise it must be JSON (Panko: 415 for others).
pub fn query_body<'a>(req: &HttpRequest, body: &'a Bytes) -> Result<Option<&'a [u8]>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    if !req.content_type().eq_ignore_ascii_case("application/json") {
        return Err(unknown_mimetype(req));
    }
    Ok(Some(body))
}

/// The format of an ingest body, from its content type.
pub fn batch_format(req: &HttpRequest) -> Result<BatchFormat, ApiError> {
    // Media types are case-insensitive (RFC 9110).
    match req.content_type().to_ascii_lowercase().as_str() {
        "application/json" => Ok(BatchFormat::JsonArray),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => {
            Ok(BatchFormat::Ndjson)
        }
        _ => Err(ApiError::UnsupportedMediaType(format!(
            "{}. Send events as application/json (a JSON array) or application/x-ndjson (one event per line).",
            unknown_mimetype(req)
        ))),
    }
}

/// A path parameter must be storable text: PostgreSQL cannot hold NUL characters, so a value
/// with one names nothing that can exist.
pub fn path_text(name: &str, value: String) -> Result<String, ApiError> {
    if value.contains('\0') {
        return Err(ApiError::bad_request(format!(
            "The {name} in the path contains a NUL character; NUL characters are not accepted."
        )));
    }
    Ok(value)
}
