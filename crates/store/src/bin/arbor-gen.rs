//! Generates a hierarchy of configurable size in either engine and reports rows/s.
//!
//! `cargo run --release -p arbor-store --bin arbor-gen -- --database-url sqlite://gen.db`

use arbor_store::generate::{GenConfig, generate};
use arbor_store::{Store, StoreConfig};
use clap::Parser;

#[derive(Parser, Debug)]
#[command(about = "Generate an Arbor hierarchy for benchmarks")]
struct Args {
    /// `sqlite://path` or `postgres://…`.
    #[arg(long, env = "ARBOR_DATABASE_URL")]
    database_url: String,
    #[arg(long, default_value_t = 10_000)]
    orgs: usize,
    #[arg(long, default_value_t = 4)]
    levels: usize,
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    #[arg(long, default_value_t = 1_000_000)]
    devices: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Rows per INSERT statement.
    #[arg(long, default_value_t = 1_000)]
    batch_rows: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Store::connect(&StoreConfig::new(args.database_url.clone())).await?;
    let config = GenConfig {
        orgs: args.orgs,
        levels: args.levels,
        users: args.users,
        devices: args.devices,
        seed: args.seed,
        batch_rows: args.batch_rows.max(1),
        ..GenConfig::default()
    };
    println!("engine: {}", store.engine().name());
    let report = generate(&store, &config, |phase, rows, took| {
        let rate = rows as f64 / took.as_secs_f64().max(1e-9);
        println!(
            "{phase:>22}: {rows:>9} rows in {:>7.2} s = {rate:>9.0} rows/s",
            took.as_secs_f64()
        );
    })
    .await?;
    println!(
        "total: root org {} — {} orgs, {} users, {} memberships, {} devices, {} other rows = {} rows in {:.2} s = {:.0} rows/s",
        report.root,
        report.orgs,
        report.users,
        report.memberships,
        report.devices,
        report.other_rows,
        report.rows(),
        report.elapsed.as_secs_f64(),
        report.rows_per_second()
    );
    store.close().await;
    Ok(())
}
