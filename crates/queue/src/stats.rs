//! Point-in-time figures about a queue, for metrics and health.

use std::time::Duration;

/// A snapshot of a queue's contents and limits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Entries (client requests) not yet acknowledged by the exporter.
    pub entries: u64,
    /// Telemetry items (log records, spans, points) in those entries.
    pub items: u64,
    /// Payload bytes in those entries.
    pub payload_bytes: u64,
    /// Bytes the queue's files occupy on disk (0 for an in-memory queue).
    pub disk_bytes: u64,
    /// The entry limit (`queue_size`).
    pub capacity_entries: u64,
    /// The byte limit (`max_size_mib`).
    pub capacity_bytes: u64,
    /// Age of the oldest unacknowledged entry.
    pub oldest_age: Option<Duration>,
    /// Entries in flight to the backend.
    pub in_flight: u64,
    /// The last write error, while writes keep failing.
    pub write_error: Option<String>,
}

/// What happened to data since the queue was opened; monotonically increasing counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueCounters {
    /// Entries appended (made durable) since open; recovered entries are not counted.
    pub appended_entries: u64,
    /// Items in those entries.
    pub appended_items: u64,
    /// Items dropped by `drop_oldest` to make room.
    pub dropped_items: u64,
    /// Entries dropped by `drop_oldest`.
    pub dropped_entries: u64,
    /// Items found unreadable (checksum mismatch) when read back.
    pub corrupt_entries: u64,
    /// Appends refused because the queue was full.
    pub refused_full: u64,
    /// Appends refused because a write or sync failed.
    pub refused_io: u64,
}

/// What `open` found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files found.
    pub segments: u64,
    /// Unacknowledged entries recovered (they will be sent again).
    pub entries: u64,
    /// Items in those entries.
    pub items: u64,
    /// Entries skipped because the ledger says they were already acknowledged.
    pub already_acked: u64,
    /// Bytes of damaged data skipped in the middle of segments.
    pub skipped_bytes: u64,
    /// Bytes cut off the end of segments (a torn last write).
    pub truncated_bytes: u64,
    /// Segment files that were unreadable as a whole and set aside.
    pub bad_segments: u64,
}

impl RecoveryReport {
    /// True when recovery found any damage.
    pub fn found_damage(&self) -> bool {
        self.skipped_bytes > 0 || self.truncated_bytes > 0 || self.bad_segments > 0
    }
}

/// How much of a queue is indexed in memory: per-record entries exist only for the segments
/// in the index window (and the one being appended to); the others are summarized.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Segment files in the queue.
    pub segments: u64,
    /// Segments, other than the one being appended to, whose records are indexed.
    pub indexed_segments: u64,
    /// Of those, segments whose live records are all in flight: kept indexed for their
    /// acknowledgements, outside the window (bounded by what consumers hold in flight).
    pub in_flight_segments: u64,
    /// Segments kept as a summary (counts exact).
    pub summarized_segments: u64,
    /// Segments found at open and not read yet (counts are upper bounds).
    pub unscanned_segments: u64,
    /// Per-record index entries held in memory.
    pub indexed_entries: u64,
}
