//! Writes `docs/permissions.md` from the catalog (see `arbor_core::catalog_doc`).

use arbor_core::catalog_doc::{PERMISSIONS_DOC, permissions_markdown};
use std::path::Path;

fn main() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PERMISSIONS_DOC);
    match std::fs::write(&path, permissions_markdown()) {
        Ok(()) => println!("wrote {}", path.display()),
        Err(error) => {
            eprintln!("error: cannot write {}: {error}", path.display());
            std::process::exit(1);
        }
    }
}
