//! `sqlx::migrate!` embeds each migration file with `include_str!`, so an
//! edited migration rebuilds the crate, but a new file in the directory does
//! not (sqlx tracks the directory only on nightly): watch the directories.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
