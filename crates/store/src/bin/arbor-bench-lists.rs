//! Benchmarks the scope-filtered list queries on a generated hierarchy: first
//! page and a deep page, for a root Admin, a mid-level Admin, a leaf Admin and a
//! leaf User. Each sample is what a request does: a read transaction, the
//! principal re-read, the decision's filter, the page.
//!
//! `cargo run --release -p arbor-store --bin arbor-bench-lists -- --database-url sqlite://gen.db`

use anyhow::Context;
use arbor_core::{DeviceAction, UserId};
use arbor_store::generate::{generated_roots, sample_actors};
use arbor_store::{Page, PageRequest, Store, StoreConfig, UserFilter};
use clap::Parser;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    #[arg(long, env = "ARBOR_DATABASE_URL")]
    database_url: String,
    /// Samples per measurement.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// How many items deep the "deep page" starts (walked with pages of 500).
    #[arg(long, default_value_t = 100_000)]
    depth: usize,
}

#[derive(Clone, Copy)]
enum List {
    Devices,
    Orgs,
    Users,
}

async fn page(
    store: &Store,
    user: UserId,
    list: List,
    request: &PageRequest,
) -> anyhow::Result<(usize, Option<String>)> {
    let mut tx = store.read().await?;
    let principal = tx.principal(user).await?.context("user")?;
    let actor = principal
        .act_at_home()
        .map_err(|d| anyhow::anyhow!("denied: {d}"))?;
    let (len, next) = match list {
        List::Devices => {
            let p = tx
                .list_devices(
                    &actor.device_filter(DeviceAction::View),
                    &Default::default(),
                    request,
                )
                .await?;
            (p.items.len(), p.next)
        }
        List::Orgs => {
            let p = tx.list_orgs(Some(actor.scope()), request).await?;
            (p.items.len(), p.next)
        }
        List::Users => {
            let filter = UserFilter::new(actor.user_list());
            let p: Page<_> = tx.list_users(&filter, request).await?;
            (p.items.len(), p.next)
        }
    };
    tx.finish().await?;
    Ok((len, next))
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn measure(
    store: &Store,
    user: UserId,
    list: List,
    request: &PageRequest,
    samples: usize,
) -> anyhow::Result<(usize, f64, f64)> {
    // Warm-up: pool connections, prepared statements, caches.
    for _ in 0..20 {
        page(store, user, list, request).await?;
    }
    let mut times = Vec::with_capacity(samples);
    let mut len = 0;
    for _ in 0..samples {
        let started = Instant::now();
        len = page(store, user, list, request).await?.0;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((len, percentile(&times, 0.5), percentile(&times, 0.99)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let store = Store::connect(&StoreConfig::new(args.database_url.clone())).await?;
    let root = *generated_roots(&store)
        .await?
        .last()
        .context("no generated hierarchy; run arbor-gen first")?;
    let actors = sample_actors(&store, root).await?;
    println!(
        "engine: {}, root org {root}, {} samples each",
        store.engine().name(),
        args.samples
    );
    println!(
        "{:<12} {:<8} {:<22} {:>5} {:>9} {:>9}",
        "actor", "list", "page", "items", "p50 ms", "p99 ms"
    );
    let who = [
        ("root admin", actors.root_admin),
        ("mid admin", actors.mid_admin),
        ("leaf admin", actors.leaf_admin),
        ("leaf user", actors.leaf_user),
    ];
    for (name, user) in who {
        for (list, label) in [
            (List::Devices, "devices"),
            (List::Orgs, "orgs"),
            (List::Users, "users"),
        ] {
            let first = PageRequest::default();
            let (n, p50, p99) = measure(&store, user, list, &first, args.samples).await?;
            println!(
                "{name:<12} {label:<8} {:<22} {n:>5} {p50:>9.2} {p99:>9.2}",
                "first (50)"
            );
            if !matches!(list, List::Devices) {
                continue;
            }
            // Walk towards the deep page with big pages; stop at the last
            // page if the list is shorter than --depth.
            let mut cursor: Option<String> = None;
            let mut walked = 0;
            while walked < args.depth {
                let (n, next) = page(
                    &store,
                    user,
                    list,
                    &PageRequest::after(cursor.clone(), Some(500)),
                )
                .await?;
                match next {
                    Some(next) => {
                        walked += n;
                        cursor = Some(next);
                    }
                    None => break,
                }
            }
            let label = format!("after {walked} items");
            let deep = PageRequest::after(cursor, None);
            let (n, p50, p99) = measure(&store, user, list, &deep, args.samples).await?;
            println!(
                "{name:<12} {:<8} {label:<22} {n:>5} {p50:>9.2} {p99:>9.2}",
                "devices"
            );
        }
    }
    store.close().await;
    Ok(())
}
