//! HTTP suite for organizations, roles, permission sets and templates, and
//! access insight (issue 5), on SQLite and — with `ARBOR_TEST_DATABASE_URL` —
//! PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agreement;
mod audit;
mod concurrency;
mod context;
mod device_api;
mod device_data;
mod device_writes;
mod devices;
mod escalation;
mod lifecycle;
mod matrix;
mod nodes;
mod places;
mod readme;
mod reparent;
mod retention;
mod seed;
mod shared;
mod support;
mod templates;
mod transfer;
mod walk;
