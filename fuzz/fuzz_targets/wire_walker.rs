//! Differential fuzzing of the validating wire walker against prost.
//!
//! The first byte picks the signal, the rest is the body. Invariants: the walker never panics
//! or hangs; it accepts a body exactly when prost's decode followed by `check_ids` does, with
//! the same item count; it refuses for the same kind of reason (an encoding error when prost
//! fails to decode, the same id field and length when `check_ids` fails); and a walk with a
//! visitor asking for attribute values counts the same items, reporting each once.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otelspool::pipeline::wire::{CountOnly, ItemVisitor, walk};
use otelspool::pipeline::{Decoded, PayloadError, Signal};

/// Counts the items reported and the values found.
struct Keys {
    keys: Vec<Box<str>>,
    items: u64,
}

impl ItemVisitor for Keys {
    fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    fn item(&mut self, values: &[Option<&str>]) {
        assert_eq!(values.len(), self.keys.len(), "one value per key");
        self.items += 1;
    }

    fn restart(&mut self) {
        self.items = 0;
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let signal = Signal::ALL[usize::from(selector) % Signal::ALL.len()];
    let walked = walk(signal, body, &mut CountOnly);
    let reference = Decoded::from_protobuf(signal, body).and_then(|d| {
        d.check_ids()?;
        Ok(d.items())
    });
    match (&walked, &reference) {
        (Ok(n), Ok(m)) => assert_eq!(n, m, "item counts differ"),
        (Err(PayloadError::Wire(_)), Err(PayloadError::Protobuf(_))) => {}
        (
            Err(PayloadError::IdLength { field, len, .. }),
            Err(PayloadError::IdLength { field: f, len: l, .. }),
        ) => assert_eq!((field, len), (f, l), "different id errors"),
        _ => panic!("the walker says {walked:?}, prost says {reference:?}"),
    }
    let mut keys = Keys {
        keys: vec!["emerge.job_id".into(), "service.name".into(), "".into()],
        items: 0,
    };
    let with_keys = walk(signal, body, &mut keys);
    assert_eq!(
        with_keys.as_ref().ok(),
        walked.as_ref().ok(),
        "looking up keys changed the verdict"
    );
    if let Ok(n) = with_keys {
        assert_eq!(keys.items, n, "each item is reported once");
    }
});
