//! The `otlp` exporter's gRPC codec: bytes in, bytes out, no protobuf work. The queued
//! request is sent exactly as the client encoded it, and the backend's response comes back
//! as raw bytes for `Accepted::decode` to read. (The receiver reads its requests itself, in
//! `receivers/otlp/grpc.rs`, to account their memory as it arrives.)

use bytes::{Buf, BufMut, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// A codec that moves bytes without touching them: the encoder writes the already-encoded
/// request, the decoder returns the raw response message.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassThroughCodec;

impl Codec for PassThroughCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = PassThroughCodec;
    type Decoder = PassThroughCodec;

    fn encoder(&mut self) -> Self::Encoder {
        PassThroughCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        PassThroughCodec
    }
}

impl Encoder for PassThroughCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.reserve(item.len());
        dst.put(item);
        Ok(())
    }
}

impl Decoder for PassThroughCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
