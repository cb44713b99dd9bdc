//! Process figures from `/proc`: resident memory and CPU time, for the memory limiter and the
//! `otelcol_process_*` metrics, and the memory the process may use (physical memory, or the
//! cgroup limit when smaller: see [`super::cgroup`]). Linux only; elsewhere the readings are
//! `None`.
//!
//! `/proc/self/statm` counts pages: they are converted with the kernel's page size
//! (`sysconf(_SC_PAGESIZE)`), which is 16 KiB or 64 KiB on some arm64 and ppc64 kernels.

use std::sync::OnceLock;

use super::cgroup;

/// Resident set size in bytes.
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    rss_from_statm(&statm, page_size())
}

/// The resident set size in bytes from the text of `/proc/<pid>/statm` (sizes in pages; the
/// second field is the resident one) and the page size.
pub fn rss_from_statm(statm: &str, page_size: u64) -> Option<u64> {
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    pages.checked_mul(page_size)
}

/// User plus system CPU time in seconds.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Total memory the process may use: the smaller of physical memory and the cgroup memory
/// limit (v2 `memory.max` or v1 `memory.limit_in_bytes`, of the process's cgroup or an
/// ancestor), when one is set.
pub fn total_memory_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    match (cgroup::memory_limit_bytes(), meminfo) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

/// Returns freed heap memory to the operating system (glibc's `malloc_trim`), so that RSS
/// falls after a burst instead of staying at its peak. The memory limiter calls it before
/// refusing data, as otelcol's limiter forces a garbage collection. No-op off glibc.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn release_free_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
    // from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Returns freed heap memory to the operating system; no-op off glibc.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}

/// The kernel's page size in bytes, read once.
pub fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(read_page_size)
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn read_page_size() -> u64 {
    // SAFETY: sysconf takes a constant and reads a value the kernel gave the process at exec;
    // it touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

#[cfg(not(unix))]
fn read_page_size() -> u64 {
    4096
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: this process's readings on Linux.
    /// Guarantees: RSS between 1 MiB and 1 TiB, CPU time not negative, total memory above RSS.
    #[test]
    fn readings_are_plausible_on_linux() {
        let rss = resident_memory_bytes().expect("rss");
        assert!(rss > 1 << 20 && rss < 1 << 40, "rss {rss}");
        assert!(cpu_seconds().expect("cpu") >= 0.0);
        assert!(total_memory_bytes().expect("total") > rss);
    }

    /// Scenario: the page size from `sysconf` against the one the kernel reports to the
    /// process in its auxiliary vector (`AT_PAGESZ`, from `/proc/self/auxv`).
    /// Guarantees: they agree (so a 16 KiB or 64 KiB kernel is not read as 4 KiB).
    #[test]
    #[cfg(all(target_os = "linux", target_pointer_width = "64"))]
    fn page_size_is_the_kernels() {
        let auxv = std::fs::read("/proc/self/auxv").expect("auxv");
        let from_auxv = auxv
            .chunks_exact(16)
            .map(|kv| {
                let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().expect("8 bytes"));
                (word(&kv[..8]), word(&kv[8..]))
            })
            .find(|&(key, _)| key == 6) // AT_PAGESZ
            .map(|(_, value)| value)
            .expect("AT_PAGESZ in auxv");
        assert_eq!(page_size(), from_auxv);
    }

    /// Scenario: the same `statm` line read with 4 KiB, 16 KiB and 64 KiB pages.
    /// Guarantees: RSS is the second field times the page size given; a malformed line is
    /// `None`.
    #[test]
    fn rss_uses_the_page_size_given() {
        let statm = "12000 2500 700 120 0 3000 0\n";
        assert_eq!(rss_from_statm(statm, 4096), Some(2500 * 4096));
        assert_eq!(rss_from_statm(statm, 16384), Some(2500 * 16384));
        assert_eq!(rss_from_statm(statm, 65536), Some(2500 * 65536));
        assert_eq!(rss_from_statm("12000", 4096), None);
    }

    /// Scenario: RSS from `statm` and page size, against `VmRSS` in `/proc/self/status`
    /// (which the kernel reports in KiB, no page size involved), read right after.
    /// Guarantees: they agree within 4 MiB (the process may touch memory in between).
    #[test]
    fn rss_agrees_with_vmrss() {
        let rss = resident_memory_bytes().expect("rss");
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS");
        let vmrss = kib * 1024;
        assert!(
            rss.abs_diff(vmrss) < 4 << 20,
            "statm {rss} vs VmRSS {vmrss}"
        );
    }
}
