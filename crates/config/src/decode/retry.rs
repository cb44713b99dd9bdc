//! Decoding one value with serde, reporting every bad key: on each failure the error is
//! recorded with its key path, the offending key is removed from the tree and decoding is
//! retried (at most [`MAX_ATTEMPTS`] times), so one pass reports every unknown key and bad value
//! instead of only the first. Problems are told apart by their [`DecodeError`] kind, never by
//! their wording.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::de::from_value;
use super::error::{DecodeError, Got};
use super::tree::remove_at;
use crate::error::Diagnostics;
use crate::yaml::{Seg, path_string};

/// Upper bound on decode retries for one component (each retry removes one bad key).
const MAX_ATTEMPTS: usize = 64;

/// Decodes `value` as `T`; on each failure records it, removes the offending key, and retries.
pub(super) fn decode_value<T: DeserializeOwned>(
    mut value: Value,
    base: &[Seg],
    diags: &mut Diagnostics<'_>,
) -> Option<T> {
    let mut removed: Vec<Vec<Seg>> = Vec::new();
    // Sequence items removed so far: (sequence path, index in the document).
    let mut removed_items: Vec<(Vec<Seg>, usize)> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let err = match from_value::<T>(value.clone()) {
            Ok(t) => return Some(t),
            Err(e) => e,
        };
        let mut segs: Vec<Seg> = Vec::new();
        for seg in err.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. } => {}
                serde_path_to_error::Segment::Unknown => break,
            }
        }
        let err = err.into_inner();
        // serde reports an unknown key at its parent: point at the key itself.
        if let DecodeError::UnknownField { field, .. } = &err
            && segs.last() != Some(&Seg::Key(field.clone()))
        {
            segs.push(Seg::Key(field.clone()));
        }
        // A key removed for a bad value then shows up as missing: already reported.
        let already_reported = matches!(&err, DecodeError::MissingField(key) if {
            let mut p = segs.clone();
            p.push(Seg::Key((*key).to_string()));
            removed.contains(&p)
        });
        let original = to_original(&segs, &removed_items);
        if !already_reported {
            let full: Vec<Seg> = base
                .iter()
                .cloned()
                .chain(original.iter().cloned())
                .collect();
            report(&err, &full, diags);
        }
        if segs.is_empty() || !remove_at(&mut value, &segs) {
            return None;
        }
        if let (Some(Seg::Index(_)), Some(Seg::Index(orig))) = (segs.last(), original.last()) {
            removed_items.push((segs[..segs.len() - 1].to_vec(), *orig));
        }
        removed.push(segs);
    }
    None
}

/// Maps a path in the current (partly removed) tree back to the document's indices: removing
/// sequence item `i` shifts later items down, so their errors would point at the wrong line.
fn to_original(segs: &[Seg], removed_items: &[(Vec<Seg>, usize)]) -> Vec<Seg> {
    segs.iter()
        .enumerate()
        .map(|(i, seg)| match seg {
            Seg::Index(current) => {
                let mut gone: Vec<usize> = removed_items
                    .iter()
                    .filter(|(seq, _)| seq.as_slice() == &segs[..i])
                    .map(|(_, orig)| *orig)
                    .collect();
                gone.sort_unstable();
                let mut orig = *current;
                for g in gone {
                    if g <= orig {
                        orig += 1;
                    }
                }
                Seg::Index(orig)
            }
            key => key.clone(),
        })
        .collect()
}

/// Records `err` at `path`: a value from an environment variable is not shown, and a value an
/// unset variable left empty says which variable.
fn report(err: &DecodeError, path: &[Seg], diags: &mut Diagnostics<'_>) {
    let key = match path.last() {
        Some(Seg::Key(k)) => k.as_str(),
        _ => "value",
    };
    let path = path_string(path);
    match err {
        DecodeError::InvalidType {
            got: Got::Null,
            expected,
        } if diags.unset_note(&path).is_some() => diags.empty(&path, Some(expected)),
        _ => {
            let message = err.message(key, &diags.shown(&path));
            diags.error(&path, message);
        }
    }
}
