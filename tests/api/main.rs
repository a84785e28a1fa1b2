//! Almanac's API test suite: one binary, every test run against SQLite and PostgreSQL.

mod support;

mod audit;
mod cli;
mod errors;
mod event_types;
mod events_query;
mod ingest;
mod migrations;
mod openapi;
mod paging;
mod policy;
mod root;
mod scoping;
mod tenancy;
mod tokens;
