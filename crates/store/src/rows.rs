//! Records read from and inputs written to the store.

use arbor_core::{
    DepthLimit, DeviceFacts, DeviceId, OrgFacts, OrgId, OrgPath, OrgType, UserId, UserStatus,
};
use serde::Serialize;

/// A device template (defined in arbor-core, whose decisions name it).
pub use arbor_core::DeviceTemplateId;

/// A login session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct SessionId(pub i64);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignupMode {
    #[default]
    InviteOnly,
    Open,
}

impl SignupMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InviteOnly => "invite_only",
            Self::Open => "open",
        }
    }

    pub fn parse(text: &str) -> Self {
        if text == "open" {
            Self::Open
        } else {
            Self::InviteOnly
        }
    }
}

/// Per-hierarchy settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HierarchySettings {
    pub depth_limit: DepthLimit,
    pub multi_org_membership: bool,
    pub signup_mode: SignupMode,
    /// Empty: any domain.
    pub allowed_email_domains: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OrgRecord {
    pub id: OrgId,
    pub parent: Option<OrgId>,
    pub path: OrgPath,
    pub org_type: OrgType,
    pub name: String,
    pub description: String,
    pub timezone: String,
    pub unit_system: String,
    pub contact: String,
    pub created_at: i64,
}

impl OrgRecord {
    pub fn facts(&self) -> OrgFacts {
        OrgFacts {
            path: self.path.clone(),
            org_type: self.org_type,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub status: UserStatus,
    pub locale: String,
    pub created_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub org: OrgPath,
    pub template: DeviceTemplateId,
    pub owner: Option<UserId>,
    pub name: String,
    pub created_at: i64,
    /// Where the device is; describes it only (never grants or limits access).
    pub location: Option<arbor_core::LocationId>,
    /// When it last called the device API (unix ms), if ever.
    pub last_seen_at: Option<i64>,
    /// Its tags' names, in name order (loaded with the device).
    pub tags: Vec<String>,
}

impl DeviceRecord {
    pub fn facts(&self) -> DeviceFacts<'_> {
        DeviceFacts {
            org: &self.org,
            owner: self.owner,
        }
    }
}

/// A new organization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewOrg {
    pub name: String,
    pub org_type: OrgType,
    pub description: String,
    pub timezone: String,
    pub unit_system: String,
    pub contact: String,
}

impl NewOrg {
    pub fn named(name: impl Into<String>, org_type: OrgType) -> Self {
        Self {
            name: name.into(),
            org_type,
            description: String::new(),
            timezone: "UTC".into(),
            unit_system: "metric".into(),
            contact: String::new(),
        }
    }
}

/// A new user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub status: UserStatus,
    pub locale: String,
}

impl NewUser {
    pub fn active(email: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            email: email.into(),
            name: name.into(),
            password_hash: None,
            status: UserStatus::Active,
            locale: "en".into(),
        }
    }
}

/// A new device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDevice {
    pub name: String,
    pub template: DeviceTemplateId,
    pub owner: Option<UserId>,
    /// Values keyed by the template's metafield names.
    pub metafields: Vec<(String, String)>,
}

/// What the store keeps of a device's auth token: the nonce it was derived
/// with and its SHA-256 (hex) — never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceTokenRecord {
    /// Absent for devices made before tokens were derived (0010): their
    /// token cannot be shown again until it is regenerated.
    pub nonce: Option<String>,
    pub hash: String,
}

pub(crate) fn parse_status(text: &str) -> UserStatus {
    match text {
        "active" => UserStatus::Active,
        "suspended" => UserStatus::Suspended,
        _ => UserStatus::Pending,
    }
}

/// A datastream of a new device template (a virtual pin V0–V255).
#[derive(Clone, Debug, PartialEq)]
pub struct NewDatastream {
    pub pin: u8,
    pub name: String,
    /// `integer`, `double`, `string` or `enum`.
    pub value_type: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub units: String,
}
