//! The store/app conformance suite: every test runs against a fresh SQLite
//! file, and against a fresh PostgreSQL schema when `ARBOR_TEST_DATABASE_URL`
//! is set (otherwise the PostgreSQL variant prints a notice and passes).

// Helpers outside #[test] functions panic on setup failure too: that is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod basics;
mod cache;
mod concurrency;
mod crash;
mod device_data;
mod hygiene;
mod list_equals_get;
mod outbox;
mod seed_001;
