//! Row types loaded by the store's queries.

use diesel::sql_types::{BigInt, Binary, Double, Nullable, SmallInt, Text};
use diesel::QueryableByName;

#[derive(QueryableByName, Debug)]
pub struct EventRow {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub message_id: String,
    #[diesel(sql_type = BigInt)]
    pub event_type_id: i64,
    #[diesel(sql_type = BigInt)]
    pub generated: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub project_ref: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub user_ref: Option<i64>,
    #[diesel(sql_type = Text)]
    pub raw: String,
    /// The event's traits as a document (`store::trait_doc`): PostgreSQL rows stored since the
    /// `event_trait_documents` migration; NULL on SQLite and for older rows.
    #[diesel(sql_type = Nullable<Text>)]
    pub traits: Option<String>,
    /// The event's numeric traits (`store::trait_numbers`): SQLite rows stored since the
    /// `sqlite_trait_numbers` migration; NULL on PostgreSQL and for older rows.
    #[diesel(sql_type = Nullable<Binary>)]
    pub numbers: Option<Vec<u8>>,
}

/// The sort-key values of a marker event.
#[derive(QueryableByName, Debug)]
pub struct MarkerRow {
    #[diesel(sql_type = BigInt)]
    pub generated: i64,
    #[diesel(sql_type = Text)]
    pub message_id: String,
}

#[derive(QueryableByName, Debug)]
pub struct IdName {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub name: String,
}

#[derive(QueryableByName, Debug)]
pub struct IdMessage {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub message_id: String,
}

#[derive(QueryableByName, Debug)]
pub struct Name {
    #[diesel(sql_type = Text)]
    pub name: String,
}

#[derive(QueryableByName, Debug)]
pub struct NameType {
    #[diesel(sql_type = Text)]
    pub name: String,
    #[diesel(sql_type = SmallInt)]
    pub dtype: i16,
}

/// A trait value alone (`/v2/event_types/{t}/traits/{name}`), one row type per value type.
#[derive(QueryableByName, Debug)]
pub struct TextValue {
    #[diesel(sql_type = Text)]
    pub value: String,
}

#[derive(QueryableByName, Debug)]
pub struct IntValue {
    #[diesel(sql_type = BigInt)]
    pub value: i64,
}

#[derive(QueryableByName, Debug)]
pub struct FloatValue {
    #[diesel(sql_type = Double)]
    pub value: f64,
}

#[derive(QueryableByName, Debug)]
pub struct Count {
    #[diesel(sql_type = BigInt)]
    pub n: i64,
}
