//! Which events a caller may see (Panko §2.4, with Almanac's admin-scope fix).

use super::{policy, Identity, Policy};
use crate::error::ApiError;

/// The set of events visible to a caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventScope {
    /// Every event (an admin with `all_tenants`).
    All,
    /// An admin without `all_tenants`: events of this project, plus events with no `project_id`
    /// string trait at all (Panko loses events without string traits here; Almanac does not).
    AdminProject(String),
    /// A member: events whose `project_id` and `user_id` string traits are the caller's.
    Member { project_id: String, user_id: String },
}

/// The scope for reading events (`events:index` / `events:show`), or the refusal.
///
/// Both identity parts are needed (Panko's `requires_context`), even for admins.
pub fn event_scope(
    policy: &Policy,
    who: &Identity,
    rule: &str,
    all_tenants: bool,
) -> Result<EventScope, ApiError> {
    let (Some(user_id), Some(project_id)) = (&who.user_id, &who.project_id) else {
        return Err(ApiError::rbac());
    };
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
            user_id: user_id.clone(),
        })
    }
}

/// Panko's `requires_admin` for the event-type routes: only a caller that is fully identified
/// and not admin is refused, with a 401 and Panko's text. (With no identity headers at all the
/// request passes, as in Panko's noauth pipeline: pankoclient sends none.)
pub fn require_event_types_access(policy: &Policy, who: &Identity) -> Result<(), ApiError> {
    match (&who.user_id, &who.project_id) {
        (Some(_), Some(project)) if !policy.allows(policy::EVENT_TYPES_INDEX, who) => Err(
            ApiError::Unauthorized(format!("Not Authorized to access project {project}")),
        ),
        _ => Ok(()),
    }
}

/// Ingestion: an identified caller allowed by `events:create`.
pub fn require_ingest(policy: &Policy, who: &Identity) -> Result<(), ApiError> {
    if who.has_context() && policy.allows(policy::EVENTS_CREATE, who) {
        Ok(())
    } else {
        Err(ApiError::rbac())
    }
}
