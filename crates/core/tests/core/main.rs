//! arbor-core's integration tests: one binary (STYLE.md habit 7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod properties;
mod reference;
mod rules;
mod scenario;
mod world;
