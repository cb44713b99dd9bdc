//! `otelspool --version` prints the crate's version and the git commit the binary was built
//! from; outside a git checkout the commit is `unknown` (the build script's fallback, whose code
//! `build/commit.rs` is compiled into this test too).

mod binary;
#[path = "../build/commit.rs"]
#[allow(dead_code)]
mod commit;

use std::path::Path;

/// Scenario: `otelspool --version` is run, in this git checkout.
/// Guarantees: one line `otelspool <version> (commit <c>)`, where `<c>` is what the build
/// script resolves for this checkout now (`git rev-parse --short HEAD`; the build reran when
/// HEAD moved), so a binary names the commit it was built from.
#[test]
fn version_prints_the_version_and_the_commit() {
    let out = binary::run(&["--version"], &[]);
    assert!(out.status.success(), "{out:?}");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let expected = commit::commit(manifest, std::env::var("OTELSPOOL_BUILD_COMMIT").ok());
    assert_ne!(expected, "", "a commit or unknown");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "otelspool {} (commit {expected})\n",
            env!("CARGO_PKG_VERSION")
        )
    );
    if commit::git(manifest, &["rev-parse", "HEAD"]).is_some() {
        assert_ne!(expected, "unknown", "in a checkout the hash is known");
        assert!(
            expected.chars().all(|c| c.is_ascii_hexdigit()),
            "{expected}"
        );
    }
}

/// Scenario: the build script's commit lookup runs in a folder that is not a git checkout,
/// then with `OTELSPOOL_BUILD_COMMIT` given.
/// Guarantees: outside a checkout the commit is `unknown` (never empty, never an error); a
/// given commit wins, and a blank one is ignored.
#[test]
fn outside_a_checkout_the_commit_is_unknown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plain = dir.path();
    assert_eq!(
        commit::git(plain, &["rev-parse", "--git-dir"]),
        None,
        "the temp folder is not inside a git checkout"
    );
    assert_eq!(commit::commit(plain, None), "unknown");
    assert_eq!(commit::commit(plain, Some("abc1234".into())), "abc1234");
    assert_eq!(commit::commit(plain, Some("  ".into())), "unknown");
}
