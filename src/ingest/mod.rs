//! Decoding and validating an ingest batch (`POST /v2/events`, `almanac import`).
//!
//! A batch is validated whole before anything touches the store: the decoder either returns every
//! event ready to store, or every problem it found, by index. It is pure (no HTTP, no SQL).

mod decode;

pub use decode::decode_batch;

/// The wire format of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchFormat {
    /// A JSON array of event objects (`application/json`).
    JsonArray,
    /// One JSON event object per line (`application/x-ndjson`); blank lines are skipped.
    Ndjson,
}

/// Limits applied while decoding.
#[derive(Clone, Copy, Debug)]
pub struct IngestLimits {
    /// Most events in one batch; more is [`BatchError::TooManyEvents`] (a 413).
    pub max_batch_events: usize,
    /// Longest string trait value, in bytes.
    pub max_string_bytes: usize,
    /// Most traits on one event.
    pub max_traits_per_event: usize,
    /// Deepest nesting of arrays and objects accepted in `raw`.
    pub max_raw_depth: usize,
    /// Event types clients may not send (Almanac's own `almanac.` audit records), if any.
    pub reserved_type_prefix: Option<&'static str>,
}

/// One invalid event of a batch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EventProblem {
    /// Position in the batch (0-based; for NDJSON, the index among non-blank lines).
    pub index: usize,
    /// For NDJSON, the 1-based line of the body the event is on (blank lines count).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The event's `message_id`, when it had a readable one.
    pub message_id: Option<String>,
    /// What is wrong, naming the field or trait.
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body is not a JSON array (or a line is not JSON): nothing can be said per event.
    #[error("{0}")]
    Malformed(String),
    /// No events at all.
    #[error("The batch is empty: send at least one event.")]
    Empty,
    /// More events than allowed.
    #[error("The batch holds more than {max} events; split it into batches of at most {max}.")]
    TooManyEvents { max: usize },
    /// Some events are invalid; nothing of the batch may be stored.
    #[error("{}; nothing was stored", invalid_count(.0.len()))]
    Invalid(Vec<EventProblem>),
}

fn invalid_count(n: usize) -> String {
    match n {
        1 => "1 event of the batch is invalid".to_string(),
        n => format!("{n} events of the batch are invalid"),
    }
}
