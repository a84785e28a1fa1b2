//! Almanac's API test suite: one binary, every test run against SQLite and PostgreSQL.

mod support;

mod migrations;
mod openapi;
mod root;
