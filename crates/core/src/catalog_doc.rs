//! The permission catalog rendered as Markdown (`docs/permissions.md`), so
//! the documentation is generated from the table the decision uses and
//! cannot drift from it: a test of this crate fails when the file differs,
//! and `cargo run -p arbor-core --bin gen-permissions-doc` rewrites it.

use crate::permission::{CATALOG, Permission, PermissionGroup, PermissionSet};
use crate::role::BuiltinRole;
use std::fmt::Write as _;

/// Where the generated file lives, relative to the workspace root.
pub const PERMISSIONS_DOC: &str = "docs/permissions.md";

fn ids(set: impl IntoIterator<Item = Permission>) -> String {
    let ids: Vec<String> = set.into_iter().map(|p| format!("`{}`", p.id())).collect();
    if ids.is_empty() {
        "—".to_owned()
    } else {
        ids.join(", ")
    }
}

/// The whole document.
pub fn permissions_markdown() -> String {
    let defaults: Vec<(BuiltinRole, PermissionSet)> = BuiltinRole::ALL
        .iter()
        .map(|role| (*role, role.default_permissions()))
        .collect();
    let mut out = String::new();
    out.push_str(
        "<!-- Generated from arbor-core's catalog (crates/core/src/permission.rs and the \
         default sets in role.rs). Do not edit: run `cargo run -p arbor-core --bin \
         gen-permissions-doc`. -->\n\n",
    );
    out.push_str("# The permission catalog\n\n");
    let _ = writeln!(
        out,
        "Arbor knows {} permissions in {} groups. A role holds a set of them **per \
         organization**; the ids below are what the API accepts and returns, what \
         the database stores and what permission templates copy.\n",
        CATALOG.len(),
        PermissionGroup::ALL.len()
    );
    out.push_str(
        "- **Requires**: holding the permission needs these too. Every set a role is \
         given is closed over this relation, and the answer of the API reports what \
         the closure added (`PUT /api/v1/orgs/{id}/roles/{role}/permissions`).\n\
         - **Needed by**: the permissions that require this one; taking it away from \
         a role takes those away with it.\n\
         - **Admin / Staff / User**: the sets a new hierarchy's three roles start \
         with, in every org. A role created later starts empty. The root org's \
         Admin set always holds the whole catalog (it can't be edited down).\n\n",
    );
    out.push_str(
        "How a permission is used in a decision: [the model](README.md#the-decision-rule).\n\n",
    );
    for group in PermissionGroup::ALL {
        let _ = writeln!(out, "## {} (`{}.*`)\n", group.label(), group.id());
        out.push_str("| id | meaning | requires | needed by | Admin | Staff | User |\n");
        out.push_str("|---|---|---|---|:-:|:-:|:-:|\n");
        for info in group.permissions() {
            let needed_by =
                Permission::all().filter(|p| p.info().requires.contains(&info.permission));
            let _ = write!(
                out,
                "| `{}` | {} | {} | {} |",
                info.id,
                info.label,
                ids(info.requires.iter().copied()),
                ids(needed_by)
            );
            for (_, set) in &defaults {
                out.push_str(if set.contains(info.permission) {
                    " ✓ |"
                } else {
                    "  |"
                });
            }
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str("## Counts of the default sets\n\n| role | permissions |\n|---|---|\n");
    for (role, set) in &defaults {
        let _ = writeln!(
            out,
            "| {} | {} of {} |",
            role.default_name(),
            set.len(),
            CATALOG.len()
        );
    }
    out
}
