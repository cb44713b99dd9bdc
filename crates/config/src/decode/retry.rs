//! Decoding one value with serde, reporting every bad key: on each failure the error is
//! recorded with its key path, the offending key is removed from the tree and decoding is
//! retried (at most [`MAX_ATTEMPTS`] times), so one pass reports every unknown key and bad value
//! instead of only the first.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::tree::{get_mut_at, remove_at};
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
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
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
        let message = err.into_inner().to_string();
        // otelcol reads an empty key (`tls:`) as "defaults": do the same, silently.
        let empty = if message.starts_with("invalid type: null, expected struct") {
            Some(Value::Object(Map::new()))
        } else if message.starts_with("invalid type: null, expected a sequence") {
            Some(Value::Array(Vec::new()))
        } else {
            None
        };
        if let Some(empty) = empty
            && let Some(slot) = get_mut_at(&mut value, &segs)
        {
            *slot = empty;
            continue;
        }
        if let Some(key) = unknown_field(&message)
            && segs.last() != Some(&Seg::Key(key.to_string()))
        {
            segs.push(Seg::Key(key.to_string()));
        }
        // A key removed for a bad value then shows up as missing: already reported.
        let already_reported = missing_field(&message).is_some_and(|key| {
            let mut p = segs.clone();
            p.push(Seg::Key(key.to_string()));
            removed.contains(&p)
        });
        let original = to_original(&segs, &removed_items);
        if !already_reported {
            let full: Vec<Seg> = base
                .iter()
                .cloned()
                .chain(original.iter().cloned())
                .collect();
            diags.error(&path_string(&full), tidy(&message));
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

/// The key named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(k, _)| k)
}

/// The key named by serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(k, _)| k)
}

/// Rewords serde's messages for config users.
fn tidy(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, tail)) = rest.split_once('`')
    {
        let valid = tail
            .trim_start_matches(", expected one of ")
            .trim_start_matches(", expected ")
            .replace('`', "")
            .replace(" or ", ", ");
        let valid = if tail.contains("there are no fields") {
            "none".into()
        } else {
            valid
        };
        return format!("unknown key {key:?} (valid keys: {valid})");
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((key, _)) = rest.split_once('`')
    {
        return format!("missing required key {key:?}");
    }
    message.to_string()
}
