//! The permission catalog (SPEC.md section 3) as one table, and the compact set
//! type used everywhere a role's permissions are held.
//!
//! Ids are stable strings (`org_devices.view`); they are what the API, the
//! database and permission templates store. The enum's discriminant is only an
//! index into [`CATALOG`] and the bit position in [`PermissionSet`]; it is never
//! persisted.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// A group of the catalog, as the console shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PermissionGroup {
    Roles,
    Users,
    OwnDevices,
    OrgDevices,
    AuthTokens,
    Transfers,
    Ota,
    Templates,
    Organizations,
    OwnLocations,
    OrgLocations,
    Automations,
    DeveloperApi,
    Analytics,
    RuleGroups,
    Tags,
}

impl PermissionGroup {
    pub const ALL: [PermissionGroup; 16] = [
        Self::Roles,
        Self::Users,
        Self::OwnDevices,
        Self::OrgDevices,
        Self::AuthTokens,
        Self::Transfers,
        Self::Ota,
        Self::Templates,
        Self::Organizations,
        Self::OwnLocations,
        Self::OrgLocations,
        Self::Automations,
        Self::DeveloperApi,
        Self::Analytics,
        Self::RuleGroups,
        Self::Tags,
    ];

    /// The id prefix of the group's permissions (`org_devices`).
    pub fn id(self) -> &'static str {
        match self {
            Self::Roles => "roles",
            Self::Users => "users",
            Self::OwnDevices => "own_devices",
            Self::OrgDevices => "org_devices",
            Self::AuthTokens => "auth_tokens",
            Self::Transfers => "transfers",
            Self::Ota => "ota",
            Self::Templates => "templates",
            Self::Organizations => "organizations",
            Self::OwnLocations => "own_locations",
            Self::OrgLocations => "org_locations",
            Self::Automations => "automations",
            Self::DeveloperApi => "developer_api",
            Self::Analytics => "analytics",
            Self::RuleGroups => "rule_groups",
            Self::Tags => "tags",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Roles => "Permissions control",
            Self::Users => "Users",
            Self::OwnDevices => "Own devices",
            Self::OrgDevices => "Organization devices",
            Self::AuthTokens => "Auth tokens",
            Self::Transfers => "Transfers",
            Self::Ota => "Firmware over the air",
            Self::Templates => "Templates",
            Self::Organizations => "Organizations",
            Self::OwnLocations => "Owned locations",
            Self::OrgLocations => "Organization's locations",
            Self::Automations => "Automations",
            Self::DeveloperApi => "Developer API",
            Self::Analytics => "Analytics",
            Self::RuleGroups => "Rule engine",
            Self::Tags => "Tags",
        }
    }

    /// The group's permissions, in catalog order.
    pub fn permissions(self) -> impl Iterator<Item = &'static PermissionInfo> {
        CATALOG.iter().filter(move |info| info.group == self)
    }
}

/// One entry of the catalog.
#[derive(Debug)]
pub struct PermissionInfo {
    pub permission: Permission,
    /// Stable string id, `group.action`.
    pub id: &'static str,
    pub group: PermissionGroup,
    /// Human label for the console.
    pub label: &'static str,
    /// Direct dependencies: holding this permission requires holding these.
    pub requires: &'static [Permission],
}

macro_rules! catalog {
    ($($variant:ident = $id:literal, $group:ident, $label:literal, [$($req:ident),*];)*) => {
        /// One permission of the catalog.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission {
            $($variant,)*
        }

        /// The whole catalog, in a stable order (the enum's order).
        pub static CATALOG: &[PermissionInfo] = &[
            $(PermissionInfo {
                permission: Permission::$variant,
                id: $id,
                group: PermissionGroup::$group,
                label: $label,
                requires: &[$(Permission::$req),*],
            },)*
        ];
    };
}

catalog! {
    RolesView = "roles.view", Roles, "View roles and permissions", [];
    RolesCreate = "roles.create", Roles, "Create new roles", [RolesView];
    RolesEdit = "roles.edit", Roles, "Edit roles", [RolesView];
    RolesDelete = "roles.delete", Roles, "Delete roles", [RolesView];

    UsersView = "users.view", Users, "View users", [];
    UsersInvite = "users.invite", Users, "Invite new users", [UsersView];
    UsersEdit = "users.edit", Users, "Edit users", [UsersView];
    UsersDelete = "users.delete", Users, "Delete users", [UsersView];
    UsersChangePassword = "users.change_password", Users, "Change user passwords", [UsersView];
    UsersForceLogout = "users.force_logout", Users, "Force logout", [UsersView];
    UsersViewActionsLog = "users.view_actions_log", Users, "View user actions log", [UsersView];
    UsersTransfer = "users.transfer", Users, "Transfer users", [UsersView, OrganizationsSwitchToSuborgs];
    UsersDownloadList = "users.download_list", Users, "Download users list", [UsersView];
    UsersSuspend = "users.suspend", Users, "Suspend users", [UsersView];

    OwnDevicesView = "own_devices.view", OwnDevices, "View own devices", [];
    OwnDevicesControl = "own_devices.control", OwnDevices, "Control own devices", [OwnDevicesView];
    OwnDevicesProvision = "own_devices.provision", OwnDevices, "Provision new devices", [OwnDevicesView];
    OwnDevicesEdit = "own_devices.edit", OwnDevices, "Edit own devices", [OwnDevicesView];
    OwnDevicesDeleteData = "own_devices.delete_data", OwnDevices, "Delete own device data", [OwnDevicesView];
    OwnDevicesDownloadReports = "own_devices.download_reports", OwnDevices, "Download own device reports", [OwnDevicesView];
    OwnDevicesViewTimeline = "own_devices.view_timeline", OwnDevices, "View own device timeline", [OwnDevicesView];

    OrgDevicesView = "org_devices.view", OrgDevices, "View organization devices", [];
    OrgDevicesControl = "org_devices.control", OrgDevices, "Control organization devices", [OrgDevicesView];
    OrgDevicesAdd = "org_devices.add", OrgDevices, "Add new devices from the web app", [OrgDevicesView];
    OrgDevicesEdit = "org_devices.edit", OrgDevices, "Edit organization devices", [OrgDevicesView];
    OrgDevicesDelete = "org_devices.delete", OrgDevices, "Delete organization devices", [OrgDevicesView];
    OrgDevicesDeleteData = "org_devices.delete_data", OrgDevices, "Delete data from devices", [OrgDevicesView];
    OrgDevicesDownloadReports = "org_devices.download_reports", OrgDevices, "Download device reports", [OrgDevicesView];
    OrgDevicesViewTimeline = "org_devices.view_timeline", OrgDevices, "View device timeline", [OrgDevicesView];
    OrgDevicesServiceTab = "org_devices.service_tab", OrgDevices, "Access service tab", [OrgDevicesView];

    AuthTokensEdit = "auth_tokens.edit", AuthTokens, "Edit auth tokens", [];
    TransfersDevices = "transfers.devices", Transfers, "Transfer devices", [];

    OtaAccess = "ota.access", Ota, "Get access to firmware updates", [];
    OtaCreateShipments = "ota.create_shipments", Ota, "Create new firmware shipments", [OtaAccess];
    OtaManageShipments = "ota.manage_shipments", Ota, "Stop/pause shipments", [OtaAccess];

    TemplatesView = "templates.view", Templates, "View templates", [];
    TemplatesCreate = "templates.create", Templates, "Create templates", [TemplatesView];
    TemplatesEdit = "templates.edit", Templates, "Edit templates", [TemplatesView];
    TemplatesDelete = "templates.delete", Templates, "Delete templates", [TemplatesView];

    OrganizationsSettings = "organizations.settings", Organizations, "Access organization settings", [];
    OrganizationsCreateSuborgs = "organizations.create_suborgs", Organizations, "Create sub-organizations", [];
    OrganizationsSwitchToSuborgs = "organizations.switch_to_suborgs", Organizations, "Switch to sub-organizations", [];
    OrganizationsTransfer = "organizations.transfer", Organizations, "Transfer organizations", [];

    OwnLocationsView = "own_locations.view", OwnLocations, "View own locations", [];
    OwnLocationsCreate = "own_locations.create", OwnLocations, "Create own locations", [OwnLocationsView];
    OwnLocationsEdit = "own_locations.edit", OwnLocations, "Edit own locations", [OwnLocationsView];
    OwnLocationsDelete = "own_locations.delete", OwnLocations, "Delete own locations", [OwnLocationsView];
    OwnLocationsAssignUsers = "own_locations.assign_users", OwnLocations, "Assign users to own locations", [OwnLocationsView];

    OrgLocationsView = "org_locations.view", OrgLocations, "View organization locations", [];
    OrgLocationsCreate = "org_locations.create", OrgLocations, "Create organization locations", [OrgLocationsView];
    OrgLocationsEdit = "org_locations.edit", OrgLocations, "Edit organization locations", [OrgLocationsView];
    OrgLocationsDelete = "org_locations.delete", OrgLocations, "Delete organization locations", [OrgLocationsView];
    OrgLocationsAssignUsers = "org_locations.assign_users", OrgLocations, "Assign users to organization locations", [OrgLocationsView];

    AutomationsView = "automations.view", Automations, "View automations", [];
    AutomationsCreate = "automations.create", Automations, "Create automations", [AutomationsView];
    AutomationsEdit = "automations.edit", Automations, "Edit automations", [AutomationsView];
    AutomationsDelete = "automations.delete", Automations, "Delete automations", [AutomationsView];
    AutomationsExecute = "automations.execute", Automations, "Execute automations", [AutomationsView];

    DeveloperApiView = "developer_api.view", DeveloperApi, "View OAuth token settings", [];
    DeveloperApiCreate = "developer_api.create", DeveloperApi, "Create OAuth tokens", [DeveloperApiView];
    DeveloperApiEdit = "developer_api.edit", DeveloperApi, "Edit OAuth tokens", [DeveloperApiView];
    DeveloperApiDelete = "developer_api.delete", DeveloperApi, "Delete OAuth tokens", [DeveloperApiView];

    AnalyticsView = "analytics.view", Analytics, "View analytics", [];

    RuleGroupsView = "rule_groups.view", RuleGroups, "View rule groups", [];
    RuleGroupsCreate = "rule_groups.create", RuleGroups, "Create rule groups", [RuleGroupsView];
    RuleGroupsEdit = "rule_groups.edit", RuleGroups, "Edit rule groups", [RuleGroupsView];
    RuleGroupsDelete = "rule_groups.delete", RuleGroups, "Delete rule groups", [RuleGroupsView];

    TagsView = "tags.view", Tags, "View tags", [];
    TagsManage = "tags.manage", Tags, "Manage tags", [TagsView];
}

impl Permission {
    /// Every permission, in catalog order.
    pub fn all() -> impl Iterator<Item = Permission> {
        CATALOG.iter().map(|info| info.permission)
    }

    pub fn info(self) -> &'static PermissionInfo {
        // The catalog is generated from the enum in the same order.
        &CATALOG[self as usize]
    }

    pub fn id(self) -> &'static str {
        self.info().id
    }

    pub fn group(self) -> PermissionGroup {
        self.info().group
    }

    fn bit(self) -> u128 {
        1u128 << (self as u8)
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An id that is not in the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("unknown permission id {0:?}")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CATALOG
            .iter()
            .find(|info| info.id == s)
            .map(|info| info.permission)
            .ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

impl Serialize for Permission {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.id())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        id.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of permissions as a bitset: copying, comparing and testing cost one
/// machine word operation each, which keeps `decide` allocation-free.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u128);

const _: () = assert!(CATALOG_LEN <= 128, "the catalog must fit a u128 bitset");
const CATALOG_LEN: usize = Permission::TagsManage as usize + 1;

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    /// Every permission of the catalog.
    pub fn all() -> Self {
        Permission::all().collect()
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    pub fn insert(&mut self, permission: Permission) {
        self.0 |= permission.bit();
    }

    pub fn remove(&mut self, permission: Permission) {
        self.0 &= !permission.bit();
    }

    pub fn with(mut self, permission: Permission) -> Self {
        self.insert(permission);
        self
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_subset(self, other: PermissionSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn union(self, other: PermissionSet) -> Self {
        Self(self.0 | other.0)
    }

    pub fn difference(self, other: PermissionSet) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::all().filter(move |p| self.contains(*p))
    }

    /// The raw bits, for compact storage. Bit `i` is the `i`-th catalog entry; the
    /// database stores ids, not bits, so the catalog order may change freely.
    pub fn bits(self) -> u128 {
        self.0
    }

    /// The smallest superset closed over the catalog's dependencies.
    pub fn closed(self) -> Self {
        let mut set = self;
        loop {
            let mut next = set;
            for permission in set.iter() {
                for required in permission.info().requires {
                    next.insert(*required);
                }
            }
            if next == set {
                return set;
            }
            set = next;
        }
    }

    /// Closes the set over its dependencies and reports what had to be added.
    pub fn close_over_dependencies(self) -> Closure {
        let closed = self.closed();
        Closure {
            set: closed,
            added: closed.difference(self),
        }
    }

    /// Parses a list of string ids; the first unknown id is the error.
    pub fn from_ids<I, S>(ids: I) -> Result<Self, UnknownPermission>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        ids.into_iter()
            .map(|id| id.as_ref().parse::<Permission>())
            .collect()
    }

    /// The string ids, in catalog order.
    pub fn ids(self) -> Vec<&'static str> {
        self.iter().map(Permission::id).collect()
    }
}

/// The result of closing a permission set over its dependencies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closure {
    pub set: PermissionSet,
    /// Permissions that were not asked for but are required by those that were.
    pub added: PermissionSet,
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<T: IntoIterator<Item = Permission>>(iter: T) -> Self {
        let mut set = PermissionSet::EMPTY;
        for permission in iter {
            set.insert(permission);
        }
        set
    }
}

impl<const N: usize> From<[Permission; N]> for PermissionSet {
    fn from(value: [Permission; N]) -> Self {
        value.into_iter().collect()
    }
}

impl fmt::Debug for PermissionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Permission::id))
            .finish()
    }
}

impl Serialize for PermissionSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for PermissionSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ids = Vec::<Permission>::deserialize(deserializer)?;
        Ok(ids.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalog_order_matches_the_enum() {
        for (index, info) in CATALOG.iter().enumerate() {
            assert_eq!(info.permission as usize, index, "{}", info.id);
        }
        assert_eq!(CATALOG.len(), CATALOG_LEN);
    }

    #[test]
    fn ids_are_unique_and_prefixed_by_their_group() {
        let mut seen = HashSet::new();
        for info in CATALOG {
            assert!(seen.insert(info.id), "duplicate id {}", info.id);
            let (group, action) = info.id.split_once(".").unwrap();
            assert_eq!(group, info.group.id(), "{}", info.id);
            assert!(!action.is_empty(), "{}", info.id);
            assert!(!info.label.is_empty());
        }
    }

    #[test]
    fn catalog_holds_every_permission_of_the_spec() {
        let expected = [
            ("roles", &["view", "create", "edit", "delete"][..]),
            (
                "users",
                &[
                    "view",
                    "invite",
                    "edit",
                    "delete",
                    "change_password",
                    "force_logout",
                    "view_actions_log",
                    "transfer",
                    "download_list",
                    "suspend",
                ],
            ),
            (
                "own_devices",
                &[
                    "view",
                    "control",
                    "provision",
                    "edit",
                    "delete_data",
                    "download_reports",
                    "view_timeline",
                ],
            ),
            (
                "org_devices",
                &[
                    "view",
                    "control",
                    "add",
                    "edit",
                    "delete",
                    "delete_data",
                    "download_reports",
                    "view_timeline",
                    "service_tab",
                ],
            ),
            ("auth_tokens", &["edit"]),
            ("transfers", &["devices"]),
            ("ota", &["access", "create_shipments", "manage_shipments"]),
            ("templates", &["view", "create", "edit", "delete"]),
            (
                "organizations",
                &[
                    "settings",
                    "create_suborgs",
                    "switch_to_suborgs",
                    "transfer",
                ],
            ),
            (
                "own_locations",
                &["view", "create", "edit", "delete", "assign_users"],
            ),
            (
                "org_locations",
                &["view", "create", "edit", "delete", "assign_users"],
            ),
            (
                "automations",
                &["view", "create", "edit", "delete", "execute"],
            ),
            ("developer_api", &["view", "create", "edit", "delete"]),
            ("analytics", &["view"]),
            ("rule_groups", &["view", "create", "edit", "delete"]),
            ("tags", &["view", "manage"]),
        ];
        let mut count = 0;
        for (group, actions) in expected {
            for action in actions {
                let id = format!("{group}.{action}");
                assert!(id.parse::<Permission>().is_ok(), "missing {id}");
                count += 1;
            }
        }
        assert_eq!(
            count,
            CATALOG.len(),
            "catalog has permissions the spec lacks"
        );
    }

    #[test]
    fn every_non_view_permission_needs_its_group_view() {
        for info in CATALOG {
            let view = format!("{}.view", info.group.id());
            if let Ok(view) = view.parse::<Permission>()
                && view != info.permission
            {
                assert!(info.requires.contains(&view), "{} lacks {view}", info.id);
            }
        }
    }

    #[test]
    fn special_dependencies_of_the_spec_hold() {
        use Permission::*;
        for p in [OtaCreateShipments, OtaManageShipments] {
            assert!(PermissionSet::from([p]).closed().contains(OtaAccess));
        }
        let closed = PermissionSet::from([UsersTransfer]).closed();
        assert!(closed.contains(OrganizationsSwitchToSuborgs));
        assert!(closed.contains(UsersView));
        for p in [
            OrgDevicesControl,
            OrgDevicesDeleteData,
            OrgDevicesDownloadReports,
            OrgDevicesViewTimeline,
        ] {
            assert!(PermissionSet::from([p]).closed().contains(OrgDevicesView));
        }
        for p in [
            OwnDevicesControl,
            OwnDevicesDeleteData,
            OwnDevicesDownloadReports,
            OwnDevicesViewTimeline,
        ] {
            assert!(PermissionSet::from([p]).closed().contains(OwnDevicesView));
        }
    }

    #[test]
    fn closing_reports_the_added_dependencies() {
        use Permission::*;
        let closure =
            PermissionSet::from([OrgDevicesControl, UsersTransfer]).close_over_dependencies();
        assert_eq!(
            closure.added,
            PermissionSet::from([OrgDevicesView, UsersView, OrganizationsSwitchToSuborgs])
        );
        assert_eq!(
            closure.set.close_over_dependencies().added,
            PermissionSet::EMPTY
        );
    }

    #[test]
    fn ids_round_trip_through_serde() {
        let set = PermissionSet::from([Permission::TagsManage, Permission::RolesView]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["roles.view","tags.manage"]"#);
        let back: PermissionSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, set);
        for permission in Permission::all() {
            let text = serde_json::to_string(&permission).unwrap();
            let parsed: Permission = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed, permission);
        }
    }

    #[test]
    fn unknown_ids_are_a_clear_error() {
        let error = "org_devices.fly".parse::<Permission>().err();
        assert_eq!(error, Some(UnknownPermission("org_devices.fly".into())));
        assert_eq!(
            error.map(|e| e.to_string()).unwrap_or_default(),
            "unknown permission id \"org_devices.fly\""
        );
        let json = serde_json::from_str::<PermissionSet>(r#"["roles.view","nope"]"#);
        assert!(
            json.err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("\"nope\"")
        );
        assert!(PermissionSet::from_ids(["users.view", "x"]).is_err());
    }

    #[test]
    fn set_operations_behave_like_sets() {
        use Permission::*;
        let a = PermissionSet::from([UsersView, UsersEdit]);
        let b = PermissionSet::from([UsersView]);
        assert!(b.is_subset(a));
        assert!(!a.is_subset(b));
        assert_eq!(a.difference(b), PermissionSet::from([UsersEdit]));
        assert_eq!(a.union(b), a);
        assert_eq!(a.len(), 2);
        assert_eq!(PermissionSet::all().len(), CATALOG.len());
        let mut c = a;
        c.remove(UsersEdit);
        assert_eq!(c, b);
        assert!(PermissionSet::EMPTY.is_empty());
    }
}
