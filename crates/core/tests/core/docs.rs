//! `docs/permissions.md` is the catalog as generated now.

use arbor_core::catalog_doc::{PERMISSIONS_DOC, permissions_markdown};
use arbor_core::permission::CATALOG;
use std::path::Path;

#[test]
fn the_permissions_doc_is_generated_from_the_catalog() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PERMISSIONS_DOC);
    let expected = permissions_markdown();
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "{PERMISSIONS_DOC} is stale: run `cargo run -p arbor-core --bin gen-permissions-doc` \
         (or UPDATE_DOCS=1 cargo test -p arbor-core --test core docs)"
    );
}

#[test]
fn the_generated_doc_names_every_permission_once_as_a_row() {
    let doc = permissions_markdown();
    for info in CATALOG {
        let row = format!("| `{}` | {} |", info.id, info.label);
        assert_eq!(doc.matches(&row).count(), 1, "{}", info.id);
    }
    assert!(doc.contains(
        "| `users.transfer` | Transfer users | `users.view`, `organizations.switch_to_suborgs` |"
    ));
}
