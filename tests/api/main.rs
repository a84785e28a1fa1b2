//! Almanac's API test suite: one binary, every test run against SQLite and PostgreSQL.

mod process;
mod support;

mod cli;
mod crash;
mod errors;
mod event_types;
mod events_query;
mod ingest;
mod migrations;
mod openapi;
mod paging;
mod root;
mod scoping;
