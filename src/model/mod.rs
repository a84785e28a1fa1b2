//! The domain model shared by every layer: events, traits and their typed values.
//!
//! Instants are kept as microseconds since the Unix epoch (UTC) everywhere below the HTTP layer.
//! Both backends store them as BIGINT, so ordering, equality and markers behave identically on
//! SQLite and PostgreSQL, and nothing depends on a database's timestamp type or time zone.

pub mod float;
pub mod time;

use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;

/// Microseconds since 1970-01-01T00:00:00 UTC.
pub type Micros = i64;

/// A trait's type. The numeric codes are Panko's storage dtypes (1..4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraitType {
    String = 1,
    Integer = 2,
    Float = 3,
    Datetime = 4,
}

impl TraitType {
    pub const ALL: [TraitType; 4] = [
        TraitType::String,
        TraitType::Integer,
        TraitType::Float,
        TraitType::Datetime,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TraitType::String => "string",
            TraitType::Integer => "integer",
            TraitType::Float => "float",
            TraitType::Datetime => "datetime",
        }
    }

    /// The API name (`string`, `integer`, `float`, `datetime`); nothing else is accepted.
    pub fn from_api_name(name: &str) -> Option<TraitType> {
        TraitType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<TraitType> {
        TraitType::ALL.into_iter().find(|t| t.code() == code)
    }
}

/// A typed trait value. Floats are always finite; datetimes are UTC microseconds.
#[derive(Clone, Debug, PartialEq)]
pub enum TraitValue {
    String(String),
    Integer(i64),
    Float(f64),
    Datetime(Micros),
}

impl TraitValue {
    pub fn trait_type(&self) -> TraitType {
        match self {
            TraitValue::String(_) => TraitType::String,
            TraitValue::Integer(_) => TraitType::Integer,
            TraitValue::Float(_) => TraitType::Float,
            TraitValue::Datetime(_) => TraitType::Datetime,
        }
    }

    /// The value as Panko renders it: always a string (`str(int)`, Python `repr(float)`, ISO time).
    pub fn render(&self) -> String {
        match self {
            TraitValue::String(s) => s.clone(),
            TraitValue::Integer(i) => i.to_string(),
            TraitValue::Float(f) => float::python_repr(*f),
            TraitValue::Datetime(m) => time::format_instant(*m),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Trait {
    pub name: String,
    pub value: TraitValue,
}

/// A validated event ready to be stored (produced by `ingest`).
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub message_id: String,
    pub event_type: String,
    pub generated: Micros,
    /// Unique by (name, type), in the order received.
    pub traits: Vec<Trait>,
    /// The payload exactly as received (compact JSON text); `{}` when absent.
    pub raw: Box<RawValue>,
}

impl NewEvent {
    /// The string trait with this name, used for the tenancy columns `project_id` and `user_id`.
    pub fn string_trait(&self, name: &str) -> Option<&str> {
        self.traits.iter().find_map(|t| match &t.value {
            TraitValue::String(s) if t.name == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Stored events as read back: a page of `GET /v2/events`, or the one event of a show.
///
/// Names (event types and trait names) are held once per page and referred to by index, so that
/// a page of a hundred events with a thousand traits holds a few dozen name strings rather than a
/// thousand copies.
#[derive(Clone, Debug, Default)]
pub struct EventPage {
    pub names: Vec<Arc<str>>,
    pub events: Vec<PageEvent>,
}

/// An event of an [`EventPage`].
#[derive(Clone, Debug)]
pub struct PageEvent {
    pub message_id: String,
    /// Index of the event type in the page's `names`.
    pub event_type: u32,
    pub generated: Micros,
    /// (index of the name in the page's `names`, value), sorted by name, then type (Panko's SQL
    /// backend orders traits by name).
    pub traits: Vec<(u32, TraitValue)>,
    /// The payload as stored: JSON text that ingest or import validated and minified.
    pub raw: String,
}

impl EventPage {
    /// The name at this index of `names`.
    pub fn name(&self, index: u32) -> &str {
        &self.names[index as usize]
    }
}

/// The string traits that carry tenancy. The store keeps them as indexed columns of the event.
pub const TENANCY_TRAITS: [&str; 2] = ["project_id", "user_id"];

/// Whether a trait with this name and type is a tenancy trait (stored as an event column).
pub fn is_tenancy_trait(name: &str, trait_type: TraitType) -> bool {
    trait_type == TraitType::String && TENANCY_TRAITS.contains(&name)
}
