//! Small worlds for the policy's unit tests.

use crate::decision::{Actor, Membership, Principal, UserStatus};
use crate::ids::{OrgId, RoleId, UserId};
use crate::org::OrgPath;
use crate::permission::PermissionSet;

pub(crate) fn path(ids: &[i64]) -> OrgPath {
    OrgPath::from_ids(ids.iter().copied().map(OrgId).collect()).unwrap()
}

/// User 1, active, acting at home in `org` with `permissions`.
pub(crate) fn actor(org: &OrgPath, permissions: PermissionSet) -> Actor {
    Principal {
        user: UserId(1),
        status: UserStatus::Active,
        session_revoked: false,
        memberships: vec![Membership {
            org: org.clone(),
            role: RoleId(1),
            permissions,
            home: true,
        }],
    }
    .act_at_home()
    .unwrap()
}
