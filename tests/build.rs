//! Makes every page of the guide (`docs/*.md`), the README and each crate's README a
//! doctest of this crate, so that their Rust code blocks are compiled (and those not
//! marked `no_run` run) by `cargo test --doc`: a page added to docs/ is checked without
//! anyone listing it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut pages: Vec<PathBuf> = Vec::new();
    println!("cargo:rerun-if-changed={}", root.join("docs").display());
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    pages.push(root.join("README.md"));
    if let Ok(entries) = std::fs::read_dir(&root) {
        for entry in entries.flatten() {
            let readme = entry.path().join("README.md");
            if entry.path().join("Cargo.toml").exists() && readme.exists() {
                pages.push(readme);
            }
        }
    }
    pages.sort();
    let mut out = String::new();
    for page in &pages {
        println!("cargo:rerun-if-changed={}", page.display());
        let page = page.canonicalize().expect("a page that exists");
        let shown = page
            .strip_prefix(root.canonicalize().expect("root"))
            .unwrap_or(&page);
        // The test names say which page: `docs_getting_started_md (line 12)`.
        let name: String = shown
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        writeln!(
            out,
            "/// `{}`, compiled as doctests.\n#[doc = include_str!({:?})]\n#[cfg(doctest)]\n#[allow(non_camel_case_types)]\npub struct {name};",
            shown.display(),
            page.display().to_string()
        )
        .expect("writing to a String");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("doc_pages.rs");
    std::fs::write(dest, out).expect("writing doc_pages.rs");
}
