use arbor_app::{App, Caller, HierarchyCreated, NewHierarchy, NewMember};
use arbor_core::{BuiltinRole, DeviceId, OrgId, OrgType, UserId};
use arbor_store::{ClientKind, DeviceTemplateId, HierarchySettings, NewDevice, NewOrg, NewUser};

pub use arbor_testkit::TestDb;

/// Runs the test body on SQLite and on PostgreSQL (when configured).
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::support::TestDb::sqlite().await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Some(db) = $crate::support::TestDb::postgres().await {
                        super::$name(db).await;
                    }
                }
            }
        )*
    };
}
pub(crate) use both_engines;

pub fn web(user: UserId) -> Caller {
    Caller::new(user, ClientKind::Web)
}

pub async fn hierarchy(app: &App, name: &str, admin_email: &str) -> HierarchyCreated {
    app.create_hierarchy(&NewHierarchy {
        root: NewOrg::named(name, OrgType::Root),
        settings: HierarchySettings::default(),
        admin: NewUser::active(admin_email, format!("Admin of {name}")),
        client: ClientKind::Cli,
    })
    .await
    .unwrap()
}

pub async fn suborg(app: &App, by: UserId, parent: OrgId, name: &str) -> OrgId {
    app.create_suborg(&web(by), parent, &NewOrg::named(name, OrgType::Business))
        .await
        .unwrap()
        .id
}

pub async fn member(
    app: &App,
    by: UserId,
    org: OrgId,
    h: &HierarchyCreated,
    role: BuiltinRole,
    email: &str,
) -> UserId {
    app.add_member(
        &web(by),
        org,
        &NewMember {
            user: NewUser::active(email, email.split('@').next().unwrap_or(email)),
            role: h.role(role),
        },
    )
    .await
    .unwrap()
}

pub async fn template(app: &App, h: &HierarchyCreated, name: &str) -> DeviceTemplateId {
    use arbor_core::template::{Datastream, Metafield, MetafieldType, TemplateContent, ValueType};
    let content = TemplateContent {
        name: name.into(),
        datastreams: vec![Datastream {
            pin: 0,
            name: "Temperature".into(),
            value_type: ValueType::Double,
            enum_values: Vec::new(),
            min: Some(-50.0),
            max: Some(150.0),
            units: "°C".into(),
            default_value: None,
            decimals: None,
        }],
        metafields: vec![Metafield {
            name: "Serial".into(),
            value_type: MetafieldType::Text,
            default_value: String::new(),
        }],
        ..TemplateContent::default()
    };
    app.create_template(&web(h.admin), content)
        .await
        .unwrap()
        .id
}

pub fn new_device(name: &str, template: DeviceTemplateId, owner: Option<UserId>) -> NewDevice {
    NewDevice {
        name: name.into(),
        template,
        owner,
        metafields: vec![("Serial".into(), format!("SN-{name}"))],
    }
}

pub async fn device(
    app: &App,
    by: UserId,
    org: OrgId,
    template: DeviceTemplateId,
    name: &str,
    owner: Option<UserId>,
) -> DeviceId {
    app.create_device(&web(by), org, &new_device(name, template, owner))
        .await
        .unwrap()
}

/// Proofs for tests that write straight through the store, each from the
/// decision arbor-core takes for that kind of action.
pub mod proofs {
    use arbor_core::policy::{self, EditOwnAccount, Invite, Login, SetSuspended, TargetMembership};
    use arbor_core::{
        Allowed, Membership, OrgId, OrgPath, PermissionSet, Principal, RoleId, UserId, UserStatus,
    };

    fn actor(user: UserId) -> arbor_core::Actor {
        Principal {
            user,
            status: UserStatus::Active,
            session_revoked: false,
            memberships: vec![Membership {
                org: OrgPath::root(OrgId(1)),
                role: RoleId(1),
                permissions: PermissionSet::all(),
                home: true,
            }],
        }
        .act_at_home()
        .unwrap()
    }

    /// A login of `user` whose password matched.
    pub fn login(user: UserId) -> Allowed<Login> {
        policy::login(policy::LoginFacts {
            user,
            status: UserStatus::Active,
            password_matches: true,
        })
        .unwrap()
    }

    /// `user` editing its own account.
    pub fn own_account(user: UserId) -> Allowed<EditOwnAccount> {
        actor(user).edit_own_account().unwrap()
    }

    /// An Admin suspending `user` (logs it out too).
    pub fn suspend(user: UserId) -> Allowed<SetSuspended> {
        let org = OrgPath::root(OrgId(1));
        let membership = TargetMembership {
            org: &org,
            role: RoleId(3),
            permissions: PermissionSet::EMPTY,
            home: true,
        };
        actor(UserId(0))
            .manage_member::<SetSuspended>(user, &[membership])
            .unwrap()
    }

    /// An Admin inviting someone (may queue mail).
    pub fn invite() -> Allowed<Invite> {
        actor(UserId(1))
            .invite(&OrgPath::root(OrgId(1)), RoleId(1), PermissionSet::EMPTY)
            .unwrap()
    }
}
