//! The parser behind [`parse_event_query`] and [`ensure_no_arguments`].
//!
//! It works in two stages, as WSME and Panko do:
//!
//! 1. the raw arguments of each source (query string, JSON body) are reduced to one shape,
//!    [`Args`], and merged; this is where WSME's errors come from (unknown arguments, a parameter
//!    given twice, `limit` not an integer);
//! 2. [`interpret`] applies Panko's controller rules to the merged arguments: the q items in order,
//!    then `limit`, `sort` and `marker`.
//!
//! The exact error texts are Panko's wherever Panko answers with a 400; where Panko answers with a
//! 500 (or not at all) the text says what was wrong and what is accepted.

use std::collections::BTreeMap;
use std::fmt;
use std::num::IntErrorKind;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Direction, EventQuery, Op, ParseOptions, QueryError, SortKey, TraitFilter};
use crate::model::time::parse_instant;
use crate::model::{TraitType, TraitValue};

/// Python's `str()` of Panko's operator tuple, as its error text shows it.
const OPERATORS_TEXT: &str = "('lt', 'le', 'eq', 'ne', 'ge', 'gt')";
/// Python's `str()` of Panko's type list (`boolean` is deliberately missing, as in Panko).
const DATA_TYPES_TEXT: &str = "['integer', 'float', 'string', 'datetime']";
const SORT_HINT: &str = "the sort parameter should be a pair of sort key and sort dir combined \
                         with ':', or only sort key specified and sort dir will be default 'asc'";
const FIELD_HINT: &str = "every q item needs a field (event_type, message_id, start_timestamp, \
                          end_timestamp, all_tenants or a trait name)";
const DATE_HINT: &str = "expected an ISO 8601 date or date-time such as 2014-01-01, \
                         2014-01-01T05:00:00 or 2014-01-01T05:00:00+02:00";
const NUL_HINT: &str = "NUL characters are not accepted";

/// Parses the arguments of `GET /v2/events`: the raw query string (without `?`, still
/// percent-encoded) and the raw JSON body, if any.
pub fn parse_event_query(
    query_string: &str,
    body: Option<&[u8]>,
    opts: &ParseOptions,
) -> Result<EventQuery, QueryError> {
    let from_query = parse_query_string(query_string)?;
    let from_body = body.map(parse_body).transpose()?;
    interpret(merge(from_query, from_body)?, opts)
}

/// For routes that take no arguments (e.g. `GET /v2/events/{id}`): any query-string key, or any
/// key of a JSON body, is an unknown argument, as in Panko.
pub fn ensure_no_arguments(query_string: &str, body: Option<&[u8]>) -> Result<(), QueryError> {
    let keys: Vec<String> = form_urlencoded::parse(query_string.as_bytes())
        .map(|(key, _)| key.into_owned())
        .collect();
    if !keys.is_empty() {
        return Err(unknown_arguments(&keys));
    }
    if let Some(body) = body {
        let keys: Vec<String> = parse_json_object(body)?
            .into_iter()
            .map(|(key, _)| key)
            .collect();
        if !keys.is_empty() {
            return Err(unknown_arguments(&keys));
        }
    }
    Ok(())
}

fn err(text: impl Into<String>) -> QueryError {
    QueryError(text.into())
}

// ---------------------------------------------------------------------------------------------
// Stage 1: raw arguments
// ---------------------------------------------------------------------------------------------

/// A top-level parameter of `GET /v2/events`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    Q,
    Limit,
    Sort,
    Marker,
}

impl Param {
    fn name(self) -> &'static str {
        match self {
            Param::Q => "q",
            Param::Limit => "limit",
            Param::Sort => "sort",
            Param::Marker => "marker",
        }
    }

    fn from_name(name: &str) -> Option<Param> {
        [Param::Q, Param::Limit, Param::Sort, Param::Marker]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// An attribute of a q item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    Field,
    Op,
    Value,
    Type,
}

impl Attr {
    const ALL: [Attr; 4] = [Attr::Field, Attr::Op, Attr::Value, Attr::Type];

    fn name(self) -> &'static str {
        match self {
            Attr::Field => "field",
            Attr::Op => "op",
            Attr::Value => "value",
            Attr::Type => "type",
        }
    }

    fn from_name(name: &str) -> Result<Attr, QueryError> {
        Attr::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| err(format!("Unknown attribute for argument q: {name}")))
    }

    fn position(self) -> usize {
        self as usize
    }
}

/// A q item as sent, before any interpretation. `None` means the attribute was not sent (or was
/// JSON null); `Some("")` is an empty value, which means something different for `value`.
#[derive(Clone, Debug, Default, PartialEq)]
struct RawItem {
    field: Option<String>,
    op: Option<String>,
    value: Option<String>,
    ty: Option<String>,
}

impl RawItem {
    fn slot(&mut self, attr: Attr) -> &mut Option<String> {
        match attr {
            Attr::Field => &mut self.field,
            Attr::Op => &mut self.op,
            Attr::Value => &mut self.value,
            Attr::Type => &mut self.ty,
        }
    }
}

/// The arguments of one source. `None` means the parameter was not given by that source. The
/// scalar parameters keep every value given, because giving one twice has its own error.
#[derive(Debug, Default)]
struct Args {
    q: Option<Vec<RawItem>>,
    limit: Option<Vec<String>>,
    sort: Option<Vec<String>>,
    marker: Option<Vec<String>>,
}

/// Combines the query-string and body arguments. As in WSME, a parameter may come from either
/// source but not from both.
fn merge(query: Args, body: Option<Args>) -> Result<Args, QueryError> {
    let Some(body) = body else {
        return Ok(query);
    };
    Ok(Args {
        q: either(Param::Q, query.q, body.q)?,
        limit: either(Param::Limit, query.limit, body.limit)?,
        sort: either(Param::Sort, query.sort, body.sort)?,
        marker: either(Param::Marker, query.marker, body.marker)?,
    })
}

fn either<T>(param: Param, a: Option<T>, b: Option<T>) -> Result<Option<T>, QueryError> {
    match (a, b) {
        (Some(_), Some(_)) => Err(given_several_times(param.name())),
        (a, b) => Ok(a.or(b)),
    }
}

fn given_several_times(name: &str) -> QueryError {
    err(format!("Parameter {name} was given several times"))
}

/// `Unknown argument: "a, b"`, naming each key once, in order of first appearance.
fn unknown_arguments(keys: &[String]) -> QueryError {
    let mut distinct: Vec<&str> = Vec::new();
    for key in keys {
        if !distinct.contains(&key.as_str()) {
            distinct.push(key);
        }
    }
    err(format!("Unknown argument: \"{}\"", distinct.join(", ")))
}

// --- the query string ---------------------------------------------------------------------------

/// What a query-string key names.
#[derive(Debug, PartialEq)]
enum QsKey<'a> {
    Limit,
    Sort,
    Marker,
    /// `q=...`: WSME cannot turn a bare string into a list of q items.
    BareQ,
    /// `q.<attr>` (encoding 1).
    Parallel(&'a str),
    /// `q[<index>].<attr>` (encoding 2).
    Indexed(usize, &'a str),
    Unknown,
}

fn classify_key(key: &str) -> QsKey<'_> {
    match key {
        "limit" => QsKey::Limit,
        "sort" => QsKey::Sort,
        "marker" => QsKey::Marker,
        "q" => QsKey::BareQ,
        _ => {
            if let Some(attr) = key.strip_prefix("q.") {
                QsKey::Parallel(attr)
            } else if let Some((index, attr)) = key.strip_prefix("q[").and_then(split_indexed) {
                QsKey::Indexed(index, attr)
            } else {
                QsKey::Unknown
            }
        }
    }
}

/// Splits `<digits>].<attr>`, the rest of a `q[<digits>].<attr>` key.
fn split_indexed(rest: &str) -> Option<(usize, &str)> {
    let (digits, after) = rest.split_once(']')?;
    let attr = after.strip_prefix('.')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // An index too large for usize is certainly past the last item: saturating keeps it an
    // index, so the gap check reports the first missing one.
    let index = digits
        .bytes()
        .try_fold(0usize, |n, b| {
            n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
        })
        .unwrap_or(usize::MAX);
    Some((index, attr))
}

/// The q keys of a query string, split by encoding.
#[derive(Default)]
struct QsItems<'a> {
    parallel: Vec<(Attr, &'a str)>,
    /// (index, attribute, key as sent, value).
    indexed: Vec<(usize, Attr, &'a str, &'a str)>,
}

fn parse_query_string(query_string: &str) -> Result<Args, QueryError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query_string.as_bytes())
        .into_owned()
        .collect();
    let unknown: Vec<String> = pairs
        .iter()
        .filter(|(key, _)| classify_key(key) == QsKey::Unknown)
        .map(|(key, _)| key.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(unknown_arguments(&unknown));
    }

    let mut args = Args::default();
    let mut items = QsItems::default();
    for (key, value) in &pairs {
        match classify_key(key) {
            QsKey::Limit => push(&mut args.limit, value),
            QsKey::Sort => push(&mut args.sort, value),
            QsKey::Marker => push(&mut args.marker, value),
            QsKey::BareQ => return Err(bare_q(value)),
            QsKey::Parallel(attr) => items.parallel.push((Attr::from_name(attr)?, value)),
            QsKey::Indexed(index, attr) => {
                items
                    .indexed
                    .push((index, Attr::from_name(attr)?, key, value));
            }
            QsKey::Unknown => {}
        }
    }
    args.q = match (items.parallel.is_empty(), items.indexed.is_empty()) {
        (true, true) => None,
        (false, true) => Some(zip_parallel(&items.parallel)?),
        (true, false) => Some(order_indexed(&items.indexed)?),
        (false, false) => return Err(mixed_encodings()),
    };
    Ok(args)
}

fn push(values: &mut Option<Vec<String>>, value: &str) {
    values.get_or_insert_with(Vec::new).push(value.to_owned());
}

fn bare_q(value: &str) -> QueryError {
    err(format!(
        "Invalid input for field/attribute q. Value: '{value}'. q must be sent as \
         q.field/q.op/q.value/q.type arrays, as q[0].field=... items, or as a JSON body"
    ))
}

fn mixed_encodings() -> QueryError {
    err(
        "The q items must use one encoding: either q.field/q.op/q.value/q.type arrays or \
         q[N].field/q[N].op/q[N].value/q[N].type items, not both",
    )
}

/// Encoding 1: WSME zips the attribute arrays by position. An attribute never sent is absent
/// from every item; arrays of different lengths misalign silently or give a 500 in Panko, so they
/// are refused here.
fn zip_parallel(entries: &[(Attr, &str)]) -> Result<Vec<RawItem>, QueryError> {
    let mut columns: [Option<Vec<&str>>; 4] = Default::default();
    for &(attr, value) in entries {
        columns[attr.position()]
            .get_or_insert_with(Vec::new)
            .push(value);
    }
    let lengths: Vec<(Attr, usize)> = Attr::ALL
        .into_iter()
        .filter_map(|attr| columns[attr.position()].as_ref().map(|c| (attr, c.len())))
        .collect();
    let count = lengths.first().map_or(0, |&(_, len)| len);
    if lengths.iter().any(|&(_, len)| len != count) {
        return Err(unequal_lengths(&lengths));
    }
    let mut items = vec![RawItem::default(); count];
    for attr in Attr::ALL {
        for (item, value) in items
            .iter_mut()
            .zip(columns[attr.position()].iter().flatten())
        {
            *item.slot(attr) = Some((*value).to_owned());
        }
    }
    Ok(items)
}

fn unequal_lengths(lengths: &[(Attr, usize)]) -> QueryError {
    let described: Vec<String> = lengths
        .iter()
        .enumerate()
        .map(|(i, &(attr, len))| match (i, len) {
            (0, 1) => format!("q.{} has 1 value", attr.name()),
            (0, _) => format!("q.{} has {len} values", attr.name()),
            _ => format!("q.{} has {len}", attr.name()),
        })
        .collect();
    err(format!(
        "The q arrays have different lengths: {}. Send the same number of q.field, q.op, q.value \
         and q.type values (use an empty value where an item does not need one)",
        described.join(", ")
    ))
}

/// Encoding 2: items ordered by index; the indices must be exactly 0..n-1.
fn order_indexed(entries: &[(usize, Attr, &str, &str)]) -> Result<Vec<RawItem>, QueryError> {
    let mut items: BTreeMap<usize, RawItem> = BTreeMap::new();
    for &(index, attr, key, value) in entries {
        let slot = items.entry(index).or_default().slot(attr);
        if slot.is_some() {
            return Err(given_several_times(key));
        }
        *slot = Some(value.to_owned());
    }
    let gap = items
        .keys()
        .enumerate()
        .find(|&(position, &index)| position != index);
    if let Some((missing, _)) = gap {
        return Err(err(format!(
            "q items must be numbered from 0 without gaps: q[{missing}] is missing"
        )));
    }
    Ok(items.into_values().collect())
}

// --- the JSON body --------------------------------------------------------------------------------

/// The members of a JSON object in the order written (serde_json's own map is sorted unless the
/// `preserve_order` feature is on), with the values left unparsed.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Box<RawValue>>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonKind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

/// The text of a JSON value, without surrounding whitespace.
fn json_text(raw: &RawValue) -> &str {
    raw.get().trim_ascii()
}

fn json_kind(raw: &RawValue) -> JsonKind {
    match json_text(raw).as_bytes().first() {
        Some(b'n') => JsonKind::Null,
        Some(b't' | b'f') => JsonKind::Bool,
        Some(b'"') => JsonKind::String,
        Some(b'[') => JsonKind::Array,
        Some(b'{') => JsonKind::Object,
        _ => JsonKind::Number,
    }
}

fn invalid_json(error: serde_json::Error) -> QueryError {
    err(format!("Request body is not valid JSON: {error}"))
}

fn decode<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, QueryError> {
    serde_json::from_str(raw.get()).map_err(invalid_json)
}

/// The members of a body that must be a JSON object.
fn parse_json_object(body: &[u8]) -> Result<Vec<(String, Box<RawValue>)>, QueryError> {
    let raw: Box<RawValue> = serde_json::from_slice(body).map_err(invalid_json)?;
    if json_kind(&raw) != JsonKind::Object {
        return Err(err("Request must be a JSON dict"));
    }
    let Members(members) = decode(&raw)?;
    Ok(members)
}

fn parse_body(body: &[u8]) -> Result<Args, QueryError> {
    let members = parse_json_object(body)?;
    let unknown: Vec<String> = members
        .iter()
        .filter(|(key, _)| Param::from_name(key).is_none())
        .map(|(key, _)| key.clone())
        .collect();
    if !unknown.is_empty() {
        return Err(unknown_arguments(&unknown));
    }

    let mut args = Args::default();
    let mut seen: Vec<Param> = Vec::new();
    for (key, value) in &members {
        let Some(param) = Param::from_name(key) else {
            continue;
        };
        // Python's json module would silently keep the last of two equal keys; refusing is
        // clearer than guessing.
        if seen.contains(&param) {
            return Err(given_several_times(key));
        }
        seen.push(param);
        match param {
            Param::Q => args.q = body_q(value)?,
            Param::Limit => args.limit = body_limit(value)?,
            Param::Sort => args.sort = body_sort(value)?,
            Param::Marker => args.marker = body_marker(value)?,
        }
    }
    Ok(args)
}

fn body_q(raw: &RawValue) -> Result<Option<Vec<RawItem>>, QueryError> {
    match json_kind(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::Array => {
            let list: Vec<Box<RawValue>> = decode(raw)?;
            let items = list
                .iter()
                .enumerate()
                .map(|(index, item)| body_q_item(index, item))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(items))
        }
        _ => Err(err(
            "q in the JSON body must be a list of objects with the keys field, op, value and type",
        )),
    }
}

fn body_q_item(index: usize, raw: &RawValue) -> Result<RawItem, QueryError> {
    if json_kind(raw) != JsonKind::Object {
        return Err(err(format!(
            "q item {index} must be a JSON object with the keys field, op, value and type"
        )));
    }
    let Members(members) = decode(raw)?;
    let mut item = RawItem::default();
    let mut seen: Vec<Attr> = Vec::new();
    for (key, value) in &members {
        let attr = Attr::from_name(key)?;
        if seen.contains(&attr) {
            return Err(given_several_times(&format!("q[{index}].{key}")));
        }
        seen.push(attr);
        *item.slot(attr) = body_attribute(index, attr, value)?;
    }
    Ok(item)
}

fn body_attribute(index: usize, attr: Attr, raw: &RawValue) -> Result<Option<String>, QueryError> {
    match (json_kind(raw), attr) {
        (JsonKind::Null, _) => Ok(None),
        (JsonKind::String, _) => decode(raw).map(Some),
        // A number is taken as written, so `1.50` stays "1.50" and a big integer keeps its
        // digits; the item's type then converts it like any string value.
        (JsonKind::Number, Attr::Value) => Ok(Some(json_text(raw).to_owned())),
        (_, Attr::Value) => Err(err(format!(
            "q item {index}: value must be a JSON string or number"
        ))),
        (_, _) => Err(err(format!(
            "q item {index}: {} must be a JSON string",
            attr.name()
        ))),
    }
}

/// `limit` in a body: an integer (kept as written, then read like a query-string value) or a
/// string.
fn body_limit(raw: &RawValue) -> Result<Option<Vec<String>>, QueryError> {
    match json_kind(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::Number => Ok(Some(vec![json_text(raw).to_owned()])),
        JsonKind::String => decode(raw).map(|s| Some(vec![s])),
        _ => Err(err(format!(
            "Invalid input for field/attribute limit. Value: '{}'. limit must be a JSON integer \
             or string.",
            json_text(raw)
        ))),
    }
}

fn body_sort(raw: &RawValue) -> Result<Option<Vec<String>>, QueryError> {
    let wrong = || {
        err(format!(
            "Invalid input for field/attribute sort. Value: '{}'. sort must be a JSON string or \
             a list of strings.",
            json_text(raw)
        ))
    };
    match json_kind(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::String => decode(raw).map(|s| Some(vec![s])),
        JsonKind::Array => {
            let list: Vec<Box<RawValue>> = decode(raw)?;
            let values = list
                .iter()
                .map(|v| match json_kind(v) {
                    JsonKind::String => decode(v),
                    _ => Err(wrong()),
                })
                .collect::<Result<Vec<String>, _>>()?;
            Ok(Some(values))
        }
        _ => Err(wrong()),
    }
}

fn body_marker(raw: &RawValue) -> Result<Option<Vec<String>>, QueryError> {
    match json_kind(raw) {
        JsonKind::Null => Ok(None),
        JsonKind::String => decode(raw).map(|s| Some(vec![s])),
        _ => Err(err(format!(
            "Invalid input for field/attribute marker. Value: '{}'. marker must be a JSON string.",
            json_text(raw)
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: Panko's rules
// ---------------------------------------------------------------------------------------------

fn interpret(args: Args, opts: &ParseOptions) -> Result<EventQuery, QueryError> {
    // WSME converts `limit` and `marker` to their declared types before Panko's controller runs,
    // so those errors come before any q item error.
    let limit = args.limit.as_deref().map(limit_integer).transpose()?;
    let marker = args.marker.as_deref().map(single_marker).transpose()?;

    let items = args.q.unwrap_or_default();
    if items.len() > opts.max_q_items {
        return Err(err(format!(
            "Too many q items: {} were given, at most {} are accepted",
            items.len(),
            opts.max_q_items
        )));
    }
    let mut query = EventQuery::default();
    for (index, item) in items.iter().enumerate() {
        apply_item(&mut query, index, item, opts)?;
    }
    query.limit = match limit {
        Some(limit) => checked_limit(&limit, opts)?,
        None => None,
    };
    query.sort = parse_sort(args.sort.as_deref().unwrap_or_default())?;
    query.marker = match marker {
        Some(marker) => checked_marker(marker)?,
        None => None,
    };
    Ok(query)
}

// --- q items ----------------------------------------------------------------------------------------

fn apply_item(
    query: &mut EventQuery,
    index: usize,
    item: &RawItem,
    opts: &ParseOptions,
) -> Result<(), QueryError> {
    // Panko checks the operator first, whatever the field.
    let op = item_op(item)?;
    let field = match item.field.as_deref() {
        None | Some("") => {
            return Err(err(format!("q item {index} has no field: {FIELD_HINT}")));
        }
        Some(field) => field,
    };
    let value = item
        .value
        .as_deref()
        .ok_or_else(|| err(format!("q item {index} (field {field}) has no value")))?;

    // Event fields take the value as a raw string and ignore `type`; when one is given twice the
    // last one wins, as in Panko.
    match field {
        "event_type" => query.event_type = Some(event_string(field, op, value)?),
        "message_id" => query.message_id = Some(event_string(field, op, value)?),
        "start_timestamp" => query.start = Some(event_instant(field, op, Op::Ge, value)?),
        "end_timestamp" => query.end = Some(event_instant(field, op, Op::Le, value)?),
        // Only special for an admin-scoped caller; for anyone else Panko treats it as a trait.
        "all_tenants" if opts.admin => query.all_tenants = bool_from_string(value),
        _ => {
            let filter = trait_filter(field, op, item.ty.as_deref(), value, opts)?;
            query.traits.push(filter);
        }
    }
    Ok(())
}

fn item_op(item: &RawItem) -> Result<Op, QueryError> {
    match item.op.as_deref() {
        None | Some("") => Ok(Op::Eq),
        Some(name) => Op::from_api_name(name).ok_or_else(|| {
            err(format!(
                "Operator {name} is not supported. The supported operators are: {OPERATORS_TEXT}"
            ))
        }),
    }
}

/// Panko's text, with its backquote-apostrophe quoting.
fn require_op(field: &str, op: Op, required: Op) -> Result<(), QueryError> {
    if op == required {
        return Ok(());
    }
    Err(err(format!(
        "Operator {} is not supported. Only `{}' operator is available for field {field}",
        op.as_str(),
        required.as_str()
    )))
}

fn event_string(field: &str, op: Op, value: &str) -> Result<String, QueryError> {
    require_op(field, op, Op::Eq)?;
    reject_nul(value, || format!("The value of {field}"))?;
    Ok(value.to_owned())
}

/// `start_timestamp` needs `ge` and `end_timestamp` needs `le`, so the default `eq` fails.
fn event_instant(field: &str, op: Op, required: Op, value: &str) -> Result<i64, QueryError> {
    require_op(field, op, required)?;
    parse_instant(value).ok_or_else(|| {
        err(format!(
            "Unable to parse date string '{value}': {DATE_HINT}"
        ))
    })
}

/// oslo's `bool_from_string` (non-strict): anything but these spellings is false.
fn bool_from_string(value: &str) -> bool {
    let value = value.trim().to_lowercase();
    ["1", "t", "true", "on", "y", "yes"].contains(&value.as_str())
}

fn trait_filter(
    name: &str,
    op: Op,
    ty: Option<&str>,
    value: &str,
    opts: &ParseOptions,
) -> Result<TraitFilter, QueryError> {
    let ty = match ty {
        None | Some("") => TraitType::String,
        Some(ty) => TraitType::from_api_name(ty).ok_or_else(|| {
            err(format!(
                "The data type {ty} is not supported. The supported data type list is: \
                 {DATA_TYPES_TEXT}"
            ))
        })?,
    };
    let value = convert_value(value, ty)?;
    // PostgreSQL cannot store or compare text containing NUL.
    reject_nul(name, || "The trait name of a q item".to_owned())?;
    if let TraitValue::String(text) = &value {
        reject_nul(text, || format!("The value of trait {name}"))?;
        if text.len() > opts.max_value_bytes {
            return Err(err(format!(
                "The value of trait {name} is {} bytes long; string values are limited to {} bytes",
                text.len(),
                opts.max_value_bytes
            )));
        }
    }
    Ok(TraitFilter {
        name: name.to_owned(),
        op,
        value,
    })
}

fn convert_value(value: &str, ty: TraitType) -> Result<TraitValue, QueryError> {
    match ty {
        TraitType::String => Ok(TraitValue::String(value.to_owned())),
        TraitType::Integer => parse_integer(value).map(TraitValue::Integer),
        TraitType::Float => parse_float(value).map(TraitValue::Float),
        TraitType::Datetime => parse_instant(value)
            .map(TraitValue::Datetime)
            .ok_or_else(|| conversion_error(value, ty, "")),
    }
}

fn conversion_error(value: &str, ty: TraitType, detail: &str) -> QueryError {
    err(format!(
        "Unable to convert the value {value} to the expected data type {}.{detail}",
        ty.as_str()
    ))
}

/// Python's `int()` on the text, limited to the 64-bit range the store keeps: `1.5` is refused.
fn parse_integer(value: &str) -> Result<i64, QueryError> {
    value.trim_ascii().parse::<i64>().map_err(|e| {
        let detail = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
                " The value is outside the 64-bit integer range."
            }
            _ => "",
        };
        conversion_error(value, TraitType::Integer, detail)
    })
}

/// Floats are stored finite only, so a filter on NaN or infinity could never match.
fn parse_float(value: &str) -> Result<f64, QueryError> {
    match value.trim_ascii().parse::<f64>() {
        Ok(f) if f.is_finite() => Ok(f),
        Ok(_) => Err(conversion_error(
            value,
            TraitType::Float,
            " NaN and infinite values are not accepted.",
        )),
        Err(_) => Err(conversion_error(value, TraitType::Float, "")),
    }
}

fn reject_nul(text: &str, what: impl FnOnce() -> String) -> Result<(), QueryError> {
    if text.contains('\0') {
        return Err(err(format!(
            "{} contains a NUL character: {NUL_HINT}",
            what()
        )));
    }
    Ok(())
}

// --- limit --------------------------------------------------------------------------------------------

/// An integer as Python's `int()` reads it, of any size: the sign and the decimal digits without
/// leading zeros (`"0"` for zero, which is never negative).
#[derive(Debug, PartialEq)]
struct PyInt {
    negative: bool,
    digits: String,
}

impl fmt::Display for PyInt {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let sign = if self.negative { "-" } else { "" };
        write!(f, "{sign}{}", self.digits)
    }
}

/// Python's `int(text)`: surrounding whitespace and a sign are accepted.
fn python_int(text: &str) -> Option<PyInt> {
    let text = text.trim();
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = match unsigned.trim_start_matches('0') {
        "" => "0",
        digits => digits,
    };
    Some(PyInt {
        negative: negative && digits != "0",
        digits: digits.to_owned(),
    })
}

/// WSME's conversion of `limit` to an int, with its exact texts.
fn limit_integer(values: &[String]) -> Result<PyInt, QueryError> {
    match values {
        [value] => python_int(value).ok_or_else(|| {
            err(format!(
                "Invalid input for field/attribute limit. Value: '{value}'. unable to convert to \
                 int. Error: invalid literal for int() with base 10: {}",
                python_repr(value)
            ))
        }),
        // Given twice, WSME hands Python's int() the list itself.
        _ => Err(err(format!(
            "Invalid input for field/attribute limit. Value: '{}'. unable to convert to int. \
             Error: int() argument must be a string, a bytes-like object or a number, not 'list'",
            python_list_repr(values)
        ))),
    }
}

/// Panko's range rule (0 means the default) plus Almanac's maximum.
fn checked_limit(limit: &PyInt, opts: &ParseOptions) -> Result<Option<u32>, QueryError> {
    if limit.digits == "0" {
        return Ok(None);
    }
    if limit.negative {
        return Err(err(format!(
            "Invalid input for field/attribute limit. Value: '{limit}'. the limit should be a \
             positive integer."
        )));
    }
    match limit.digits.parse::<u32>() {
        Ok(n) if n <= opts.max_limit => Ok(Some(n)),
        _ => Err(err(format!(
            "Invalid input for field/attribute limit. Value: '{limit}'. the limit should not be \
             greater than {}.",
            opts.max_limit
        ))),
    }
}

// --- sort ----------------------------------------------------------------------------------------------

fn parse_sort(values: &[String]) -> Result<Vec<(SortKey, Direction)>, QueryError> {
    let mut sort: Vec<(SortKey, Direction)> = Vec::new();
    for value in values {
        let (key, direction) = parse_sort_value(value)?;
        // A repeated key cannot change the order any more, so only its first use counts.
        if !sort.iter().any(|&(k, _)| k == key) {
            sort.push((key, direction));
        }
    }
    Ok(sort)
}

/// One `key[:dir]`, split like Python's `str.partition(':')`: at the first colon only, so there is
/// no comma syntax and `generated:asc:x` has the direction `asc:x`.
fn parse_sort_value(value: &str) -> Result<(SortKey, Direction), QueryError> {
    let (key, direction) = value.split_once(':').unwrap_or((value, ""));
    let key = match key {
        "generated" => SortKey::Generated,
        "message_id" => SortKey::MessageId,
        _ => {
            return Err(err(format!(
                "Invalid input for field/attribute sort. Value: '{value}'. {SORT_HINT}, the \
                 supported sort keys are: ('message_id', 'generated')"
            )))
        }
    };
    let direction = match direction {
        "" | "asc" => Direction::Asc,
        "desc" => Direction::Desc,
        _ => {
            return Err(err(format!(
                "Invalid input for field/attribute sort direction. Value: '{value}'. {SORT_HINT}, \
                 the supported sort directions are: ('asc', 'desc')"
            )))
        }
    };
    Ok((key, direction))
}

// --- marker --------------------------------------------------------------------------------------------

fn single_marker(values: &[String]) -> Result<String, QueryError> {
    match values {
        [value] => Ok(value.clone()),
        _ => Err(err(format!(
            "Invalid input for field/attribute marker. Value: '{}'. marker must be given once.",
            python_list_repr(values)
        ))),
    }
}

fn checked_marker(marker: String) -> Result<Option<String>, QueryError> {
    if marker.is_empty() {
        return Ok(None);
    }
    reject_nul(&marker, || "The marker".to_owned())?;
    Ok(Some(marker))
}

// --- Python reprs used in WSME's texts ---------------------------------------------------------------

/// Python's `repr()` of a str: single quotes unless the text has a `'` and no `"`.
fn python_repr(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() && u32::from(c) <= 0xff => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr()` of a list of str.
fn python_list_repr(values: &[String]) -> String {
    let items: Vec<String> = values.iter().map(|v| python_repr(v)).collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const T_2014: i64 = 1_388_552_400_000_000; // 2014-01-01T05:00:00Z

    fn opts() -> ParseOptions {
        ParseOptions {
            admin: false,
            max_limit: 10_000,
            max_q_items: 20,
            max_value_bytes: 1024,
        }
    }

    fn admin() -> ParseOptions {
        ParseOptions {
            admin: true,
            ..opts()
        }
    }

    fn parse(qs: &str) -> Result<EventQuery, QueryError> {
        parse_event_query(qs, None, &opts())
    }

    fn parse_body_json(qs: &str, body: serde_json::Value) -> Result<EventQuery, QueryError> {
        parse_event_query(qs, Some(body.to_string().as_bytes()), &opts())
    }

    /// The error text of a request that must fail.
    fn fail(qs: &str) -> String {
        match parse(qs) {
            Ok(query) => panic!("{qs:?} was accepted as {query:?}"),
            Err(QueryError(text)) => text,
        }
    }

    fn fail_body(qs: &str, body: &str) -> String {
        match parse_event_query(qs, Some(body.as_bytes()), &opts()) {
            Ok(query) => panic!("{body:?} was accepted as {query:?}"),
            Err(QueryError(text)) => text,
        }
    }

    fn string_filter(name: &str, op: Op, value: &str) -> TraitFilter {
        TraitFilter {
            name: name.into(),
            op,
            value: TraitValue::String(value.into()),
        }
    }

    // --- rule 1: unknown arguments -------------------------------------------------------------

    #[test]
    fn empty_query_is_the_default() {
        assert_eq!(parse(""), Ok(EventQuery::default()));
        assert_eq!(parse("&&"), Ok(EventQuery::default()));
    }

    #[test]
    fn unknown_argument_is_named() {
        assert_eq!(
            fail("bad_Stuff_here=1"),
            r#"Unknown argument: "bad_Stuff_here""#
        );
        assert_eq!(
            fail("all_tenants=True"),
            r#"Unknown argument: "all_tenants""#
        );
        assert_eq!(fail("Limit=1"), r#"Unknown argument: "Limit""#);
    }

    #[test]
    fn unknown_arguments_are_joined_in_order_without_repeats() {
        assert_eq!(
            fail("bad_Stuff_here=1&limit=2&other=3&bad_Stuff_here=4"),
            r#"Unknown argument: "bad_Stuff_here, other""#
        );
    }

    #[test]
    fn unknown_arguments_are_checked_before_anything_else() {
        assert_eq!(
            fail("q.op=whats-up&q.field=a&q.value=b&limit=abc&x=1"),
            r#"Unknown argument: "x""#
        );
        assert_eq!(fail("q=abc&x=1"), r#"Unknown argument: "x""#);
    }

    #[test]
    fn malformed_indexed_keys_are_unknown_arguments() {
        assert_eq!(fail("q[a].field=x"), r#"Unknown argument: "q[a].field""#);
        assert_eq!(fail("q[].field=x"), r#"Unknown argument: "q[].field""#);
        assert_eq!(fail("q[-1].field=x"), r#"Unknown argument: "q[-1].field""#);
        assert_eq!(fail("q[0]=x"), r#"Unknown argument: "q[0]""#);
        assert_eq!(fail("q[0]field=x"), r#"Unknown argument: "q[0]field""#);
        assert_eq!(fail("qq.field=x"), r#"Unknown argument: "qq.field""#);
    }

    #[test]
    fn bare_q_is_refused_with_a_hint() {
        assert_eq!(
            fail("q=event_type%3DFoo"),
            "Invalid input for field/attribute q. Value: 'event_type=Foo'. q must be sent as \
             q.field/q.op/q.value/q.type arrays, as q[0].field=... items, or as a JSON body"
        );
    }

    // --- rule 2: q attributes --------------------------------------------------------------------

    #[test]
    fn unknown_q_attribute_is_named() {
        let text = "Unknown attribute for argument q: bogus";
        assert_eq!(fail("q.field=a&q.bogus=1"), text);
        assert_eq!(fail("q[0].field=a&q[0].bogus=1"), text);
        assert_eq!(
            fail_body("", r#"{"q": [{"field": "a", "bogus": "1"}]}"#),
            text
        );
    }

    // --- rule 3: encodings -----------------------------------------------------------------------

    #[test]
    fn parallel_arrays_are_zipped_by_position() {
        let query = parse(
            "q.field=trait_A&q.op=ne&q.value=x&q.type=string\
             &q.field=trait_B&q.op=gt&q.value=5&q.type=integer",
        )
        .unwrap();
        assert_eq!(
            query.traits,
            vec![
                string_filter("trait_A", Op::Ne, "x"),
                TraitFilter {
                    name: "trait_B".into(),
                    op: Op::Gt,
                    value: TraitValue::Integer(5),
                },
            ]
        );
    }

    #[test]
    fn attribute_arrays_may_be_interleaved_in_any_order() {
        let query = parse("q.value=1&q.value=2&q.field=a&q.field=b").unwrap();
        assert_eq!(
            query.traits,
            vec![
                string_filter("a", Op::Eq, "1"),
                string_filter("b", Op::Eq, "2")
            ]
        );
    }

    #[test]
    fn unsent_attribute_is_absent_for_every_item() {
        // No q.op and no q.type: eq and string for both items (pankoclient's shape).
        let query =
            parse("q.field=event_type&q.value=Foo&q.field=trait_A&q.value=my%20Foo").unwrap();
        assert_eq!(query.event_type.as_deref(), Some("Foo"));
        assert_eq!(
            query.traits,
            vec![string_filter("trait_A", Op::Eq, "my Foo")]
        );
    }

    #[test]
    fn plus_decodes_to_space() {
        let query = parse("q.field=a&q.value=b+c%2Bd").unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "b c+d")]);
    }

    #[test]
    fn parallel_arrays_of_different_lengths_are_refused() {
        assert_eq!(
            fail("q.field=a&q.field=b&q.value=1"),
            "The q arrays have different lengths: q.field has 2 values, q.value has 1. Send the \
             same number of q.field, q.op, q.value and q.type values (use an empty value where an \
             item does not need one)"
        );
        let text = fail("q.field=a&q.op=eq&q.value=1&q.value=2&q.type=string");
        assert!(
            text.starts_with(
                "The q arrays have different lengths: q.field has 1 value, q.op has 1, \
                 q.value has 2, q.type has 1. "
            ),
            "{text}"
        );
    }

    #[test]
    fn indexed_items_are_ordered_by_index() {
        let query = parse("q[1].field=b&q[1].value=2&q[0].value=1&q[0].field=a").unwrap();
        assert_eq!(
            query.traits,
            vec![
                string_filter("a", Op::Eq, "1"),
                string_filter("b", Op::Eq, "2")
            ]
        );
    }

    #[test]
    fn indexed_items_use_decimal_indices_up_to_ten_and_beyond() {
        let qs: String = (0..12)
            .rev()
            .map(|i| format!("q[{i}].field=t{i}&q[{i}].value=v{i}&"))
            .collect();
        let query = parse(&qs).unwrap();
        let names: Vec<&str> = query.traits.iter().map(|t| t.name.as_str()).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn percent_encoded_brackets_are_indexed_keys() {
        let query = parse("q%5B0%5D.field=a&q%5B0%5D.value=1").unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "1")]);
    }

    #[test]
    fn indexed_items_must_have_no_gaps() {
        assert_eq!(
            fail("q[0].field=a&q[0].value=1&q[2].field=b&q[2].value=2"),
            "q items must be numbered from 0 without gaps: q[1] is missing"
        );
        assert_eq!(
            fail("q[1].field=a&q[1].value=1"),
            "q items must be numbered from 0 without gaps: q[0] is missing"
        );
        assert_eq!(
            fail("q[0].field=a&q[0].value=1&q[99999999999999999999999].field=b"),
            "q items must be numbered from 0 without gaps: q[1] is missing"
        );
    }

    #[test]
    fn indexed_key_given_twice_is_refused() {
        assert_eq!(
            fail("q[0].field=a&q[0].value=1&q[0].field=b"),
            "Parameter q[0].field was given several times"
        );
    }

    #[test]
    fn mixing_encodings_is_refused() {
        let text = fail("q.field=a&q.value=1&q[0].field=b&q[0].value=2");
        assert!(text.contains("one encoding"), "{text}");
        assert!(text.contains("q[N].field"), "{text}");
    }

    #[test]
    fn three_encodings_give_equal_queries() {
        let parallel = "q.field=event_type&q.op=eq&q.value=Foo&q.type=\
            &q.field=start_timestamp&q.op=ge&q.value=2014-01-01T05%3A00%3A00&q.type=\
            &q.field=trait_B&q.op=le&q.value=101&q.type=integer\
            &q.field=trait_A&q.op=&q.value=my+Foo&q.type=string\
            &limit=5&sort=generated%3Adesc&sort=message_id&marker=abc";
        let indexed = "q[0].field=event_type&q[0].value=Foo\
            &q[1].field=start_timestamp&q[1].op=ge&q[1].value=2014-01-01T05:00:00\
            &q[2].field=trait_B&q[2].op=le&q[2].value=101&q[2].type=integer\
            &q[3].field=trait_A&q[3].value=my%20Foo\
            &limit=5&sort=generated:desc&sort=message_id&marker=abc";
        let body = json!({
            "q": [
                {"field": "event_type", "value": "Foo"},
                {"field": "start_timestamp", "op": "ge", "value": "2014-01-01T05:00:00"},
                {"field": "trait_B", "op": "le", "value": 101, "type": "integer"},
                {"field": "trait_A", "op": null, "value": "my Foo", "type": "string"},
            ],
            "limit": 5,
            "sort": ["generated:desc", "message_id"],
            "marker": "abc",
        });
        let expected = EventQuery {
            event_type: Some("Foo".into()),
            start: Some(T_2014),
            traits: vec![
                TraitFilter {
                    name: "trait_B".into(),
                    op: Op::Le,
                    value: TraitValue::Integer(101),
                },
                string_filter("trait_A", Op::Eq, "my Foo"),
            ],
            limit: Some(5),
            sort: vec![
                (SortKey::Generated, Direction::Desc),
                (SortKey::MessageId, Direction::Asc),
            ],
            marker: Some("abc".into()),
            ..EventQuery::default()
        };
        assert_eq!(parse(parallel), Ok(expected.clone()));
        assert_eq!(parse(indexed), Ok(expected.clone()));
        assert_eq!(parse_body_json("", body), Ok(expected));
    }

    // --- rule 3, encoding 3: the JSON body --------------------------------------------------------

    #[test]
    fn body_must_be_a_json_object() {
        assert_eq!(fail_body("", "[]"), "Request must be a JSON dict");
        assert_eq!(fail_body("", r#""q""#), "Request must be a JSON dict");
        assert_eq!(fail_body("", " null "), "Request must be a JSON dict");
    }

    #[test]
    fn body_must_be_valid_json() {
        let text = fail_body("", "{\"q\": ");
        assert!(
            text.starts_with("Request body is not valid JSON: EOF while parsing"),
            "{text}"
        );
        let text = fail_body("", "{} x");
        assert!(
            text.starts_with("Request body is not valid JSON: trailing characters"),
            "{text}"
        );
        let text = fail_body("", "\u{ff}");
        assert!(
            text.starts_with("Request body is not valid JSON: "),
            "{text}"
        );
    }

    #[test]
    fn body_lone_surrogate_is_invalid_json_not_a_panic() {
        let text = fail_body("", r#"{"marker": "\ud800"}"#);
        assert!(
            text.starts_with("Request body is not valid JSON: "),
            "{text}"
        );
    }

    #[test]
    fn body_unknown_keys_are_unknown_arguments_in_written_order() {
        assert_eq!(
            fail_body("", r#"{"zeta": 1, "limit": 2, "alpha": 3, "zeta": 4}"#),
            r#"Unknown argument: "zeta, alpha""#
        );
    }

    #[test]
    fn empty_body_object_is_the_default() {
        assert_eq!(parse_body_json("", json!({})), Ok(EventQuery::default()));
    }

    #[test]
    fn body_q_must_be_a_list_of_objects() {
        let text = fail_body("", r#"{"q": {"field": "a"}}"#);
        assert!(
            text.starts_with("q in the JSON body must be a list of objects"),
            "{text}"
        );
        assert_eq!(
            fail_body("", r#"{"q": [{"field": "a", "value": "1"}, "x"]}"#),
            "q item 1 must be a JSON object with the keys field, op, value and type"
        );
    }

    #[test]
    fn body_q_null_is_absent() {
        assert_eq!(
            parse_body_json("", json!({"q": null})),
            Ok(EventQuery::default())
        );
        // ... and so does not clash with a query-string q.
        let query = parse_body_json("q.field=a&q.value=1", json!({"q": null})).unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "1")]);
    }

    #[test]
    fn body_number_value_is_taken_as_written() {
        let query = parse_body_json(
            "",
            json!({"q": [{"field": "f", "value": 2.5, "type": "float"},
                         {"field": "s", "value": 10}]}),
        )
        .unwrap();
        assert_eq!(
            query.traits,
            vec![
                TraitFilter {
                    name: "f".into(),
                    op: Op::Eq,
                    value: TraitValue::Float(2.5),
                },
                string_filter("s", Op::Eq, "10"),
            ]
        );
        // The text as written, not serde's re-rendering: 1.50 stays "1.50", and an integer
        // beyond 64 bits keeps its digits.
        let query = parse_event_query(
            "",
            Some(
                br#"{"q": [{"field": "s", "value": 1.50},
                            {"field": "b", "value": 123456789012345678901234567890}]}"#,
            ),
            &opts(),
        )
        .unwrap();
        assert_eq!(
            query.traits,
            vec![
                string_filter("s", Op::Eq, "1.50"),
                string_filter("b", Op::Eq, "123456789012345678901234567890"),
            ]
        );
    }

    #[test]
    fn body_null_value_is_absent() {
        assert_eq!(
            fail_body("", r#"{"q": [{"field": "x", "value": null}]}"#),
            "q item 0 (field x) has no value"
        );
    }

    #[test]
    fn body_attribute_of_another_type_is_refused() {
        assert_eq!(
            fail_body("", r#"{"q": [{"field": "x", "value": true}]}"#),
            "q item 0: value must be a JSON string or number"
        );
        assert_eq!(
            fail_body("", r#"{"q": [{"field": 3, "value": "1"}]}"#),
            "q item 0: field must be a JSON string"
        );
        assert_eq!(
            fail_body(
                "",
                r#"{"q": [{"field": "x", "value": "1", "type": ["integer"]}]}"#
            ),
            "q item 0: type must be a JSON string"
        );
    }

    #[test]
    fn body_item_attribute_given_twice_is_refused() {
        assert_eq!(
            fail_body("", r#"{"q": [{"field": "x", "value": "1", "field": "y"}]}"#),
            "Parameter q[0].field was given several times"
        );
    }

    #[test]
    fn body_key_given_twice_is_refused() {
        assert_eq!(
            fail_body("", r#"{"limit": 1, "limit": 2}"#),
            "Parameter limit was given several times"
        );
    }

    #[test]
    fn body_limit_sort_marker_shapes() {
        let query = parse_body_json(
            "",
            json!({"limit": "7", "sort": "message_id:desc", "marker": "m"}),
        )
        .unwrap();
        assert_eq!(query.limit, Some(7));
        assert_eq!(query.sort, vec![(SortKey::MessageId, Direction::Desc)]);
        assert_eq!(query.marker.as_deref(), Some("m"));

        let query = parse_body_json("", json!({"limit": 7, "sort": ["generated"]})).unwrap();
        assert_eq!(query.limit, Some(7));
        assert_eq!(query.sort, vec![(SortKey::Generated, Direction::Asc)]);

        assert_eq!(
            fail_body("", r#"{"limit": true}"#),
            "Invalid input for field/attribute limit. Value: 'true'. limit must be a JSON \
             integer or string."
        );
        assert_eq!(
            fail_body("", r#"{"limit": 1.5}"#),
            "Invalid input for field/attribute limit. Value: '1.5'. unable to convert to int. \
             Error: invalid literal for int() with base 10: '1.5'"
        );
        assert_eq!(
            fail_body("", r#"{"sort": ["generated", 1]}"#),
            "Invalid input for field/attribute sort. Value: '[\"generated\", 1]'. sort must be a \
             JSON string or a list of strings."
        );
        assert_eq!(
            fail_body("", r#"{"marker": 5}"#),
            "Invalid input for field/attribute marker. Value: '5'. marker must be a JSON string."
        );
    }

    #[test]
    fn parameter_in_query_string_and_body_is_refused() {
        for (qs, body, name) in [
            ("limit=1", r#"{"limit": 2}"#, "limit"),
            ("sort=generated", r#"{"sort": "generated"}"#, "sort"),
            ("marker=a", r#"{"marker": "b"}"#, "marker"),
            ("q.field=a&q.value=1", r#"{"q": []}"#, "q"),
            ("q[0].field=a&q[0].value=1", r#"{"q": []}"#, "q"),
        ] {
            assert_eq!(
                fail_body(qs, body),
                format!("Parameter {name} was given several times")
            );
        }
    }

    #[test]
    fn query_string_and_body_parameters_combine() {
        let query = parse_body_json(
            "limit=3&sort=message_id",
            json!({"q": [{"field": "event_type", "value": "Foo"}], "marker": "m"}),
        )
        .unwrap();
        assert_eq!(
            query,
            EventQuery {
                event_type: Some("Foo".into()),
                limit: Some(3),
                sort: vec![(SortKey::MessageId, Direction::Asc)],
                marker: Some("m".into()),
                ..EventQuery::default()
            }
        );
    }

    // --- rule 4: item count --------------------------------------------------------------------------

    #[test]
    fn too_many_items_are_refused() {
        let qs =
            |n: usize| -> String { (0..n).map(|i| format!("q.field=t{i}&q.value=v&")).collect() };
        assert_eq!(parse(&qs(20)).map(|q| q.traits.len()), Ok(20));
        assert_eq!(
            fail(&qs(21)),
            "Too many q items: 21 were given, at most 20 are accepted"
        );
    }

    // --- rule 5a: operators --------------------------------------------------------------------------

    #[test]
    fn unknown_operator_text_is_pankos() {
        assert_eq!(
            fail("q.field=trait_A&q.op=whats-up&q.value=x"),
            "Operator whats-up is not supported. The supported operators are: ('lt', 'le', \
             'eq', 'ne', 'ge', 'gt')"
        );
    }

    #[test]
    fn operator_is_checked_before_anything_else_in_the_item() {
        // No field, no value, bad type: the operator still decides.
        let text = fail("q[0].op=EQ&q[0].type=whats-up");
        assert!(text.starts_with("Operator EQ is not supported."), "{text}");
    }

    #[test]
    fn first_bad_item_decides() {
        let text = fail("q.field=a&q.op=bad1&q.value=1&q.field=&q.op=bad2&q.value=2");
        assert!(text.starts_with("Operator bad1 "), "{text}");
        let text = fail("q.field=&q.op=eq&q.value=1&q.field=b&q.op=bad2&q.value=2");
        assert!(text.starts_with("q item 0 has no field"), "{text}");
    }

    #[test]
    fn every_operator_is_accepted_on_traits() {
        for op in Op::ALL {
            let query = parse(&format!("q.field=a&q.op={}&q.value=1", op.as_str())).unwrap();
            assert_eq!(query.traits, vec![string_filter("a", op, "1")]);
        }
    }

    #[test]
    fn empty_operator_means_eq() {
        let query = parse("q.field=a&q.op=&q.value=1").unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "1")]);
    }

    // --- rule 5b: field and value --------------------------------------------------------------------

    #[test]
    fn item_without_field_is_refused() {
        let expected = "q item 0 has no field: every q item needs a field (event_type, \
                        message_id, start_timestamp, end_timestamp, all_tenants or a trait name)";
        assert_eq!(fail("q.value=1"), expected);
        assert_eq!(fail("q.field=&q.value=1"), expected);
        assert_eq!(fail_body("", r#"{"q": [{"value": "1"}]}"#), expected);
        let text = fail("q.field=a&q.value=1&q.field=&q.value=2");
        assert!(text.starts_with("q item 1 has no field"), "{text}");
    }

    #[test]
    fn item_without_value_is_refused() {
        assert_eq!(fail("q.field=x"), "q item 0 (field x) has no value");
        assert_eq!(
            fail("q[0].field=event_type"),
            "q item 0 (field event_type) has no value"
        );
    }

    #[test]
    fn empty_value_is_a_value() {
        let query = parse("q.field=a&q.value=&q.field=event_type&q.value=").unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "")]);
        assert_eq!(query.event_type.as_deref(), Some(""));
        let query = parse("q.field=a&q.value").unwrap();
        assert_eq!(query.traits, vec![string_filter("a", Op::Eq, "")]);
    }

    // --- rule 5c: event fields -----------------------------------------------------------------------

    #[test]
    fn event_type_and_message_id_need_eq() {
        assert_eq!(
            fail("q.field=event_type&q.op=ne&q.value=Foo"),
            "Operator ne is not supported. Only `eq' operator is available for field event_type"
        );
        assert_eq!(
            fail("q.field=message_id&q.op=lt&q.value=1"),
            "Operator lt is not supported. Only `eq' operator is available for field message_id"
        );
        let query = parse("q.field=message_id&q.op=eq&q.value=abc").unwrap();
        assert_eq!(query.message_id.as_deref(), Some("abc"));
        assert!(query.traits.is_empty());
    }

    #[test]
    fn event_fields_ignore_type() {
        let query = parse(
            "q.field=event_type&q.op=&q.value=12&q.type=whats-up\
             &q.field=start_timestamp&q.op=ge&q.value=2014-01-01T05:00:00&q.type=integer",
        )
        .unwrap();
        assert_eq!(query.event_type.as_deref(), Some("12"));
        assert_eq!(query.start, Some(T_2014));
    }

    #[test]
    fn timestamps_need_their_operator() {
        assert_eq!(
            fail("q.field=start_timestamp&q.value=2014-01-01"),
            "Operator eq is not supported. Only `ge' operator is available for field \
             start_timestamp"
        );
        assert_eq!(
            fail("q.field=start_timestamp&q.op=gt&q.value=2014-01-01"),
            "Operator gt is not supported. Only `ge' operator is available for field \
             start_timestamp"
        );
        assert_eq!(
            fail("q.field=end_timestamp&q.op=gt&q.value=2014-01-01"),
            "Operator gt is not supported. Only `le' operator is available for field \
             end_timestamp"
        );
    }

    #[test]
    fn timestamps_are_parsed() {
        let query = parse(
            "q.field=start_timestamp&q.op=ge&q.value=2014-01-01T02%3A00%3A00%2B02%3A00\
             &q.field=end_timestamp&q.op=le&q.value=2014-01-01T05:00:00",
        )
        .unwrap();
        assert_eq!(query.start, Some(1_388_534_400_000_000));
        assert_eq!(query.end, Some(T_2014));
    }

    #[test]
    fn unparsable_timestamp_is_a_400() {
        assert_eq!(
            fail("q.field=end_timestamp&q.op=le&q.value=notadate"),
            "Unable to parse date string 'notadate': expected an ISO 8601 date or date-time such \
             as 2014-01-01, 2014-01-01T05:00:00 or 2014-01-01T05:00:00+02:00"
        );
    }

    #[test]
    fn last_event_field_wins() {
        let query = parse("q.field=event_type&q.value=Foo&q.field=event_type&q.value=Bar").unwrap();
        assert_eq!(query.event_type.as_deref(), Some("Bar"));
        assert!(query.traits.is_empty());
    }

    #[test]
    fn generated_is_a_trait() {
        let query = parse("q.field=generated&q.op=ge&q.value=2014-01-01").unwrap();
        assert_eq!(
            query.traits,
            vec![string_filter("generated", Op::Ge, "2014-01-01")]
        );
        assert_eq!(query.start, None);
    }

    // --- rule 5d: all_tenants ------------------------------------------------------------------------

    #[test]
    fn all_tenants_for_admin_uses_oslo_booleans() {
        for value in ["1", "t", "True", "ON", "y", "yes", " Yes "] {
            let qs = format!("q.field=all_tenants&q.value={}", value.replace(' ', "+"));
            let query = parse_event_query(&qs, None, &admin()).unwrap();
            assert!(query.all_tenants, "{value:?} should be true");
            assert!(query.traits.is_empty());
        }
        for value in ["0", "false", "no", "", "2", "truthy"] {
            let qs = format!("q.field=all_tenants&q.value={value}");
            let query = parse_event_query(&qs, None, &admin()).unwrap();
            assert!(!query.all_tenants, "{value:?} should be false");
            assert!(query.traits.is_empty());
        }
    }

    #[test]
    fn all_tenants_ignores_op_and_type() {
        let query = parse_event_query(
            "q.field=all_tenants&q.op=ne&q.value=True&q.type=whats-up",
            None,
            &admin(),
        )
        .unwrap();
        assert!(query.all_tenants);
    }

    #[test]
    fn last_all_tenants_decides() {
        let qs = "q.field=all_tenants&q.value=true&q.field=all_tenants&q.value=false";
        assert!(!parse_event_query(qs, None, &admin()).unwrap().all_tenants);
        let qs = "q.field=all_tenants&q.value=false&q.field=all_tenants&q.value=true";
        assert!(parse_event_query(qs, None, &admin()).unwrap().all_tenants);
    }

    #[test]
    fn all_tenants_is_a_trait_for_non_admins() {
        let query = parse("q.field=all_tenants&q.value=True").unwrap();
        assert!(!query.all_tenants);
        assert_eq!(
            query.traits,
            vec![string_filter("all_tenants", Op::Eq, "True")]
        );
        // ... and so its type is checked like any trait's.
        let text = fail("q.field=all_tenants&q.value=True&q.type=boolean");
        assert!(
            text.starts_with("The data type boolean is not supported."),
            "{text}"
        );
    }

    // --- rule 5e: trait filters ----------------------------------------------------------------------

    fn typed(value: &str, ty: &str) -> Result<TraitValue, QueryError> {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("q.field", "t")
            .append_pair("q.value", value)
            .append_pair("q.type", ty)
            .finish();
        let mut query = parse(&qs)?;
        assert_eq!(query.traits.len(), 1);
        Ok(query.traits.remove(0).value)
    }

    #[test]
    fn trait_type_defaults_to_string() {
        assert_eq!(typed("101", ""), Ok(TraitValue::String("101".into())));
        assert_eq!(typed(" a ", "string"), Ok(TraitValue::String(" a ".into())));
    }

    #[test]
    fn unsupported_type_text_is_pankos() {
        let expected = "The data type whats-up is not supported. The supported data type list \
                        is: ['integer', 'float', 'string', 'datetime']";
        assert_eq!(typed("1", "whats-up"), Err(err(expected)));
        assert_eq!(
            typed("true", "boolean"),
            Err(err(expected.replace("whats-up", "boolean")))
        );
        assert!(typed("1", "Integer").is_err());
    }

    #[test]
    fn integer_values() {
        assert_eq!(typed("42", "integer"), Ok(TraitValue::Integer(42)));
        assert_eq!(typed(" +42\t", "integer"), Ok(TraitValue::Integer(42)));
        assert_eq!(typed("-7", "integer"), Ok(TraitValue::Integer(-7)));
        assert_eq!(
            typed("9223372036854775807", "integer"),
            Ok(TraitValue::Integer(i64::MAX))
        );
        assert_eq!(
            typed("-9223372036854775808", "integer"),
            Ok(TraitValue::Integer(i64::MIN))
        );
        assert_eq!(
            typed("abc", "integer"),
            Err(err(
                "Unable to convert the value abc to the expected data type integer."
            ))
        );
        assert_eq!(
            typed("1.5", "integer"),
            Err(err(
                "Unable to convert the value 1.5 to the expected data type integer."
            ))
        );
        assert!(typed("", "integer").is_err());
        assert!(typed("-", "integer").is_err());
        assert_eq!(
            typed("9223372036854775808", "integer"),
            Err(err(
                "Unable to convert the value 9223372036854775808 to the expected data type \
                 integer. The value is outside the 64-bit integer range."
            ))
        );
        assert_eq!(
            typed("-99999999999999999999", "integer"),
            Err(err(
                "Unable to convert the value -99999999999999999999 to the expected data type \
                 integer. The value is outside the 64-bit integer range."
            ))
        );
    }

    #[test]
    fn float_values() {
        assert_eq!(
            typed("100.123456", "float"),
            Ok(TraitValue::Float(100.123456))
        );
        assert_eq!(typed(" 1e3 ", "float"), Ok(TraitValue::Float(1000.0)));
        assert_eq!(typed("-2", "float"), Ok(TraitValue::Float(-2.0)));
        assert_eq!(
            typed("abc", "float"),
            Err(err(
                "Unable to convert the value abc to the expected data type float."
            ))
        );
        for special in ["nan", "NaN", "inf", "-Infinity", "1e400"] {
            assert_eq!(
                typed(special, "float"),
                Err(err(format!(
                    "Unable to convert the value {special} to the expected data type float. NaN \
                     and infinite values are not accepted."
                )))
            );
        }
    }

    #[test]
    fn datetime_values() {
        assert_eq!(
            typed("2014-01-01T05:00:00", "datetime"),
            Ok(TraitValue::Datetime(T_2014))
        );
        assert_eq!(
            typed("notadate", "datetime"),
            Err(err(
                "Unable to convert the value notadate to the expected data type datetime."
            ))
        );
    }

    #[test]
    fn nul_characters_are_refused() {
        let text = fail("q.field=event_type&q.value=a%00b");
        assert_eq!(
            text,
            "The value of event_type contains a NUL character: NUL characters are not accepted"
        );
        assert!(fail("q.field=message_id&q.value=%00").contains("NUL characters are not accepted"));
        assert_eq!(
            fail("q.field=t&q.value=%00"),
            "The value of trait t contains a NUL character: NUL characters are not accepted"
        );
        assert!(fail("q.field=t%00&q.value=x").contains("NUL characters are not accepted"));
        assert_eq!(
            fail("marker=a%00"),
            "The marker contains a NUL character: NUL characters are not accepted"
        );
        assert!(
            fail_body("", r#"{"q": [{"field": "t", "value": "\u0000"}]}"#)
                .contains("NUL characters are not accepted")
        );
    }

    #[test]
    fn long_string_values_are_refused() {
        let at_limit = "a".repeat(1024);
        assert_eq!(
            typed(&at_limit, "string"),
            Ok(TraitValue::String(at_limit.clone()))
        );
        let too_long = "é".repeat(513); // 1026 bytes, 513 characters
        assert_eq!(
            typed(&too_long, "string"),
            Err(err(
                "The value of trait t is 1026 bytes long; string values are limited to 1024 bytes"
            ))
        );
        // Only string values are limited.
        let long_number = format!("{}1", "0".repeat(2000));
        assert_eq!(typed(&long_number, "integer"), Ok(TraitValue::Integer(1)));
    }

    // --- rule 6: limit ----------------------------------------------------------------------------------

    #[test]
    fn limit_values() {
        assert_eq!(parse("limit=5").map(|q| q.limit), Ok(Some(5)));
        assert_eq!(parse("limit=+5").map(|q| q.limit), Ok(Some(5)));
        assert_eq!(parse("limit=%205%20").map(|q| q.limit), Ok(Some(5)));
        assert_eq!(parse("limit=007").map(|q| q.limit), Ok(Some(7)));
        assert_eq!(parse("limit=10000").map(|q| q.limit), Ok(Some(10_000)));
        assert_eq!(parse("limit=0").map(|q| q.limit), Ok(None));
        assert_eq!(parse("limit=-0").map(|q| q.limit), Ok(None));
        assert_eq!(parse("").map(|q| q.limit), Ok(None));
    }

    #[test]
    fn limit_not_an_integer() {
        assert_eq!(
            fail("limit=abc"),
            "Invalid input for field/attribute limit. Value: 'abc'. unable to convert to int. \
             Error: invalid literal for int() with base 10: 'abc'"
        );
        assert_eq!(
            fail("limit="),
            "Invalid input for field/attribute limit. Value: ''. unable to convert to int. \
             Error: invalid literal for int() with base 10: ''"
        );
        assert_eq!(
            fail("limit=1.0"),
            "Invalid input for field/attribute limit. Value: '1.0'. unable to convert to int. \
             Error: invalid literal for int() with base 10: '1.0'"
        );
        // Python's repr switches quotes when the text has an apostrophe.
        assert_eq!(
            fail("limit=a'b"),
            "Invalid input for field/attribute limit. Value: 'a'b'. unable to convert to int. \
             Error: invalid literal for int() with base 10: \"a'b\""
        );
    }

    #[test]
    fn limit_given_twice() {
        assert_eq!(
            fail("limit=1&limit=2"),
            "Invalid input for field/attribute limit. Value: '['1', '2']'. unable to convert to \
             int. Error: int() argument must be a string, a bytes-like object or a number, not \
             'list'"
        );
    }

    #[test]
    fn limit_negative() {
        assert_eq!(
            fail("limit=-1"),
            "Invalid input for field/attribute limit. Value: '-1'. the limit should be a \
             positive integer."
        );
        assert_eq!(
            fail("limit=%20-01"),
            "Invalid input for field/attribute limit. Value: '-1'. the limit should be a \
             positive integer."
        );
    }

    #[test]
    fn limit_above_maximum() {
        assert_eq!(
            fail("limit=20000"),
            "Invalid input for field/attribute limit. Value: '20000'. the limit should not be \
             greater than 10000."
        );
        assert_eq!(
            fail("limit=123456789012345678901234567890"),
            "Invalid input for field/attribute limit. Value: '123456789012345678901234567890'. \
             the limit should not be greater than 10000."
        );
        let small = ParseOptions {
            max_limit: 50,
            ..opts()
        };
        assert_eq!(
            parse_event_query("limit=51", None, &small),
            Err(err(
                "Invalid input for field/attribute limit. Value: '51'. the limit should not be \
                 greater than 50."
            ))
        );
    }

    #[test]
    fn limit_conversion_comes_before_item_errors_and_range_after() {
        let text = fail("q.field=a&q.op=bad&q.value=1&limit=abc");
        assert!(text.contains("unable to convert to int"), "{text}");
        let text = fail("q.field=a&q.op=bad&q.value=1&limit=-1");
        assert!(text.starts_with("Operator bad"), "{text}");
    }

    // --- rule 7: sort -----------------------------------------------------------------------------------

    #[test]
    fn sort_values() {
        let query = parse("sort=generated%3Adesc&sort=message_id").unwrap();
        assert_eq!(
            query.sort,
            vec![
                (SortKey::Generated, Direction::Desc),
                (SortKey::MessageId, Direction::Asc)
            ]
        );
        assert_eq!(
            parse("sort=message_id:").map(|q| q.sort),
            Ok(vec![(SortKey::MessageId, Direction::Asc)])
        );
        assert_eq!(
            parse("sort=message_id:asc").map(|q| q.sort),
            Ok(vec![(SortKey::MessageId, Direction::Asc)])
        );
    }

    #[test]
    fn repeated_sort_key_is_dropped() {
        let query = parse("sort=generated:desc&sort=generated:asc&sort=message_id").unwrap();
        assert_eq!(
            query.sort,
            vec![
                (SortKey::Generated, Direction::Desc),
                (SortKey::MessageId, Direction::Asc)
            ]
        );
        // A repeat is still validated.
        assert!(fail("sort=generated&sort=generated:up").contains("sort direction"));
    }

    #[test]
    fn bad_sort_key_text_is_pankos() {
        let expected = |value: &str| {
            format!(
                "Invalid input for field/attribute sort. Value: '{value}'. the sort parameter \
                 should be a pair of sort key and sort dir combined with ':', or only sort key \
                 specified and sort dir will be default 'asc', the supported sort keys are: \
                 ('message_id', 'generated')"
            )
        };
        assert_eq!(fail("sort=invalid_key:desc"), expected("invalid_key:desc"));
        // No comma syntax: the whole text before the first colon is the key ...
        assert_eq!(
            fail("sort=message_id,generated"),
            expected("message_id,generated")
        );
        assert_eq!(
            fail("sort=bad:asc,generated:desc"),
            expected("bad:asc,generated:desc")
        );
        // ... and the rest is the direction.
        assert!(fail("sort=generated:asc,message_id:desc").starts_with(
            "Invalid input for field/attribute sort direction. Value: \
             'generated:asc,message_id:desc'."
        ));
        assert_eq!(fail("sort="), expected(""));
        assert_eq!(fail("sort=Generated"), expected("Generated"));
    }

    #[test]
    fn bad_sort_direction_text_is_pankos() {
        assert_eq!(
            fail("sort=message_id:bah"),
            "Invalid input for field/attribute sort direction. Value: 'message_id:bah'. the sort \
             parameter should be a pair of sort key and sort dir combined with ':', or only sort \
             key specified and sort dir will be default 'asc', the supported sort directions \
             are: ('asc', 'desc')"
        );
        // str.partition splits at the first colon only.
        assert!(fail("sort=generated:asc:x").starts_with(
            "Invalid input for field/attribute sort direction. Value: 'generated:asc:x'."
        ));
    }

    // --- rule 8: marker --------------------------------------------------------------------------------

    #[test]
    fn marker_values() {
        assert_eq!(
            parse("marker=a%20b%2Fc").map(|q| q.marker),
            Ok(Some("a b/c".into()))
        );
        assert_eq!(parse("marker=").map(|q| q.marker), Ok(None));
        assert_eq!(
            fail("marker=a&marker=b"),
            "Invalid input for field/attribute marker. Value: '['a', 'b']'. marker must be given \
             once."
        );
    }

    // --- rule 9: ensure_no_arguments ---------------------------------------------------------------------

    #[test]
    fn no_arguments_accepts_nothing() {
        assert_eq!(ensure_no_arguments("", None), Ok(()));
        assert_eq!(ensure_no_arguments("", Some(b"{}")), Ok(()));
        assert_eq!(ensure_no_arguments("", Some(b" { } ")), Ok(()));
    }

    #[test]
    fn no_arguments_names_query_keys() {
        assert_eq!(
            ensure_no_arguments("q.field=a&q.value=b&q.field=c", None),
            Err(err(r#"Unknown argument: "q.field, q.value""#))
        );
        assert_eq!(
            ensure_no_arguments("limit", None),
            Err(err(r#"Unknown argument: "limit""#))
        );
    }

    #[test]
    fn no_arguments_names_body_keys() {
        assert_eq!(
            ensure_no_arguments("", Some(br#"{"limit": 1, "foo": 2, "limit": 3}"#)),
            Err(err(r#"Unknown argument: "limit, foo""#))
        );
        assert_eq!(
            ensure_no_arguments("", Some(b"[1]")),
            Err(err("Request must be a JSON dict"))
        );
        let text = ensure_no_arguments("", Some(b"{")).unwrap_err().0;
        assert!(
            text.starts_with("Request body is not valid JSON: "),
            "{text}"
        );
    }

    // --- helpers -------------------------------------------------------------------------------------

    #[test]
    fn python_repr_matches_python() {
        assert_eq!(python_repr("abc"), "'abc'");
        assert_eq!(python_repr("a'b"), "\"a'b\"");
        assert_eq!(python_repr("a'b\""), "'a\\'b\"'");
        assert_eq!(python_repr("a\\b\n\u{1}"), "'a\\\\b\\n\\x01'");
        assert_eq!(python_repr("é"), "'é'");
    }

    #[test]
    fn python_int_matches_python() {
        let int = |negative, digits: &str| {
            Some(PyInt {
                negative,
                digits: digits.into(),
            })
        };
        assert_eq!(python_int(" 12 "), int(false, "12"));
        assert_eq!(python_int("-0012"), int(true, "12"));
        assert_eq!(python_int("-0"), int(false, "0"));
        assert_eq!(python_int("+"), None);
        assert_eq!(python_int("1 2"), None);
        assert_eq!(python_int("0x10"), None);
    }

    // --- property tests ---------------------------------------------------------------------------------

    /// A q item as a client would send it.
    struct Item {
        field: String,
        op: Option<&'static str>,
        value: String,
        ty: Option<&'static str>,
    }

    /// The q items that ask for `query`, as a client would write them. With `explicit`, op and
    /// type are always given; otherwise their defaults (eq, string) are left out.
    fn render_items(query: &EventQuery, explicit: bool, admin: bool) -> Vec<Item> {
        let default_op = |op: Op| (explicit || op != Op::Eq).then_some(op.as_str());
        let event = |field: &str, op: Op, value: String| Item {
            field: field.into(),
            op: default_op(op),
            value,
            ty: None,
        };
        let mut items = Vec::new();
        if let Some(v) = &query.event_type {
            items.push(event("event_type", Op::Eq, v.clone()));
        }
        if let Some(v) = &query.message_id {
            items.push(event("message_id", Op::Eq, v.clone()));
        }
        if let Some(t) = query.start {
            items.push(event(
                "start_timestamp",
                Op::Ge,
                crate::model::time::format_instant(t),
            ));
        }
        if let Some(t) = query.end {
            items.push(event(
                "end_timestamp",
                Op::Le,
                crate::model::time::format_instant(t),
            ));
        }
        if query.all_tenants || (explicit && admin) {
            let value = if query.all_tenants { "True" } else { "no" };
            items.push(event("all_tenants", Op::Eq, value.into()));
        }
        for t in &query.traits {
            let ty = t.value.trait_type();
            items.push(Item {
                field: t.name.clone(),
                op: default_op(t.op),
                value: t.value.render(),
                ty: (explicit || ty != TraitType::String).then_some(ty.as_str()),
            });
        }
        items
    }

    fn render_sort(sort: &[(SortKey, Direction)], explicit: bool) -> Vec<String> {
        sort.iter()
            .map(|(key, dir)| match (dir, explicit) {
                (Direction::Asc, false) => key.as_str().to_owned(),
                _ => format!("{}:{}", key.as_str(), dir.as_str()),
            })
            .collect()
    }

    fn append_scalars(
        out: &mut form_urlencoded::Serializer<String>,
        query: &EventQuery,
        explicit: bool,
    ) {
        if let Some(limit) = query.limit {
            out.append_pair("limit", &limit.to_string());
        }
        for sort in render_sort(&query.sort, explicit) {
            out.append_pair("sort", &sort);
        }
        if let Some(marker) = &query.marker {
            out.append_pair("marker", marker);
        }
    }

    /// Encoding 1: every attribute that some item needs is sent for all, empty where unneeded.
    fn render_parallel(query: &EventQuery, explicit: bool, admin: bool) -> String {
        let items = render_items(query, explicit, admin);
        let any_op = items.iter().any(|i| i.op.is_some());
        let any_ty = items.iter().any(|i| i.ty.is_some());
        let mut out = form_urlencoded::Serializer::new(String::new());
        for item in &items {
            out.append_pair("q.field", &item.field);
            if any_op {
                out.append_pair("q.op", item.op.unwrap_or(""));
            }
            out.append_pair("q.value", &item.value);
            if any_ty {
                out.append_pair("q.type", item.ty.unwrap_or(""));
            }
        }
        append_scalars(&mut out, query, explicit);
        out.finish()
    }

    /// Encoding 2, with the items written last to first to show that the index decides.
    fn render_indexed(query: &EventQuery, explicit: bool, admin: bool) -> String {
        let items = render_items(query, explicit, admin);
        let mut out = form_urlencoded::Serializer::new(String::new());
        append_scalars(&mut out, query, explicit);
        for (i, item) in items.iter().enumerate().rev() {
            out.append_pair(&format!("q[{i}].value"), &item.value);
            out.append_pair(&format!("q[{i}].field"), &item.field);
            if let Some(op) = item.op {
                out.append_pair(&format!("q[{i}].op"), op);
            }
            if let Some(ty) = item.ty {
                out.append_pair(&format!("q[{i}].type"), ty);
            }
        }
        out.finish()
    }

    /// Encoding 3.
    fn render_body(query: &EventQuery, explicit: bool, admin: bool) -> String {
        let items: Vec<serde_json::Value> = render_items(query, explicit, admin)
            .into_iter()
            .map(|item| json!({"field": item.field, "op": item.op, "value": item.value, "type": item.ty}))
            .collect();
        let mut body = serde_json::Map::new();
        body.insert("q".into(), items.into());
        if let Some(limit) = query.limit {
            let limit = if explicit {
                json!(limit.to_string())
            } else {
                json!(limit)
            };
            body.insert("limit".into(), limit);
        }
        body.insert("sort".into(), render_sort(&query.sort, explicit).into());
        body.insert("marker".into(), json!(query.marker));
        serde_json::Value::Object(body).to_string()
    }

    fn text() -> impl Strategy<Value = String> {
        prop::collection::vec(any::<char>().prop_filter("no NUL", |c| *c != '\0'), 0..12)
            .prop_map(String::from_iter)
    }

    fn trait_name(admin: bool) -> impl Strategy<Value = String> {
        let reserved = [
            "event_type",
            "message_id",
            "start_timestamp",
            "end_timestamp",
        ];
        prop_oneof![
            Just("generated".to_owned()),
            Just("all_tenants".to_owned()),
            "[a-z_]{1,10}",
            text(),
        ]
        .prop_filter("an ordinary trait name", move |name| {
            let special = reserved.contains(&name.as_str()) || (admin && name == "all_tenants");
            !name.is_empty() && !special
        })
    }

    /// 1900-01-01 to 2100-01-01.
    fn instant() -> impl Strategy<Value = i64> {
        -2_208_988_800_000_000i64..4_102_444_800_000_000
    }

    fn trait_value() -> impl Strategy<Value = TraitValue> {
        use prop::num::f64;
        prop_oneof![
            text().prop_map(TraitValue::String),
            any::<i64>().prop_map(TraitValue::Integer),
            (f64::NORMAL | f64::SUBNORMAL | f64::ZERO | f64::POSITIVE | f64::NEGATIVE)
                .prop_map(TraitValue::Float),
            instant().prop_map(TraitValue::Datetime),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        prop::sample::select(Op::ALL.to_vec())
    }

    fn sort() -> impl Strategy<Value = Vec<(SortKey, Direction)>> {
        (
            prop::sample::subsequence(vec![SortKey::Generated, SortKey::MessageId], 0..=2)
                .prop_shuffle(),
            any::<[bool; 2]>(),
        )
            .prop_map(|(keys, desc)| {
                keys.into_iter()
                    .zip(desc)
                    .map(|(k, d)| (k, if d { Direction::Desc } else { Direction::Asc }))
                    .collect()
            })
    }

    fn valid_query(admin: bool) -> impl Strategy<Value = EventQuery> {
        let traits =
            prop::collection::vec(
                (trait_name(admin), op(), trait_value())
                    .prop_map(|(name, op, value)| TraitFilter { name, op, value }),
                0..6,
            );
        (
            (
                prop::option::of(text()),
                prop::option::of(text()),
                prop::option::of(instant()),
                prop::option::of(instant()),
                any::<bool>().prop_map(move |b| b && admin),
            ),
            traits,
            prop::option::of(1u32..=10_000),
            sort(),
            prop::option::of(text().prop_filter("non-empty", |m| !m.is_empty())),
        )
            .prop_map(
                |(
                    (event_type, message_id, start, end, all_tenants),
                    traits,
                    limit,
                    sort,
                    marker,
                )| {
                    EventQuery {
                        event_type,
                        message_id,
                        start,
                        end,
                        all_tenants,
                        traits,
                        limit,
                        sort,
                        marker,
                    }
                },
            )
    }

    fn query_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "q.field=",
                "q.op=",
                "q.value=",
                "q.type=",
                "q[0].field=",
                "q[1].value=",
                "q[0].op=",
                "q[",
                "].",
                "q.bogus=",
                "q=",
                "&",
                "=",
                "%",
                "%00",
                "%FF",
                "%5B",
                "+",
                "limit=",
                "sort=",
                "marker=",
                "event_type",
                "message_id",
                "start_timestamp",
                "end_timestamp",
                "all_tenants",
                "generated",
                "eq",
                "ge",
                "le",
                "ne",
                "integer",
                "float",
                "datetime",
                "string",
                "boolean",
                "-1",
                "0",
                "1.5",
                "2014-01-01",
                ":",
                "desc",
                "asc",
                "9999999999999999999999",
            ])
            .prop_map(str::to_owned),
            "[ -~]{0,4}",
            any::<String>(),
        ]
    }

    fn body_fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "{",
                "}",
                "[",
                "]",
                ",",
                ":",
                "\"q\"",
                "\"limit\"",
                "\"sort\"",
                "\"marker\"",
                "\"field\"",
                "\"op\"",
                "\"value\"",
                "\"type\"",
                "\"x\"",
                "1",
                "-1",
                "1.5e3",
                "null",
                "true",
                "\"\\u0000\"",
                "\"\\ud800\"",
                "\"event_type\"",
                "\"integer\"",
                " ",
            ])
            .prop_map(str::to_owned),
            any::<String>(),
        ]
    }

    fn any_opts() -> impl Strategy<Value = ParseOptions> {
        (any::<bool>(), 0u32..20_000, 0usize..30, 0usize..64).prop_map(
            |(admin, max_limit, max_q_items, max_value_bytes)| ParseOptions {
                admin,
                max_limit,
                max_q_items,
                max_value_bytes,
            },
        )
    }

    /// What every accepted query must satisfy, whatever the input.
    fn assert_invariants(query: &EventQuery, opts: &ParseOptions) {
        assert!(query.traits.len() <= opts.max_q_items);
        assert!(query.limit.is_none_or(|l| l >= 1 && l <= opts.max_limit));
        assert!(query.sort.len() <= 2);
        if let [a, b] = query.sort.as_slice() {
            assert_ne!(a.0, b.0);
        }
        assert!(query
            .marker
            .as_deref()
            .is_none_or(|m| !m.is_empty() && !m.contains('\0')));
        assert!(!query.all_tenants || opts.admin);
        for t in &query.traits {
            assert!(!t.name.is_empty() && !t.name.contains('\0'));
            match &t.value {
                TraitValue::String(s) => {
                    assert!(s.len() <= opts.max_value_bytes && !s.contains('\0'))
                }
                TraitValue::Float(f) => assert!(f.is_finite()),
                _ => {}
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn arbitrary_query_strings_never_panic(
            parts in prop::collection::vec(query_fragment(), 0..24),
            opts in any_opts(),
        ) {
            let qs = parts.concat();
            if let Ok(query) = parse_event_query(&qs, None, &opts) {
                assert_invariants(&query, &opts);
            }
            let _ = ensure_no_arguments(&qs, None);
        }

        #[test]
        fn arbitrary_bodies_never_panic(
            parts in prop::collection::vec(body_fragment(), 0..24),
            bytes in prop::collection::vec(any::<u8>(), 0..32),
            qs in prop::collection::vec(query_fragment(), 0..4),
            opts in any_opts(),
        ) {
            let qs = qs.concat();
            for body in [parts.concat().into_bytes(), bytes] {
                if let Ok(query) = parse_event_query(&qs, Some(&body), &opts) {
                    assert_invariants(&query, &opts);
                }
                let _ = ensure_no_arguments("", Some(&body));
            }
        }

        #[test]
        fn valid_queries_round_trip(
            (admin, query) in any::<bool>().prop_flat_map(|admin| (Just(admin), valid_query(admin))),
            explicit in any::<bool>(),
        ) {
            let opts = ParseOptions { admin, ..opts() };
            let parallel = render_parallel(&query, explicit, admin);
            prop_assert_eq!(parse_event_query(&parallel, None, &opts), Ok(query.clone()), "{}", parallel);
            let indexed = render_indexed(&query, explicit, admin);
            prop_assert_eq!(parse_event_query(&indexed, None, &opts), Ok(query.clone()), "{}", indexed);
            let body = render_body(&query, explicit, admin);
            prop_assert_eq!(parse_event_query("", Some(body.as_bytes()), &opts), Ok(query), "{}", body);
        }
    }
}
