//! The copy of an event's numeric traits that SQLite keeps in the event's row
//! (`events.numbers`, a BLOB; migration `…_sqlite_trait_numbers`), for the same two reasons as
//! PostgreSQL's document ([`super::trait_doc`]):
//!
//! - a trait filter that matches many events (`memory_mb gt 2048`) checks each row its scan
//!   reads, through the SQL functions below, instead of searching a trait table's primary key
//!   once per event: those searches were 40% of such a request's CPU;
//! - a page's integer, float and datetime traits come from its rows, so only its string traits
//!   are read from a trait table.
//!
//! Only numbers: strings would add about 90 bytes an event, past the store's 700-byte budget,
//! where these cost about 30 (docs/PERFORMANCE.md). The trait tables stay complete: they hold
//! the `(name, value)` indexes that drive selective filters, and every other reader uses them.
//!
//! The format is postcard: one `(name id, Number)` entry after another, with no count or
//! header, so an event with no numeric traits has an empty BLOB (not NULL, which marks a row
//! stored before the column existed). Integers are zigzag varints, floats their 8 bytes, so
//! every value comes back bit for bit, and a SQL comparison on the function's result is the
//! same comparison as on the trait table's column.

use diesel::sql_types::{BigInt, Binary, Nullable};
use diesel::SqliteConnection;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{TraitType, TraitValue};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
enum Number {
    Integer(i64),
    Float(f64),
    Datetime(i64),
}

impl Number {
    fn of(value: &TraitValue) -> Option<Number> {
        match *value {
            TraitValue::String(_) => None,
            TraitValue::Integer(n) => Some(Number::Integer(n)),
            TraitValue::Float(x) => Some(Number::Float(x)),
            TraitValue::Datetime(t) => Some(Number::Datetime(t)),
        }
    }

    fn value(self) -> TraitValue {
        match self {
            Number::Integer(n) => TraitValue::Integer(n),
            Number::Float(x) => TraitValue::Float(x),
            Number::Datetime(t) => TraitValue::Datetime(t),
        }
    }
}

/// The BLOB for one event's stored traits, given as (name id, value); strings are left out.
pub fn encode<'a>(traits: impl IntoIterator<Item = (i64, &'a TraitValue)>) -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    for (name_id, value) in traits {
        if let Some(number) = Number::of(value) {
            // Writing into a Vec cannot fail.
            out = postcard::to_extend(&(name_id, number), out).unwrap_or_default();
        }
    }
    out
}

/// Each (name id, number) of a BLOB, in order; an error for bytes the store did not write.
fn entries(blob: &[u8]) -> impl Iterator<Item = Result<(i64, Number), postcard::Error>> + '_ {
    let mut rest = blob;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        match postcard::take_from_bytes::<(i64, Number)>(rest) {
            Ok((entry, tail)) => {
                rest = tail;
                Some(Ok(entry))
            }
            Err(e) => {
                rest = &[];
                Some(Err(e))
            }
        }
    })
}

/// Appends the numeric traits in `blob` as (event id, name id, value), as the trait tables would
/// give them. A BLOB that does not decode is an internal error: the store wrote it.
pub fn decode(
    event_id: i64,
    blob: &[u8],
    out: &mut Vec<(i64, i64, TraitValue)>,
) -> Result<(), ApiError> {
    for entry in entries(blob) {
        let (name_id, number) = entry.map_err(|e| broken(event_id, e))?;
        out.push((event_id, name_id, number.value()));
    }
    Ok(())
}

fn broken(event_id: i64, e: postcard::Error) -> ApiError {
    ApiError::internal(anyhow::anyhow!(
        "the numeric traits of event {event_id} do not decode: {e}"
    ))
}

/// The value of one trait in a BLOB, if the event has it. Panics on a BLOB the store did not
/// write: inside SQLite, diesel turns the panic into an error of the statement, so the request
/// fails (500) rather than treating the trait as missing.
fn find(blob: &[u8], trait_type: TraitType, name_id: i64) -> Option<Number> {
    for entry in entries(blob) {
        let (name, number) = entry.unwrap_or_else(|e| panic!("numeric traits do not decode: {e}"));
        let matches = matches!(
            (trait_type, number),
            (TraitType::Integer, Number::Integer(_))
                | (TraitType::Float, Number::Float(_))
                | (TraitType::Datetime, Number::Datetime(_))
        );
        if name == name_id && matches {
            return Some(number);
        }
    }
    None
}

diesel::define_sql_function! {
    /// `almanac_integer(numbers, name_id)`: the event's integer trait, or NULL.
    fn almanac_integer(numbers: Nullable<Binary>, name_id: BigInt) -> Nullable<BigInt>;
}
diesel::define_sql_function! {
    /// `almanac_float(numbers, name_id)`: the event's float trait, or NULL.
    fn almanac_float(numbers: Nullable<Binary>, name_id: BigInt) -> Nullable<Double>;
}
diesel::define_sql_function! {
    /// `almanac_datetime(numbers, name_id)`: the event's datetime trait (microseconds), or NULL.
    fn almanac_datetime(numbers: Nullable<Binary>, name_id: BigInt) -> Nullable<BigInt>;
}

/// The SQL function that reads a trait of this type from `events.numbers`; `None` for strings,
/// which the BLOB does not hold.
pub fn sql_function(trait_type: TraitType) -> Option<&'static str> {
    match trait_type {
        TraitType::String => None,
        TraitType::Integer => Some("almanac_integer"),
        TraitType::Float => Some("almanac_float"),
        TraitType::Datetime => Some("almanac_datetime"),
    }
}

/// Registers the functions of [`sql_function`] on a SQLite connection (every connection the
/// server opens, since any may run a list query).
pub fn register_functions(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    fn integer(blob: &[u8], t: TraitType, name_id: i64) -> Option<i64> {
        match find(blob, t, name_id)? {
            Number::Integer(n) | Number::Datetime(n) => Some(n),
            Number::Float(_) => None,
        }
    }
    almanac_integer_utils::register_impl(conn, |blob: Option<Vec<u8>>, name_id: i64| {
        integer(&blob?, TraitType::Integer, name_id)
    })?;
    almanac_datetime_utils::register_impl(conn, |blob: Option<Vec<u8>>, name_id: i64| {
        integer(&blob?, TraitType::Datetime, name_id)
    })?;
    almanac_float_utils::register_impl(conn, |blob: Option<Vec<u8>>, name_id: i64| {
        match find(&blob?, TraitType::Float, name_id)? {
            Number::Float(x) => Some(x),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::trait_values::{any_stored_value, one_of_each, same_entries};
    use proptest::prelude::*;

    fn round_trip(traits: &[(i64, TraitValue)]) -> Vec<(i64, i64, TraitValue)> {
        let blob = encode(traits.iter().map(|(n, v)| (*n, v)));
        let mut out = Vec::new();
        decode(42, &blob, &mut out).expect("decodes");
        out
    }

    #[test]
    fn strings_are_left_out_and_numbers_kept_in_order() {
        let traits = one_of_each();
        assert_eq!(
            round_trip(&traits),
            vec![
                (42, 9, TraitValue::Float(0.95)),
                (42, 12, TraitValue::Datetime(1_764_633_600_101_668)),
                (42, 7, TraitValue::Integer(512)),
            ]
        );
        // No header: no numbers, no bytes.
        assert!(encode([(4, &TraitValue::String("x".into()))]).is_empty());
    }

    #[test]
    fn small_integers_take_few_bytes() {
        // Name id 7 (one byte), variant (one byte), 512 as a zigzag varint (two bytes).
        assert_eq!(encode([(7, &TraitValue::Integer(512))]).len(), 4);
    }

    #[test]
    fn find_matches_name_and_type() {
        let traits = [
            (1, TraitValue::Integer(5)),
            (2, TraitValue::Datetime(6)),
            (3, TraitValue::Float(-0.5)),
            (2, TraitValue::Integer(7)),
        ];
        let blob = encode(traits.iter().map(|(n, v)| (*n, v)));
        assert_eq!(find(&blob, TraitType::Integer, 1), Some(Number::Integer(5)));
        assert_eq!(find(&blob, TraitType::Datetime, 1), None);
        assert_eq!(
            find(&blob, TraitType::Datetime, 2),
            Some(Number::Datetime(6))
        );
        assert_eq!(find(&blob, TraitType::Integer, 2), Some(Number::Integer(7)));
        assert_eq!(find(&blob, TraitType::Float, 3), Some(Number::Float(-0.5)));
        assert_eq!(find(&blob, TraitType::Float, 4), None);
        assert_eq!(find(&[], TraitType::Integer, 1), None);
    }

    #[test]
    fn broken_bytes_are_an_error_not_an_empty_event() {
        let mut out = Vec::new();
        // A cut-off float, an unknown variant, a varint that never ends.
        let cut = &encode([(1, &TraitValue::Float(1.5))])[..5];
        for blob in [cut, &[1, 9, 1][..], &[0xff; 11][..]] {
            assert!(decode(1, blob, &mut out).is_err(), "{blob:?}");
            assert!(std::panic::catch_unwind(|| find(blob, TraitType::Integer, 5)).is_err());
        }
        assert!(out.is_empty());
    }

    #[test]
    fn the_sql_functions_read_the_blob_in_sqlite() {
        use diesel::connection::{Connection, SimpleConnection};
        use diesel::sql_types::{Double, Nullable as N, Text};
        use diesel::RunQueryDsl;

        #[derive(diesel::QueryableByName, Debug, PartialEq)]
        struct Out {
            #[diesel(sql_type = N<BigInt>)]
            i: Option<i64>,
            #[diesel(sql_type = N<Double>)]
            f: Option<f64>,
            #[diesel(sql_type = N<BigInt>)]
            d: Option<i64>,
            #[diesel(sql_type = N<BigInt>)]
            missing: Option<i64>,
            #[diesel(sql_type = N<BigInt>)]
            absent: Option<i64>,
            #[diesel(sql_type = Text)]
            kinds: String,
        }
        let mut conn = SqliteConnection::establish(":memory:").expect("sqlite");
        register_functions(&mut conn).expect("register");
        conn.batch_execute("CREATE TABLE t (b BLOB)")
            .expect("table");
        let blob = encode([
            (3, &TraitValue::Integer(i64::MIN)),
            (4, &TraitValue::Float(5e-324)),
            (5, &TraitValue::Datetime(i64::MAX)),
        ]);
        diesel::sql_query("INSERT INTO t VALUES (?)")
            .bind::<Binary, _>(blob)
            .execute(&mut conn)
            .expect("insert");
        let out: Vec<Out> = diesel::sql_query(
            "SELECT almanac_integer(b, 3) AS i, almanac_float(b, 4) AS f, \
             almanac_datetime(b, 5) AS d, almanac_integer(b, 5) AS missing, \
             almanac_integer(NULL, 3) AS absent, \
             typeof(almanac_integer(b, 3)) || typeof(almanac_float(b, 4)) AS kinds FROM t",
        )
        .load(&mut conn)
        .expect("select");
        assert_eq!(
            out,
            vec![Out {
                i: Some(i64::MIN),
                f: Some(5e-324),
                d: Some(i64::MAX),
                missing: None,
                absent: None,
                kinds: "integerreal".into(),
            }]
        );
        // A broken BLOB fails the statement.
        diesel::sql_query("UPDATE t SET b = x'ffffffffffffffffffffff'")
            .execute(&mut conn)
            .expect("break");
        let res = diesel::sql_query("SELECT almanac_integer(b, 3) AS i FROM t").execute(&mut conn);
        assert!(res.is_err());
    }

    proptest! {
        /// Every number comes back exactly (floats bit for bit), with its name and type, in the
        /// order given; strings are left out.
        #[test]
        fn every_number_round_trips(traits in prop::collection::vec((any::<i64>(), any_stored_value()), 0..20)) {
            let expected: Vec<(i64, i64, TraitValue)> = traits
                .iter()
                .filter(|(_, v)| v.trait_type() != TraitType::String)
                .map(|(n, v)| (42, *n, v.clone()))
                .collect();
            let got = round_trip(&traits);
            same_entries(&got, &expected)?;
            let blob = encode(traits.iter().map(|(n, v)| (*n, v)));
            for (_, name_id, value) in &got {
                prop_assert!(find(&blob, value.trait_type(), *name_id).is_some());
            }
        }
    }
}
