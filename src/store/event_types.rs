//! Event types and their traits (`/v2/event_types…`).

use diesel::RunQueryDsl;

use super::ingest::trait_table;
use super::names::{self, NameTable};
use super::rows::{FloatValue, IntValue, Name, NameType, TextValue};
use crate::db::sql::Sql;
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::model::{is_tenancy_trait, Trait, TraitType, TraitValue};

/// Every event type that has stored events, in byte order. (A name is interned before its
/// batch's events are inserted, so a type whose events were all skipped duplicates has a row but
/// no events.) One index probe per type.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<String>, ApiError> {
    let rows = Sql::new(
        "SELECT t.name AS name FROM event_types t \
         WHERE EXISTS (SELECT 1 FROM events e WHERE e.event_type_id = t.id) ORDER BY t.name",
    )
    .load::<Name>(conn)?;
    Ok(rows.into_iter().map(|r| r.name).collect())
}

/// The (name, type) pairs seen on events of this type, grouped by type in Panko's table order
/// (string, integer, float, datetime) and by name within a type. Unknown type: empty.
pub fn trait_descriptions(
    conn: &mut AnyConnection,
    event_type: &str,
) -> Result<Vec<(String, TraitType)>, ApiError> {
    let mut sql = Sql::new(
        "SELECT n.name AS name, x.dtype AS dtype FROM event_type_traits x \
         JOIN trait_names n ON n.id = x.name_id \
         JOIN event_types t ON t.id = x.event_type_id \
         WHERE t.name = ",
    );
    sql.bind_text(event_type).push(" ORDER BY x.dtype, n.name");
    sql.load::<NameType>(conn)?
        .into_iter()
        .map(|r| {
            let t = TraitType::from_code(r.dtype).ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("unknown trait type code {}", r.dtype))
            })?;
            Ok((r.name, t))
        })
        .collect()
}

/// Every stored instance of the trait `name` on events of `event_type` (one per event, duplicates
/// kept, as Panko), by type in Panko's table order, then in storage order.
pub fn trait_values(
    conn: &mut AnyConnection,
    event_type: &str,
    name: &str,
) -> Result<Vec<Trait>, ApiError> {
    let type_ids = names::lookup(conn, NameTable::EventTypes, &[event_type])?;
    let Some(&type_id) = type_ids.get(event_type) else {
        return Ok(Vec::new());
    };
    let name_ids = names::lookup(conn, NameTable::TraitNames, &[name])?;
    let Some(&name_id) = name_ids.get(name) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let trait_of = |value| Trait {
        name: name.to_string(),
        value,
    };
    for t in TraitType::ALL {
        let mut sql = if is_tenancy_trait(name, t) {
            let column = if name == "project_id" {
                "project_ref"
            } else {
                "user_ref"
            };
            let mut sql = Sql::new(&format!(
                "SELECT v.name AS value FROM events e \
                 JOIN tenants v ON v.id = e.{column} WHERE e.event_type_id = "
            ));
            sql.bind_i64(type_id);
            sql
        } else {
            let mut sql = Sql::new(&format!(
                "SELECT x.value AS value FROM {} x \
                 JOIN events e ON e.id = x.event_id WHERE x.name_id = ",
                trait_table(t)
            ));
            sql.bind_i64(name_id)
                .push(" AND e.event_type_id = ")
                .bind_i64(type_id);
            sql
        };
        sql.push(if is_tenancy_trait(name, t) {
            " ORDER BY e.id"
        } else {
            " ORDER BY x.event_id"
        });
        match t {
            TraitType::String => out.extend(
                sql.load::<TextValue>(conn)?
                    .into_iter()
                    .map(|r| trait_of(TraitValue::String(r.value))),
            ),
            TraitType::Integer => out.extend(
                sql.load::<IntValue>(conn)?
                    .into_iter()
                    .map(|r| trait_of(TraitValue::Integer(r.value))),
            ),
            TraitType::Float => out.extend(
                sql.load::<FloatValue>(conn)?
                    .into_iter()
                    .map(|r| trait_of(TraitValue::Float(r.value))),
            ),
            TraitType::Datetime => out.extend(
                sql.load::<IntValue>(conn)?
                    .into_iter()
                    .map(|r| trait_of(TraitValue::Datetime(r.value))),
            ),
        }
    }
    Ok(out)
}
