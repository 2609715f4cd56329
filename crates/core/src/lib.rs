//! Arbor's domain model and authorization decision (SPEC.md sections 1–4).
//!
//! Pure: no I/O, no async, no clock. The store loads facts, this crate decides,
//! the application layer acts on the decision.

pub mod catalog_doc;
pub mod decision;
pub mod device_data;
pub mod error;
pub mod ids;
pub mod org;
pub mod permission;
pub mod policy;
pub mod role;
pub mod template;
pub mod text;

pub use decision::{
    Actor, Decision, DeviceAction, DeviceFacts, DeviceFilter, Grant, MemberFacts, Membership,
    Outcome, Principal, Rule, Scope, TraceStep, UserStatus, Via, membership_acted_on,
    who_can_device, who_can_member, who_can_org,
};
pub use error::DomainError;
pub use ids::{DeviceId, DeviceTemplateId, LocationId, OrgId, RoleId, TagId, UserId};
pub use org::{DepthLimit, OrgFacts, OrgPath, OrgType};
pub use permission::{Permission, PermissionGroup, PermissionSet};
pub use policy::{Allowed, Operator, Refusal, Verdict};
pub use role::{BuiltinRole, PermissionMatrix, PermissionTemplate, Role};
pub use text::Email;
