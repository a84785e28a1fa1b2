//! Test helpers for the row copies of traits (`trait_doc`, `trait_numbers`): the values the
//! store can hold, and an exact comparison of what a copy gives back.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::model::TraitValue;

/// One trait of each type under unsorted name ids, for the formats' fixed-shape tests.
pub fn one_of_each() -> [(i64, TraitValue); 4] {
    [
        (9, TraitValue::Float(0.95)),
        (4, TraitValue::String("compute-1".into())),
        (12, TraitValue::Datetime(1_764_633_600_101_668)),
        (7, TraitValue::Integer(512)),
    ]
}

/// Any value the store keeps: floats are finite (ingest refuses the others).
pub fn any_stored_value() -> impl Strategy<Value = TraitValue> {
    prop_oneof![
        any::<String>().prop_map(TraitValue::String),
        any::<i64>().prop_map(TraitValue::Integer),
        any::<f64>()
            .prop_filter("stored floats are finite", |f| f.is_finite())
            .prop_map(TraitValue::Float),
        any::<i64>().prop_map(TraitValue::Datetime),
    ]
}

/// The same (event id, name id, value) entries in the same order, floats bit for bit.
pub fn same_entries(
    got: &[(i64, i64, TraitValue)],
    expected: &[(i64, i64, TraitValue)],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(expected) {
        prop_assert_eq!((g.0, g.1), (e.0, e.1));
        match (&g.2, &e.2) {
            (TraitValue::Float(a), TraitValue::Float(b)) => {
                prop_assert_eq!(a.to_bits(), b.to_bits())
            }
            (a, b) => prop_assert_eq!(a, b),
        }
    }
    Ok(())
}
