//! The tables, declared once for both backends (kept by hand: `diesel print-schema` differs per
//! backend). Instants are BIGINT microseconds since the Unix epoch, UTC.
//!
//! The string traits `project_id` and `user_id` are stored only in `events`, as ids of their
//! values in `tenants` (they drive tenant scoping there); every other trait lives in the table of
//! its type, indexed by (name, value, event) so that a trait filter is an index lookup. The
//! (event, name) key declared for those tables is SQLite's; PostgreSQL's have no key (migration
//! `unkeyed_trait_rows`), and diesel only needs one declared.

diesel::table! {
    event_types (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    trait_names (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    /// Interned values of the tenancy traits (project and user ids).
    tenants (id) {
        id -> BigInt,
        name -> Text,
    }
}

diesel::table! {
    events (id) {
        id -> BigInt,
        message_id -> Text,
        event_type_id -> BigInt,
        generated -> BigInt,
        project_ref -> Nullable<BigInt>,
        user_ref -> Nullable<BigInt>,
        raw -> Text,
        // PostgreSQL only: `traits -> Nullable<Jsonb>`, each event's traits as a document for
        // pages and filters (`store::trait_doc`); SQLite only: `numbers -> Nullable<Binary>`,
        // each event's numeric traits for the same purpose (`store::trait_numbers`). Left out
        // here so that the declaration holds on both backends; only the store's own SQL reads or
        // writes them.
    }
}

diesel::table! {
    traits_string (event_id, name_id) {
        event_id -> BigInt,
        name_id -> BigInt,
        value -> Text,
    }
}

diesel::table! {
    traits_integer (event_id, name_id) {
        event_id -> BigInt,
        name_id -> BigInt,
        value -> BigInt,
    }
}

diesel::table! {
    traits_float (event_id, name_id) {
        event_id -> BigInt,
        name_id -> BigInt,
        value -> Double,
    }
}

diesel::table! {
    traits_datetime (event_id, name_id) {
        event_id -> BigInt,
        name_id -> BigInt,
        value -> BigInt,
    }
}

diesel::table! {
    /// Which (trait name, type) pairs occur on an event type: answers
    /// `/v2/event_types/{type}/traits` without scanning the trait tables.
    event_type_traits (event_type_id, name_id, dtype) {
        event_type_id -> BigInt,
        name_id -> BigInt,
        dtype -> SmallInt,
    }
}

diesel::joinable!(events -> event_types (event_type_id));
diesel::allow_tables_to_appear_in_same_query!(
    event_types,
    trait_names,
    tenants,
    events,
    traits_string,
    traits_integer,
    traits_float,
    traits_datetime,
    event_type_traits,
);
