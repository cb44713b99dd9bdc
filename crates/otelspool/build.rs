//! Build script: records the git commit the binary is built from, for `otelspool_build_info`.
//!
//! `OTELSPOOL_COMMIT` is `$OTELSPOOL_BUILD_COMMIT` when set (a build from a source archive or a
//! container context without `.git`), else `git rev-parse --short HEAD`, else `unknown` (no git,
//! or not a checkout). Local only: no network. The script reruns when HEAD or the branch it
//! names moves, so a commit is picked up without a clean build.

use std::process::Command;

/// Runs git with `args` in the package folder; its trimmed output when it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=OTELSPOOL_BUILD_COMMIT");
    let commit = std::env::var("OTELSPOOL_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    // Files whose change means HEAD moved: HEAD (checkout), the branch's ref (commit), and
    // packed-refs. Only existing ones: a missing path would rerun the script on every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=OTELSPOOL_COMMIT={commit}");
}
