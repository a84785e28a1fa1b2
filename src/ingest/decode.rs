//! The batch decoder: bytes in, validated [`NewEvent`]s or every problem out.
//!
//! The body is parsed once into borrowed [`RawValue`]s (which checks the JSON syntax of the whole
//! batch), and each event, trait and value is then read from those slices on demand. Nothing goes
//! through `serde_json::Value`: that keeps `raw` exactly as the client wrote it (key order, number
//! spelling) and avoids building a tree per event only to take it apart again.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::{self, Write as _};

use serde::de::{self, Deserialize, Deserializer as _, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{BatchError, BatchFormat, EventProblem, IngestLimits};
use crate::model::time::parse_instant;
use crate::model::{Micros, NewEvent, Trait, TraitType, TraitValue};

const NOT_AN_ARRAY: &str =
    "The body must be a JSON array of events, or NDJSON with Content-Type: application/x-ndjson";

/// Longest `message_id`, `event_type` and trait name, in bytes.
const MAX_NAME_BYTES: usize = 255;

const EVENT_KEYS: &str = "message_id, event_type, generated, traits and raw";

const TIME_FORMS: &str = "expected ISO 8601 such as 2014-01-01, 2014-01-01T05:00:00, \
     2014-01-01T05:00:00.123456Z or 2014-01-01T07:00:00+02:00, within years 1 to 9999 UTC";

/// How much of a client's text a problem quotes back; a reason must stay readable when the
/// offending value is a megabyte long.
const ECHO_CHARS: usize = 64;

/// Above this many traits, duplicate (name, type) pairs are found with a hash map instead of by
/// comparing every pair, which is faster for the few traits events usually carry.
const PAIRWISE_DUPLICATE_LIMIT: usize = 32;

/// Decodes and validates a whole batch.
///
/// Returns every event ready to store, or, if any event is invalid, one [`EventProblem`] per
/// invalid event (all of its problems joined with `"; "`) and nothing else. `now` is the
/// `generated` time of events that carry none.
pub fn decode_batch(
    body: &[u8],
    format: BatchFormat,
    limits: &IngestLimits,
    now: Micros,
) -> Result<Vec<NewEvent>, BatchError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BatchError::Malformed(format!("The body is not valid UTF-8: {e}")))?;
    let entries = match format {
        BatchFormat::JsonArray => array_entries(text, limits.max_batch_events)?,
        BatchFormat::Ndjson => ndjson_entries(text, limits.max_batch_events)?,
    };

    let decoder = EventDecoder { limits, now };
    let mut events = Vec::with_capacity(entries.len());
    let mut problems = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let line = entry.line();
        match entry.parse().and_then(|raw| decoder.event(raw)) {
            // Once the batch is known to fail, good events are no longer kept.
            Ok(event) if problems.is_empty() => events.push(event),
            Ok(_) => {}
            Err(rejected) => problems.push(EventProblem {
                index,
                line,
                message_id: rejected.message_id,
                reason: rejected.reason,
            }),
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(BatchError::Invalid(problems))
    }
}

/// One event of the batch before decoding.
enum Entry<'a> {
    /// An element of a JSON array body (already known to be valid JSON).
    Value(&'a RawValue),
    /// A non-blank NDJSON line, not yet parsed; `number` is its 1-based line in the body.
    Line { text: &'a str, number: usize },
}

impl<'a> Entry<'a> {
    /// The 1-based line of the body an NDJSON event is on.
    fn line(&self) -> Option<usize> {
        match self {
            Entry::Value(_) => None,
            Entry::Line { number, .. } => Some(*number),
        }
    }

    /// The event's JSON; an NDJSON line that is not JSON is that event's problem, not the batch's.
    fn parse(self) -> Result<&'a RawValue, Rejected> {
        match self {
            Entry::Value(raw) => Ok(raw),
            Entry::Line { text, .. } => serde_json::from_str(text).map_err(|e| Rejected {
                message_id: None,
                reason: format!(
                    "not valid JSON (column {}): {}",
                    e.column(),
                    message_without_position(&e)
                ),
            }),
        }
    }
}

/// The elements of a JSON array body, after the empty and too-large checks.
fn array_entries(text: &str, max_events: usize) -> Result<Vec<Entry<'_>>, BatchError> {
    if is_blank(text) {
        return Err(BatchError::Malformed(NOT_AN_ARRAY.to_owned()));
    }
    let mut entries = Vec::new();
    let mut count = 0usize;
    // Past the limit the elements are still scanned (to report a syntax error as such) but not
    // kept, so a huge body costs no memory before it is refused.
    for_each_element(text, |raw| {
        count += 1;
        if count <= max_events {
            entries.push(Entry::Value(raw));
        }
    })
    .map_err(|e| match e.classify() {
        serde_json::error::Category::Data => BatchError::Malformed(NOT_AN_ARRAY.to_owned()),
        _ => BatchError::Malformed(format!("The body is not valid JSON: {e}")),
    })?;
    check_count(count, max_events)?;
    Ok(entries)
}

/// The non-blank lines of an NDJSON body, counted (and refused if too many) before any is parsed.
fn ndjson_entries(text: &str, max_events: usize) -> Result<Vec<Entry<'_>>, BatchError> {
    let mut entries = Vec::new();
    let mut count = 0usize;
    for (line_index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if is_blank(line) {
            continue;
        }
        count += 1;
        if count > max_events {
            break;
        }
        entries.push(Entry::Line {
            text: line,
            number: line_index + 1,
        });
    }
    check_count(count, max_events)?;
    Ok(entries)
}

fn check_count(count: usize, max_events: usize) -> Result<(), BatchError> {
    if count == 0 {
        Err(BatchError::Empty)
    } else if count > max_events {
        Err(BatchError::TooManyEvents { max: max_events })
    } else {
        Ok(())
    }
}

/// Only JSON's insignificant whitespace.
fn is_blank(text: &str) -> bool {
    text.bytes()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// serde_json's message without its " at line L column C" suffix, for callers that say where.
fn message_without_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => full,
    }
}

/// An invalid event: its readable `message_id`, if any, and every problem found.
struct Rejected {
    message_id: Option<String>,
    reason: String,
}

/// The problems of one event, joined with `"; "` as they are found.
#[derive(Default)]
struct Problems {
    text: String,
}

impl Problems {
    fn add(&mut self, problem: fmt::Arguments<'_>) {
        if !self.text.is_empty() {
            self.text.push_str("; ");
        }
        // Writing to a String cannot fail.
        let _ = self.text.write_fmt(problem);
    }

    fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// A point to [`Problems::rollback`] to.
    fn mark(&self) -> usize {
        self.text.len()
    }

    /// Forgets the problems added since `mark`.
    fn rollback(&mut self, mark: usize) {
        self.text.truncate(mark);
    }
}

/// The keys of an event object, each value still raw JSON.
#[derive(Default)]
struct EventFields<'a> {
    message_id: Option<&'a RawValue>,
    event_type: Option<&'a RawValue>,
    generated: Option<&'a RawValue>,
    traits: Option<&'a RawValue>,
    raw: Option<&'a RawValue>,
}

/// A trait's parts, from either wire form.
struct TraitParts<'a> {
    name: Option<&'a RawValue>,
    /// Absent or null means "infer from the value" (object form only).
    type_spec: Option<&'a RawValue>,
    value: Option<&'a RawValue>,
    form: TraitForm,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TraitForm {
    /// `{"name": ..., "type": ..., "value": ...}`
    Object,
    /// Ceilometer's serialized `[name, dtype, value]`.
    Array,
}

struct EventDecoder<'l> {
    limits: &'l IngestLimits,
    now: Micros,
}

impl EventDecoder<'_> {
    fn event(&self, raw: &RawValue) -> Result<NewEvent, Rejected> {
        let kind = Kind::of(raw);
        if kind != Kind::Object {
            return Err(Rejected {
                message_id: None,
                reason: format!("an event must be a JSON object, not {}", kind.described()),
            });
        }
        let mut problems = Problems::default();
        let fields = event_fields(raw, &mut problems);
        let message_id = optional_name("message_id", fields.message_id, &mut problems);
        let event_type = required_name("event_type", fields.event_type, &mut problems);
        if let (Some(t), Some(prefix)) = (&event_type, self.limits.reserved_type_prefix) {
            if t.starts_with(prefix) {
                problems.add(format_args!(
                    "event_type {t:?} is reserved: types starting with {prefix:?} are Almanac's \
                     own audit records"
                ));
            }
        }
        let generated = self.generated(fields.generated, &mut problems);
        let traits = self.traits(fields.traits, &mut problems);
        let raw = raw_payload(fields.raw, self.limits.max_raw_depth, &mut problems);

        match (event_type, raw) {
            (Some(event_type), Some(raw)) if problems.is_empty() => Ok(NewEvent {
                message_id: message_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
                event_type,
                generated,
                traits,
                raw,
            }),
            _ => Err(Rejected {
                message_id,
                reason: problems.text,
            }),
        }
    }

    /// `generated`, or `now` when absent or null. The value returned with a problem is unused.
    fn generated(&self, slot: Option<&RawValue>, problems: &mut Problems) -> Micros {
        let Some(raw) = present(slot) else {
            return self.now;
        };
        match datetime_value(raw) {
            Ok(instant) => instant,
            Err(why) => {
                problems.add(format_args!("generated: {why}"));
                self.now
            }
        }
    }

    /// The traits in the order received; invalid ones are left out and reported.
    fn traits(&self, slot: Option<&RawValue>, problems: &mut Problems) -> Vec<Trait> {
        let Some(raw) = present(slot) else {
            return Vec::new();
        };
        let kind = Kind::of(raw);
        if kind != Kind::Array {
            problems.add(format_args!(
                "traits must be an array, not {}",
                kind.described()
            ));
            return Vec::new();
        }
        let max = self.limits.max_traits_per_event;
        let mark = problems.mark();
        let mut traits = Vec::new();
        let mut count = 0usize;
        let walked = for_each_element(raw.get(), |item| {
            count += 1;
            if count <= max {
                if let Some(decoded) = self.trait_item(count - 1, item, problems) {
                    traits.push(decoded);
                }
            }
        });
        if let Err(e) = walked {
            problems.add(format_args!("traits is not a valid JSON array: {e}"));
        }
        if count > max {
            // The count says all there is to say; the first traits' own problems would be noise.
            problems.rollback(mark);
            problems.add(format_args!(
                "{count} traits exceed the limit of {max} per event"
            ));
            return traits;
        }
        report_duplicates(&traits, problems);
        traits
    }

    /// One trait (at `index` in the event's `traits`), or `None` after reporting its problems.
    ///
    /// Every part is checked even after one fails, so the client sees all of a trait's problems;
    /// the label grows as the name and type become known.
    fn trait_item(&self, index: usize, item: &RawValue, problems: &mut Problems) -> Option<Trait> {
        let parts = trait_parts(index, item, problems)?;
        let mut label = TraitLabel {
            index,
            name: None,
            trait_type: None,
        };
        let name = trait_name(parts.name, &label, problems);
        label.name = name.as_deref();
        let declared = declared_type(&parts, &label, problems);
        label.trait_type = declared.ok().flatten();

        let Some(value) = parts.value else {
            problems.add(format_args!("{label}: value is required"));
            return None;
        };
        let trait_type = match declared {
            Ok(Some(declared)) => declared,
            Ok(None) => infer_type(value)
                .map_err(|why| problems.add(format_args!("{label}: {why}")))
                .ok()?,
            Err(()) => return None,
        };
        label.trait_type = Some(trait_type);
        let value = self
            .trait_value(value, trait_type)
            .map_err(|why| problems.add(format_args!("{label}: {why}")))
            .ok()?;
        Some(Trait { name: name?, value })
    }

    /// Converts a JSON value to a value of `trait_type`, or says why it cannot be one.
    fn trait_value(&self, raw: &RawValue, trait_type: TraitType) -> Result<TraitValue, String> {
        match trait_type {
            TraitType::String => {
                string_value(raw, self.limits.max_string_bytes).map(TraitValue::String)
            }
            TraitType::Integer => integer_value(raw).map(TraitValue::Integer),
            TraitType::Float => float_value(raw).map(TraitValue::Float),
            TraitType::Datetime => datetime_value(raw).map(TraitValue::Datetime),
        }
    }
}

/// Reads the event object's keys, reporting unknown and repeated ones.
fn event_fields<'a>(raw: &'a RawValue, problems: &mut Problems) -> EventFields<'a> {
    let mut fields = EventFields::default();
    let walked = for_each_member(raw.get(), |key, value| {
        let slot = match key {
            "message_id" => &mut fields.message_id,
            "event_type" => &mut fields.event_type,
            "generated" => &mut fields.generated,
            "traits" => &mut fields.traits,
            "raw" => &mut fields.raw,
            _ => {
                problems.add(format_args!(
                    "unknown key '{}'; an event has only {EVENT_KEYS}",
                    Echo(key)
                ));
                return;
            }
        };
        if slot.replace(value).is_some() {
            problems.add(format_args!("key '{key}' appears more than once"));
        }
    });
    if let Err(e) = walked {
        problems.add(format_args!("not a valid JSON object: {e}"));
    }
    fields
}

/// A trait's parts from either wire form; `None` after reporting why there are none.
fn trait_parts<'a>(
    index: usize,
    item: &'a RawValue,
    problems: &mut Problems,
) -> Option<TraitParts<'a>> {
    match Kind::of(item) {
        Kind::Object => object_trait_parts(index, item, problems),
        Kind::Array => array_trait_parts(index, item, problems),
        kind => {
            problems.add(format_args!(
                "trait #{index} must be an object {{\"name\", \"type\", \"value\"}} \
                 or an array [name, dtype, value], not {}",
                kind.described()
            ));
            None
        }
    }
}

/// The trait's name, or `None` after reporting a missing or invalid one.
fn trait_name(
    slot: Option<&RawValue>,
    label: &TraitLabel<'_>,
    problems: &mut Problems,
) -> Option<String> {
    let Some(raw) = present(slot) else {
        problems.add(format_args!("{label}: name is required"));
        return None;
    };
    name_text(raw)
        .map_err(|why| problems.add(format_args!("{label}: name {why}")))
        .ok()
}

/// The type the trait states: `Ok(None)` when the object form leaves it to inference, `Err`
/// after reporting an invalid or missing one.
fn declared_type(
    parts: &TraitParts<'_>,
    label: &TraitLabel<'_>,
    problems: &mut Problems,
) -> Result<Option<TraitType>, ()> {
    match (present(parts.type_spec), parts.form) {
        (Some(raw), form) => trait_type(raw, form)
            .map(Some)
            .map_err(|why| problems.add(format_args!("{label}: {why}"))),
        // Inference is for the object form; Ceilometer's form always states its dtype.
        (None, TraitForm::Array) => {
            problems.add(format_args!("{label}: dtype is required"));
            Err(())
        }
        (None, TraitForm::Object) => Ok(None),
    }
}

/// The parts of `{"name": ..., "type": ..., "value": ...}`; `None` after reporting a bad key.
fn object_trait_parts<'a>(
    index: usize,
    item: &'a RawValue,
    problems: &mut Problems,
) -> Option<TraitParts<'a>> {
    let mut parts = TraitParts {
        name: None,
        type_spec: None,
        value: None,
        form: TraitForm::Object,
    };
    let mut valid = true;
    let walked = for_each_member(item.get(), |key, value| {
        let slot = match key {
            "name" => &mut parts.name,
            "type" => &mut parts.type_spec,
            "value" => &mut parts.value,
            _ => {
                problems.add(format_args!(
                    "trait #{index}: unknown key '{}'; a trait has only name, type and value",
                    Echo(key)
                ));
                valid = false;
                return;
            }
        };
        if slot.replace(value).is_some() {
            problems.add(format_args!(
                "trait #{index}: key '{key}' appears more than once"
            ));
            valid = false;
        }
    });
    if let Err(e) = walked {
        problems.add(format_args!(
            "trait #{index} is not a valid JSON object: {e}"
        ));
        valid = false;
    }
    valid.then_some(parts)
}

/// The parts of Ceilometer's `[name, dtype, value]`; `None` after reporting a wrong length.
fn array_trait_parts<'a>(
    index: usize,
    item: &'a RawValue,
    problems: &mut Problems,
) -> Option<TraitParts<'a>> {
    let mut elements: [Option<&'a RawValue>; 3] = [None; 3];
    let mut count = 0usize;
    let walked = for_each_element(item.get(), |element| {
        if let Some(slot) = elements.get_mut(count) {
            *slot = Some(element);
        }
        count += 1;
    });
    if let Err(e) = walked {
        problems.add(format_args!(
            "trait #{index} is not a valid JSON array: {e}"
        ));
        return None;
    }
    if count != 3 {
        problems.add(format_args!(
            "trait #{index}: an array trait must be [name, dtype, value], not {count} elements"
        ));
        return None;
    }
    let [name, type_spec, value] = elements;
    Some(TraitParts {
        name,
        type_spec,
        value,
        form: TraitForm::Array,
    })
}

/// Reports each (name, type) that occurs more than once, at its second occurrence.
fn report_duplicates(traits: &[Trait], problems: &mut Problems) {
    let mut report = |t: &Trait| {
        problems.add(format_args!(
            "trait '{}' ({}) appears more than once; a name may repeat only with another type",
            t.name,
            t.value.trait_type().as_str()
        ));
    };
    if traits.len() <= PAIRWISE_DUPLICATE_LIMIT {
        for (i, current) in traits.iter().enumerate() {
            let earlier = traits[..i]
                .iter()
                .filter(|t| trait_key(t) == trait_key(current))
                .count();
            if earlier == 1 {
                report(current);
            }
        }
    } else {
        let mut seen: HashMap<(&str, TraitType), usize> = HashMap::with_capacity(traits.len());
        for current in traits {
            let occurrences = seen.entry(trait_key(current)).or_insert(0);
            *occurrences += 1;
            if *occurrences == 2 {
                report(current);
            }
        }
    }
}

/// What must be unique among an event's traits.
fn trait_key(t: &Trait) -> (&str, TraitType) {
    (t.name.as_str(), t.value.trait_type())
}

/// `raw` minified, `{}` when absent (a present `null` stays `null`).
fn raw_payload(
    slot: Option<&RawValue>,
    max_depth: usize,
    problems: &mut Problems,
) -> Option<Box<RawValue>> {
    let text = slot.map_or_else(|| "{}".to_owned(), |raw| minify(raw.get()));
    // Stored as text, `raw` is never parsed here beyond validation, which does not limit depth;
    // whoever reads it later may parse it recursively, so its nesting is bounded at the door.
    let depth = nesting_depth(&text);
    if depth > max_depth {
        problems.add(format_args!(
            "raw nests {depth} levels deep; at most {max_depth} are accepted"
        ));
        return None;
    }
    RawValue::from_string(text)
        .map_err(|e| problems.add(format_args!("raw is not valid JSON: {e}")))
        .ok()
}

/// The bytes of valid JSON that stand outside strings (quotes included in the string), with
/// their positions: what `minify` and `nesting_depth` look at.
fn outside_strings(json: &str) -> impl Iterator<Item = (usize, u8)> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    json.bytes().enumerate().filter(move |&(_, byte)| {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            false
        } else if byte == b'"' {
            in_string = true;
            false
        } else {
            true
        }
    })
}

/// Removes the whitespace between the tokens of valid JSON, keeping everything else byte for
/// byte (key order, number spelling, string escapes).
fn minify(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut run_start = 0;
    for (i, byte) in outside_strings(json) {
        if matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            // `i` is an ASCII byte, so both ends of the run are char boundaries.
            out.push_str(&json[run_start..i]);
            run_start = i + 1;
        }
    }
    out.push_str(&json[run_start..]);
    out
}

/// How deeply arrays and objects nest in valid JSON (0 for a scalar).
fn nesting_depth(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for (_, byte) in outside_strings(json) {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// A present value, treating JSON `null` as absent.
fn present(slot: Option<&RawValue>) -> Option<&RawValue> {
    slot.filter(|raw| Kind::of(raw) != Kind::Null)
}

/// An optional `message_id`-like field: `None` when absent or null, or after reporting a problem.
fn optional_name(field: &str, slot: Option<&RawValue>, problems: &mut Problems) -> Option<String> {
    let raw = present(slot)?;
    name_text(raw)
        .map_err(|why| problems.add(format_args!("{field} {why}")))
        .ok()
}

/// A required `event_type`-like field.
fn required_name(field: &str, slot: Option<&RawValue>, problems: &mut Problems) -> Option<String> {
    if present(slot).is_none() {
        problems.add(format_args!(
            "{field} is required (a string of 1 to {MAX_NAME_BYTES} bytes)"
        ));
        return None;
    }
    optional_name(field, slot, problems)
}

/// A name-like string: 1..=255 bytes, no NUL. The error completes "<field> ...".
fn name_text(raw: &RawValue) -> Result<String, String> {
    let kind = Kind::of(raw);
    if kind != Kind::String {
        return Err(format!("must be a string, not {}", kind.described()));
    }
    let text = decode_string(raw).map_err(|why| format!("is invalid: {why}"))?;
    if text.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if text.len() > MAX_NAME_BYTES {
        return Err(format!(
            "is {} bytes long; the limit is {MAX_NAME_BYTES}",
            text.len()
        ));
    }
    if text.contains('\0') {
        return Err("must not contain NUL characters".to_owned());
    }
    Ok(text.into_owned())
}

/// A trait type: one of the API names, or (array form) a Ceilometer dtype 0..=4.
fn trait_type(raw: &RawValue, form: TraitForm) -> Result<TraitType, String> {
    let expected = match form {
        TraitForm::Object => "type must be string, integer, float or datetime",
        TraitForm::Array => "dtype must be 0 to 4 or one of string, integer, float, datetime",
    };
    match Kind::of(raw) {
        Kind::String => {
            let name = decode_string(raw)?;
            TraitType::from_api_name(&name)
                .ok_or_else(|| format!("{expected}, not '{}'", Echo(&name)))
        }
        Kind::Number if form == TraitForm::Array => match raw.get() {
            // dtype 0 ("none") is stored and read back as text.
            "0" | "1" => Ok(TraitType::String),
            "2" => Ok(TraitType::Integer),
            "3" => Ok(TraitType::Float),
            "4" => Ok(TraitType::Datetime),
            other => Err(format!("{expected}, not {}", Echo(other))),
        },
        kind => Err(format!("{expected}, not {}", kind.described())),
    }
}

/// The type of a trait that gave none: strings are strings, integer literals integers, other
/// numbers floats. A datetime is never guessed: it must be asked for.
fn infer_type(raw: &RawValue) -> Result<TraitType, String> {
    match Kind::of(raw) {
        Kind::String => Ok(TraitType::String),
        Kind::Number if is_integer_literal(raw.get()) => Ok(TraitType::Integer),
        Kind::Number => Ok(TraitType::Float),
        kind => Err(format!(
            "the value must be a string or a number, not {}",
            kind.described()
        )),
    }
}

/// A JSON number written without fraction or exponent.
fn is_integer_literal(number: &str) -> bool {
    !number.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'))
}

/// A string trait value: a JSON string, or a JSON number's own text.
fn string_value(raw: &RawValue, max_bytes: usize) -> Result<String, String> {
    let text = match Kind::of(raw) {
        Kind::String => decode_string(raw)?,
        Kind::Number => Cow::Borrowed(raw.get()),
        kind => {
            return Err(format!(
                "the value must be a string or a number, not {}",
                kind.described()
            ))
        }
    };
    if text.len() > max_bytes {
        return Err(format!(
            "the value is {} bytes long; the limit is {max_bytes} bytes",
            text.len()
        ));
    }
    if text.contains('\0') {
        return Err("the value must not contain NUL characters".to_owned());
    }
    Ok(text.into_owned())
}

/// An integer trait value: a JSON integer, or a string of an optional sign and decimal digits
/// (surrounding whitespace allowed), within i64.
fn integer_value(raw: &RawValue) -> Result<i64, String> {
    match Kind::of(raw) {
        Kind::Number => {
            let number = raw.get();
            if !is_integer_literal(number) {
                return Err(format!("{} is not an integer", Echo(number)));
            }
            number
                .parse()
                .map_err(|_| format!("{} is out of the 64-bit integer range", Echo(number)))
        }
        Kind::String => {
            let text = decode_string(raw)?;
            // `i64::from_str` takes exactly an optional sign and ASCII digits.
            text.trim_ascii()
                .parse()
                .map_err(|e: std::num::ParseIntError| match e.kind() {
                    std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                        format!("'{}' is out of the 64-bit integer range", Echo(&text))
                    }
                    _ => format!("'{}' is not an integer", Echo(&text)),
                })
        }
        kind => Err(format!(
            "the value must be an integer or a string, not {}",
            kind.described()
        )),
    }
}

/// -0.0 is stored as 0.0: SQLite keeps an integral REAL as an integer and loses the sign, so
/// normalising here gives the same answer on both backends (and -0.0 == 0.0 in every filter).
fn without_negative_zero(value: f64) -> f64 {
    if value == 0.0 {
        0.0
    } else {
        value
    }
}

/// A float trait value: a JSON number or a numeric string, finite only.
fn float_value(raw: &RawValue) -> Result<f64, String> {
    match Kind::of(raw) {
        Kind::Number => {
            let number = raw.get();
            match number.parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(without_negative_zero(value)),
                _ => Err(format!("{} is out of the 64-bit float range", Echo(number))),
            }
        }
        Kind::String => {
            let text = decode_string(raw)?;
            // Rust also reads "inf", "infinity" and "nan" (any case); they parse, then fail here.
            match text.trim_ascii().parse::<f64>() {
                Ok(value) if value.is_finite() => Ok(without_negative_zero(value)),
                Ok(_) => Err(format!("'{}' is not a finite number", Echo(&text))),
                Err(_) => Err(format!("'{}' is not a number", Echo(&text))),
            }
        }
        kind => Err(format!(
            "the value must be a number or a string, not {}",
            kind.described()
        )),
    }
}

/// A datetime trait value: a string accepted by [`parse_instant`].
fn datetime_value(raw: &RawValue) -> Result<Micros, String> {
    match Kind::of(raw) {
        Kind::String => {
            let text = decode_string(raw)?;
            parse_instant(&text)
                .ok_or_else(|| format!("'{}' is not a valid time; {TIME_FORMS}", Echo(&text)))
        }
        kind => Err(format!(
            "the value must be a string holding a time, not {}",
            kind.described()
        )),
    }
}

/// The text of a JSON string. Most strings have no escapes, and their text is borrowed as is.
/// The error (an escape that is no character, such as a lone surrogate) reads as a reason.
fn decode_string(raw: &RawValue) -> Result<Cow<'_, str>, String> {
    let json = raw.get();
    match json.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Ok(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(json)
            .map(Cow::Owned)
            .map_err(|e| {
                format!(
                    "the string {} cannot be decoded: {}",
                    Echo(json),
                    message_without_position(&e)
                )
            }),
    }
}

/// The kind of a JSON value, read from its first byte (a [`RawValue`] has no leading space).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    String,
    Number,
    Boolean,
    Null,
    Array,
    Object,
}

impl Kind {
    fn of(raw: &RawValue) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'"') => Kind::String,
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b't' | b'f') => Kind::Boolean,
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    fn described(self) -> &'static str {
        match self {
            Kind::String => "a string",
            Kind::Number => "a number",
            Kind::Boolean => "a boolean",
            Kind::Null => "null",
            Kind::Array => "an array",
            Kind::Object => "an object",
        }
    }
}

/// How a problem names a trait: `trait 'memory_mb' (integer)`, or `trait #2` without a name.
struct TraitLabel<'a> {
    index: usize,
    name: Option<&'a str>,
    trait_type: Option<TraitType>,
}

impl fmt::Display for TraitLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => write!(f, "trait '{name}'")?,
            None => write!(f, "trait #{}", self.index)?,
        }
        match self.trait_type {
            Some(trait_type) => write!(f, " ({})", trait_type.as_str()),
            None => Ok(()),
        }
    }
}

/// Client text quoted in a problem, cut to [`ECHO_CHARS`] characters.
struct Echo<'a>(&'a str);

impl fmt::Display for Echo<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(ECHO_CHARS) {
            Some((cut, _)) => write!(f, "{}…", &self.0[..cut]),
            None => f.write_str(self.0),
        }
    }
}

/// Calls `f` with each element of the JSON array `text`, in order, without collecting them.
fn for_each_element<'a, F>(text: &'a str, f: F) -> serde_json::Result<()>
where
    F: FnMut(&'a RawValue),
{
    let mut deserializer = serde_json::Deserializer::from_str(text);
    (&mut deserializer).deserialize_seq(Elements(f))?;
    deserializer.end()
}

/// Calls `f` with each key and value of the JSON object `text`, in order (repeated keys too).
fn for_each_member<'a, F>(text: &'a str, f: F) -> serde_json::Result<()>
where
    F: FnMut(&str, &'a RawValue),
{
    let mut deserializer = serde_json::Deserializer::from_str(text);
    (&mut deserializer).deserialize_map(Members(f))?;
    deserializer.end()
}

struct Elements<F>(F);

impl<'de, F: FnMut(&'de RawValue)> Visitor<'de> for Elements<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            (self.0)(element);
        }
        Ok(())
    }
}

struct Members<F>(F);

impl<'de, F: FnMut(&str, &'de RawValue)> Visitor<'de> for Members<F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value = map.next_value::<&'de RawValue>()?;
            (self.0)(&key, value);
        }
        Ok(())
    }
}

/// An object key, borrowed from the body unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(key)))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(key.to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::time::format_instant;
    use proptest::prelude::*;

    /// 2014-01-01T05:00:00Z.
    const NOW: Micros = 1_388_552_400_000_000;

    const LIMITS: IngestLimits = IngestLimits {
        max_batch_events: 10,
        max_string_bytes: 16,
        max_traits_per_event: 40,
        reserved_type_prefix: Some("almanac."),
        max_raw_depth: 4,
    };

    fn decode(body: &str) -> Result<Vec<NewEvent>, BatchError> {
        decode_batch(body.as_bytes(), BatchFormat::JsonArray, &LIMITS, NOW)
    }

    fn decode_ndjson(body: &str) -> Result<Vec<NewEvent>, BatchError> {
        decode_batch(body.as_bytes(), BatchFormat::Ndjson, &LIMITS, NOW)
    }

    fn problems(result: Result<Vec<NewEvent>, BatchError>) -> Vec<EventProblem> {
        match result {
            Err(BatchError::Invalid(problems)) => problems,
            other => panic!("expected invalid events, got {other:?}"),
        }
    }

    /// Decodes one event that must be valid.
    fn event(json: &str) -> NewEvent {
        match decode(&format!("[{json}]")) {
            Ok(mut events) if events.len() == 1 => events.remove(0),
            other => panic!("expected one event from {json}, got {other:?}"),
        }
    }

    /// The reason one invalid event is refused.
    fn reason(json: &str) -> String {
        let mut found = problems(decode(&format!("[{json}]")));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].index, 0);
        found.remove(0).reason
    }

    /// The single trait of `{"event_type": "e", "traits": [<trait>]}`.
    fn one_trait(trait_json: &str) -> Trait {
        let mut decoded = event(&format!(
            r#"{{"event_type": "e", "traits": [{trait_json}]}}"#
        ));
        assert_eq!(decoded.traits.len(), 1);
        decoded.traits.remove(0)
    }

    fn trait_reason(trait_json: &str) -> String {
        reason(&format!(
            r#"{{"event_type": "e", "traits": [{trait_json}]}}"#
        ))
    }

    fn t(name: &str, value: TraitValue) -> Trait {
        Trait {
            name: name.to_owned(),
            value,
        }
    }

    const GOOD_EVENTS: [&str; 2] = [
        r#"{"message_id": "m-1", "event_type": "compute.instance.create.end",
            "generated": "2014-01-01T05:00:00",
            "traits": [{"name": "project_id", "type": "string", "value": "p1"},
                       {"name": "memory_mb", "type": "integer", "value": 2048},
                       {"name": "load", "type": "float", "value": "0.25"},
                       {"name": "launched_at", "type": "datetime", "value": "2014-01-01T07:00:00+02:00"}],
            "raw": {"payload": {"memory_mb": 2048}}}"#,
        r#"{"message_id": "m-2", "event_type": "image.update", "generated": "2013-12-31T06:00:00.123456Z"}"#,
    ];

    fn check_good_events(events: &[NewEvent]) {
        assert_eq!(events.len(), 2);
        let first = &events[0];
        assert_eq!(first.message_id, "m-1");
        assert_eq!(first.event_type, "compute.instance.create.end");
        assert_eq!(first.generated, NOW);
        assert_eq!(
            first.traits,
            vec![
                t("project_id", TraitValue::String("p1".into())),
                t("memory_mb", TraitValue::Integer(2048)),
                t("load", TraitValue::Float(0.25)),
                t("launched_at", TraitValue::Datetime(NOW)),
            ]
        );
        assert_eq!(first.raw.get(), r#"{"payload":{"memory_mb":2048}}"#);
        assert_eq!(first.string_trait("project_id"), Some("p1"));

        let second = &events[1];
        assert_eq!(second.message_id, "m-2");
        assert_eq!(
            format_instant(second.generated),
            "2013-12-31T06:00:00.123456"
        );
        assert!(second.traits.is_empty());
        assert_eq!(second.raw.get(), "{}");
    }

    #[test]
    fn decodes_a_good_json_array() {
        let body = format!("[{}, {}]", GOOD_EVENTS[0], GOOD_EVENTS[1]);
        check_good_events(&decode(&body).expect("valid batch"));
    }

    #[test]
    fn decodes_good_ndjson_skipping_blank_lines_and_crs() {
        let first = GOOD_EVENTS[0].replace('\n', " ");
        let body = format!("\n{first}\r\n   \r\n\t\n  {}  \r\n\n", GOOD_EVENTS[1]);
        check_good_events(&decode_ndjson(&body).expect("valid batch"));
    }

    #[test]
    fn fills_in_defaults() {
        for json in [
            r#"{"event_type": "e"}"#,
            r#"{"event_type": "e", "message_id": null, "generated": null, "traits": null}"#,
        ] {
            let decoded = event(json);
            let id = uuid::Uuid::parse_str(&decoded.message_id).expect("a UUID");
            assert_eq!(id.get_version_num(), 4);
            assert_eq!(decoded.message_id, id.hyphenated().to_string());
            assert_eq!(decoded.generated, NOW);
            assert!(decoded.traits.is_empty());
            assert_eq!(decoded.raw.get(), "{}");
        }
        let a = event(r#"{"event_type": "e"}"#);
        let b = event(r#"{"event_type": "e"}"#);
        assert_ne!(a.message_id, b.message_id);
    }

    #[test]
    fn keeps_raw_verbatim_but_minified() {
        let decoded = event(
            "{\"event_type\": \"e\", \"raw\": {\n  \"z\": 1.0,\r\n\t\"a\": [1e3, 1E+3, -0, 1.50, 100000000000000000000000],\n  \"s\": \"x  y\\\" \\\\ } \\n z\",\n  \"n\": null, \"u\": \"\\u00e9 é\", \"k\" : { } } }",
        );
        assert_eq!(
            decoded.raw.get(),
            r#"{"z":1.0,"a":[1e3,1E+3,-0,1.50,100000000000000000000000],"s":"x  y\" \\ } \n z","n":null,"u":"\u00e9 é","k":{}}"#
        );
        assert_eq!(
            event(r#"{"event_type": "e", "raw": null}"#).raw.get(),
            "null"
        );
        assert_eq!(
            event(r#"{"event_type": "e", "raw": [ 1 , "a b" ]}"#)
                .raw
                .get(),
            r#"[1,"a b"]"#
        );
        assert_eq!(
            event(r#"{"event_type": "e", "raw": 2.50}"#).raw.get(),
            "2.50"
        );
    }

    #[test]
    fn reads_escaped_keys() {
        assert_eq!(event(r#"{"event\u005ftype": "e"}"#).event_type, "e");
    }

    #[test]
    fn rejects_unknown_and_repeated_event_keys() {
        assert_eq!(
            reason(r#"{"event_type": "e", "trait": []}"#),
            "unknown key 'trait'; an event has only message_id, event_type, generated, traits and raw"
        );
        assert_eq!(
            reason(r#"{"event_type": "e", "event_type": "f"}"#),
            "key 'event_type' appears more than once"
        );
    }

    #[test]
    fn rejects_events_that_are_not_objects() {
        let found = problems(decode(r#"[1, "x", null, [], true]"#));
        let reasons: Vec<_> = found.iter().map(|p| p.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "an event must be a JSON object, not a number",
                "an event must be a JSON object, not a string",
                "an event must be a JSON object, not null",
                "an event must be a JSON object, not an array",
                "an event must be a JSON object, not a boolean",
            ]
        );
        assert_eq!(
            found.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn checks_message_id_and_event_type() {
        let long = "x".repeat(256);
        let longest = "x".repeat(255);
        assert_eq!(
            event(&format!(
                r#"{{"event_type": "{longest}", "message_id": "{longest}"}}"#
            ))
            .message_id,
            longest
        );
        let cases = [
            (
                r#"{}"#.to_owned(),
                "event_type is required (a string of 1 to 255 bytes)",
            ),
            (
                r#"{"event_type": null}"#.to_owned(),
                "event_type is required (a string of 1 to 255 bytes)",
            ),
            (
                r#"{"event_type": ""}"#.to_owned(),
                "event_type must not be empty",
            ),
            (
                r#"{"event_type": 5}"#.to_owned(),
                "event_type must be a string, not a number",
            ),
            (
                format!(r#"{{"event_type": "{long}"}}"#),
                "event_type is 256 bytes long; the limit is 255",
            ),
            (
                r#"{"event_type": "a\u0000b"}"#.to_owned(),
                "event_type must not contain NUL characters",
            ),
            (
                r#"{"event_type": "e", "message_id": ""}"#.to_owned(),
                "message_id must not be empty",
            ),
            (
                r#"{"event_type": "e", "message_id": 7}"#.to_owned(),
                "message_id must be a string, not a number",
            ),
            (
                format!(r#"{{"event_type": "e", "message_id": "{long}"}}"#),
                "message_id is 256 bytes long; the limit is 255",
            ),
            (
                r#"{"event_type": "e", "message_id": "\u0000"}"#.to_owned(),
                "message_id must not contain NUL characters",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(reason(&json), expected, "{json}");
        }
        // Multi-byte characters count in bytes.
        let wide = "é".repeat(128);
        assert_eq!(
            reason(&format!(r#"{{"event_type": "{wide}"}}"#)),
            "event_type is 256 bytes long; the limit is 255"
        );
        assert!(
            reason(r#"{"event_type": "\ud800"}"#).starts_with("event_type is invalid: the string")
        );
    }

    #[test]
    fn converts_generated_to_utc() {
        assert_eq!(
            event(r#"{"event_type": "e", "generated": "2014-01-01T07:00:00+02:00"}"#).generated,
            NOW
        );
        assert_eq!(
            event(r#"{"event_type": "e", "generated": "2014-01-01 00:00-05"}"#).generated,
            NOW
        );
        assert_eq!(
            event(r#"{"event_type": "e", "generated": "2014-01-01T00:30:00+01:00"}"#).generated,
            NOW - 5 * 3_600_000_000 - 1_800_000_000
        );
        let bad = reason(r#"{"event_type": "e", "generated": "yesterday"}"#);
        assert!(
            bad.starts_with("generated: 'yesterday' is not a valid time; expected ISO 8601"),
            "{bad}"
        );
        assert_eq!(
            reason(r#"{"event_type": "e", "generated": 1388552400}"#),
            "generated: the value must be a string holding a time, not a number"
        );
        assert!(
            reason(r#"{"event_type": "e", "generated": "0001-01-01T00:00:00+01:00"}"#)
                .starts_with("generated:")
        );
    }

    #[test]
    fn reads_ceilometer_array_traits() {
        let decoded = event(
            r#"{"event_type": "e", "traits": [
                ["a", 1, "text"], ["b", 2, 5], ["c", 3, "1.5"], ["d", 4, "2014-01-01T05:00:00"],
                ["e", 0, "dtype none"], ["f", "integer", "7"], ["g", 2, "-12"], ["h", 1, 3.25]]}"#,
        );
        assert_eq!(
            decoded.traits,
            vec![
                t("a", TraitValue::String("text".into())),
                t("b", TraitValue::Integer(5)),
                t("c", TraitValue::Float(1.5)),
                t("d", TraitValue::Datetime(NOW)),
                t("e", TraitValue::String("dtype none".into())),
                t("f", TraitValue::Integer(7)),
                t("g", TraitValue::Integer(-12)),
                t("h", TraitValue::String("3.25".into())),
            ]
        );
        assert_eq!(
            trait_reason(r#"["a", 5, "x"]"#),
            "trait 'a': dtype must be 0 to 4 or one of string, integer, float, datetime, not 5"
        );
        assert_eq!(
            trait_reason(r#"["a", "1", "x"]"#),
            "trait 'a': dtype must be 0 to 4 or one of string, integer, float, datetime, not '1'"
        );
        assert_eq!(
            trait_reason(r#"["a", null, "x"]"#),
            "trait 'a': dtype is required"
        );
        assert_eq!(
            trait_reason(r#"["a", 1]"#),
            "trait #0: an array trait must be [name, dtype, value], not 2 elements"
        );
        assert_eq!(
            trait_reason(r#"["a", 1, "x", 4]"#),
            "trait #0: an array trait must be [name, dtype, value], not 4 elements"
        );
    }

    #[test]
    fn infers_types_from_json_values() {
        assert_eq!(
            one_trait(r#"{"name": "s", "value": "2014-01-01"}"#).value,
            TraitValue::String("2014-01-01".into())
        );
        assert_eq!(
            one_trait(r#"{"name": "i", "value": -7}"#).value,
            TraitValue::Integer(-7)
        );
        assert_eq!(
            one_trait(r#"{"name": "f", "value": 5.0}"#).value,
            TraitValue::Float(5.0)
        );
        assert_eq!(
            one_trait(r#"{"name": "f", "value": 1e3}"#).value,
            TraitValue::Float(1000.0)
        );
        assert_eq!(
            one_trait(r#"{"name": "f", "type": null, "value": 0.5}"#).value,
            TraitValue::Float(0.5)
        );
        assert_eq!(
            trait_reason(r#"{"name": "b", "value": true}"#),
            "trait 'b': the value must be a string or a number, not a boolean"
        );
        assert_eq!(
            trait_reason(r#"{"name": "big", "value": 9223372036854775808}"#),
            "trait 'big' (integer): 9223372036854775808 is out of the 64-bit integer range"
        );
    }

    #[test]
    fn reads_integers() {
        let cases = [
            (r#"9223372036854775807"#, i64::MAX),
            (r#""9223372036854775807""#, i64::MAX),
            (r#"-9223372036854775808"#, i64::MIN),
            (r#""-9223372036854775808""#, i64::MIN),
            (r#"" 42 ""#, 42),
            (r#""\t+42\n""#, 42),
            (r#""007""#, 7),
            (r#"-0"#, 0),
        ];
        for (value, expected) in cases {
            let decoded = one_trait(&format!(
                r#"{{"name": "n", "type": "integer", "value": {value}}}"#
            ));
            assert_eq!(decoded.value, TraitValue::Integer(expected), "{value}");
        }
        let rejected = [
            (r#""abc""#, "trait 'memory_mb' (integer): 'abc' is not an integer"),
            (r#""""#, "trait 'memory_mb' (integer): '' is not an integer"),
            (r#""1.0""#, "trait 'memory_mb' (integer): '1.0' is not an integer"),
            (r#""1 2""#, "trait 'memory_mb' (integer): '1 2' is not an integer"),
            (r#""0x10""#, "trait 'memory_mb' (integer): '0x10' is not an integer"),
            (r#"1.5"#, "trait 'memory_mb' (integer): 1.5 is not an integer"),
            (r#"1e3"#, "trait 'memory_mb' (integer): 1e3 is not an integer"),
            (r#""9223372036854775808""#, "trait 'memory_mb' (integer): '9223372036854775808' is out of the 64-bit integer range"),
            (r#"-9223372036854775809"#, "trait 'memory_mb' (integer): -9223372036854775809 is out of the 64-bit integer range"),
            (r#"true"#, "trait 'memory_mb' (integer): the value must be an integer or a string, not a boolean"),
            (r#"null"#, "trait 'memory_mb' (integer): the value must be an integer or a string, not null"),
            (r#"[1]"#, "trait 'memory_mb' (integer): the value must be an integer or a string, not an array"),
            (r#"{}"#, "trait 'memory_mb' (integer): the value must be an integer or a string, not an object"),
        ];
        for (value, expected) in rejected {
            let json = format!(r#"{{"name": "memory_mb", "type": "integer", "value": {value}}}"#);
            assert_eq!(trait_reason(&json), expected, "{value}");
        }
    }

    #[test]
    fn reads_finite_floats_only() {
        let cases = [
            (r#"0.25"#, 0.25),
            (r#"2"#, 2.0),
            (r#""1.5""#, 1.5),
            (r#"" 2.5 ""#, 2.5),
            (r#""1e-3""#, 0.001),
            (r#""-7""#, -7.0),
            (r#"1.7976931348623157e308"#, f64::MAX),
            (r#"1e-400"#, 0.0),
        ];
        for (value, expected) in cases {
            let decoded = one_trait(&format!(
                r#"{{"name": "x", "type": "float", "value": {value}}}"#
            ));
            assert_eq!(decoded.value, TraitValue::Float(expected), "{value}");
        }
        let rejected = [
            (
                r#""NaN""#,
                "trait 'x' (float): 'NaN' is not a finite number",
            ),
            (
                r#""nan""#,
                "trait 'x' (float): 'nan' is not a finite number",
            ),
            (
                r#""Infinity""#,
                "trait 'x' (float): 'Infinity' is not a finite number",
            ),
            (
                r#""-inf""#,
                "trait 'x' (float): '-inf' is not a finite number",
            ),
            (
                r#""1e400""#,
                "trait 'x' (float): '1e400' is not a finite number",
            ),
            (
                r#"1e400"#,
                "trait 'x' (float): 1e400 is out of the 64-bit float range",
            ),
            (
                r#"-1e400"#,
                "trait 'x' (float): -1e400 is out of the 64-bit float range",
            ),
            (r#""abc""#, "trait 'x' (float): 'abc' is not a number"),
            (r#""""#, "trait 'x' (float): '' is not a number"),
            (
                r#"false"#,
                "trait 'x' (float): the value must be a number or a string, not a boolean",
            ),
        ];
        for (value, expected) in rejected {
            let json = format!(r#"{{"name": "x", "type": "float", "value": {value}}}"#);
            assert_eq!(trait_reason(&json), expected, "{value}");
        }
        // NaN and Infinity are not JSON at all: the whole body is malformed.
        assert!(matches!(
            decode(r#"[{"event_type": "e", "traits": [{"name": "x", "value": NaN}]}]"#),
            Err(BatchError::Malformed(_))
        ));
    }

    #[test]
    fn reads_datetimes_as_utc() {
        let decoded = one_trait(
            r#"{"name": "d", "type": "datetime", "value": "2014-01-01T00:00:00.5-05:00"}"#,
        );
        assert_eq!(decoded.value, TraitValue::Datetime(NOW + 500_000));
        assert_eq!(decoded.value.render(), "2014-01-01T05:00:00.500000");
        assert_eq!(
            trait_reason(r#"{"name": "d", "type": "datetime", "value": 5}"#),
            "trait 'd' (datetime): the value must be a string holding a time, not a number"
        );
        let bad = trait_reason(r#"{"name": "d", "type": "datetime", "value": "2014-13-01"}"#);
        assert!(
            bad.starts_with("trait 'd' (datetime): '2014-13-01' is not a valid time; expected"),
            "{bad}"
        );
    }

    #[test]
    fn reads_strings_within_the_limit() {
        assert_eq!(
            one_trait(r#"{"name": "s", "type": "string", "value": 1.50}"#).value,
            TraitValue::String("1.50".into())
        );
        assert_eq!(
            one_trait(r#"{"name": "s", "type": "string", "value": ""}"#).value,
            TraitValue::String(String::new())
        );
        let at_limit = "x".repeat(16);
        assert_eq!(
            one_trait(&format!(r#"{{"name": "s", "value": "{at_limit}"}}"#)).value,
            TraitValue::String(at_limit)
        );
        assert_eq!(
            trait_reason(&format!(
                r#"{{"name": "s", "value": "{}"}}"#,
                "x".repeat(17)
            )),
            "trait 's' (string): the value is 17 bytes long; the limit is 16 bytes"
        );
        assert_eq!(
            trait_reason(&format!(r#"{{"name": "s", "value": "{}"}}"#, "é".repeat(9))),
            "trait 's' (string): the value is 18 bytes long; the limit is 16 bytes"
        );
        assert_eq!(
            trait_reason(r#"{"name": "s", "value": "a\u0000"}"#),
            "trait 's' (string): the value must not contain NUL characters"
        );
        assert_eq!(
            trait_reason(r#"{"name": "s", "type": "string", "value": {"a": 1}}"#),
            "trait 's' (string): the value must be a string or a number, not an object"
        );
    }

    #[test]
    fn checks_trait_names_types_and_keys() {
        let long = "n".repeat(256);
        let cases = [
            (r#"{"type": "string", "value": "x"}"#.to_owned(), "trait #0: name is required"),
            (r#"{"name": null, "value": "x"}"#.to_owned(), "trait #0: name is required"),
            (r#"{"name": "", "value": "x"}"#.to_owned(), "trait #0: name must not be empty"),
            (r#"{"name": 3, "value": "x"}"#.to_owned(), "trait #0: name must be a string, not a number"),
            (format!(r#"{{"name": "{long}", "value": "x"}}"#), "trait #0: name is 256 bytes long; the limit is 255"),
            (r#"{"name": "a\u0000", "value": "x"}"#.to_owned(), "trait #0: name must not contain NUL characters"),
            (r#"{"name": "a", "type": "string"}"#.to_owned(), "trait 'a' (string): value is required"),
            (r#"{"name": "a", "type": "text", "value": "x"}"#.to_owned(), "trait 'a': type must be string, integer, float or datetime, not 'text'"),
            (r#"{"name": "a", "type": 1, "value": "x"}"#.to_owned(), "trait 'a': type must be string, integer, float or datetime, not a number"),
            (r#"{"name": "a", "value": "x", "vlaue": "y"}"#.to_owned(), "trait #0: unknown key 'vlaue'; a trait has only name, type and value"),
            (r#"{"name": "a", "value": "x", "name": "b"}"#.to_owned(), "trait #0: key 'name' appears more than once"),
            (r#""a=b""#.to_owned(), "trait #0 must be an object {\"name\", \"type\", \"value\"} or an array [name, dtype, value], not a string"),
        ];
        for (json, expected) in cases {
            assert_eq!(trait_reason(&json), expected, "{json}");
        }
        // A bad name does not hide the value's own problem.
        assert_eq!(
            trait_reason(r#"{"name": "", "type": "integer", "value": "x"}"#),
            "trait #0: name must not be empty; trait #0 (integer): 'x' is not an integer"
        );
        assert_eq!(
            reason(r#"{"event_type": "e", "traits": {"a": 1}}"#),
            "traits must be an array, not an object"
        );
    }

    #[test]
    fn rejects_a_name_repeated_with_the_same_type() {
        let decoded = event(
            r#"{"event_type": "e", "traits": [
                {"name": "a", "value": "x"}, {"name": "a", "value": 1}, ["a", 3, 1], ["a", 4, "2014-01-01"]]}"#,
        );
        assert_eq!(decoded.traits.len(), 4);
        assert_eq!(
            reason(
                r#"{"event_type": "e", "traits": [
                    {"name": "a", "value": "x"}, {"name": "b", "value": 1}, ["a", 1, "y"], ["a", "string", "z"], ["b", 2, "2"]]}"#
            ),
            "trait 'a' (string) appears more than once; a name may repeat only with another type; \
             trait 'b' (integer) appears more than once; a name may repeat only with another type"
        );
        // Past the pairwise limit the same rule holds.
        let mut many: Vec<String> = (0..35).map(|i| format!(r#"["t{i}", 2, {i}]"#)).collect();
        many.push(r#"["t3", 2, 0]"#.to_owned());
        many.push(r#"["t3", 1, 0]"#.to_owned());
        assert_eq!(
            reason(&format!(
                r#"{{"event_type": "e", "traits": [{}]}}"#,
                many.join(",")
            )),
            "trait 't3' (integer) appears more than once; a name may repeat only with another type"
        );
    }

    #[test]
    fn limits_the_number_of_traits() {
        let traits = |n: usize| {
            (0..n)
                .map(|i| format!(r#"{{"name": "t{i}", "value": {i}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(
            event(&format!(
                r#"{{"event_type": "e", "traits": [{}]}}"#,
                traits(40)
            ))
            .traits
            .len(),
            40
        );
        assert_eq!(
            reason(&format!(
                r#"{{"event_type": "e", "traits": [{}, true]}}"#,
                traits(41)
            )),
            "42 traits exceed the limit of 40 per event"
        );
        assert_eq!(
            reason(&format!(
                r#"{{"event_type": 1, "traits": [true, {}]}}"#,
                traits(41)
            )),
            "event_type must be a string, not a number; 42 traits exceed the limit of 40 per event"
        );
    }

    #[test]
    fn reports_every_bad_event_with_its_index() {
        let body = r#"[
            {"message_id": "ok-0", "event_type": "e"},
            {"message_id": "bad-1", "event_type": ""},
            {"message_id": "ok-2", "event_type": "e"},
            {"message_id": "", "event_type": "e", "traits": [{"name": "n", "type": "integer", "value": "x"}], "extra": 1},
            {"event_type": "e", "generated": "never"}
        ]"#;
        let found = problems(decode(body));
        assert_eq!(found.len(), 3);
        assert_eq!(
            (found[0].index, found[0].message_id.as_deref()),
            (1, Some("bad-1"))
        );
        assert_eq!(found[0].reason, "event_type must not be empty");
        assert_eq!((found[1].index, found[1].message_id.as_deref()), (3, None));
        assert_eq!(
            found[1].reason,
            "unknown key 'extra'; an event has only message_id, event_type, generated, traits and raw; \
             message_id must not be empty; trait 'n' (integer): 'x' is not an integer"
        );
        assert_eq!((found[2].index, found[2].message_id.as_deref()), (4, None));
    }

    #[test]
    fn reports_bad_ndjson_lines_per_event() {
        let body = "{\"event_type\": \"a\"}\n\n{\"event_type\": \n\r\n{\"event_type\": \"\"}\n[1]\n{\"event_type\": \"b\"} {}\n";
        let found = problems(decode_ndjson(body));
        let summary: Vec<_> = found.iter().map(|p| (p.index, p.reason.as_str())).collect();
        assert_eq!(
            summary,
            [
                (1, "not valid JSON (column 15): EOF while parsing a value"),
                (2, "event_type must not be empty"),
                (3, "an event must be a JSON object, not an array"),
                (4, "not valid JSON (column 21): trailing characters"),
            ]
        );
    }

    #[test]
    fn leaves_duplicate_message_ids_to_the_store() {
        let events = decode(
            r#"[{"message_id": "m", "event_type": "a"}, {"message_id": "m", "event_type": "b"}]"#,
        )
        .expect("valid batch");
        assert_eq!(events.len(), 2);
        let lines = "{\"message_id\": \"m\", \"event_type\": \"\"}\n{\"message_id\": \"m\"}";
        let found = problems(decode_ndjson(lines));
        assert_eq!(
            found
                .iter()
                .map(|p| p.message_id.as_deref())
                .collect::<Vec<_>>(),
            [Some("m"), Some("m")]
        );
    }

    #[test]
    fn refuses_empty_batches() {
        assert_eq!(decode("[]").err(), Some(BatchError::Empty));
        assert_eq!(decode(" [ ] ").err(), Some(BatchError::Empty));
        assert_eq!(decode_ndjson("").err(), Some(BatchError::Empty));
        assert_eq!(decode_ndjson("\n \r\n\t\n").err(), Some(BatchError::Empty));
        assert_eq!(
            decode("").err(),
            Some(BatchError::Malformed(NOT_AN_ARRAY.to_owned()))
        );
    }

    #[test]
    fn refuses_too_many_events_before_validating_them() {
        let max = LIMITS.max_batch_events;
        let ok = vec![r#"{"event_type": "e"}"#; max];
        assert_eq!(
            decode(&format!("[{}]", ok.join(","))).map(|e| e.len()),
            Ok(max)
        );
        assert_eq!(decode_ndjson(&ok.join("\n")).map(|e| e.len()), Ok(max));

        let bad = vec!["{}"; max + 1];
        assert_eq!(
            decode(&format!("[{}]", bad.join(","))).err(),
            Some(BatchError::TooManyEvents { max })
        );
        let lines = vec!["not json"; max + 1];
        assert_eq!(
            decode_ndjson(&lines.join("\n\n")).err(),
            Some(BatchError::TooManyEvents { max })
        );
    }

    #[test]
    fn refuses_malformed_bodies() {
        let syntax = |body: &str| match decode(body) {
            Err(BatchError::Malformed(message)) => message,
            other => panic!("expected malformed, got {other:?}"),
        };
        assert_eq!(
            syntax("[{\"event_type\": \"e\"},\n {\"event_type\" \"e\"}]"),
            "The body is not valid JSON: expected `:` at line 2 column 16"
        );
        assert_eq!(
            syntax("[{"),
            "The body is not valid JSON: EOF while parsing an object at line 1 column 2"
        );
        assert_eq!(
            syntax("[{}] x"),
            "The body is not valid JSON: trailing characters at line 1 column 6"
        );
        for not_array in [r#"{"event_type": "e"}"#, r#""x""#, "5", "null", "   \n"] {
            assert_eq!(syntax(not_array), NOT_AN_ARRAY, "{not_array}");
        }
        let invalid_utf8 = b"[{\"event_type\": \"\xff\"}]";
        for format in [BatchFormat::JsonArray, BatchFormat::Ndjson] {
            assert!(matches!(
                decode_batch(invalid_utf8, format, &LIMITS, NOW),
                Err(BatchError::Malformed(m)) if m.starts_with("The body is not valid UTF-8")
            ));
        }
    }

    #[test]
    fn minify_keeps_strings_intact() {
        assert_eq!(
            minify(r#" { "a" : "\\" , "b" : "\" x " } "#),
            r#"{"a":"\\","b":"\" x "}"#
        );
        assert_eq!(minify("[\n]"), "[]");
        assert_eq!(nesting_depth("1"), 0);
        assert_eq!(nesting_depth(r#"{"a": [1, {"b": "]]]{{{"}]}"#), 3);
        assert_eq!(nesting_depth(r#"["\\", ["\"]"]]"#), 2);
    }

    #[test]
    fn echo_cuts_long_text() {
        let long = "é".repeat(100);
        assert_eq!(
            Echo(&long).to_string(),
            format!("{}…", "é".repeat(ECHO_CHARS))
        );
        assert_eq!(Echo("short").to_string(), "short");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batch(&body, BatchFormat::JsonArray, &LIMITS, NOW);
            let _ = decode_batch(&body, BatchFormat::Ndjson, &LIMITS, NOW);
        }

        #[test]
        fn json_like_text_never_panics(body in r#"[\[\]{}",:0-9a-z\\ \n.eE+-]{0,200}"#) {
            let _ = decode_batch(body.as_bytes(), BatchFormat::JsonArray, &LIMITS, NOW);
            let _ = decode_batch(body.as_bytes(), BatchFormat::Ndjson, &LIMITS, NOW);
        }

        #[test]
        fn near_valid_events_never_panic(
            name in r#"[a-z"\\\u{0}é]{0,3}"#,
            type_spec in prop_oneof![
                Just("\"string\""), Just("\"integer\""), Just("\"float\""), Just("\"datetime\""),
                Just("null"), Just("0"), Just("4"), Just("9"), Just("\"x\"")
            ],
            value in prop_oneof![
                Just("1".to_owned()), Just("-1.5e3".to_owned()), Just("true".to_owned()), Just("null".to_owned()),
                Just("[]".to_owned()), Just("{}".to_owned()), "\"[ 0-9a-zT:.+-]{0,30}\"",
                any::<i64>().prop_map(|i| i.to_string()),
            ],
            array_form in any::<bool>(),
        ) {
            let trait_json = if array_form {
                format!(r#"["{name}", {type_spec}, {value}]"#)
            } else {
                format!(r#"{{"name": "{name}", "type": {type_spec}, "value": {value}}}"#)
            };
            let body = format!(r#"[{{"event_type": "e", "traits": [{trait_json}, {trait_json}]}}]"#);
            let _ = decode(&body);
        }

        #[test]
        fn integers_read_back(value in any::<i64>(), quoted in any::<bool>()) {
            let json = if quoted { format!("\"{value}\"") } else { value.to_string() };
            let decoded = one_trait(&format!(r#"{{"name": "n", "type": "integer", "value": {json}}}"#));
            prop_assert_eq!(decoded.value, TraitValue::Integer(value));
        }

        #[test]
        fn floats_read_back(bits in any::<u64>(), quoted in any::<bool>()) {
            let value = f64::from_bits(bits);
            prop_assume!(value.is_finite());
            let text = crate::model::float::python_repr(value);
            let json = if quoted { format!("\"{text}\"") } else { format!("{value:e}") };
            let decoded = one_trait(&format!(r#"{{"name": "n", "type": "float", "value": {json}}}"#));
            prop_assert_eq!(decoded.value, TraitValue::Float(value));
        }
    }
}
