//! Who is calling, and what they may see.
//!
//! [`Identity`] is what every handler works with; how it is learned is the `auth` mode. Only the
//! `headers` mode exists so far (Panko's noauth pipeline: trust `X-User-Id`, `X-Project-Id`,
//! `X-Roles`); a token mode slots in beside it as another [`AuthMode`] arm of [`authenticate`].

pub mod policy;
mod scope;

pub use policy::{Policy, Rule};
pub use scope::{event_scope, require_event_types_access, require_ingest, EventScope};

use actix_web::HttpRequest;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// How the server learns the caller's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Trust `X-User-Id`, `X-Project-Id` and `X-Roles`, as Panko behind Keystone's middleware.
    Headers,
}

/// The caller: Panko's request context.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    pub roles: Vec<String>,
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
}

/// Reads the caller's identity from the request, according to the mode.
pub fn authenticate(mode: AuthMode, req: &HttpRequest) -> Result<Identity, ApiError> {
    match mode {
        AuthMode::Headers => Ok(from_headers(req)),
    }
}

fn from_headers(req: &HttpRequest) -> Identity {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Identity {
        user_id: header("X-User-Id"),
        project_id: header("X-Project-Id"),
        // Split on ',' without trimming, exactly as Panko: "member, admin" is not admin.
        roles: header("X-Roles")
            .map(|r| r.split(',').map(str::to_string).collect())
            .unwrap_or_default(),
    }
}
