//! Fuzzes the OTLP/JSON decoder behind `POST /v1/*` with `application/json`.
//!
//! The first byte picks the signal, the rest is the JSON body. Invariants: decoding never
//! panics, hangs or allocates without bound; a body that decodes converts to protobuf (what the
//! queue stores) and that protobuf decodes back to the same request with the same item count.
#![no_main]

use libfuzzer_sys::fuzz_target;
use otelspool::pipeline::{Decoded, Signal};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let signal = Signal::ALL[usize::from(selector) % Signal::ALL.len()];
    let Ok(decoded) = Decoded::from_json(signal, body) else {
        return;
    };
    assert_eq!(decoded.signal(), signal);
    let payload = decoded.clone().into_payload();
    assert_eq!(payload.items, decoded.items());
    let back = Decoded::from_protobuf(signal, &payload.body).expect("our own encoding decodes");
    assert_eq!(
        back.items(),
        decoded.items(),
        "items changed on the way to protobuf"
    );
    assert_eq!(
        back.encode(),
        payload.body,
        "a protobuf round trip changed the request"
    );
});
