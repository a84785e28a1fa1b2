//! Almanac: an event store with typed trait queries that speaks the OpenStack Panko v2 API.
//!
//! Layers, top to bottom: `cli` (commands) → `http` (routes, parse and authorize) → `store`
//! (every query, as functions over a connection) → `db` (connections, pool, migrations).
//! `query` (the Panko q language), `ingest` (batch decoding) and `model` are pure and shared.

pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod model;
pub mod query;
pub mod store;
