//! The copy of an event's traits that PostgreSQL keeps in the event's row (`events.traits`,
//! `jsonb`): a page of events is read without reading the trait tables, and a trait filter that
//! matches many events checks each row its scan reads instead of probing a trait table (see the
//! `event_trait_documents` and `keyed_trait_documents` migrations). A filter that matches few
//! events still starts from its trait table's `(name, value)` index.
//!
//! A document is a JSON object with one object per trait type, each keyed by the trait's name
//! id: `{"s":{"4":"compute-1"},"i":{"7":512},"f":{"9":0.95},"d":{"12":1764633600101668}}`, so
//! that SQL can look a value up (`traits->'i'->'7'`). The tenancy traits are not in it (they
//! are the row's `project_ref` and `user_ref`), exactly as they are not in the trait tables.
//! Floats are written shortest-round-trip and read back with serde_json's `float_roundtrip`;
//! `jsonb` keeps a number's decimal digits (it may print them without the exponent), and stored
//! floats are finite and never `-0.0` (ingest refuses and normalises those), so every stored
//! value comes back bit for bit.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ApiError;
use crate::model::{TraitType, TraitValue};

/// One type's (name id, value) pairs, written as an object keyed by the name id.
struct Keyed<'a, T>(&'a [(i64, T)]);

impl<T: Serialize> Serialize for Keyed<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name_id, value) in self.0 {
            map.serialize_entry(name_id, value)?;
        }
        map.end()
    }
}

/// The document as written: borrows the batch's values.
#[derive(Default)]
struct DocOut<'a> {
    s: Vec<(i64, &'a str)>,
    i: Vec<(i64, i64)>,
    f: Vec<(i64, f64)>,
    d: Vec<(i64, i64)>,
}

impl Serialize for DocOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if !self.s.is_empty() {
            map.serialize_entry(type_key(TraitType::String), &Keyed(&self.s))?;
        }
        if !self.i.is_empty() {
            map.serialize_entry(type_key(TraitType::Integer), &Keyed(&self.i))?;
        }
        if !self.f.is_empty() {
            map.serialize_entry(type_key(TraitType::Float), &Keyed(&self.f))?;
        }
        if !self.d.is_empty() {
            map.serialize_entry(type_key(TraitType::Datetime), &Keyed(&self.d))?;
        }
        map.end()
    }
}

/// The document as read. Same fields as [`DocOut`]; the round-trip tests hold them together.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocIn {
    #[serde(default, deserialize_with = "keyed")]
    s: Vec<(i64, String)>,
    #[serde(default, deserialize_with = "keyed")]
    i: Vec<(i64, i64)>,
    #[serde(default, deserialize_with = "keyed")]
    f: Vec<(i64, f64)>,
    #[serde(default, deserialize_with = "keyed")]
    d: Vec<(i64, i64)>,
}

/// An object keyed by name ids (`{"7": 512}`) as (name id, value) pairs, in document order.
fn keyed<'de, D, T>(deserializer: D) -> Result<Vec<(i64, T)>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Pairs<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Pairs<T> {
        type Value = Vec<(i64, T)>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object keyed by trait name ids")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(4));
            while let Some(pair) = map.next_entry::<i64, T>()? {
                pairs.push(pair);
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_map(Pairs(PhantomData))
}

/// The document for one event's stored traits, given as (name id, value).
pub fn encode<'a>(traits: impl IntoIterator<Item = (i64, &'a TraitValue)>) -> String {
    let mut doc = DocOut::default();
    for (name_id, value) in traits {
        match value {
            TraitValue::String(s) => doc.s.push((name_id, s)),
            TraitValue::Integer(n) => doc.i.push((name_id, *n)),
            TraitValue::Float(x) => doc.f.push((name_id, *x)),
            TraitValue::Datetime(t) => doc.d.push((name_id, *t)),
        }
    }
    // Serializing these plain types into a String cannot fail (floats are finite: ingest
    // refuses the others, and serde_json would write a non-finite one as null, which `decode`
    // then refuses).
    serde_json::to_string(&doc).unwrap_or_default()
}

/// The key of a trait type's object in a document: `s`, `i`, `f` or `d`.
pub fn type_key(t: TraitType) -> &'static str {
    match t {
        TraitType::String => "s",
        TraitType::Integer => "i",
        TraitType::Float => "f",
        TraitType::Datetime => "d",
    }
}

/// Appends the traits in `doc` as (event id, name id, value), as the trait tables would give
/// them. A document that does not parse is an internal error: the store wrote it.
pub fn decode(
    event_id: i64,
    doc: &str,
    out: &mut Vec<(i64, i64, TraitValue)>,
) -> Result<(), ApiError> {
    let doc: DocIn = serde_json::from_str(doc).map_err(|e| {
        ApiError::internal(anyhow::anyhow!(
            "the trait document of event {event_id} does not parse: {e}"
        ))
    })?;
    let traits = doc
        .s
        .into_iter()
        .map(|(n, v)| (n, TraitValue::String(v)))
        .chain(doc.i.into_iter().map(|(n, v)| (n, TraitValue::Integer(v))))
        .chain(doc.f.into_iter().map(|(n, v)| (n, TraitValue::Float(v))))
        .chain(doc.d.into_iter().map(|(n, v)| (n, TraitValue::Datetime(v))));
    out.extend(traits.map(|(name_id, value)| (event_id, name_id, value)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::trait_values::{any_stored_value, one_of_each, same_entries};
    use proptest::prelude::*;

    fn round_trip(traits: &[(i64, TraitValue)]) -> Vec<(i64, i64, TraitValue)> {
        let doc = encode(traits.iter().map(|(n, v)| (*n, v)));
        let mut out = Vec::new();
        decode(42, &doc, &mut out).expect("decodes");
        out
    }

    #[test]
    fn the_documented_shape() {
        let traits = one_of_each();
        assert_eq!(
            encode(traits.iter().map(|(n, v)| (*n, v))),
            r#"{"s":{"4":"compute-1"},"i":{"7":512},"f":{"9":0.95},"d":{"12":1764633600101668}}"#
        );
        assert_eq!(encode([]), "{}");
    }

    #[test]
    fn a_document_as_postgresql_prints_it() {
        // `jsonb` output: keys reordered, spaces, numbers without the exponent.
        let printed = r#"{"d": {"12": 1764633600101668}, "f": {"9": 0.95, "10": 1000000000000000000000, "11": 0.0000000000000000000001}, "s": {"4": "compute-\"1\""}}"#;
        let mut out = Vec::new();
        decode(7, printed, &mut out).expect("decodes");
        assert_eq!(
            out,
            vec![
                (7, 4, TraitValue::String("compute-\"1\"".into())),
                (7, 9, TraitValue::Float(0.95)),
                (7, 10, TraitValue::Float(1e21)),
                (7, 11, TraitValue::Float(1e-22)),
                (7, 12, TraitValue::Datetime(1_764_633_600_101_668)),
            ]
        );
    }

    #[test]
    fn integers_and_datetimes_stay_apart() {
        let traits = [(1, TraitValue::Integer(5)), (2, TraitValue::Datetime(5))];
        assert_eq!(
            round_trip(&traits),
            vec![
                (42, 1, TraitValue::Integer(5)),
                (42, 2, TraitValue::Datetime(5))
            ]
        );
    }

    #[test]
    fn a_broken_document_is_an_error_not_an_empty_event() {
        let mut out = Vec::new();
        for doc in [
            "",
            "null",
            r#"{"s":[[1,"a"]]}"#,
            r#"{"s":{"1":2}}"#,
            r#"{"f":{"1":null}}"#,
            r#"{"i":{"a":1}}"#,
            r#"{"x":{}}"#,
        ] {
            assert!(decode(1, doc, &mut out).is_err(), "{doc}");
        }
        assert!(out.is_empty());
    }

    proptest! {
        /// Every value comes back exactly (floats bit for bit), with its name and type; the
        /// order is by type, then as given.
        #[test]
        fn every_value_round_trips(traits in prop::collection::vec((any::<i64>(), any_stored_value()), 0..20)) {
            let mut expected: Vec<(i64, i64, TraitValue)> =
                traits.iter().map(|(n, v)| (42, *n, v.clone())).collect();
            expected.sort_by_key(|(_, _, v)| v.trait_type().code());
            let got = round_trip(&traits);
            same_entries(&got, &expected)?;
        }
    }
}
