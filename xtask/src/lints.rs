//! Both workspaces deny the same lints. The root `Cargo.toml` defines the set; Cargo has no
//! include, so `driver/windows/Cargo.toml` (the kernel workspace) repeats it, and the test here
//! fails as soon as the two differ.

/// The `[workspace.lints.*]` tables of a manifest: their headers and settings, comments and
/// blank lines dropped.
#[cfg(test)]
fn lint_tables(manifest: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line.starts_with("[workspace.lints");
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            out.push(line.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::lint_tables;

    #[test]
    fn kernel_workspace_repeats_the_root_lint_set() {
        let root = crate::cmd::root();
        let read =
            |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        let shared = lint_tables(&read("Cargo.toml"));
        assert!(
            shared
                .iter()
                .any(|l| l.starts_with("multiple_unsafe_ops_per_block")),
            "{shared:?}"
        );
        assert_eq!(lint_tables(&read("driver/windows/Cargo.toml")), shared);
    }

    #[test]
    fn lint_tables_stop_at_the_next_section() {
        let m = "[workspace]\nx = 1\n[workspace.lints.rust]\n# why\na = \"deny\"\n\n[profile.dev]\nb = 2\n";
        assert_eq!(lint_tables(m), ["[workspace.lints.rust]", "a = \"deny\""]);
    }
}
