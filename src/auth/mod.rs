//! Who is calling, and what they may see.
//!
//! [`Identity`] is what every handler works with; how it is learned is the `auth` mode:
//! - `token` (the default): `Authorization: Bearer <token>` or `X-Auth-Token: <token>`, checked
//!   against the store's tokens ([`Authenticator`]); identity headers are ignored.
//! - `headers`: trust `X-User-Id`, `X-Project-Id`, `X-Roles`, as Panko's noauth pipeline does
//!   behind Keystone's middleware or a gateway that sets them.

mod authenticator;
pub mod policy;
mod scope;
pub mod token;

pub use authenticator::{Authenticator, RequestMeta};
pub use policy::{Policy, PolicyError, Rule};
pub use scope::{event_scope, require_event_types_access, require_ingest, EventScope, MemberScope};
pub use token::Access;

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::store::audit::Actor;

/// How the server learns the caller's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Bearer tokens issued by Almanac (`almanac token create`, `POST /v2/tokens`).
    Token,
    /// Trust `X-User-Id`, `X-Project-Id` and `X-Roles`, as Panko behind Keystone's middleware.
    Headers,
}

/// The token a caller presented, once verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenGrant {
    /// The token's public id.
    pub id: String,
    pub access: Access,
    /// When the token stops working, if it does.
    pub expires_at: Option<crate::model::Micros>,
}

/// What a request needs its token to allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Reading events, event types, token listings.
    Read,
    /// `POST /v2/events`.
    Ingest,
    /// Changing anything else (tokens).
    Manage,
}

/// The caller: Panko's request context, plus the token in token mode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
    pub token: Option<TokenGrant>,
}

impl Identity {
    /// Role names match case-insensitively (Panko: `ADMIN` is admin).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// Panko's `requires_context`: both the user and the project are known.
    pub fn has_context(&self) -> bool {
        self.user_id.is_some() && self.project_id.is_some()
    }

    /// A token's own restriction (read-only, ingest-only), checked before the policy: a
    /// restricted token cannot do more than it says, whatever its roles.
    pub fn require(&self, need: Need) -> Result<(), ApiError> {
        let Some(grant) = &self.token else {
            return Ok(());
        };
        match (grant.access, need) {
            (Access::Full, _) | (Access::Read, Need::Read) | (Access::Ingest, Need::Ingest) => {
                Ok(())
            }
            (Access::Read, _) => Err(ApiError::Forbidden(
                "This token is read-only; it cannot change anything".into(),
            )),
            (Access::Ingest, _) => Err(ApiError::Forbidden(
                "This token is ingest-only; it can only POST /v2/events".into(),
            )),
        }
    }

    /// The actor of an audit record.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id.clone(),
            project_id: self.project_id.clone(),
            token_id: self.token.as_ref().map(|t| t.id.clone()),
        }
    }
}

/// Longest identity header value accepted (as a token's user and project ids).
const MAX_IDENTITY_BYTES: usize = 255;

/// Panko's noauth identity: the headers, verbatim. Values longer than a token's ids could be are
/// refused: they would be stored as the actor of audit records.
fn from_headers(req: &HttpRequest) -> Result<Identity, ApiError> {
    for name in ["X-User-Id", "X-Project-Id", "X-Roles"] {
        if req
            .headers()
            .get(name)
            .is_some_and(|v| v.len() > MAX_IDENTITY_BYTES)
        {
            return Err(ApiError::bad_request(format!(
                "The {name} header is longer than {MAX_IDENTITY_BYTES} bytes"
            )));
        }
    }
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(Identity {
        user_id: header("X-User-Id"),
        project_id: header("X-Project-Id"),
        // Split on ',' without trimming, exactly as Panko: "member, admin" is not admin.
        roles: header("X-Roles")
            .map(|r| r.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
        token: None,
    })
}

/// The token a request presents: `Authorization: Bearer …` (scheme case-insensitive, RFC 6750)
/// or `X-Auth-Token` (what Keystone clients such as pankoclient send). `Err` when a header is
/// there but unusable.
fn presented_token(req: &HttpRequest) -> Result<Option<String>, ()> {
    if let Some(value) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| ())?;
        let (scheme, token) = text.trim().split_once(' ').ok_or(())?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(());
        }
        return Ok(Some(token.trim().to_string()));
    }
    if let Some(value) = req.headers().get("X-Auth-Token") {
        let text = value.to_str().map_err(|_| ())?;
        return Ok(Some(text.trim().to_string()));
    }
    Ok(None)
}
