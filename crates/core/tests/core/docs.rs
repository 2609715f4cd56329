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

/// Every relative link of the README and of `docs/` names a file of the
/// repository (none outside it, none missing).
#[test]
fn the_readme_and_docs_link_only_to_files_in_the_repository() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap();
    let mut files = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            files.push(path);
        }
    }
    let mut checked = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for piece in text.split("](").skip(1) {
            let Some(target) = piece.split(')').next() else {
                continue;
            };
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            let resolved = file.parent().unwrap().join(path);
            let resolved = resolved
                .canonicalize()
                .unwrap_or_else(|_| panic!("{}: link to a missing {target}", file.display()));
            assert!(
                resolved.starts_with(&root),
                "{}: link {target} leaves the repository",
                file.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "{checked} links checked");
}
