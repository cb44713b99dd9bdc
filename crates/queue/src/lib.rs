//! A durable, byte-bounded FIFO of opaque payloads for otelspool's exporters.
//!
//! # Guarantees
//! - `append` returns only after the record is written and (with `fsync`) synced; a record
//!   whose append returned `Ok` survives `kill -9`, and with `fsync` a power loss.
//! - Records are handed out in order; `ack` marks them delivered. Nothing is deleted before
//!   it is acknowledged. After a crash, records not yet acknowledged (and at most the last
//!   ~100 ms of acknowledgements) are handed out again: delivery is at-least-once.
//! - Disk use never exceeds `max_bytes`; a full queue refuses (or, with `drop_oldest`,
//!   drops whole oldest segments and counts them). Space comes back as segments drain.
//! - Damage on disk is detected by checksums, skipped, counted and logged; it never stops
//!   the queue from opening or serving.
//! - Opening does not read the backlog (`Queue::open_background`): appends are accepted at
//!   once, and a background thread indexes the segments found, handing them to consumers in id
//!   order. Per-record memory covers a bounded window of segments, not the backlog (`index`).
//!
//! # On-disk format (version 1, little-endian)
//! A queue directory holds:
//! - `NNNNNNNNNNNNNNNNNNNN.seg` segment files, named by the id of their first record (20
//!   digits), each a 16-byte header (`OSPQSEG1`, format version u32, reserved u32) followed by
//!   record frames:
//!   ```text
//!   +--------+--------+--------+--------+-------------+--------+-----------+
//!   | "OSQR" | len u32| crc u32| id u64 | appended u64|items u32| payload  |
//!   +--------+--------+--------+--------+-------------+--------+-----------+
//!   ```
//!   `crc` is CRC-32 (IEEE) over `len`, `id`, `appended`, `items` and the payload. Ids rise by
//!   one per record and are never reused, even across restarts. The magic lets recovery find
//!   the next frame after damage.
//! - `ledger` (28 bytes: `OSPQLED2`, watermark u64, next id u64, crc u32): every id below the
//!   watermark is acknowledged, and no id below the next id will be handed out again.
//!   Rewritten at most every 100 ms, in place when it exists (one sector, CRC-checked, no new
//!   blocks: it works on a full disk), else via `ledger.tmp`, a rename and a folder sync; and
//!   before a segment file is deleted (so a crash cannot make ids be reused: a drained segment
//!   waits while the ledger cannot be written, unless the disk is full). A damaged ledger means
//!   "nothing acknowledged": more duplicates, never loss. Version 1 (20 bytes, `OSPQLED1`,
//!   watermark only) is still read.
//! - `lock`: held with an advisory lock while a process has the queue open.
//! - `names-synced`: empty; present once a start has synced the folder and its parents (see
//!   `queue::open`), so later starts skip those syncs. Older builds ignore it.
//!
//! With `fsync`, a new segment's file and folder are synced before any record in it is
//! acknowledged. After a failed write or fsync the group is refused and the segments it touched
//! are abandoned, never synced again (the writer module says why that is safe). Every
//! filesystem call goes through [`QueueIo`], so tests can fail each one.
//!
//! Segments roll at `segment_bytes` and are deleted whole once every record in them is
//! acknowledged, so disk use follows the backlog instead of only growing (otelcol's bbolt file
//! never shrinks). The segment being appended to is deleted when drained only once it holds a
//! quarter of `segment_bytes`; below that it keeps taking appends.
//!
//! # Why hand-written
//! The crates that exist are general key-value stores (sled, redb, fjall) whose files do not
//! shrink as a FIFO drains, or in-memory channels; none offers group commit with per-append
//! durability answers, byte-bounded disk use and ack-driven segment deletion together.

mod error;
mod format;
mod index;
mod io;
mod observer;
mod queue;
mod recovery;
mod state;
mod stats;
mod writer;

pub use error::{AppendError, OpenError};
pub use io::{QueueIo, RealIo};
pub use observer::{Peek, QueueObserver, peek_dir};
pub use queue::{BatchLimits, Entry, Queue, QueueOptions, WhenFull};
pub use stats::{IndexStats, QueueCounters, QueueStats, RecoveryReport};
