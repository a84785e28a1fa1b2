//! The Panko v2 query language for `GET /v2/events`: `q` items (field, op, value, type) in three
//! encodings, plus `limit`, `sort` and `marker`. The parser is pure (no HTTP, no SQL): it turns
//! the raw query string and optional JSON body into a typed [`EventQuery`] or a precise 400 text.

mod parse;

pub use parse::{ensure_no_arguments, parse_event_query};

use crate::model::{Micros, TraitValue};

/// A comparison operator (`lt, le, eq, ne, ge, gt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Lt, Op::Le, Op::Eq, Op::Ne, Op::Ge, Op::Gt];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Ge => "ge",
            Op::Gt => "gt",
        }
    }

    pub fn from_api_name(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// A filter on a trait: the trait must exist with this name and type, and compare true.
#[derive(Clone, Debug, PartialEq)]
pub struct TraitFilter {
    pub name: String,
    pub op: Op,
    pub value: TraitValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    Generated,
    MessageId,
}

impl SortKey {
    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Generated => "generated",
            SortKey::MessageId => "message_id",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    Asc,
    Desc,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Asc => "asc",
            Direction::Desc => "desc",
        }
    }
}

/// A parsed `GET /v2/events` request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventQuery {
    /// `event_type eq X` (the last one given wins, as in Panko).
    pub event_type: Option<String>,
    /// `message_id eq X` (the last one given wins).
    pub message_id: Option<String>,
    /// `start_timestamp ge T`: generated >= T (inclusive).
    pub start: Option<Micros>,
    /// `end_timestamp le T`: generated <= T (inclusive).
    pub end: Option<Micros>,
    /// `all_tenants` was given with a true value by an admin-scoped caller.
    pub all_tenants: bool,
    /// Trait filters, ANDed, in the order given.
    pub traits: Vec<TraitFilter>,
    /// `None` means the configured default (absent, or `limit=0` as in Panko).
    pub limit: Option<u32>,
    /// Sort keys as given (duplicates of a key after its first use dropped); the store appends the
    /// `message_id` tiebreaker. Empty means the default `generated asc, message_id asc`.
    pub sort: Vec<(SortKey, Direction)>,
    /// A `message_id` from a previous page.
    pub marker: Option<String>,
}

/// What the parser needs to know about the caller and the configuration.
#[derive(Clone, Copy, Debug)]
pub struct ParseOptions {
    /// The caller is admin-scoped (the `segregation` rule passed): only then is the q field
    /// `all_tenants` special; for anyone else it is an ordinary trait filter, as in Panko.
    pub admin: bool,
    /// Largest accepted `limit`.
    pub max_limit: u32,
    /// Largest number of q items.
    pub max_q_items: usize,
    /// Largest byte length of a string value in a filter.
    pub max_value_bytes: usize,
}

/// A client error in the query; the text is the `faultstring` of a 400.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);
