//! Events as JSON, written straight from the store's [`EventPage`] into the response body.
//!
//! A page of a hundred events is about a thousand traits; this writer is most of the CPU of a
//! list request after the database, so it avoids what a generic serializer pays for:
//! - strings that need no escaping (nearly all: ids, names, numbers) are copied as they are,
//!   after one branch-free scan; the rest go through serde_json's escaping;
//! - `raw` is written as stored, since ingest and import accepted only valid JSON and stored it
//!   minified, rather than parsed again to be validated;
//! - integers go through `itoa`, with no allocation.
//!
//! The shape and key order are Panko's, as [`super::views::EventView`] documents.

use crate::model::{float, time, EventPage, PageEvent, TraitType, TraitValue};

/// The page as a JSON array of events.
pub fn page(page: &EventPage) -> Vec<u8> {
    // About 830 bytes per event of the benchmark's data; grown as needed.
    let mut out = Vec::with_capacity(64 + page.events.len() * 1024);
    out.push(b'[');
    for (i, event) in page.events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_event(&mut out, page, event);
    }
    out.push(b']');
    out
}

/// One event of a page as a JSON object.
pub fn event(page: &EventPage, event: &PageEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write_event(&mut out, page, event);
    out
}

fn write_event(out: &mut Vec<u8>, page: &EventPage, event: &PageEvent) {
    out.extend_from_slice(b"{\"message_id\":");
    write_str(out, &event.message_id);
    out.extend_from_slice(b",\"event_type\":");
    write_str(out, page.name(event.event_type));
    out.extend_from_slice(b",\"traits\":[");
    for (i, (name, value)) in event.traits.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_str(out, page.name(*name));
        out.extend_from_slice(b",\"value\":");
        match value {
            TraitValue::String(s) => write_str(out, s),
            TraitValue::Integer(n) => write_plain(out, itoa::Buffer::new().format(*n)),
            TraitValue::Float(f) => write_plain(out, &float::python_repr(*f)),
            TraitValue::Datetime(m) => write_plain(out, &time::format_instant(*m)),
        }
        out.extend_from_slice(match value.trait_type() {
            TraitType::String => b",\"type\":\"string\"}",
            TraitType::Integer => b",\"type\":\"integer\"}",
            TraitType::Float => b",\"type\":\"float\"}",
            TraitType::Datetime => b",\"type\":\"datetime\"}",
        });
    }
    out.extend_from_slice(b"],\"generated\":");
    write_plain(out, &time::format_instant(event.generated));
    out.extend_from_slice(b",\"raw\":");
    out.extend_from_slice(event.raw.as_bytes());
    out.push(b'}');
}

/// A JSON string, escaped exactly as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    // One pass without early exit, which the compiler vectorizes; JSON must escape only `"`,
    // `\` and control characters.
    let needs_escape = s.bytes().fold(false, |acc, b| {
        acc | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        // Writing to a Vec cannot fail, and a str always serializes.
        let _ = serde_json::to_writer(&mut *out, s);
    } else {
        write_plain(out, s);
    }
}

/// A string known to need no escaping (digits, signs, dots, `T`, `:`, `-`, letters).
fn write_plain(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::{event, page, write_str};
    use crate::model::{EventPage, PageEvent, TraitValue};

    fn sample() -> EventPage {
        let names: Vec<Arc<str>> = ["compute.instance.exists", "cpu_util", "memory_mb", "state"]
            .into_iter()
            .map(Arc::from)
            .collect();
        let event = PageEvent {
            message_id: "m-1".into(),
            event_type: 0,
            generated: 1_388_552_400_000_001,
            traits: vec![
                (1, TraitValue::Float(1.5)),
                (2, TraitValue::Integer(-2048)),
                (3, TraitValue::String("a \"quoted\" é".into())),
                (3, TraitValue::Datetime(1_388_552_400_000_000)),
            ],
            raw: r#"{"k":[1,2]}"#.into(),
        };
        EventPage {
            names,
            events: vec![
                event.clone(),
                PageEvent {
                    message_id: "m-2".into(),
                    traits: vec![],
                    ..event
                },
            ],
        }
    }

    #[test]
    fn events_are_written_in_pankos_shape_and_key_order() {
        let sample = sample();
        let one = String::from_utf8(event(&sample, &sample.events[0])).unwrap();
        assert_eq!(
            one,
            concat!(
                r#"{"message_id":"m-1","event_type":"compute.instance.exists","traits":["#,
                r#"{"name":"cpu_util","value":"1.5","type":"float"},"#,
                r#"{"name":"memory_mb","value":"-2048","type":"integer"},"#,
                r#"{"name":"state","value":"a \"quoted\" é","type":"string"},"#,
                r#"{"name":"state","value":"2014-01-01T05:00:00","type":"datetime"}],"#,
                r#""generated":"2014-01-01T05:00:00.000001","raw":{"k":[1,2]}}"#
            )
        );
        let all = String::from_utf8(page(&sample)).unwrap();
        assert_eq!(
            all,
            format!(
                r#"[{one},{{"message_id":"m-2","event_type":"compute.instance.exists","traits":[],"generated":"2014-01-01T05:00:00.000001","raw":{{"k":[1,2]}}}}]"#
            )
        );
        assert_eq!(page(&EventPage::default()), b"[]");
        // Valid JSON, whose values read back as written.
        let parsed: serde_json::Value = serde_json::from_str(&all).unwrap();
        assert_eq!(parsed[0]["traits"][2]["value"], "a \"quoted\" é");
    }

    proptest! {
        /// Every string is written exactly as serde_json writes it, escaped or not.
        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in any::<String>()) {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn ascii_with_escapes_is_written_as_serde_json_writes_it(s in "[\\x00-\\x7f]{0,40}") {
            let mut out = Vec::new();
            write_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }
    }
}
