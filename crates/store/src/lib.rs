//! Arbor's storage: SQLite (one file, the embedded default) and PostgreSQL (for
//! scale and several server nodes) behind one transactional API.
//!
//! - The engine is chosen once, from the URL, when a [`Store`] connects. Queries
//!   are written once against sqlx's `Any` driver with `$n` placeholders; the few
//!   real differences (how a write transaction starts, row locks) live in
//!   [`Dialect`].
//! - Every mutation runs in a [`WriteTx`], which re-reads the facts a decision
//!   needs inside the transaction and commits only together with an audit event
//!   ([`WriteTx::commit`] takes it). Every mutating method takes the proof
//!   `&arbor_core::Allowed<A>` of an action `A` that arbor-core's table
//!   permits to make that write (`A: Permits<writes::…>`); only arbor-core
//!   constructs one, from an allowing decision (or an operator's command).
//! - Lists turn arbor-core's scope filters into SQL in one place ([`list`]), with
//!   keyset pagination.

mod accounts;
mod audit;
mod audit_log;
mod authz;
mod clock;
mod config;
mod data;
mod devices;
mod dialect;
mod error;
pub mod generate;
pub mod list;
mod mail;
mod orgs;
mod places;
mod pool_stats;
mod retention;
mod roles;
mod rows;
mod scopes;
mod store;
mod templates;
mod text;
mod throttle;
mod tx;
mod users;

pub use accounts::{InvitationRecord, PasswordResetRecord, SessionRecord};
pub use audit::{AuditEvent, AuditOutcome, ClientKind};
pub use audit_log::{AuditEntry, AuditRecord, AuditScope};
pub use authz::{AuthzChange, AuthzChanges, AuthzVersion, DeviceAccess};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::StoreConfig;
pub use data::{
    Data, DataDeletion, DataTx, DeviceEventRecord, HistoryBucket, HistoryPoint, PinProperty,
    StoredValue, TIMELINE_OFFLINE, TIMELINE_ONLINE, TIMELINE_OWNERSHIP, TokenDevice, ValueWrite,
};
pub use dialect::{Dialect, Engine};
pub use error::StoreError;
pub use list::{
    DEFAULT_PAGE_SIZE, DeviceQuery, MAX_PAGE_SIZE, Online, Page, PageRequest, UserFilter,
};
pub use mail::{Claim, Failure, MailKind, MailLink, MailRecord};
pub use orgs::OrgSettings;
pub use places::{LocationRecord, TagRecord};
pub use pool_stats::PoolStats;
pub use retention::{PrunePolicy, Pruned};
pub use roles::StoredTemplate;
pub use rows::{
    DeviceRecord, DeviceTemplateId, DeviceTokenRecord, HierarchySettings, NewDatastream, NewDevice,
    NewOrg, NewUser, OrgRecord, SessionId, SignupMode, UserRecord,
};
pub use scopes::{DEVICE_SCOPES_DEFINITION, MEMBER_SCOPES_DEFINITION};
pub use store::Store;
pub use templates::{DeviceTemplateRecord, DeviceTemplateSummary};
pub use throttle::{LoginCounter, LoginKey, login_account_key};
pub use tx::{Read, ReadTx, Table, Tx, Write, WriteTx};
pub use users::MembershipRecord;
