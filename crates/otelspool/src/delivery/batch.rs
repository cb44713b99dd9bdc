//! Reading a batch: what one send carries, merged from queued requests without decoding.
//!
//! Batching (`batch` processor settings) happens on read: the queue hands out up to
//! `max_items` / `max_bytes` of unread requests once `min_items` are there or the oldest has
//! lingered (`BatchLimits`), and their protobuf bytes are concatenated, which protobuf defines
//! as merging the repeated `resource_*` fields. No decode, no re-encode, nothing split.

use bytes::Bytes;
use otelspool_queue::Entry;

use crate::pipeline::merge_requests;

/// The request body of a batch: its entries' payloads concatenated.
pub(super) fn concat(entries: &[Entry]) -> Bytes {
    merge_requests(entries.iter().map(|e| &e.payload))
}
