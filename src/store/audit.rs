//! Almanac's audit trail of its own actions, kept as ordinary events in its own store (Datasette's
//! events, ckanext-event-audit's API tracker), so they are queried like any other event.
//!
//! Event types live under the reserved prefix `almanac.`, which clients cannot ingest. Every
//! record carries the actor (`user_id`, `project_id` and `token_id` traits, when known), the
//! `target`, the `request_id` and the `remote_addr`, plus details per action. An action's record
//! is written in the same transaction as the action itself: no token exists without its
//! `almanac.token.create`, and a rolled-back action leaves no record. Secrets never appear.

use serde_json::{json, Map, Value};

use super::ingest::{insert_in_transaction, IngestOutcome};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::model::{time, Micros, NewEvent, Trait, TraitValue};

/// Event types starting with this are Almanac's own.
pub const RESERVED_PREFIX: &str = "almanac.";

pub const TOKEN_CREATE: &str = "almanac.token.create";
pub const TOKEN_REVOKE: &str = "almanac.token.revoke";
pub const AUTH_FAILURE: &str = "almanac.auth.failure";
pub const EVENTS_INGEST: &str = "almanac.events.ingest";

/// Every audit event type, for documentation and settings checks.
pub const ACTIONS: &[&str] = &[TOKEN_CREATE, TOKEN_REVOKE, AUTH_FAILURE, EVENTS_INGEST];

/// Who did it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actor {
    pub user_id: Option<String>,
    pub project_id: Option<String>,
    /// The public id of the token used, in token mode.
    pub token_id: Option<String>,
}

/// One record, before it becomes an event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// The event type, one of [`ACTIONS`].
    pub action: &'static str,
    pub actor: Actor,
    /// What the action was on (a token id, …), when anything.
    pub target: Option<String>,
    pub request_id: Option<String>,
    pub remote_addr: Option<String>,
    /// Action-specific traits.
    pub details: Vec<Trait>,
}

impl AuditEntry {
    pub fn new(action: &'static str, actor: Actor) -> AuditEntry {
        AuditEntry {
            action,
            actor,
            target: None,
            request_id: None,
            remote_addr: None,
            details: Vec::new(),
        }
    }

    pub fn detail(mut self, name: &str, value: TraitValue) -> AuditEntry {
        self.details.push(Trait {
            name: name.to_string(),
            value,
        });
        self
    }

    /// The event: the fields as traits (queryable), and the same as a JSON object in `raw`.
    pub fn to_event(&self, now: Micros) -> NewEvent {
        let mut traits = Vec::new();
        let mut push = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                traits.push(Trait {
                    name: name.to_string(),
                    value: TraitValue::String(v.clone()),
                });
            }
        };
        push("user_id", &self.actor.user_id);
        push("project_id", &self.actor.project_id);
        push("token_id", &self.actor.token_id);
        push("target", &self.target);
        push("request_id", &self.request_id);
        push("remote_addr", &self.remote_addr);
        traits.extend(self.details.iter().cloned());

        let details: Map<String, Value> = self
            .details
            .iter()
            .map(|t| {
                let v = match &t.value {
                    TraitValue::String(s) => json!(s),
                    TraitValue::Integer(i) => json!(i),
                    TraitValue::Float(f) => json!(f),
                    TraitValue::Datetime(m) => json!(time::format_instant(*m)),
                };
                (t.name.clone(), v)
            })
            .collect();
        let raw = json!({
            "action": self.action,
            "actor": {
                "user_id": self.actor.user_id,
                "project_id": self.actor.project_id,
                "token_id": self.actor.token_id,
            },
            "target": self.target,
            "request_id": self.request_id,
            "remote_addr": self.remote_addr,
            "details": details,
        });
        NewEvent {
            message_id: uuid::Uuid::new_v4().to_string(),
            event_type: self.action.to_string(),
            generated: now,
            traits,
            raw: serde_json::value::to_raw_value(&raw).expect("JSON values serialize"),
        }
    }
}

/// An ingest record completed with what happened to the batch.
pub fn with_outcome(entry: &AuditEntry, outcome: &IngestOutcome) -> AuditEntry {
    let count = |n: usize| TraitValue::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    entry
        .clone()
        .detail("received", count(outcome.received))
        .detail("stored", count(outcome.stored))
        .detail("duplicates", count(outcome.duplicates.len()))
}

/// Stores records inside the caller's transaction.
pub fn record(conn: &mut AnyConnection, entries: &[AuditEntry]) -> Result<(), ApiError> {
    if entries.is_empty() {
        return Ok(());
    }
    let now = time::now_micros();
    let events: Vec<NewEvent> = entries.iter().map(|e| e.to_event(now)).collect();
    insert_in_transaction(conn, &events)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_carries_actor_target_and_details() {
        let entry = AuditEntry {
            target: Some("0123456789abcdef".into()),
            request_id: Some("req-1".into()),
            remote_addr: Some("127.0.0.1".into()),
            ..AuditEntry::new(
                TOKEN_CREATE,
                Actor {
                    user_id: Some("alice".into()),
                    project_id: Some("ops".into()),
                    token_id: None,
                },
            )
        }
        .detail("access", TraitValue::String("read".into()))
        .detail("count", TraitValue::Integer(3));
        let event = entry.to_event(1_000_000);
        assert_eq!(event.event_type, "almanac.token.create");
        assert_eq!(event.string_trait("user_id"), Some("alice"));
        assert_eq!(event.string_trait("target"), Some("0123456789abcdef"));
        assert_eq!(event.string_trait("token_id"), None);
        let raw: Value = serde_json::from_str(event.raw.get()).unwrap();
        assert_eq!(raw["details"]["count"], 3);
        assert_eq!(raw["actor"]["project_id"], "ops");
        assert!(ACTIONS.iter().all(|a| a.starts_with(RESERVED_PREFIX)));
    }
}
