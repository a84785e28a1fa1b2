//! One error type for the whole API, one JSON envelope, one mapping to status codes.
//!
//! The envelope is Panko's WSME shape, used for every error so clients parse one thing:
//! `{"error_message": {"faultcode": "Client"|"Server", "faultstring": "...", "debuginfo": null}}`.
//! Internal errors are logged (with the request id, by the request-id middleware) and answered
//! with a generic text: SQL, file paths and driver messages never reach the client.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ingest::{BatchError, EventProblem};
use crate::metrics::DbErrorKind;
use crate::query::QueryError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Method {method} is not allowed on this resource. Allowed: {allow}")]
    MethodNotAllowed { method: String, allow: String },
    #[error("Only application/json responses are served; the Accept header does not allow them")]
    NotAcceptable,
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A batch with invalid events: every problem is listed, nothing was stored.
    #[error("{message}")]
    InvalidBatch {
        message: String,
        problems: Vec<EventProblem>,
    },
    /// A rate limit was reached; `retry_after` seconds is when the request may succeed.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    Unavailable(String),
    /// The database's storage is full (507): nothing was stored.
    #[error("{0}")]
    InsufficientStorage(String),
    #[error("Internal server error; it was logged with this request's id")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> ApiError {
        ApiError::BadRequest(msg.into())
    }

    pub fn not_found(msg: impl Into<String>) -> ApiError {
        ApiError::NotFound(msg.into())
    }

    pub fn internal(error: anyhow::Error) -> ApiError {
        ApiError::Internal(error)
    }

    /// A pool that cannot hand out a connection means the database is down or overloaded.
    pub fn from_pool(error: diesel::r2d2::PoolError) -> ApiError {
        tracing::warn!(%error, "no database connection available");
        Self::unavailable_in_time()
    }

    /// Every connection stayed busy for the whole connection timeout: overloaded.
    pub fn no_connection_in_time() -> ApiError {
        tracing::warn!("no database connection became free in time");
        Self::unavailable_in_time()
    }

    fn unavailable_in_time() -> ApiError {
        crate::metrics::db_error(crate::metrics::DbErrorKind::Unavailable);
        ApiError::Unavailable(
            "The database is unavailable; retry later. (No connection could be obtained in time.)"
                .into(),
        )
    }

    /// The same error for another request that shared its cause (a failed group commit).
    /// Internal causes are carried as text.
    pub fn replicate(&self) -> ApiError {
        match self {
            ApiError::BadRequest(s) => ApiError::BadRequest(s.clone()),
            ApiError::Unauthorized(s) => ApiError::Unauthorized(s.clone()),
            ApiError::Forbidden(s) => ApiError::Forbidden(s.clone()),
            ApiError::NotFound(s) => ApiError::NotFound(s.clone()),
            ApiError::MethodNotAllowed { method, allow } => ApiError::MethodNotAllowed {
                method: method.clone(),
                allow: allow.clone(),
            },
            ApiError::NotAcceptable => ApiError::NotAcceptable,
            ApiError::PayloadTooLarge(s) => ApiError::PayloadTooLarge(s.clone()),
            ApiError::UnsupportedMediaType(s) => ApiError::UnsupportedMediaType(s.clone()),
            ApiError::InvalidBatch { message, problems } => ApiError::InvalidBatch {
                message: message.clone(),
                problems: problems.clone(),
            },
            ApiError::TooManyRequests {
                message,
                retry_after,
            } => ApiError::TooManyRequests {
                message: message.clone(),
                retry_after: *retry_after,
            },
            ApiError::Unavailable(s) => ApiError::Unavailable(s.clone()),
            ApiError::InsufficientStorage(s) => ApiError::InsufficientStorage(s.clone()),
            ApiError::Internal(e) => ApiError::Internal(anyhow::anyhow!("{e:#}")),
        }
    }

    /// No usable credentials (token mode). One text for every cause, so that a caller cannot
    /// tell an unknown token from a revoked or expired one.
    pub fn unauthenticated() -> ApiError {
        ApiError::Unauthorized(
            "Authentication required: send a valid token as 'Authorization: Bearer <token>' or \
             'X-Auth-Token: <token>' (missing, unknown, revoked or expired tokens are refused)"
                .into(),
        )
    }

    /// Panko's RBAC refusal (403).
    pub fn rbac() -> ApiError {
        ApiError::Forbidden("RBAC Authorization Failed".into())
    }
}

const READ_ONLY: &str =
    "The database is read-only; nothing can be stored now. Reads still work; retry writes later.";

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> ApiError {
        // A row not found is an answer, not a database failure.
        let counted = !matches!(error, diesel::result::Error::NotFound);
        let (api_error, kind) = classify(error);
        if counted {
            crate::metrics::db_error(kind);
        }
        api_error
    }
}

/// Maps a diesel error to the API's answer, and the kind counted in the metrics. Unavailability,
/// contention, a read-only or a full store are the client's to retry (503, 507): nothing was
/// committed. Anything else is an internal error (500).
fn classify(error: diesel::result::Error) -> (ApiError, DbErrorKind) {
    use diesel::result::{DatabaseErrorKind, Error};
    // A commit that failed and whose rollback failed too: the commit's error says why.
    let error = match error {
        Error::RollbackErrorOnCommit { commit_error, .. } => return classify(*commit_error),
        other => other,
    };
    let message = match &error {
        Error::DatabaseError(_, info) => info.message().to_string(),
        _ => String::new(),
    };
    let has = |text: &str| message.contains(text);
    match &error {
        // The connection died inside a transaction, so its rollback failed too (seen with
        // PostgreSQL stopped under ingest load). The connection reports itself broken and is
        // replaced; whether a commit in flight landed is unknown, and a retry is safe
        // (duplicates are skipped).
        Error::BrokenTransactionManager => (
            ApiError::Unavailable("The database connection was lost; retry later.".into()),
            DbErrorKind::Unavailable,
        ),
        // PostgreSQL went away (stopped, restarted, network): libpq reports a bad connection,
        // or cannot even send the command. r2d2 discards the broken connection.
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => (
            ApiError::Unavailable("The database connection was lost; retry later.".into()),
            DbErrorKind::Unavailable,
        ),
        // A PostgreSQL standby or `default_transaction_read_only`; SQLite's SQLITE_READONLY
        // (the file, its directory or the filesystem is read-only).
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => (
            ApiError::Unavailable(READ_ONLY.into()),
            DbErrorKind::ReadOnly,
        ),
        Error::DatabaseError(..) if has("readonly database") || has("read-only file system") => (
            ApiError::Unavailable(READ_ONLY.into()),
            DbErrorKind::ReadOnly,
        ),
        // SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100).
        Error::DatabaseError(..) if has("database or disk is full") || has("No space left") => (
            ApiError::InsufficientStorage(
                "The database's storage is full; nothing was stored. Retry once space has been \
                 freed."
                    .into(),
            ),
            DbErrorKind::Full,
        ),
        // SQLite could not read or write its files (SQLITE_IOERR).
        Error::DatabaseError(..) if has("disk I/O error") => (
            ApiError::Unavailable(
                "The database could not read or write its storage; retry later.".into(),
            ),
            DbErrorKind::Io,
        ),
        // Transient contention: SQLite's write lock held past the busy timeout, or a
        // PostgreSQL transaction chosen as a deadlock or serialization victim. Nothing was
        // committed, so the same request can simply be sent again.
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => (
            ApiError::Unavailable("The database is busy; retry the request.".into()),
            DbErrorKind::Busy,
        ),
        Error::DatabaseError(..) if has("database is locked") || has("deadlock detected") => (
            ApiError::Unavailable("The database is busy; retry the request.".into()),
            DbErrorKind::Busy,
        ),
        _ => (ApiError::Internal(error.into()), DbErrorKind::Other),
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> ApiError {
        ApiError::BadRequest(error.0)
    }
}

impl From<BatchError> for ApiError {
    fn from(error: BatchError) -> ApiError {
        match error {
            BatchError::TooManyEvents { .. } => ApiError::PayloadTooLarge(error.to_string()),
            BatchError::Invalid(problems) => ApiError::InvalidBatch {
                message: BatchError::Invalid(problems.clone()).to_string(),
                problems,
            },
            BatchError::Malformed(_) | BatchError::Empty => ApiError::BadRequest(error.to_string()),
        }
    }
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error_message: ErrorDetail,
}

#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// `Client` for 4xx, `Server` for 5xx.
    #[schema(example = "Client")]
    pub faultcode: String,
    /// What was wrong, and what is accepted.
    pub faultstring: String,
    /// Always null (kept for Panko compatibility).
    #[schema(value_type = Option<String>)]
    pub debuginfo: Option<()>,
    /// For a rejected ingest batch: every invalid event, by index.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[schema(value_type = Option<Vec<EventProblemSchema>>)]
    pub errors: Option<Vec<serde_json::Value>>,
}

/// One invalid event of a rejected batch.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventProblemSchema {
    /// Position in the batch (0-based; for NDJSON, among the non-blank lines).
    index: usize,
    /// For NDJSON: the 1-based line of the body (blank lines count).
    line: Option<usize>,
    /// The event's message_id, when readable.
    message_id: Option<String>,
    /// What is wrong with it.
    reason: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidBatch { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::InsufficientStorage(_) => StatusCode::INSUFFICIENT_STORAGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let errors = match self {
            ApiError::InvalidBatch { problems, .. } => Some(
                problems
                    .iter()
                    .map(|p| serde_json::to_value(p).unwrap_or(serde_json::Value::Null))
                    .collect(),
            ),
            _ => None,
        };
        let body = ErrorBody {
            error_message: ErrorDetail {
                faultcode: if status.is_server_error() {
                    "Server"
                } else {
                    "Client"
                }
                .into(),
                faultstring: self.to_string(),
                debuginfo: None,
                errors,
            },
        };
        let mut response = HttpResponse::build(status);
        if let ApiError::MethodNotAllowed { allow, .. } = self {
            response.insert_header((header::ALLOW, allow.clone()));
        }
        match self {
            ApiError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
            }
            // RFC 6750: a 401 names the scheme the client should use.
            ApiError::Unauthorized(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"almanac\""));
            }
            _ => {}
        }
        response.json(body)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
