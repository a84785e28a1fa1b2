//! Which events a caller may see (Panko §2.4, with Almanac's admin-scope fix).

use serde::{Deserialize, Serialize};

use super::{policy, AuthMode, Identity, Need, Policy};
use crate::error::ApiError;

/// The set of events visible to a caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventScope {
    /// Every event (an admin with `all_tenants`).
    All,
    /// An admin without `all_tenants`: events of this project, plus events with no `project_id`
    /// string trait at all (Panko loses events without string traits here; Almanac does not).
    AdminProject(String),
    /// A member: events whose `project_id` string trait is the caller's project, and, unless
    /// the deployment scopes members by project alone, whose `user_id` is the caller's.
    Member {
        project_id: String,
        user_id: Option<String>,
    },
}

/// How non-admins are scoped (the `member_scope` setting).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberScope {
    /// Panko: the caller's project and user.
    #[default]
    ProjectAndUser,
    /// Every event of the caller's project.
    Project,
}

/// The scope for reading events (`events:index` / `events:show`), or the refusal.
///
/// Both identity parts are needed (Panko's `requires_context`), even for admins.
pub fn event_scope(
    policy: &Policy,
    member_scope: MemberScope,
    who: &Identity,
    rule: &str,
    all_tenants: bool,
) -> Result<EventScope, ApiError> {
    let (Some(user_id), Some(project_id)) = (&who.user_id, &who.project_id) else {
        return Err(ApiError::rbac());
    };
    who.require(Need::Read)?;
    if !policy.allows(rule, who) {
        return Err(ApiError::rbac());
    }
    if policy.is_admin(who) {
        if all_tenants {
            Ok(EventScope::All)
        } else {
            Ok(EventScope::AdminProject(project_id.clone()))
        }
    } else {
        Ok(EventScope::Member {
            project_id: project_id.clone(),
            user_id: match member_scope {
                MemberScope::ProjectAndUser => Some(user_id.clone()),
                MemberScope::Project => None,
            },
        })
    }
}

/// The event-type routes: `event_types:index` (admins by default), and admins only whatever that
/// rule says, as Panko's `requires_admin`: event types, trait names and trait values are read
/// across every tenant, so opening them to members would leak other tenants' values.
///
/// In `headers` mode this is Panko's `requires_admin`: only a caller that is fully identified
/// and not admin is refused, with a 401 and Panko's text; with no identity headers at all the
/// request passes (pankoclient sends none). In `token` mode every caller is authenticated, so
/// a caller the policy refuses gets the ordinary 403.
pub fn require_event_types_access(
    mode: AuthMode,
    policy: &Policy,
    who: &Identity,
) -> Result<(), ApiError> {
    who.require(Need::Read)?;
    let allowed = policy.allows(policy::EVENT_TYPES_INDEX, who) && policy.is_admin(who);
    match mode {
        AuthMode::Token if !allowed => Err(ApiError::rbac()),
        AuthMode::Token => Ok(()),
        AuthMode::Headers => match (&who.user_id, &who.project_id) {
            (Some(_), Some(project)) if !allowed => Err(ApiError::Unauthorized(format!(
                "Not Authorized to access project {project}"
            ))),
            _ => Ok(()),
        },
    }
}

/// Ingestion: an identified caller allowed by `events:create`, with a token that may ingest.
pub fn require_ingest(policy: &Policy, who: &Identity) -> Result<(), ApiError> {
    who.require(Need::Ingest)?;
    if who.has_context() && policy.allows(policy::EVENTS_CREATE, who) {
        Ok(())
    } else {
        Err(ApiError::rbac())
    }
}
