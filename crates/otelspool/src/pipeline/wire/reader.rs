//! The protobuf wire primitives of the walker: varints, keys, fixed-width values, length
//! delimited fields, and skipping unknown fields (groups included), each with the exact
//! acceptance rules of prost 0.14's `encoding` module.
//!
//! A [`Msg`] is one message's bytes, bounded by its length prefix, with prost's recursion
//! budget for its fields: prost reads a nested message from the whole buffer and fails when
//! the nested message's fields end past its length; reading a bounded slice fails on the same
//! inputs (as `Truncated`), never on others.

use super::WireError;

/// Strings at least this long are checked for UTF-8 with SIMD.
const SIMD_UTF8_FROM: usize = 64;

/// prost's `RECURSION_LIMIT`: how many nested messages deep a request may go.
pub const RECURSION_LIMIT: u32 = 100;

/// Wire type `VARINT`.
pub const VARINT: u8 = 0;
/// Wire type `I64`.
pub const I64: u8 = 1;
/// Wire type `LEN`.
pub const LEN: u8 = 2;
/// Wire type `SGROUP`.
pub const SGROUP: u8 = 3;
/// Wire type `EGROUP`.
pub const EGROUP: u8 = 4;
/// Wire type `I32`.
pub const I32: u8 = 5;

/// The fields of one message.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    buf: &'a [u8],
    /// prost's `DecodeContext::recurse_count` for this message's fields: a nested message or
    /// an unknown field needs it above zero.
    depth: u32,
    /// The message's protobuf name, for errors.
    name: &'static str,
}

impl<'a> Msg<'a> {
    /// A top-level message (an export request).
    pub fn top(buf: &'a [u8], name: &'static str) -> Msg<'a> {
        Msg {
            buf,
            depth: RECURSION_LIMIT,
            name,
        }
    }

    /// Bytes left of this message.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next field's key: `None` at the end of the message.
    #[inline]
    pub fn key(&mut self) -> Result<Option<(u32, u8)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| WireError::InvalidKey)?;
        let wire_type = (key & 7) as u8;
        if wire_type > I32 {
            return Err(WireError::InvalidWireType(wire_type));
        }
        let tag = key >> 3;
        if tag == 0 {
            return Err(WireError::ZeroTag);
        }
        Ok(Some((tag, wire_type)))
    }

    /// A varint: at most 10 bytes, the tenth at most 1 (prost's `decode_varint`).
    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, &b) in self.buf.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                if i == 9 && b > 1 {
                    return Err(WireError::InvalidVarint);
                }
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err(WireError::InvalidVarint)
    }

    fn expect(&self, tag: u32, wire_type: u8, want: u8) -> Result<(), WireError> {
        if wire_type == want {
            Ok(())
        } else {
            Err(WireError::WrongWireType {
                message: self.name,
                tag,
                wire_type,
            })
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(WireError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn len_prefixed(&mut self) -> Result<&'a [u8], WireError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| WireError::Truncated)?;
        self.take(len)
    }

    /// A varint field (`int32`, `int64`, `uint32`, `uint64`, `sint32`, `bool`, enum): prost
    /// takes any 64-bit value for each of them.
    #[inline]
    pub fn varint_field(&mut self, tag: u32, wire_type: u8) -> Result<u64, WireError> {
        self.expect(tag, wire_type, VARINT)?;
        self.varint()
    }

    /// An `I64` field (`fixed64`, `sfixed64`, `double`).
    #[inline]
    pub fn fixed64_field(&mut self, tag: u32, wire_type: u8) -> Result<(), WireError> {
        self.expect(tag, wire_type, I64)?;
        self.take(8).map(drop)
    }

    /// An `I32` field (`fixed32`).
    #[inline]
    pub fn fixed32_field(&mut self, tag: u32, wire_type: u8) -> Result<(), WireError> {
        self.expect(tag, wire_type, I32)?;
        self.take(4).map(drop)
    }

    /// A `bytes` field.
    #[inline]
    pub fn bytes_field(&mut self, tag: u32, wire_type: u8) -> Result<&'a [u8], WireError> {
        self.expect(tag, wire_type, LEN)?;
        self.len_prefixed()
    }

    /// A `string` field: its bytes must be UTF-8. Long strings (log bodies) are checked
    /// with `simdutf8` (SIMD, chosen at run time; the same definition of UTF-8 as `std`),
    /// short ones (keys, ids) with `std`, which is as fast there.
    #[inline]
    pub fn string_field(&mut self, tag: u32, wire_type: u8) -> Result<&'a str, WireError> {
        let bytes = self.bytes_field(tag, wire_type)?;
        let checked = if bytes.len() >= SIMD_UTF8_FROM {
            simdutf8::basic::from_utf8(bytes).map_err(drop)
        } else {
            std::str::from_utf8(bytes).map_err(drop)
        };
        checked.map_err(|()| WireError::InvalidUtf8 {
            message: self.name,
            tag,
        })
    }

    /// A message field, named `name`: one level deeper, within prost's recursion limit.
    #[inline]
    pub fn message_field(
        &mut self,
        tag: u32,
        wire_type: u8,
        name: &'static str,
    ) -> Result<Msg<'a>, WireError> {
        self.expect(tag, wire_type, LEN)?;
        if self.depth == 0 {
            return Err(WireError::RecursionLimit);
        }
        let buf = self.len_prefixed()?;
        Ok(Msg {
            buf,
            depth: self.depth - 1,
            name,
        })
    }

    /// A `repeated` fixed-width field of `width` bytes, packed (one `LEN` field) or not.
    pub fn repeated_fixed_field(
        &mut self,
        tag: u32,
        wire_type: u8,
        width: usize,
    ) -> Result<(), WireError> {
        if wire_type == LEN {
            let packed = self.len_prefixed()?;
            return if packed.len().is_multiple_of(width) {
                Ok(())
            } else {
                Err(WireError::Truncated)
            };
        }
        match width {
            8 => self.fixed64_field(tag, wire_type),
            _ => self.fixed32_field(tag, wire_type),
        }
    }

    /// A `repeated` varint field, packed (one `LEN` field) or not.
    pub fn repeated_varint_field(&mut self, tag: u32, wire_type: u8) -> Result<(), WireError> {
        if wire_type == LEN {
            let mut packed = Msg {
                buf: self.len_prefixed()?,
                depth: self.depth,
                name: self.name,
            };
            while !packed.buf.is_empty() {
                packed.varint()?;
            }
            return Ok(());
        }
        self.varint_field(tag, wire_type).map(drop)
    }

    /// Skips a field this message does not define (prost's `skip_field`): needs recursion
    /// budget left; a group is skipped to its matching end, each field in it one level deeper;
    /// an end-group key without its start is an error.
    pub fn skip(&mut self, tag: u32, wire_type: u8) -> Result<(), WireError> {
        self.skip_at(tag, wire_type, self.depth)
    }

    fn skip_at(&mut self, tag: u32, wire_type: u8, depth: u32) -> Result<(), WireError> {
        if depth == 0 {
            return Err(WireError::RecursionLimit);
        }
        match wire_type {
            VARINT => self.varint().map(drop),
            I64 => self.take(8).map(drop),
            I32 => self.take(4).map(drop),
            LEN => self.len_prefixed().map(drop),
            SGROUP => loop {
                let Some((inner_tag, inner_type)) = self.key()? else {
                    // prost reads a key past the end: "invalid varint".
                    return Err(WireError::InvalidVarint);
                };
                if inner_type == EGROUP {
                    return if inner_tag == tag {
                        Ok(())
                    } else {
                        Err(WireError::UnexpectedEndGroup)
                    };
                }
                self.skip_at(inner_tag, inner_type, depth - 1)?;
            },
            _ => Err(WireError::UnexpectedEndGroup),
        }
    }
}
