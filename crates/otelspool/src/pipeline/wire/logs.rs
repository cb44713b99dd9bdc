//! `ExportLogsServiceRequest`: resource logs, scope logs, log records. A log record is an item.

use super::ItemVisitor;
use super::WireError;
use super::common::{self, Envelope, Level, Walk, any_value, attribute};
use super::reader::Msg;
use crate::pipeline::{SPAN_ID_LEN, TRACE_ID_LEN};

/// Walks the request's fields.
pub fn request<'a, V: ItemVisitor>(
    m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
) -> Result<(), WireError> {
    let names = Envelope {
        resource: "ResourceLogs",
        scope: "ScopeLogs",
        item: "LogRecord",
    };
    common::request(m, walk, &names, log_record)
}

fn log_record<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
) -> Result<(), WireError> {
    walk.reset(Level::Item);
    let (mut trace_id, mut span_id) = (0, 0);
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 | 11 => m.fixed64_field(tag, wt)?,
            2 | 7 => {
                m.varint_field(tag, wt)?;
            }
            3 | 12 => {
                m.string_field(tag, wt)?;
            }
            5 => {
                any_value(m.message_field(tag, wt, "AnyValue")?)?;
            }
            6 => attribute(&mut m, tag, wt, walk, Level::Item)?,
            8 => m.fixed32_field(tag, wt)?,
            9 => trace_id = m.bytes_field(tag, wt)?.len(),
            10 => span_id = m.bytes_field(tag, wt)?.len(),
            _ => m.skip(tag, wt)?,
        }
    }
    walk.id("trace_id", trace_id, TRACE_ID_LEN);
    walk.id("span_id", span_id, SPAN_ID_LEN);
    walk.item();
    Ok(())
}
