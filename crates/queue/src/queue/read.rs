//! Reading batches: pick the oldest unread entries within the batch limits (`take`), read the
//! payloads that are not cached from their segment files (`load`), and skip damaged records.
//! Only indexed records are taken, and none above a segment still waiting to be indexed, so
//! the order is the records' id order (see `crate::index`).
//!
//! A record that fails its checksum (or is cut short) is damaged: counted, logged and finished
//! so it never blocks the queue. A record whose read fails with an I/O error is not damaged:
//! it is put back and read again later (after `READ_RETRY` when nothing else could be read),
//! so a passing disk error never loses it.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::{BatchLimits, Entry, Queue};
use crate::format::{self, FRAME_HEADER_LEN};
use crate::io::QueueIo;
use crate::state::EntryState;
use crate::writer::now_nanos;

/// How long a reader waits before retrying records whose read failed, when it got nothing else.
const READ_RETRY: Duration = Duration::from_secs(1);
/// At most one warning per this interval about reads that keep failing.
const READ_WARN_INTERVAL: Duration = Duration::from_secs(10);

impl Queue {
    /// Waits for the next batch of entries. Returns `None` once the queue is closed: whatever
    /// is still unread stays on disk for the next start.
    pub async fn next_batch(&self, limits: BatchLimits) -> Option<Vec<Entry>> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.take(limits) {
                Take::Closed => return None,
                Take::Batch(entries) => match self.load(entries).await {
                    Some((batch, _)) if !batch.is_empty() => return Some(batch),
                    Some((_, true)) => {
                        // Not on `notified`: putting the records back has just notified it.
                        tokio::time::sleep(READ_RETRY).await;
                        continue;
                    }
                    _ => continue,
                },
                Take::Wait(wait) => wait,
            };
            match wait {
                Some(d) => {
                    let _ = tokio::time::timeout(d, notified).await;
                }
                None => notified.await,
            }
        }
    }

    fn take(&self, limits: BatchLimits) -> Take {
        let mut st = self.inner.lock();
        if st.closed {
            return Take::Closed;
        }
        // Records at or above a segment not indexed yet wait for it (see `crate::index`).
        let gap = st.index_gap();
        if gap.is_some() {
            self.inner.index_wake.notify_one();
        }
        let gap = gap.unwrap_or(u64::MAX);
        let Some(start) = st.first_unread().filter(|&i| st.entries[i].id < gap) else {
            return Take::Wait(None);
        };
        let mut avail = 0u64;
        for e in st.entries.range(start..).take_while(|e| e.id < gap) {
            if e.state == EntryState::Unread {
                avail += u64::from(e.items);
                if avail >= limits.min_items {
                    break;
                }
            }
        }
        let age = Duration::from_nanos(now_nanos().saturating_sub(st.entries[start].appended_at));
        if avail < limits.min_items && age < limits.linger {
            st.note_batch_wait(limits.min_items);
            return Take::Wait(Some(limits.linger - age));
        }
        let max_items = if limits.max_items == 0 {
            u64::MAX
        } else {
            limits.max_items
        };
        let (mut items, mut bytes, mut taken) = (0u64, 0u64, Vec::new());
        for i in start..st.entries.len() {
            let e = &st.entries[i];
            if e.id >= gap {
                break;
            }
            if e.state != EntryState::Unread {
                continue;
            }
            let (ei, eb) = (u64::from(e.items), u64::from(e.len));
            if !taken.is_empty() && (items + ei > max_items || bytes + eb > limits.max_bytes) {
                break;
            }
            items += ei;
            bytes += eb;
            taken.push(i);
        }
        let mut out = Vec::with_capacity(taken.len());
        for i in taken {
            let e = &mut st.entries[i];
            e.state = EntryState::InFlight;
            let source = match &e.payload {
                Some(p) => Source::Memory(p.clone()),
                None => Source::Disk {
                    segment: e.segment,
                    offset: e.offset,
                    len: e.len,
                },
            };
            out.push((e.id, e.items, e.appended_at, source));
        }
        st.in_flight += out.len() as u64;
        let reader_of = |seg: u64| st.segments.get(&seg).and_then(|s| s.reader.clone());
        let out = out
            .into_iter()
            .map(|(id, items, at, src)| {
                let src = match src {
                    Source::Disk {
                        segment,
                        offset,
                        len,
                    } => match reader_of(segment) {
                        Some(file) => Loaded::Disk { file, offset, len },
                        None => Loaded::Missing,
                    },
                    Source::Memory(p) => Loaded::Memory(p),
                };
                (id, items, at, src)
            })
            .collect();
        Take::Batch(out)
    }

    /// Reads payloads that are not in memory (see the module doc for failures). Returns the
    /// entries read and whether any read failed with an I/O error (those were put back).
    async fn load(&self, taken: Vec<(u64, u32, u64, Loaded)>) -> Option<(Vec<Entry>, bool)> {
        let needs_disk = taken.iter().any(|t| !matches!(t.3, Loaded::Memory(_)));
        let loaded = if needs_disk {
            let io = self.inner.opts.io.clone();
            tokio::task::spawn_blocking(move || {
                taken
                    .into_iter()
                    .map(|t| read_one(&*io, t))
                    .collect::<Vec<_>>()
            })
            .await
            .ok()?
        } else {
            let io = &*self.inner.opts.io;
            taken.into_iter().map(|t| read_one(io, t)).collect()
        };
        let mut out = Vec::with_capacity(loaded.len());
        let (mut bad, mut retry) = (Vec::new(), Vec::new());
        for r in loaded {
            match r {
                Ok(e) => out.push(e),
                Err(ReadError::Damaged(id, reason)) => {
                    tracing::error!(queue = %self.name(), id, %reason, "queued record is unreadable; skipped and counted");
                    bad.push(id);
                }
                Err(ReadError::Io(id, e)) => {
                    self.warn_read_error(id, &e);
                    retry.push(id);
                }
            }
        }
        if !bad.is_empty() {
            self.inner.lock().counters.corrupt_entries += bad.len() as u64;
            self.ack(&bad);
        }
        if !retry.is_empty() {
            self.release(&retry);
        }
        Some((out, !retry.is_empty()))
    }

    /// Logs a failed read, at most once per `READ_WARN_INTERVAL` as a warning.
    fn warn_read_error(&self, id: u64, e: &std::io::Error) {
        let now = now_nanos();
        let last = self.inner.read_warned_at.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= READ_WARN_INTERVAL.as_nanos() as u64 {
            self.inner.read_warned_at.store(now, Ordering::Relaxed);
            tracing::warn!(queue = %self.name(), id, error = %e, "could not read a queued record back; it stays queued and is read again later");
        } else {
            tracing::debug!(queue = %self.name(), id, error = %e, "could not read a queued record back; retrying later");
        }
    }
}

enum Take {
    Closed,
    Wait(Option<Duration>),
    Batch(Vec<(u64, u32, u64, Loaded)>),
}

enum Source {
    Memory(Bytes),
    Disk { segment: u64, offset: u64, len: u32 },
}

enum Loaded {
    Memory(Bytes),
    Disk {
        file: Arc<File>,
        offset: u64,
        len: u32,
    },
    Missing,
}

/// Why a record could not be read.
enum ReadError {
    /// The bytes are not the record: skipped and counted.
    Damaged(u64, String),
    /// The read failed: the record is read again later.
    Io(u64, std::io::Error),
}

fn read_one(
    io: &dyn QueueIo,
    (id, items, appended_at, src): (u64, u32, u64, Loaded),
) -> Result<Entry, ReadError> {
    let payload = match src {
        Loaded::Memory(p) => p,
        Loaded::Missing => {
            return Err(ReadError::Damaged(id, "segment file is gone".to_string()));
        }
        Loaded::Disk { file, offset, len } => {
            let mut buf = vec![0u8; FRAME_HEADER_LEN + len as usize];
            match io.read_at(&file, &mut buf, offset) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(ReadError::Damaged(id, "record cut short".to_string()));
                }
                Err(e) => return Err(ReadError::Io(id, e)),
            }
            match format::decode_frame(&buf) {
                Some((h, p)) if h.id == id => p,
                _ => {
                    return Err(ReadError::Damaged(
                        id,
                        "checksum mismatch on read".to_string(),
                    ));
                }
            }
        }
    };
    Ok(Entry {
        id,
        items,
        appended_at,
        payload,
    })
}
