//! The dead-letter file: where data the backend rejected permanently goes instead of being
//! thrown away, so an operator can inspect or replay it.
//!
//! Format: a sequence of records `len: u32 LE | crc32: u32 LE | payload`, where the payload is
//! the encoded `Export*ServiceRequest` exactly as it was sent. One file per exporter and
//! signal, `<queue dir>/dead-letter.bin`. In-memory queues have no folder: there, rejected
//! data is logged and counted in `otelcol_exporter_send_failed_*`, and dropped.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;

/// Appends rejected payloads to a file. Writes happen on a blocking thread.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    path: Option<PathBuf>,
}

impl DeadLetter {
    /// A dead-letter file at `path`; `None` only logs (in-memory queues without a data folder).
    pub fn new(path: Option<PathBuf>) -> Self {
        DeadLetter { path }
    }

    /// Where the file is.
    pub fn path(&self) -> Option<&PathBuf> {
        self.path.as_ref()
    }

    /// Appends `payload` durably. Returns an error the caller logs; the data is then lost, and
    /// the caller counts it as failed.
    pub async fn write(&self, payload: Bytes) -> std::io::Result<()> {
        let Some(path) = self.path.clone() else {
            return Err(std::io::Error::other(
                "no data folder for a dead-letter file",
            ));
        };
        tokio::task::spawn_blocking(move || {
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            let mut rec = Vec::with_capacity(8 + payload.len());
            rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
            rec.extend_from_slice(&crc32(&payload).to_le_bytes());
            rec.extend_from_slice(&payload);
            f.write_all(&rec)?;
            f.sync_data()
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

fn crc32(b: &[u8]) -> u32 {
    let mut h = flate2::Crc::new();
    h.update(b);
    h.sum()
}

/// Reads every record of a dead-letter file (for tools and tests).
pub fn read_dead_letters(bytes: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= bytes.len() {
        let len = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]])
            as usize;
        let crc = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]);
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32(payload) != crc {
            break;
        }
        out.push(Bytes::copy_from_slice(payload));
        pos += 8 + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dl = DeadLetter::new(Some(dir.path().join("dl.bin")));
        dl.write(Bytes::from_static(b"one")).await.expect("write");
        dl.write(Bytes::from_static(b"two")).await.expect("write");
        let bytes = std::fs::read(dir.path().join("dl.bin")).expect("read");
        assert_eq!(
            read_dead_letters(&bytes),
            vec![Bytes::from_static(b"one"), Bytes::from_static(b"two")]
        );
    }
}
