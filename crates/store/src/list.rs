//! List queries: arbor-core's scope filters turned into SQL in one place
//! ([`scope_predicate`]), with keyset pagination by id and opaque cursors.
//!
//! Every list here answers "which rows would the single check allow", so a
//! list never shows what `Actor::decide_*` would deny and never misses what it
//! would allow: devices use [`DeviceFilter`] (the in-memory twin of
//! `decide_device`), orgs and users an `Option<Scope>` from `Actor::org_filter`.

use crate::devices::{DEVICE_COLUMNS, device_from_row};
use crate::error::StoreError;
use crate::orgs::{ORG_COLUMNS, org_from_row};
use crate::rows::{DeviceRecord, DeviceTemplateId, OrgRecord, UserRecord};
use crate::text::{contains_pattern, fold, refuse_nul};
use crate::tx::Tx;
use crate::users::{USER_COLUMNS, user_from_row};
use arbor_core::policy::UserList;
use arbor_core::{DeviceFilter, LocationId, OrgId, Scope, UserId, UserStatus};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::{Any, AssertSqlSafe};

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// Which page to read: after an opaque cursor from a previous page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

impl PageRequest {
    pub fn first(limit: u32) -> Self {
        Self {
            after: None,
            limit: Some(limit),
        }
    }

    pub fn after(cursor: Option<String>, limit: Option<u32>) -> Self {
        Self {
            after: cursor,
            limit,
        }
    }

    pub(crate) fn size(&self) -> Result<u32, StoreError> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_SIZE),
            Some(n) if (1..=MAX_PAGE_SIZE).contains(&n) => Ok(n),
            Some(_) => Err(StoreError::invalid(
                "limit",
                format!("between 1 and {MAX_PAGE_SIZE}"),
            )),
        }
    }
}

/// One page of a list; `next` is the cursor of the following page, if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    fn empty() -> Self {
        Self {
            items: Vec::new(),
            next: None,
        }
    }
}

/// Cursors are `base64url("<kind>:<last id>")`: stable ordering by id, and
/// opaque to clients so the encoding may change.
fn encode_cursor(kind: &str, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{kind}:{id}"))
}

pub(crate) fn decode_cursor(kind: &str, cursor: Option<&str>) -> Result<i64, StoreError> {
    let Some(cursor) = cursor else { return Ok(0) };
    let bad = || StoreError::invalid("cursor", "not a cursor of this list");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (k, id) = text.split_once(':').ok_or_else(bad)?;
    if k != kind {
        return Err(bad());
    }
    id.parse::<i64>().map_err(|_| bad())
}

/// Values bound to a dynamically built query, numbered `$1…` in push order.
#[derive(Default)]
pub(crate) struct Binds(Vec<BindValue>);

enum BindValue {
    Int(i64),
    Text(String),
}

impl Binds {
    pub(crate) fn int(&mut self, v: i64) -> String {
        self.0.push(BindValue::Int(v));
        format!("${}", self.0.len())
    }

    pub(crate) fn text(&mut self, v: String) -> String {
        self.0.push(BindValue::Text(v));
        format!("${}", self.0.len())
    }

    pub(crate) fn query(self, sql: String) -> sqlx::query::Query<'static, Any, AnyArguments> {
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for v in self.0 {
            q = match v {
                BindValue::Int(i) => q.bind(i),
                BindValue::Text(t) => q.bind(t),
            };
        }
        q
    }
}

/// How a query refers to the org whose membership in a scope is tested.
#[derive(Clone, Copy)]
enum OrgRef<'a> {
    /// A column holding an org id.
    IdColumn(&'a str),
    /// A device row: its id, org id and hierarchy (root org) columns.
    Device {
        id: &'a str,
        org_id: &'a str,
        hierarchy: &'a str,
    },
    /// An alias of `organizations` already joined in the query.
    Joined(&'a str),
}

/// THE scope predicate: "the org referred to lies in `scope`" (rule 3: `{H}`,
/// plus H's descendants with switch_to_suborgs). Every list query gets its
/// scope condition from here. Descendants are selected by the index-friendly
/// path range of `OrgPath::subtree_range`; for a device, a whole hierarchy is
/// simply its hierarchy column (devices never leave their hierarchy) and a
/// deeper subtree a key lookup in `device_scopes`, which spares materialising
/// the subtree's org ids.
fn scope_predicate(scope: &Scope, org: OrgRef<'_>, binds: &mut Binds) -> String {
    let mut home = || binds.int(scope.home.id().0);
    if !scope.descendants {
        let home = home();
        return match org {
            OrgRef::IdColumn(column) | OrgRef::Device { org_id: column, .. } => {
                format!("{column} = {home}")
            }
            OrgRef::Joined(alias) => format!("{alias}.id = {home}"),
        };
    }
    match org {
        OrgRef::Device { hierarchy, .. } if scope.home.depth() == 1 => {
            format!("{hierarchy} = {}", home())
        }
        OrgRef::Device { id, .. } => format!(
            "EXISTS (SELECT 1 FROM device_scopes ws WHERE ws.ancestor_id = {} \
             AND ws.device_id = {id})",
            home()
        ),
        OrgRef::IdColumn(column) => {
            let (lo, hi) = scope.home.subtree_range();
            let (lo, hi) = (binds.text(lo), binds.text(hi));
            format!(
                "{column} IN (SELECT so.id FROM organizations so \
                 WHERE so.path >= {lo} AND so.path < {hi})"
            )
        }
        OrgRef::Joined(alias) => {
            let (lo, hi) = scope.home.subtree_range();
            let (lo, hi) = (binds.text(lo), binds.text(hi));
            format!("{alias}.path >= {lo} AND {alias}.path < {hi}")
        }
    }
}

/// Where the devices of `scope` are read from in id order, so that a page
/// costs its own size whatever the scope's: one org — `devices(org_id, id)`;
/// a hierarchy — `devices(hierarchy_id, id)`; a deeper subtree — the key of
/// `device_scopes` (migration 0014).
struct DeviceSource {
    from: &'static str,
    condition: String,
    /// The id column the keyset runs on.
    key: &'static str,
}

fn device_source(scope: &Scope, binds: &mut Binds) -> DeviceSource {
    let home = binds.int(scope.home.id().0);
    if !scope.descendants {
        DeviceSource {
            from: "devices d",
            condition: format!("d.org_id = {home}"),
            key: "d.id",
        }
    } else if scope.home.depth() == 1 {
        DeviceSource {
            from: "devices d",
            condition: format!("d.hierarchy_id = {home}"),
            key: "d.id",
        }
    } else {
        DeviceSource {
            from: "device_scopes ds JOIN devices d ON d.id = ds.device_id",
            condition: format!("ds.ancestor_id = {home}"),
            key: "ds.device_id",
        }
    }
}

pub(crate) fn finish_page<T>(
    mut items: Vec<T>,
    size: u32,
    kind: &str,
    id_of: impl Fn(&T) -> i64,
) -> Page<T> {
    let more = items.len() > size as usize;
    items.truncate(size as usize);
    let next = if more {
        items.last().map(|last| encode_cursor(kind, id_of(last)))
    } else {
        None
    };
    Page { items, next }
}

impl<M> Tx<M> {
    /// Devices matching `filter` (from `Actor::list_devices`) and `query`, by id.
    pub async fn list_devices(
        &mut self,
        filter: &DeviceFilter,
        query: &DeviceQuery,
        page: &PageRequest,
    ) -> Result<Page<DeviceRecord>, StoreError> {
        let size = page.size()?;
        let after = decode_cursor("d", page.after.as_deref())?;
        if filter.is_empty() {
            return Ok(Page::empty());
        }
        let mut binds = Binds::default();
        let limit = binds.int(i64::from(size) + 1);
        let after = binds.int(after);
        // What both halves share: the query's own filters. The narrowing to
        // `within` (an org or subtree) is intersected with the scope half's
        // scope, and a filter of the owner half.
        let mut shared = String::new();
        if let Some(template) = query.template {
            let template = binds.int(template.0);
            shared.push_str(&format!(" AND d.template_id = {template}"));
        }
        if let Some(owner) = query.owner {
            let owner = binds.int(owner.0);
            shared.push_str(&format!(" AND d.owner_id = {owner}"));
        }
        if let Some(name) = query.name.as_deref().filter(|q| !q.trim().is_empty()) {
            let pattern = binds.text(contains_pattern(name)?);
            shared.push_str(&format!(" AND d.name_folded LIKE {pattern} ESCAPE '\\'"));
        }
        if let Some(tag) = &query.tag {
            refuse_nul("tag", tag)?;
            let tag = binds.text(fold(tag.trim()));
            shared.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM device_tags dt JOIN tags t ON t.id = dt.tag_id \
                 WHERE dt.device_id = d.id AND t.name_folded = {tag})"
            ));
        }
        if let Some(location) = query.location {
            let location = binds.int(location.0);
            shared.push_str(&format!(" AND d.location_id = {location}"));
        }
        if let Some(online) = query.online {
            // Online: seen within the heartbeat, by the transaction's clock.
            let since = binds.int(self.now().saturating_sub(online.heartbeat_ms));
            shared.push_str(&if online.online {
                format!(" AND d.last_seen_at >= {since}")
            } else {
                format!(" AND (d.last_seen_at IS NULL OR d.last_seen_at < {since})")
            });
        }
        // Each half of `(org in scope) OR (owner = user)` is its own keyset
        // query with its own index (see `device_source`; devices(owner_id,
        // id)); their union is cut to the page. An OR inside one WHERE would
        // defeat both.
        let mut halves = Vec::new();
        let in_scope = match (&filter.scope, &filter.within) {
            (Some(scope), Some(within)) => scope.intersect(within),
            (scope, _) => scope.clone(),
        };
        if let Some(scope) = &in_scope {
            let source = device_source(scope, &mut binds);
            halves.push(format!(
                "SELECT d.id FROM {} WHERE {}{shared} AND {key} > {after} \
                 ORDER BY {key} LIMIT {limit}",
                source.from,
                source.condition,
                key = source.key,
            ));
        }
        if let Some(owner) = filter.owner {
            let mut narrowed = shared.clone();
            if let Some(within) = &filter.within {
                let inside = scope_predicate(
                    within,
                    OrgRef::Device {
                        id: "d.id",
                        org_id: "d.org_id",
                        hierarchy: "d.hierarchy_id",
                    },
                    &mut binds,
                );
                narrowed.push_str(&format!(" AND {inside}"));
            }
            let owner = binds.int(owner.0);
            let hierarchy = binds.int(filter.hierarchy.0);
            halves.push(format!(
                "SELECT d.id FROM devices d WHERE d.owner_id = {owner} \
                 AND d.hierarchy_id = {hierarchy}{narrowed} AND d.id > {after} \
                 ORDER BY d.id LIMIT {limit}"
            ));
        }
        if halves.is_empty() {
            return Ok(Page::empty());
        }
        let ids = halves
            .iter()
            .enumerate()
            .map(|(i, half)| format!("SELECT h{i}.id FROM ({half}) h{i}"))
            .collect::<Vec<_>>()
            .join(" UNION ");
        let sql = format!(
            "SELECT {DEVICE_COLUMNS} FROM devices d JOIN organizations o ON o.id = d.org_id \
             WHERE d.id IN ({ids}) ORDER BY d.id LIMIT {limit}"
        );
        let rows = binds.query(sql).fetch_all(self.conn()).await?;
        let mut items = rows
            .iter()
            .map(device_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        self.with_tags(&mut items).await?;
        Ok(finish_page(items, size, "d", |d| d.id.0))
    }

    /// Organizations in `scope` (from `Actor::org_filter`, or the actor's whole
    /// scope), by id.
    pub async fn list_orgs(
        &mut self,
        scope: Option<&Scope>,
        page: &PageRequest,
    ) -> Result<Page<OrgRecord>, StoreError> {
        let size = page.size()?;
        let after = decode_cursor("o", page.after.as_deref())?;
        let Some(scope) = scope else {
            return Ok(Page::empty());
        };
        let mut binds = Binds::default();
        let limit = binds.int(i64::from(size) + 1);
        let after = binds.int(after);
        let in_scope = scope_predicate(scope, OrgRef::Joined("o"), &mut binds);
        let sql = format!(
            "SELECT {ORG_COLUMNS} FROM organizations o WHERE {in_scope} AND o.id > {after} \
             ORDER BY o.id LIMIT {limit}"
        );
        let rows = binds.query(sql).fetch_all(self.conn()).await?;
        let items = rows
            .iter()
            .map(org_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, size, "o", |o| o.id.0))
    }

    /// Users with at least one membership in `scope` (from
    /// `Actor::org_filter(users.view)`), by id.
    pub async fn list_users(
        &mut self,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<UserRecord>, StoreError> {
        let size = page.size()?;
        let after = decode_cursor("u", page.after.as_deref())?;
        let scope = &filter.list.scope;
        let mut binds = Binds::default();
        let limit = binds.int(i64::from(size) + 1);
        let after = binds.int(after);
        let mut narrowing = filter.narrowing(&mut binds)?;
        if !filter.list.everyone {
            let me = binds.int(filter.list.me.0);
            narrowing.push_str(&format!(" AND u.id = {me}"));
        }
        let sql = if scope.descendants {
            // In user id order from the subtree's key of `member_scopes`; a
            // member of several orgs of the subtree counts at the first.
            let home = binds.int(scope.home.id().0);
            format!(
                "SELECT {USER_COLUMNS} FROM member_scopes ms JOIN users u ON u.id = ms.user_id \
                 WHERE ms.ancestor_id = {home} AND ms.user_id > {after} \
                 AND ms.org_id = (SELECT MIN(r.org_id) FROM member_scopes r \
                   WHERE r.ancestor_id = ms.ancestor_id AND r.user_id = ms.user_id)\
                 {narrowing} ORDER BY ms.user_id LIMIT {limit}"
            )
        } else {
            let in_scope = scope_predicate(scope, OrgRef::IdColumn("m.org_id"), &mut binds);
            format!(
                "SELECT {USER_COLUMNS} FROM users u WHERE u.id IN \
                 (SELECT m.user_id FROM memberships m WHERE {in_scope}) \
                 AND u.id > {after}{narrowing} ORDER BY u.id LIMIT {limit}"
            )
        };
        let rows = binds.query(sql).fetch_all(self.conn()).await?;
        let items = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(finish_page(items, size, "u", |u| u.id.0))
    }

    /// Number of orgs in the subtree of `org` (itself included).
    pub async fn subtree_size(&mut self, org: OrgId) -> Result<u64, StoreError> {
        let path = self.org_path(org).await?;
        let (lo, hi) = path.subtree_range();
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM organizations WHERE path >= $1 AND path < $2")
                .bind(lo)
                .bind(hi)
                .fetch_one(self.conn())
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// What a device list asks for beyond what the caller may see: each set
/// field narrows the list further.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceQuery {
    /// Devices whose name contains this (case-insensitive).
    pub name: Option<String>,
    pub template: Option<DeviceTemplateId>,
    pub owner: Option<UserId>,
    /// Devices having a tag of this name (ignoring case).
    pub tag: Option<String>,
    /// Devices at this location.
    pub location: Option<LocationId>,
    /// Devices online (or not): seen within the heartbeat.
    pub online: Option<Online>,
}

/// The online filter: `online` devices called the device API within the
/// last `heartbeat_ms` (by the store's clock); the others did not, or never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Online {
    pub online: bool,
    pub heartbeat_ms: i64,
}

/// Which users a list shows: members of orgs in the list's scope,
/// optionally narrowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFilter {
    /// Which users the caller may list (arbor-core's [`UserList`]).
    pub list: UserList,
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// Only members of this org (the caller checks it lies in `scope`).
    pub org: Option<OrgId>,
    /// Only users whose email or name contains this text, ignoring case.
    pub search: Option<String>,
    /// Only users having a tag of this name (ignoring case).
    pub tag: Option<String>,
}

impl UserFilter {
    /// Every user of `list`, not narrowed further.
    pub fn new(list: UserList) -> Self {
        Self {
            list,
            status: None,
            org: None,
            search: None,
            tag: None,
        }
    }

    /// The narrowing conditions, each starting with ` AND `.
    fn narrowing(&self, binds: &mut Binds) -> Result<String, StoreError> {
        let mut sql = String::new();
        if let Some(status) = self.status {
            let status = binds.text(status.as_str().to_owned());
            sql.push_str(&format!(" AND u.status = {status}"));
        }
        if let Some(org) = self.org {
            let org = binds.int(org.0);
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM memberships mo WHERE mo.user_id = u.id AND mo.org_id = {org})"
            ));
        }
        if let Some(search) = self
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            // Folded in Rust like the stored columns; wildcards literal.
            let pattern = binds.text(contains_pattern(search)?);
            sql.push_str(&format!(
                " AND (u.email_normalized LIKE {pattern} ESCAPE '\\' \
                 OR u.name_folded LIKE {pattern} ESCAPE '\\')"
            ));
        }
        if let Some(tag) = &self.tag {
            refuse_nul("tag", tag)?;
            let tag = binds.text(fold(tag.trim()));
            sql.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM user_tags ut JOIN tags t ON t.id = ut.tag_id \
                 WHERE ut.user_id = u.id AND t.name_folded = {tag})"
            ));
        }
        Ok(sql)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_other_lists() {
        let c = encode_cursor("d", 42);
        assert_eq!(decode_cursor("d", Some(&c)).unwrap(), 42);
        assert!(decode_cursor("o", Some(&c)).is_err());
        assert!(decode_cursor("d", Some("%%%")).is_err());
        assert_eq!(decode_cursor("d", None).unwrap(), 0);
    }

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(PageRequest::default().size().unwrap(), DEFAULT_PAGE_SIZE);
        assert!(PageRequest::first(0).size().is_err());
        assert!(PageRequest::first(MAX_PAGE_SIZE + 1).size().is_err());
    }
}
