//! Which git commit a build comes from, for `otelspool --version` and `otelspool_build_info`:
//! shared by `build.rs` and the test that checks its fallback
//! (`tests/version_names_the_build_commit.rs`).

use std::path::Path;
use std::process::Command;

/// Runs git with `args` in `dir`; its trimmed output when it succeeded.
pub fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// `forced` when set and not blank (a build from a source archive or a container context
/// without `.git`), else `git rev-parse --short HEAD` in `dir`, else `unknown` (no git, or not
/// a checkout).
pub fn commit(dir: &Path, forced: Option<String>) -> String {
    forced
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(dir, &["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned())
}
