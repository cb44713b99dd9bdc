//! `ExportTraceServiceRequest`: resource spans, scope spans, spans with their events, links
//! and status. A span is an item.

use super::ItemVisitor;
use super::WireError;
use super::common::{self, Envelope, Level, Walk, attribute, plain_attribute};
use super::reader::Msg;
use crate::pipeline::{SPAN_ID_LEN, TRACE_ID_LEN};

/// Walks the request's fields.
pub fn request<'a, V: ItemVisitor>(
    m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
) -> Result<(), WireError> {
    let names = Envelope {
        resource: "ResourceSpans",
        scope: "ScopeSpans",
        item: "Span",
    };
    common::request(m, walk, &names, span)
}

fn span<'a, V: ItemVisitor>(mut m: Msg<'a>, walk: &mut Walk<'_, 'a, V>) -> Result<(), WireError> {
    walk.reset(Level::Item);
    let (mut trace_id, mut span_id, mut parent_span_id) = (0, 0, 0);
    // `check_ids` looks at links after the span's own ids: keep the first bad link apart.
    let mut link_error: Option<(&'static str, usize, usize)> = None;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => trace_id = m.bytes_field(tag, wt)?.len(),
            2 => span_id = m.bytes_field(tag, wt)?.len(),
            4 => parent_span_id = m.bytes_field(tag, wt)?.len(),
            3 | 5 => {
                m.string_field(tag, wt)?;
            }
            6 | 10 | 12 | 14 => {
                m.varint_field(tag, wt)?;
            }
            7 | 8 => m.fixed64_field(tag, wt)?,
            9 => attribute(&mut m, tag, wt, walk, Level::Item)?,
            11 => event(m.message_field(tag, wt, "Span.Event")?)?,
            13 => {
                let bad = link(m.message_field(tag, wt, "Span.Link")?)?;
                link_error = link_error.or(bad);
            }
            15 => status(m.message_field(tag, wt, "Status")?)?,
            16 => m.fixed32_field(tag, wt)?,
            _ => m.skip(tag, wt)?,
        }
    }
    walk.id("trace_id", trace_id, TRACE_ID_LEN);
    walk.id("span_id", span_id, SPAN_ID_LEN);
    walk.id("parent_span_id", parent_span_id, SPAN_ID_LEN);
    if let Some((field, len, want)) = link_error {
        walk.id(field, len, want);
    }
    walk.item();
    Ok(())
}

fn event(mut m: Msg<'_>) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => m.fixed64_field(tag, wt)?,
            2 => {
                m.string_field(tag, wt)?;
            }
            3 => plain_attribute(&mut m, tag, wt)?,
            4 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// A link; its first id of a wrong length, if any.
fn link(mut m: Msg<'_>) -> Result<Option<(&'static str, usize, usize)>, WireError> {
    let (mut trace_id, mut span_id) = (0, 0);
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => trace_id = m.bytes_field(tag, wt)?.len(),
            2 => span_id = m.bytes_field(tag, wt)?.len(),
            3 => {
                m.string_field(tag, wt)?;
            }
            4 => plain_attribute(&mut m, tag, wt)?,
            5 => {
                m.varint_field(tag, wt)?;
            }
            6 => m.fixed32_field(tag, wt)?,
            _ => m.skip(tag, wt)?,
        }
    }
    let bad = |len: usize, want: usize| len != 0 && len != want;
    Ok(if bad(trace_id, TRACE_ID_LEN) {
        Some(("links.trace_id", trace_id, TRACE_ID_LEN))
    } else if bad(span_id, SPAN_ID_LEN) {
        Some(("links.span_id", span_id, SPAN_ID_LEN))
    } else {
        None
    })
}

fn status(mut m: Msg<'_>) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            2 => {
                m.string_field(tag, wt)?;
            }
            3 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}
