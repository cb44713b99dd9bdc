//! Build script: records the git commit the binary is built from, for `otelspool --version` and
//! `otelspool_build_info`.
//!
//! `OTELSPOOL_COMMIT` is `$OTELSPOOL_BUILD_COMMIT` when set (a build from a source archive or a
//! container context without `.git`), else `git rev-parse --short HEAD`, else `unknown` (no git,
//! or not a checkout): see `build/commit.rs`. Local only: no network. The script reruns when
//! HEAD or the branch it names moves, so a commit is picked up without a clean build.

#[path = "build/commit.rs"]
mod commit;

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=OTELSPOOL_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build/commit.rs");
    let here = Path::new(".");
    let commit = commit::commit(here, std::env::var("OTELSPOOL_BUILD_COMMIT").ok());
    // Files whose change means HEAD moved: HEAD (checkout), the branch's ref (commit), and
    // packed-refs. Only existing ones: a missing path would rerun the script on every build.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(commit::git(here, &["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = commit::git(here, &["rev-parse", "--git-path", &name])
            && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=OTELSPOOL_COMMIT={commit}");
}
