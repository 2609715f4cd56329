//! The records, inputs and services of the use cases' API. They are
//! defined next to the store that keeps them and are part of this crate's
//! API: the HTTP layer names them through here and never depends on the
//! store itself.

pub use arbor_store::{
    AuditEntry, AuthzVersion, Claim, ClientKind, Clock, DEFAULT_PAGE_SIZE, DeviceEventRecord,
    DeviceQuery, DeviceRecord, DeviceTemplateId, DeviceTemplateRecord, DeviceTemplateSummary,
    Failure, HierarchySettings, LocationRecord, MAX_PAGE_SIZE, MailKind, MailRecord, ManualClock,
    MembershipRecord, NewDatastream, NewDevice, NewOrg, NewUser, Online, OrgRecord, Page,
    PageRequest, SessionId, SignupMode, StoredTemplate, SystemClock, TIMELINE_OFFLINE,
    TIMELINE_ONLINE, TIMELINE_OWNERSHIP, TagRecord, UserRecord,
};
