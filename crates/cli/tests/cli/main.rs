//! The `arbor` binary end to end: each test runs the real executable
//! (`CARGO_BIN_EXE_arbor`) over a fresh database and reads what an operator
//! sees — exit status, standard output and the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod durability;
mod first_run;
mod recover;
mod simulate;
