//! Turning a request into an [`Identity`]: the auth mode, the token lookup with its short cache,
//! and the (rate-limited) audit of authentication failures.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use super::{from_headers, presented_token, token, AuthMode, Identity, TokenGrant};
use crate::db::Db;
use crate::error::ApiError;
use crate::model::{time, TraitValue};
use crate::store::audit::{self, Actor, AuditEntry};
use crate::store::tokens::{self, TokenRecord};
use crate::store::writer::IngestWriter;

/// Verified tokens kept in memory at most; past this the cache starts over.
const CACHE_ENTRIES: usize = 10_000;

/// What the audit trail records about the request itself.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub request_id: Option<String>,
    pub remote_addr: Option<String>,
}

impl RequestMeta {
    /// An audit record of this request by this actor.
    pub fn entry(&self, action: &'static str, actor: Actor) -> AuditEntry {
        AuditEntry {
            request_id: self.request_id.clone(),
            remote_addr: self.remote_addr.clone(),
            ..AuditEntry::new(action, actor)
        }
    }
}

/// A token as last read from the store (`None`: no such id), and when.
struct Cached {
    found: Option<(TokenRecord, String)>,
    fetched: Instant,
}

/// Auditing of failed authentications, bounded so that a flood of bad requests cannot fill the
/// disk: at most `per_minute` records a minute per process; the next record says how many
/// were left out.
struct FailureAudit {
    writer: IngestWriter,
    limiter: DefaultDirectRateLimiter,
    suppressed: AtomicU64,
}

pub struct Authenticator {
    mode: AuthMode,
    db: Db,
    /// How long a verified token is trusted without reading the store again. Revocation takes
    /// effect at once on the process that revoked; on other processes within this time.
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
    /// Bumped by every [`Authenticator::forget`]: a lookup that started before a revocation
    /// must not cache what it read, or the revoked token would be trusted again.
    generation: AtomicU64,
    failures: Option<FailureAudit>,
}

/// Why a token was refused (recorded in the audit trail; the client is told nothing more than
/// "authentication required").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    Missing,
    Malformed,
    Unknown,
    WrongSecret,
    Revoked,
    Expired,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Unknown => "unknown",
            Refusal::WrongSecret => "wrong secret",
            Refusal::Revoked => "revoked",
            Refusal::Expired => "expired",
        }
    }
}

impl Authenticator {
    /// `failure_audit`: records per minute of failed authentications, or `None` not to record
    /// them.
    pub fn new(
        mode: AuthMode,
        db: Db,
        ttl: Duration,
        writer: IngestWriter,
        failure_audit: Option<u32>,
    ) -> Authenticator {
        let failures = failure_audit
            .and_then(NonZeroU32::new)
            .map(|n| FailureAudit {
                writer,
                limiter: RateLimiter::direct(Quota::per_minute(n)),
                suppressed: AtomicU64::new(0),
            });
        Authenticator {
            mode,
            db,
            ttl,
            cache: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            failures,
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The caller's identity, or a 401 (token mode) in the one error shape.
    pub async fn identify(
        &self,
        req: &HttpRequest,
        meta: &RequestMeta,
    ) -> Result<Identity, ApiError> {
        match self.mode {
            AuthMode::Headers => from_headers(req),
            AuthMode::Token => match self.check_token(req).await {
                Ok(identity) => Ok(identity),
                Err(Failure::Refused(refusal, token_id)) => {
                    self.record_failure(refusal, token_id, meta);
                    Err(ApiError::unauthenticated())
                }
                Err(Failure::Store(error)) => Err(error),
            },
        }
    }

    /// Forgets what is known of a token id at once (after it is created or revoked here).
    pub fn forget(&self, token_id: &str) {
        if let Ok(mut cache) = self.cache.lock() {
            self.generation.fetch_add(1, Ordering::SeqCst);
            cache.remove(token_id);
        }
    }

    async fn check_token(&self, req: &HttpRequest) -> Result<Identity, Failure> {
        let text = match presented_token(req) {
            Ok(Some(text)) => text,
            Ok(None) => return Err(Failure::Refused(Refusal::Missing, None)),
            Err(()) => return Err(Failure::Refused(Refusal::Malformed, None)),
        };
        let presented = token::parse(&text).ok_or(Failure::Refused(Refusal::Malformed, None))?;
        let id = presented.id.to_string();
        let found = match self.cached(&id) {
            Some(found) => found,
            None => {
                let generation = self.generation.load(Ordering::SeqCst);
                let lookup = id.clone();
                let found = self
                    .db
                    .run(move |conn| tokens::credentials(conn, &lookup))
                    .await
                    .map_err(Failure::Store)?;
                self.remember(&id, &found, generation);
                found
            }
        };
        // Unknown ids are cached too, so a flood of made-up tokens costs no database work.
        let Some((record, secret_hash)) = found else {
            return Err(Failure::Refused(Refusal::Unknown, Some(id)));
        };
        if !token::verify(presented.secret, &secret_hash) {
            return Err(Failure::Refused(Refusal::WrongSecret, Some(id)));
        }
        if record.revoked_at.is_some() {
            return Err(Failure::Refused(Refusal::Revoked, Some(id)));
        }
        if !record.is_active(time::now_micros()) {
            return Err(Failure::Refused(Refusal::Expired, Some(id)));
        }
        Ok(Identity {
            user_id: Some(record.user_id),
            project_id: Some(record.project_id),
            roles: record.roles,
            token: Some(TokenGrant {
                id,
                access: record.access,
                expires_at: record.expires_at,
            }),
        })
    }

    fn cached(&self, id: &str) -> Option<Option<(TokenRecord, String)>> {
        let cache = self.cache.lock().ok()?;
        let entry = cache.get(id)?;
        (entry.fetched.elapsed() < self.ttl).then(|| entry.found.clone())
    }

    /// Caches a lookup, unless a token was created or revoked here since it started.
    fn remember(&self, id: &str, found: &Option<(TokenRecord, String)>, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut cache) = self.cache.lock() {
            if self.generation.load(Ordering::SeqCst) != generation {
                return;
            }
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(
                id.to_string(),
                Cached {
                    found: found.clone(),
                    fetched: Instant::now(),
                },
            );
        }
    }

    /// Queues an `almanac.auth.failure` record, unless the rate limit says to count it instead.
    /// The response does not wait for it.
    fn record_failure(&self, refusal: Refusal, token_id: Option<String>, meta: &RequestMeta) {
        let Some(failures) = &self.failures else {
            return;
        };
        if failures.limiter.check().is_err() {
            failures.suppressed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let suppressed = failures.suppressed.swap(0, Ordering::Relaxed);
        let entry = AuditEntry {
            // The public id only: the secret is never recorded.
            target: token_id,
            ..meta.entry(audit::AUTH_FAILURE, Actor::default())
        }
        .detail("reason", TraitValue::String(refusal.as_str().into()))
        .detail(
            "suppressed_before",
            TraitValue::Integer(i64::try_from(suppressed).unwrap_or(i64::MAX)),
        );
        let event = entry.to_event(time::now_micros());
        let writer = failures.writer.clone();
        actix_web::rt::spawn(async move {
            if let Err(error) = writer.submit(vec![event], None, None).await {
                tracing::warn!(%error, "could not record an authentication failure");
            }
        });
    }
}

enum Failure {
    Refused(Refusal, Option<String>),
    Store(ApiError),
}
