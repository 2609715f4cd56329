//! arbor-core's integration tests: one binary (STYLE.md habit 7).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod device_values;
mod docs;
mod policy_accounts;
mod policy_places;
mod policy_properties;
mod policy_reference;
mod properties;
mod reference;
mod rules;
mod scenario;
mod world;
