//! The memory limit of the process's control group, so that `memory_limiter.limit_percentage`
//! and `otelspool_process_memory_limit_bytes` mean "of what this container may use" (a compose
//! `mem_limit`), not "of the host's RAM".
//!
//! Where the limit lives:
//! - cgroup v2: `memory.max` in the process's cgroup folder under `/sys/fs/cgroup`, the text
//!   `max` when there is none;
//! - cgroup v1: `memory.limit_in_bytes` under `/sys/fs/cgroup/memory`, a number near 2^63
//!   (`PAGE_COUNTER_MAX` pages) when there is none.
//!
//! The process's cgroup path comes from `/proc/self/cgroup` (`0::/path` for v2,
//! `N:memory:/path` or `N:cpu,memory:/path` for v1). Inside a container the cgroup
//! filesystem is often mounted at the container's own cgroup, so that the path named in
//! `/proc/self/cgroup` does not exist under the mount: every ancestor of the path, down to the
//! mount itself, is read, and the smallest limit found is the one in force (a parent's limit
//! caps its children). Reading never fails: no file, no limit.

use std::path::Path;

/// The folder the cgroup filesystems are mounted at.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Limits at or above this are "no limit" (cgroup v1 writes `PAGE_COUNTER_MAX` pages).
const UNLIMITED_FROM: u64 = 1 << 62;

/// The cgroup memory limit of this process in bytes, `None` when none is set.
pub fn memory_limit_bytes() -> Option<u64> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    memory_limit_in(Path::new(CGROUP_ROOT), &own)
}

/// The smallest memory limit in force for a process whose `/proc/self/cgroup` reads
/// `self_cgroup`, with the cgroup filesystems mounted under `root`.
pub fn memory_limit_in(root: &Path, self_cgroup: &str) -> Option<u64> {
    let mut smallest: Option<u64> = None;
    for line in self_cgroup.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let found = if controllers.is_empty() {
            smallest_along(root, path, "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            smallest_along(&root.join("memory"), path, "memory.limit_in_bytes")
        } else {
            None
        };
        smallest = min_some(smallest, found);
    }
    smallest
}

/// The smallest limit in `file` of the folder `mount/path` and each of its ancestors up to
/// `mount`.
fn smallest_along(mount: &Path, path: &str, file: &str) -> Option<u64> {
    let mut smallest = None;
    let mut relative = Path::new(path.trim_start_matches('/'));
    loop {
        let limit = std::fs::read_to_string(mount.join(relative).join(file))
            .ok()
            .and_then(|text| parse_limit(&text));
        smallest = min_some(smallest, limit);
        match relative.parent() {
            Some(parent) => relative = parent,
            None => return smallest,
        }
    }
}

/// Reads one limit file's content: bytes, or `None` for `max` and v1's "unlimited".
pub fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>().ok().filter(|&n| n < UNLIMITED_FROM)
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The fixture trees in `tests/fixtures/cgroup/<name>`, each a copy of the files a kernel
    /// shows under `/sys/fs/cgroup`, with the `/proc/self/cgroup` that goes with it.
    fn fixture(name: &str) -> (PathBuf, String) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name);
        let own = std::fs::read_to_string(dir.join("proc-self-cgroup")).expect("fixture");
        (dir.join("sys-fs-cgroup"), own)
    }

    /// Scenario: cgroup v2 inside a container with its own cgroup namespace (`0::/`,
    /// `memory.max` at the mount), limited to 256 MiB as compose's `mem_limit: 256m` does.
    /// Guarantees: the limit is 268435456 bytes.
    #[test]
    fn v2_limit_at_the_mount_is_read() {
        let (root, own) = fixture("v2-container-256m");
        assert_eq!(memory_limit_in(&root, &own), Some(256 << 20));
    }

    /// Scenario: cgroup v2 on a host, the process in a nested cgroup without a limit
    /// (`memory.max` = `max`) whose parent slice is limited to 1 GiB.
    /// Guarantees: the parent's limit is the one in force: 1073741824 bytes.
    #[test]
    fn v2_parent_limit_caps_an_unlimited_child() {
        let (root, own) = fixture("v2-nested-parent-1g");
        assert_eq!(memory_limit_in(&root, &own), Some(1 << 30));
    }

    /// Scenario: cgroup v2 where every level says `max`.
    /// Guarantees: no limit.
    #[test]
    fn v2_max_everywhere_is_no_limit() {
        let (root, own) = fixture("v2-unlimited");
        assert_eq!(memory_limit_in(&root, &own), None);
    }

    /// Scenario: cgroup v1 in a Docker container (`4:memory:/docker/<id>`, the memory
    /// hierarchy mounted at the container's cgroup, so the named path does not exist under
    /// it), limited to 512 MiB; other controllers listed too.
    /// Guarantees: the limit at the mount is found: 536870912 bytes.
    #[test]
    fn v1_limit_at_the_mount_is_read_when_the_named_path_is_absent() {
        let (root, own) = fixture("v1-docker-512m");
        assert_eq!(memory_limit_in(&root, &own), Some(512 << 20));
    }

    /// Scenario: cgroup v1 with the memory controller co-mounted (`cpu,memory`, reached
    /// through the `memory` symlink as on real hosts); the process's own cgroup and the root
    /// say 9223372036854771712 (no limit), its parent `process_api` is limited to 2 GiB.
    /// Guarantees: the parent's limit is the one in force: 2147483648 bytes.
    #[test]
    fn v1_comounted_parent_limit_caps_an_unlimited_child() {
        let (root, own) = fixture("v1-comounted-parent-2g");
        assert_eq!(memory_limit_in(&root, &own), Some(2 << 30));
    }

    /// Scenario: limit files with trailing newlines, `max`, garbage and v1's unlimited value.
    /// Guarantees: bytes for numbers; `None` for the rest.
    #[test]
    fn limit_files_parse() {
        assert_eq!(parse_limit("268435456\n"), Some(268_435_456));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("lots"), None);
    }

    /// Scenario: no cgroup file at all (an empty `/proc/self/cgroup`, a missing mount).
    /// Guarantees: no limit, no panic.
    #[test]
    fn nothing_to_read_is_no_limit() {
        assert_eq!(memory_limit_in(Path::new("/nonexistent"), ""), None);
        assert_eq!(
            memory_limit_in(Path::new("/nonexistent"), "0::/a/b\n4:memory:/c\n"),
            None
        );
    }
}
