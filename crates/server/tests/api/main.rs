//! The HTTP API driven over the network against a real server on a random
//! port, on SQLite and (with ARBOR_TEST_DATABASE_URL) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod contract;
mod cross_site;
mod errors;
mod hygiene;
mod mail;
mod matrix;
mod nul;
mod openapi;
mod secrets;
mod support;
mod throttle;
mod users;
mod web;
