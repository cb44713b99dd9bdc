//! Fuzzes the OTLP protobuf decoder the receivers run on every request body.
//!
//! The first byte picks the signal, the rest is the body. Invariants: decoding never panics,
//! hangs or allocates without bound; a body that decodes counts the same items as its decoded
//! form, and re-encoding it decodes to the same request (compared by encoding, so NaN doubles
//! in metrics compare equal bit for bit).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use otelspool::pipeline::{Decoded, Payload, Signal};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let signal = Signal::ALL[usize::from(selector) % Signal::ALL.len()];
    let Ok(payload) = Payload::from_protobuf(signal, Bytes::copy_from_slice(body)) else {
        return;
    };
    let decoded = payload
        .decode()
        .expect("a payload that validated decodes again");
    assert_eq!(decoded.signal(), signal);
    assert_eq!(
        decoded.items(),
        payload.items,
        "item count differs between decodes"
    );
    let encoded = decoded.encode();
    let again = Decoded::from_protobuf(signal, &encoded).expect("our own encoding decodes");
    assert_eq!(
        again.items(),
        decoded.items(),
        "items changed in a round trip"
    );
    assert_eq!(again.encode(), encoded, "a round trip changed the request");
});
