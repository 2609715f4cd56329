//! Reads: single gets and lists, both decided by the same actor so that a list
//! never disagrees with a get.

use crate::run::{Decides, Found, Stop, read_case};
use crate::users::Member;
use crate::{App, AppError, Caller};
use arbor_core::{DeviceId, OrgId, UserId};
use arbor_store::{
    AuditEvent, DeviceQuery, DeviceRecord, Online, OrgRecord, Page, PageRequest, UserFilter,
    UserRecord,
};

/// Where and what a device list searches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSearch {
    /// Only devices of this org (and, with `include_suborgs`, its subtree);
    /// the org must be in the caller's list scope.
    pub org: Option<OrgId>,
    pub include_suborgs: bool,
    /// Name, template, owner, tag and location filters. Its `online` is
    /// set from [`DeviceSearch::online`] with the configured heartbeat.
    pub query: DeviceQuery,
    /// Only devices online (`true`) or offline (`false`): seen through the
    /// device API within the heartbeat (`device_heartbeat_secs`).
    pub online: Option<bool>,
}

impl App {
    /// Devices the caller may view: one combined list across its scope
    /// (narrowed to the context org's subtree when it switched, rule 9).
    pub async fn list_devices(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<DeviceRecord>, AppError> {
        self.search_devices(caller, &DeviceSearch::default(), page)
            .await
    }

    /// Devices the caller may view that match `search`: the same predicate
    /// as `get_device`, narrowed to one org or subtree and filtered.
    pub async fn search_devices(
        &self,
        caller: &Caller,
        search: &DeviceSearch,
        page: &PageRequest,
    ) -> Result<Page<DeviceRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "device.list", "device:*");
        read_case!(self, caller, event, |step| {
            let org = match search.org {
                Some(org) => Some(step.tx.org(org).await.found(step, "organization")?.path),
                None => None,
            };
            let filter = step
                .actor
                .list_devices(org.as_ref(), search.include_suborgs)
                .map_err(|decision| Stop::Denied {
                    decision,
                    what: "organization",
                })?;
            let mut query = search.query.clone();
            if let Some(tag) = &query.tag {
                query.tag = Some(crate::places::tag_filter(tag)?);
            }
            query.online = search.online.map(|online| Online {
                online,
                heartbeat_ms: self.device_heartbeat_ms(),
            });
            Ok(step.tx.list_devices(&filter, &query, page).await?)
        })
    }

    /// One device, if the caller may view it (else NotFound: existence does not leak).
    pub async fn get_device(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<DeviceRecord, AppError> {
        let event = AuditEvent::new(caller.client, "device.view", format!("device:{device}"));
        read_case!(self, caller, event, |step| {
            let record = step.tx.device(device).await.found(step, "device")?;
            let decision = step.actor.view_device(&record.facts());
            step.require(decision, "device")?;
            Ok(record)
        })
    }

    /// Organizations in the caller's list scope (rule 9).
    pub async fn list_orgs(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<OrgRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "org.list", "org:*");
        read_case!(self, caller, event, |step| {
            let scope = step.actor.list_scope();
            Ok(step.tx.list_orgs(Some(&scope), page).await?)
        })
    }

    /// One organization, if in the caller's scope.
    pub async fn get_org(&self, caller: &Caller, org: OrgId) -> Result<OrgRecord, AppError> {
        let event = AuditEvent::new(caller.client, "org.view", format!("org:{org}"));
        read_case!(self, caller, event, |step| {
            let record = step.tx.org(org).await.found(step, "organization")?;
            let decision = step.actor.view_org(&record.path);
            step.require(decision, "organization")?;
            Ok(record)
        })
    }

    /// Users the caller may view: the same users `get_user` shows.
    pub async fn list_users(
        &self,
        caller: &Caller,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>, AppError> {
        let event = AuditEvent::new(caller.client, "user.list", "user:*");
        read_case!(self, caller, event, |step| {
            let filter = UserFilter::new(step.actor.user_list());
            Ok(step.tx.list_users(&filter, page).await?)
        })
    }

    /// One user, if some membership of theirs is viewable by the caller.
    pub async fn get_user(&self, caller: &Caller, user: UserId) -> Result<UserRecord, AppError> {
        let event = AuditEvent::new(caller.client, "user.view", format!("user:{user}"));
        read_case!(self, caller, event, |step| {
            let record = step.tx.user(user).await.found(step, "user")?;
            let mut memberships = Vec::new();
            for m in step.tx.memberships(user).await? {
                let set = step.tx.role_permissions(m.org, m.role).await?;
                memberships.push((m, set));
            }
            let member = Member {
                record,
                memberships,
            };
            let decision = step.actor.view_user(user, &member.targets());
            step.require(decision, "user")?;
            Ok(member.record)
        })
    }
}
