//! The JSON shapes the API returns, in Panko's key order.
//!
//! Events are written straight from the store's pages by [`super::event_json`]; [`EventView`]
//! and [`TraitView`] describe that output in the OpenAPI document.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::model::{Trait, TraitType};

/// An event. Keys in Panko's order: message_id, event_type, traits, generated, raw.
// The schema of what `EventJson` writes; never built.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EventView {
    #[schema(example = "7d6b2ba6-2b5b-4c6e-9e5e-2f1c1f6a0e11")]
    pub message_id: String,
    #[schema(example = "compute.instance.create.end")]
    pub event_type: String,
    /// Sorted by name.
    pub traits: Vec<TraitView>,
    /// UTC, no offset; microseconds only when non-zero (`2014-01-01T05:00:00`).
    #[schema(example = "2014-01-01T05:00:00")]
    pub generated: String,
    /// The payload as stored.
    #[schema(value_type = Object)]
    pub raw: Box<RawValue>,
}

/// A trait: the value is always a string, whatever the type.
// In events, `EventJson` writes this shape without building these.
#[derive(Serialize, ToSchema)]
pub struct TraitView {
    #[schema(example = "memory_mb")]
    pub name: String,
    #[schema(example = "2048")]
    pub value: String,
    #[serde(rename = "type")]
    #[schema(example = "integer")]
    pub trait_type: TraitTypeName,
}

/// A trait name and type of an event type. Keys in Panko's order: type, name.
#[derive(Serialize, ToSchema)]
pub struct TraitDescriptionView {
    #[serde(rename = "type")]
    pub trait_type: TraitTypeName,
    pub name: String,
}

/// `string`, `integer`, `float` or `datetime`.
#[derive(Serialize, ToSchema, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub enum TraitTypeName {
    String,
    Integer,
    Float,
    Datetime,
}

impl From<TraitType> for TraitTypeName {
    fn from(t: TraitType) -> Self {
        match t {
            TraitType::String => TraitTypeName::String,
            TraitType::Integer => TraitTypeName::Integer,
            TraitType::Float => TraitTypeName::Float,
            TraitType::Datetime => TraitTypeName::Datetime,
        }
    }
}

impl From<Trait> for TraitView {
    fn from(t: Trait) -> Self {
        TraitView {
            value: t.value.render(),
            trait_type: t.value.trait_type().into(),
            name: t.name,
        }
    }
}
