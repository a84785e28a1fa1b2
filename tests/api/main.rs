//! Almanac's API test suite: one binary, every test run against SQLite and PostgreSQL.

mod private_pg;
mod process;
mod support;

mod audit;
mod cli;
mod crash;
mod db_runner;
mod errors;
mod event_types;
mod events_query;
mod full_disk;
mod group_commit;
mod hostile;
mod ingest;
mod metrics;
mod migrations;
mod openapi;
mod outage;
mod paging;
mod policy;
mod read_only;
mod references;
mod root;
mod scoping;
mod shared_store;
mod shutdown;
mod slowloris;
mod tenancy;
mod tokens;
mod trait_documents;
