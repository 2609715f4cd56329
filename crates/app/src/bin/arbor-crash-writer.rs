//! A writer for the crash test: creates devices (row + 3 metafields + audit
//! event, one transaction each) through the use cases and prints each
//! acknowledged device id on stdout only after its commit returned. The test
//! SIGKILLs it at random points and then checks the database.
//!
//! Usage: `arbor-crash-writer <database-url> setup`
//!        `arbor-crash-writer <database-url> write <admin-id> <org-id> <template-id>`

use anyhow::{Context, bail};
use arbor_app::{App, Caller, NewHierarchy};
use arbor_core::template::{Metafield, MetafieldType, TemplateContent};
use arbor_core::{OrgId, OrgType, UserId};
use arbor_store::{
    ClientKind, DeviceTemplateId, HierarchySettings, NewDevice, NewOrg, NewUser, Store, StoreConfig,
};
use std::io::Write as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.first().context("database url")?;
    let store = Store::connect(&StoreConfig::new(url.clone())).await?;
    let app = App::new(store);
    let mut out = std::io::stdout().lock();
    match args.get(1).map(String::as_str) {
        Some("setup") => {
            let h = app
                .create_hierarchy(&NewHierarchy {
                    root: NewOrg::named("Crash Co", OrgType::Root),
                    settings: HierarchySettings::default(),
                    admin: NewUser::active("admin@crash.example", "Admin"),
                    client: ClientKind::Cli,
                })
                .await?;
            let caller = Caller::new(h.admin, ClientKind::Cli);
            let content = TemplateContent {
                name: "Crash sensor".into(),
                metafields: (0..3)
                    .map(|k| Metafield {
                        name: format!("k{k}"),
                        value_type: MetafieldType::Text,
                        default_value: String::new(),
                    })
                    .collect(),
                ..TemplateContent::default()
            };
            let template = app.create_template(&caller, content).await?.id;
            writeln!(out, "{} {} {}", h.admin, h.root.id, template.0)?;
        }
        Some("write") => {
            let num = |i: usize| -> anyhow::Result<i64> {
                Ok(args.get(i).context("missing argument")?.parse()?)
            };
            let caller = Caller::new(UserId(num(2)?), ClientKind::Cli);
            let org = OrgId(num(3)?);
            let template = DeviceTemplateId(num(4)?);
            writeln!(out, "ready")?;
            out.flush()?;
            for n in 0..1_000_000u64 {
                let device = NewDevice {
                    name: format!("crash {n}"),
                    template,
                    owner: Some(caller.user),
                    metafields: (0..3).map(|k| (format!("k{k}"), format!("v{n}"))).collect(),
                };
                let id = app.create_device(&caller, org, &device).await?;
                writeln!(out, "{id}")?;
                out.flush()?;
            }
        }
        _ => bail!("usage: arbor-crash-writer <database-url> setup|write …"),
    }
    Ok(())
}
