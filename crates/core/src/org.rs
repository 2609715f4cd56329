//! Organizations and the rules that shape a hierarchy (SPEC.md section 2).
//!
//! ## Tree encoding: materialized paths
//! Every organization carries its path, the ids from the hierarchy's root down to
//! itself (`[root, …, parent, self]`). Why this encoding:
//! - *Ancestor tests are O(1) and never walk the tree*: `a` is an ancestor of `d`
//!   iff `d.path[a.depth - 1] == a.id` — one bounds check and one comparison.
//!   Ids are unique per server, so the equality at that index implies the whole
//!   prefix is equal.
//! - *The same test is a SQL predicate*: the store keeps the path as text
//!   (`/1/7/42/`, see [`OrgPath::encode`]) and selects a subtree with an indexed
//!   prefix match (`path LIKE '/1/7/%'`), so a list and a single check use one rule.
//! - *Writes stay cheap*: creating an org writes one row; re-parenting rewrites the
//!   paths of the moved subtree only (one `UPDATE … SET path = new || substr(…)`).
//!   Interval (nested-set) numbering would make reads equally cheap but renumbers
//!   about half the hierarchy on every insert.
//! - Depth, root (the hierarchy id) and parent are read off the path.

use crate::error::DomainError;
use crate::ids::OrgId;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The kinds of organization. Only the root has `Root`; a new sub-org defaults
/// to `Business` (a "client").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrgType {
    Root,
    #[default]
    Business,
    Personal,
    Branch,
    Distributor,
    Contractor,
    Installer,
    Reseller,
}

impl OrgType {
    pub const ALL: [OrgType; 8] = [
        Self::Root,
        Self::Business,
        Self::Personal,
        Self::Branch,
        Self::Distributor,
        Self::Contractor,
        Self::Installer,
        Self::Reseller,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "ROOT",
            Self::Business => "BUSINESS",
            Self::Personal => "PERSONAL",
            Self::Branch => "BRANCH",
            Self::Distributor => "DISTRIBUTOR",
            Self::Contractor => "CONTRACTOR",
            Self::Installer => "INSTALLER",
            Self::Reseller => "RESELLER",
        }
    }

    pub fn parse(value: &str) -> Result<Self, DomainError> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value))
            .ok_or_else(|| {
                let accepted: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
                DomainError::invalid(
                    "type",
                    format!(
                        "unknown organization type {value:?}; expected one of: {}",
                        accepted.join(", ")
                    ),
                )
            })
    }
}

/// How many levels a hierarchy may have (root = level 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct DepthLimit(u8);

impl DepthLimit {
    pub const DEFAULT: DepthLimit = DepthLimit(4);
    /// Deeper trees are allowed by configuration up to this bound.
    pub const MAX: u8 = 16;

    pub fn new(levels: u8) -> Result<Self, DomainError> {
        if (1..=Self::MAX).contains(&levels) {
            Ok(Self(levels))
        } else {
            Err(DomainError::invalid(
                "depth_limit",
                format!("must be between 1 and {}", Self::MAX),
            ))
        }
    }

    pub fn levels(self) -> usize {
        self.0 as usize
    }
}

impl Default for DepthLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u8> for DepthLimit {
    type Error = DomainError;
    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<DepthLimit> for u8 {
    fn from(value: DepthLimit) -> Self {
        value.0
    }
}

/// The ids from the hierarchy's root down to an organization, inclusive.
/// Cheap to clone (shared slice).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OrgPath(Arc<[OrgId]>);

impl OrgPath {
    /// The path of a new root organization.
    pub fn root(id: OrgId) -> Self {
        Self(Arc::from([id]))
    }

    /// Builds a path from its ids; it must be non-empty and hold no id twice.
    pub fn from_ids(ids: Vec<OrgId>) -> Result<Self, DomainError> {
        if ids.is_empty() {
            return Err(DomainError::invalid("path", "an org path is never empty"));
        }
        for (i, id) in ids.iter().enumerate() {
            if ids[..i].contains(id) {
                return Err(DomainError::invalid(
                    "path",
                    "an org path holds an id twice",
                ));
            }
        }
        Ok(Self(ids.into()))
    }

    /// The path of a new child of `self`.
    pub fn child(&self, id: OrgId) -> Self {
        let mut ids = self.0.to_vec();
        ids.push(id);
        Self(ids.into())
    }

    /// The organization this path leads to.
    pub fn id(&self) -> OrgId {
        // Non-empty by construction.
        self.0[self.0.len() - 1]
    }

    /// The hierarchy's root, which also identifies the hierarchy.
    pub fn root_id(&self) -> OrgId {
        self.0[0]
    }

    pub fn parent_id(&self) -> Option<OrgId> {
        let n = self.0.len();
        (n >= 2).then(|| self.0[n - 2])
    }

    /// Level in the hierarchy: the root is 1.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    pub fn ids(&self) -> &[OrgId] {
        &self.0
    }

    pub fn same_hierarchy(&self, other: &OrgPath) -> bool {
        self.root_id() == other.root_id()
    }

    /// True if `self` is a strict ancestor of `other`. O(1).
    #[inline]
    pub fn is_ancestor_of(&self, other: &OrgPath) -> bool {
        let depth = self.0.len();
        other.0.len() > depth && other.0[depth - 1] == self.0[depth - 1]
    }

    /// True if `other` is `self` or below it. O(1).
    #[inline]
    pub fn contains(&self, other: &OrgPath) -> bool {
        let depth = self.0.len();
        other.0.len() >= depth && other.0[depth - 1] == self.0[depth - 1]
    }

    /// Text form kept by the store: `/1/7/42/`. The trailing slash makes every
    /// subtree a plain prefix (`/1/7/` never matches `/1/70/`).
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(self.0.len() * 6 + 1);
        text.push('/');
        for id in self.0.iter() {
            text.push_str(&id.0.to_string());
            text.push('/');
        }
        text
    }

    /// The text range that holds exactly this org and its descendants:
    /// `encode(d) >= lo AND encode(d) < hi`. `/` (0x2F) sorts just below `0`
    /// (0x30), so replacing the trailing slash by `0` bounds the prefix. A range
    /// instead of `LIKE` uses a plain B-tree index on both engines (the column
    /// must compare bytewise: `COLLATE "C"` on PostgreSQL, SQLite's default).
    pub fn subtree_range(&self) -> (String, String) {
        let lo = self.encode();
        let mut hi = lo.clone();
        hi.pop();
        hi.push('0');
        (lo, hi)
    }

    pub fn decode(text: &str) -> Result<Self, DomainError> {
        let inner = text
            .strip_prefix('/')
            .and_then(|t| t.strip_suffix('/'))
            .ok_or_else(|| DomainError::invalid("path", format!("malformed org path {text:?}")))?;
        let ids = inner
            .split('/')
            .map(|part| part.parse::<i64>().map(OrgId))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| DomainError::invalid("path", format!("malformed org path {text:?}")))?;
        Self::from_ids(ids)
    }

    /// The path `self` gets when the subtree rooted at `old_root` moves so that
    /// its root's new path is `new_root`. `self` must lie in that subtree.
    pub fn rebased(&self, old_root: &OrgPath, new_root: &OrgPath) -> Option<OrgPath> {
        if !old_root.contains(self) {
            return None;
        }
        let mut ids = new_root.0.to_vec();
        ids.extend_from_slice(&self.0[old_root.depth()..]);
        Some(Self(ids.into()))
    }
}

impl fmt::Debug for OrgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl Serialize for OrgPath {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for OrgPath {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let ids = Vec::<OrgId>::deserialize(deserializer)?;
        Self::from_ids(ids).map_err(serde::de::Error::custom)
    }
}

/// The facts about one organization that the tree rules need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgFacts {
    pub path: OrgPath,
    pub org_type: OrgType,
}

/// Checks that a sub-organization of type `child_type` may be created under `parent`.
pub fn check_create_suborg(
    parent: &OrgFacts,
    child_type: OrgType,
    limit: DepthLimit,
) -> Result<(), DomainError> {
    if child_type == OrgType::Root {
        return Err(DomainError::invalid(
            "type",
            "only a hierarchy's root organization has type ROOT",
        ));
    }
    if parent.org_type == OrgType::Personal && child_type != OrgType::Personal {
        return Err(DomainError::conflict(
            "a PERSONAL organization may only have PERSONAL sub-organizations",
        ));
    }
    if parent.path.depth() + 1 > limit.levels() {
        return Err(DomainError::conflict(format!(
            "the hierarchy allows at most {} levels",
            limit.levels()
        )));
    }
    Ok(())
}

/// What is moved when an organization is re-parented.
#[derive(Clone, Debug)]
pub struct MovedSubtree {
    pub root: OrgFacts,
    /// The greatest depth of any organization in the moved subtree (≥ the root's).
    pub deepest: usize,
    /// True if some organization of the subtree is not PERSONAL.
    pub has_non_personal: bool,
}

/// Checks a transfer (re-parenting) and returns the moved root's new path.
pub fn check_transfer_org(
    moved: &MovedSubtree,
    new_parent: &OrgFacts,
    limit: DepthLimit,
    confirmed: bool,
) -> Result<OrgPath, DomainError> {
    if !confirmed {
        return Err(DomainError::invalid(
            "confirm",
            "moving an organization moves its whole subtree; set confirm to true",
        ));
    }
    let old = &moved.root.path;
    if old.depth() == 1 {
        return Err(DomainError::conflict("a root organization cannot be moved"));
    }
    if !old.same_hierarchy(&new_parent.path) {
        // Callers only ever see orgs of their own hierarchy; a foreign parent is
        // indistinguishable from a missing one.
        return Err(DomainError::NotFound {
            what: "organization",
        });
    }
    if old.contains(&new_parent.path) {
        return Err(DomainError::conflict(
            "an organization cannot be moved into its own subtree",
        ));
    }
    if new_parent.org_type == OrgType::Personal && moved.has_non_personal {
        return Err(DomainError::conflict(
            "a PERSONAL organization may only have PERSONAL sub-organizations",
        ));
    }
    let new_depth_of_deepest = moved.deepest - old.depth() + new_parent.path.depth() + 1;
    if new_depth_of_deepest > limit.levels() {
        return Err(DomainError::conflict(format!(
            "the move would make the hierarchy {new_depth_of_deepest} levels deep; at most {} are allowed",
            limit.levels()
        )));
    }
    Ok(new_parent.path.child(old.id()))
}

/// What an organization still holds when its deletion is asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OrgContents {
    pub suborgs: u64,
    pub users: u64,
    pub devices: u64,
}

impl OrgContents {
    pub fn is_empty(self) -> bool {
        self.suborgs == 0 && self.users == 0 && self.devices == 0
    }
}

/// How a deletion proceeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletePlan {
    /// Nothing is inside; the organization alone goes.
    Empty,
    /// Everything inside moves to this organization (the parent) first.
    MoveContentsTo(OrgId),
}

/// Checks a deletion: nothing is deleted silently.
pub fn check_delete_org(
    org: &OrgPath,
    contents: OrgContents,
    move_contents_to_parent: bool,
) -> Result<DeletePlan, DomainError> {
    let Some(parent) = org.parent_id() else {
        return Err(DomainError::conflict(
            "a hierarchy's root organization cannot be deleted",
        ));
    };
    if contents.is_empty() {
        Ok(DeletePlan::Empty)
    } else if move_contents_to_parent {
        Ok(DeletePlan::MoveContentsTo(parent))
    } else {
        Err(DomainError::conflict(format!(
            "the organization still holds {} sub-organizations, {} users and {} devices; \
             set move_contents_to_parent to move them to the parent organization",
            contents.suborgs, contents.users, contents.devices
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(ids: &[i64]) -> OrgPath {
        OrgPath::from_ids(ids.iter().copied().map(OrgId).collect()).unwrap()
    }

    fn facts(ids: &[i64], org_type: OrgType) -> OrgFacts {
        OrgFacts {
            path: path(ids),
            org_type,
        }
    }

    #[test]
    fn ancestry_is_read_off_the_path() {
        let root = path(&[1]);
        let child = path(&[1, 7]);
        let grandchild = path(&[1, 7, 42]);
        let sibling = path(&[1, 8]);
        assert!(root.is_ancestor_of(&child));
        assert!(root.is_ancestor_of(&grandchild));
        assert!(child.is_ancestor_of(&grandchild));
        assert!(!child.is_ancestor_of(&child));
        assert!(child.contains(&child));
        assert!(!child.is_ancestor_of(&sibling));
        assert!(!grandchild.is_ancestor_of(&child));
        assert!(!path(&[2]).contains(&child));
        assert_eq!(grandchild.parent_id(), Some(OrgId(7)));
        assert_eq!(root.parent_id(), None);
        assert_eq!(grandchild.depth(), 3);
        assert_eq!(grandchild.root_id(), OrgId(1));
    }

    #[test]
    fn paths_encode_as_prefix_friendly_text() {
        let p = path(&[1, 7, 42]);
        assert_eq!(p.encode(), "/1/7/42/");
        assert_eq!(OrgPath::decode("/1/7/42/").unwrap(), p);
        assert!(!path(&[1, 70]).encode().starts_with(&path(&[1, 7]).encode()));
        for bad in ["", "/", "1/2/", "/1/x/", "/1/1/"] {
            assert!(OrgPath::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn subtree_range_bounds_exactly_the_subtree() {
        let (lo, hi) = path(&[1, 7]).subtree_range();
        let inside = |p: &OrgPath| {
            let text = p.encode();
            text >= lo && text < hi
        };
        assert!(inside(&path(&[1, 7])));
        assert!(inside(&path(&[1, 7, 42, 9])));
        assert!(!inside(&path(&[1, 70])));
        assert!(!inside(&path(&[1, 8])));
        assert!(!inside(&path(&[1])));
        assert!(!inside(&path(&[1, 6, 7])));
    }

    #[test]
    fn rebasing_moves_a_subtree_under_a_new_parent() {
        let old_root = path(&[1, 7]);
        let new_root = path(&[1, 8, 7]);
        assert_eq!(
            path(&[1, 7, 42]).rebased(&old_root, &new_root),
            Some(path(&[1, 8, 7, 42]))
        );
        assert_eq!(path(&[1, 9]).rebased(&old_root, &new_root), None);
    }

    #[test]
    fn sub_orgs_respect_the_depth_limit() {
        let limit = DepthLimit::DEFAULT;
        assert!(
            check_create_suborg(
                &facts(&[1, 2, 3], OrgType::Business),
                OrgType::Business,
                limit
            )
            .is_ok()
        );
        let too_deep = check_create_suborg(
            &facts(&[1, 2, 3, 4], OrgType::Business),
            OrgType::Business,
            limit,
        );
        assert!(matches!(too_deep, Err(DomainError::Conflict { .. })));
        let five = DepthLimit::new(5).unwrap();
        assert!(
            check_create_suborg(
                &facts(&[1, 2, 3, 4], OrgType::Business),
                OrgType::Business,
                five
            )
            .is_ok()
        );
        assert!(DepthLimit::new(0).is_err());
        assert!(DepthLimit::new(17).is_err());
    }

    #[test]
    fn personal_orgs_have_only_personal_children_and_root_type_is_reserved() {
        let limit = DepthLimit::DEFAULT;
        let personal = facts(&[1, 2], OrgType::Personal);
        assert!(check_create_suborg(&personal, OrgType::Personal, limit).is_ok());
        assert!(check_create_suborg(&personal, OrgType::Business, limit).is_err());
        let root = facts(&[1], OrgType::Root);
        assert!(matches!(
            check_create_suborg(&root, OrgType::Root, limit),
            Err(DomainError::Invalid { field: "type", .. })
        ));
        assert_eq!(OrgType::parse("installer").unwrap(), OrgType::Installer);
        assert!(OrgType::parse("club").is_err());
        assert_eq!(OrgType::default(), OrgType::Business);
    }

    #[test]
    fn transfer_needs_confirmation_and_stays_inside_the_hierarchy() {
        let limit = DepthLimit::DEFAULT;
        let moved = MovedSubtree {
            root: facts(&[1, 2], OrgType::Business),
            deepest: 3,
            has_non_personal: true,
        };
        let target = facts(&[1, 5], OrgType::Business);
        assert!(matches!(
            check_transfer_org(&moved, &target, limit, false),
            Err(DomainError::Invalid {
                field: "confirm",
                ..
            })
        ));
        assert_eq!(
            check_transfer_org(&moved, &target, limit, true).unwrap(),
            path(&[1, 5, 2])
        );
        // A subtree 2 levels deep under a level-3 parent would reach level 5.
        let deep_target = facts(&[1, 5, 6], OrgType::Business);
        assert!(check_transfer_org(&moved, &deep_target, limit, true).is_err());
        // Into itself or below itself.
        assert!(
            check_transfer_org(&moved, &facts(&[1, 2], OrgType::Business), limit, true).is_err()
        );
        assert!(
            check_transfer_org(&moved, &facts(&[1, 2, 3], OrgType::Business), limit, true).is_err()
        );
        // Another hierarchy looks like a missing org.
        assert!(matches!(
            check_transfer_org(&moved, &facts(&[9], OrgType::Root), limit, true),
            Err(DomainError::NotFound { .. })
        ));
        // Roots never move; PERSONAL parents take PERSONAL subtrees only.
        let root = MovedSubtree {
            root: facts(&[1], OrgType::Root),
            deepest: 1,
            has_non_personal: true,
        };
        assert!(check_transfer_org(&root, &target, limit, true).is_err());
        assert!(
            check_transfer_org(&moved, &facts(&[1, 5], OrgType::Personal), limit, true).is_err()
        );
    }

    #[test]
    fn deletion_is_refused_with_counts_unless_contents_move_to_the_parent() {
        let org = path(&[1, 2]);
        assert_eq!(
            check_delete_org(&org, OrgContents::default(), false),
            Ok(DeletePlan::Empty)
        );
        let full = OrgContents {
            suborgs: 1,
            users: 2,
            devices: 3,
        };
        let refused = check_delete_org(&org, full, false).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("1 sub-organizations, 2 users and 3 devices")
        );
        assert_eq!(
            check_delete_org(&org, full, true),
            Ok(DeletePlan::MoveContentsTo(OrgId(1)))
        );
        assert!(check_delete_org(&path(&[1]), OrgContents::default(), true).is_err());
    }
}
