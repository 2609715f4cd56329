//! The demo hierarchy of SPEC.md section 9 (seed 001), built through the same
//! use cases the API calls.

use anyhow::{Result, anyhow};
use arbor_app::{App, Caller, NewHierarchy, NewMember};
use arbor_core::{BuiltinRole, OrgType, Permission, PermissionSet, UserId};
use arbor_store::{ClientKind, NewDatastream, NewDevice, NewOrg, NewUser};

/// Every demo account uses this password.
pub const PASSWORD: &str = "heat-co-demo-2026";

fn user(email: &str, name: &str, hash: &str) -> NewUser {
    let mut user = NewUser::active(email, name);
    user.password_hash = Some(hash.to_owned());
    user
}

fn device(name: &str, template: arbor_store::DeviceTemplateId, owner: UserId) -> NewDevice {
    NewDevice {
        name: name.into(),
        template,
        owner: Some(owner),
        metafields: vec![],
    }
}

pub async fn load(app: &App) -> Result<()> {
    let e = |e: arbor_app::AppError| anyhow!("demo data: {e}");
    let hash = arbor_app::password::hash(PASSWORD).map_err(|e| anyhow!("{e}"))?;
    let created = app
        .create_hierarchy(&NewHierarchy {
            root: NewOrg::named("Heat Co", OrgType::Root),
            settings: Default::default(),
            admin: user("a@heatco.example", "A (Heat Co Admin)", &hash),
            client: ClientKind::Cli,
        })
        .await
        .map_err(e)?;
    let root = created.root.id;
    let a = Caller::new(created.admin, ClientKind::Cli);
    let (admin, staff, user_role) = (
        created.role(BuiltinRole::Admin),
        created.role(BuiltinRole::Staff),
        created.role(BuiltinRole::User),
    );
    let org = |name: &str| NewOrg::named(name, OrgType::Business);
    let muller = app
        .create_suborg(&a, root, &org("Muller Boiler Group"))
        .await
        .map_err(e)?
        .id;
    let united = app
        .create_suborg(&a, root, &org("United Heaters Inc."))
        .await
        .map_err(e)?
        .id;
    let m_home = app
        .create_suborg(&a, united, &org("M's home"))
        .await
        .map_err(e)?
        .id;
    let h_home = app
        .create_suborg(&a, united, &org("H's home"))
        .await
        .map_err(e)?
        .id;

    let member = |email: &str, name: &str, role| NewMember {
        user: user(email, name, &hash),
        role,
    };
    let r = app
        .add_member(&a, muller, &member("r@muller.example", "R", staff))
        .await
        .map_err(e)?;
    let w = app
        .add_member(&a, muller, &member("w@muller.example", "W", staff))
        .await
        .map_err(e)?;
    let u = app
        .add_member(&a, muller, &member("u@muller.example", "U", user_role))
        .await
        .map_err(e)?;
    let m = app
        .add_member(&a, m_home, &member("m@united.example", "M", admin))
        .await
        .map_err(e)?;
    let h = app
        .add_member(&a, h_home, &member("h@united.example", "H", admin))
        .await
        .map_err(e)?;
    let owners = PermissionSet::from([Permission::OwnDevicesView, Permission::OwnDevicesControl]);
    app.set_role_permissions(&a, muller, user_role, owners)
        .await
        .map_err(e)?;

    let heater = NewDatastream {
        pin: 0,
        name: "Temperature".into(),
        value_type: "double".into(),
        min: Some(0.0),
        max: Some(95.0),
        units: "°C".into(),
    };
    let template = app
        .create_device_template(&a, root, "Heater", &[heater])
        .await
        .map_err(e)?;
    for org in [muller, m_home, h_home] {
        app.enable_device_template(&a, org, template)
            .await
            .map_err(e)?;
    }
    app.create_device(&a, root, &device("Demo Unit", template, created.admin))
        .await
        .map_err(e)?;
    app.create_device(&a, muller, &device("Boiler", template, r))
        .await
        .map_err(e)?;
    app.create_device(&a, muller, &device("Thermostat", template, w))
        .await
        .map_err(e)?;
    let garage = app
        .create_device(&a, muller, &device("Garage Heater", template, r))
        .await
        .map_err(e)?;
    app.transfer_device_to_user(&a, garage, u)
        .await
        .map_err(e)?;
    app.create_device(&a, m_home, &device("Pool Heater", template, m))
        .await
        .map_err(e)?;
    app.create_device(&a, h_home, &device("Thermostat H", template, h))
        .await
        .map_err(e)?;

    println!("Demo data loaded (SPEC.md section 9). Every account's password: {PASSWORD}");
    for (email, what) in [
        ("a@heatco.example", "Admin of Heat Co: sees every device"),
        (
            "r@muller.example",
            "Staff of Muller Boiler Group: sees Boiler, Thermostat, Garage Heater",
        ),
        (
            "w@muller.example",
            "Staff of Muller Boiler Group: same as R",
        ),
        (
            "u@muller.example",
            "User of Muller Boiler Group: sees only Garage Heater (transferred to U)",
        ),
        (
            "m@united.example",
            "Admin of M's home: sees only Pool Heater",
        ),
        (
            "h@united.example",
            "Admin of H's home: sees only Thermostat H",
        ),
    ] {
        println!("  {email:<20} {what}");
    }
    Ok(())
}
