//! `ExportMetricsServiceRequest`: resource metrics, scope metrics, metrics and their five data
//! kinds (gauge, sum, histogram, exponential histogram, summary). A data point is an item.
//!
//! A metric's `data` is a oneof: prost keeps the kind set last, and a later field of another
//! kind replaces the points gathered so far (fields of the same kind in a row merge, adding
//! their points). `Decoded::items` and `check_ids` see only what is kept, so the walker finds
//! the last run of same-kind `data` fields first and counts, reports and id-checks the points
//! of that run only; the fields before it are validated and nothing else.

use super::ItemVisitor;
use super::WireError;
use super::common::{self, Envelope, Level, Walk, attribute, plain_attribute};
use super::reader::Msg;
use crate::pipeline::{SPAN_ID_LEN, TRACE_ID_LEN};

/// The tags of `Metric.data`: gauge, sum, histogram, exponential histogram, summary.
const DATA_TAGS: [u32; 5] = [5, 7, 9, 10, 11];

/// A deferred id-length error: field, length, wanted length.
type IdError = Option<(&'static str, usize, usize)>;

/// Walks the fields of one kind of data point; noting attributes at `Some(level)`.
type PointFields<'a, 'w, V> =
    fn(Msg<'a>, &mut Walk<'w, 'a, V>, Option<Level>) -> Result<IdError, WireError>;

/// Walks the request's fields.
pub fn request<'a, V: ItemVisitor>(
    m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
) -> Result<(), WireError> {
    let names = Envelope {
        resource: "ResourceMetrics",
        scope: "ScopeMetrics",
        item: "Metric",
    };
    common::request(m, walk, &names, metric)
}

/// Where the last run of same-kind `data` fields starts, as the bytes remaining before its
/// first key; every `data` field is kept when the metric cannot be scanned (the walk proper
/// then rejects it).
fn kept_from(mut m: Msg<'_>) -> usize {
    let mut last = 0;
    let mut start = usize::MAX;
    loop {
        let before = m.remaining();
        match m.key() {
            Ok(Some((tag, wt))) => {
                if DATA_TAGS.contains(&tag) && tag != last {
                    last = tag;
                    start = before;
                }
                if m.skip(tag, wt).is_err() {
                    return usize::MAX;
                }
            }
            Ok(None) => return start,
            Err(_) => return usize::MAX,
        }
    }
}

fn metric<'a, V: ItemVisitor>(mut m: Msg<'a>, walk: &mut Walk<'_, 'a, V>) -> Result<(), WireError> {
    let kept_from = kept_from(m);
    loop {
        let live = m.remaining() <= kept_from;
        let Some((tag, wt)) = m.key()? else {
            return Ok(());
        };
        match tag {
            1..=3 => {
                m.string_field(tag, wt)?;
            }
            12 => plain_attribute(&mut m, tag, wt)?,
            5 => data(m.message_field(tag, wt, "Gauge")?, walk, live, Kind::Gauge)?,
            7 => data(m.message_field(tag, wt, "Sum")?, walk, live, Kind::Sum)?,
            9 => data(
                m.message_field(tag, wt, "Histogram")?,
                walk,
                live,
                Kind::Histogram,
            )?,
            10 => data(
                m.message_field(tag, wt, "ExponentialHistogram")?,
                walk,
                live,
                Kind::Exponential,
            )?,
            11 => data(
                m.message_field(tag, wt, "Summary")?,
                walk,
                live,
                Kind::Summary,
            )?,
            _ => m.skip(tag, wt)?,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Gauge,
    Sum,
    Histogram,
    Exponential,
    Summary,
}

/// One `data` field: its points are items when `live`.
fn data<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    live: bool,
    kind: Kind,
) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match (kind, tag) {
            (Kind::Gauge | Kind::Sum, 1) => {
                let p = m.message_field(tag, wt, "NumberDataPoint")?;
                point(p, walk, live, number_point)?;
            }
            (Kind::Histogram, 1) => {
                let p = m.message_field(tag, wt, "HistogramDataPoint")?;
                point(p, walk, live, histogram_point)?;
            }
            (Kind::Exponential, 1) => {
                let p = m.message_field(tag, wt, "ExponentialHistogramDataPoint")?;
                point(p, walk, live, exponential_point)?;
            }
            (Kind::Summary, 1) => {
                let p = m.message_field(tag, wt, "SummaryDataPoint")?;
                point(p, walk, live, summary_point)?;
            }
            // aggregation_temporality (all but gauge and summary), is_monotonic (sum).
            (Kind::Sum | Kind::Histogram | Kind::Exponential, 2) | (Kind::Sum, 3) => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// Walks one data point with `fields`, which returns its first bad exemplar id; a live point
/// is counted, reported and id-checked.
fn point<'a, 'w, V: ItemVisitor>(
    p: Msg<'a>,
    walk: &mut Walk<'w, 'a, V>,
    live: bool,
    fields: PointFields<'a, 'w, V>,
) -> Result<(), WireError> {
    if !live {
        return fields(p, walk, None).map(drop);
    }
    walk.reset(Level::Item);
    if let Some((field, len, want)) = fields(p, walk, Some(Level::Item))? {
        walk.id(field, len, want);
    }
    walk.item();
    Ok(())
}

/// An attribute of a point: noted when the point is live (`level` set).
fn point_attribute<'a, V: ItemVisitor>(
    m: &mut Msg<'a>,
    tag: u32,
    wt: u8,
    walk: &mut Walk<'_, 'a, V>,
    level: Option<Level>,
) -> Result<(), WireError> {
    match level {
        Some(level) => attribute(m, tag, wt, walk, level),
        None => plain_attribute(m, tag, wt),
    }
}

fn number_point<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    level: Option<Level>,
) -> Result<IdError, WireError> {
    let mut bad = None;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            7 => point_attribute(&mut m, tag, wt, walk, level)?,
            2..=4 | 6 => m.fixed64_field(tag, wt)?,
            5 => bad = bad.or(exemplar(m.message_field(tag, wt, "Exemplar")?)?),
            8 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(bad)
}

fn histogram_point<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    level: Option<Level>,
) -> Result<IdError, WireError> {
    let mut bad = None;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            9 => point_attribute(&mut m, tag, wt, walk, level)?,
            2..=5 | 11 | 12 => m.fixed64_field(tag, wt)?,
            // bucket_counts (fixed64), explicit_bounds (double): packed or not.
            6 | 7 => m.repeated_fixed_field(tag, wt, 8)?,
            8 => bad = bad.or(exemplar(m.message_field(tag, wt, "Exemplar")?)?),
            10 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(bad)
}

fn exponential_point<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    level: Option<Level>,
) -> Result<IdError, WireError> {
    let mut bad = None;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => point_attribute(&mut m, tag, wt, walk, level)?,
            2..=5 | 7 | 12..=14 => m.fixed64_field(tag, wt)?,
            6 | 10 => {
                m.varint_field(tag, wt)?;
            }
            8 | 9 => buckets(m.message_field(tag, wt, "Buckets")?)?,
            11 => bad = bad.or(exemplar(m.message_field(tag, wt, "Exemplar")?)?),
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(bad)
}

fn buckets(mut m: Msg<'_>) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => {
                m.varint_field(tag, wt)?;
            }
            2 => m.repeated_varint_field(tag, wt)?,
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

fn summary_point<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    level: Option<Level>,
) -> Result<IdError, WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            7 => point_attribute(&mut m, tag, wt, walk, level)?,
            2..=5 => m.fixed64_field(tag, wt)?,
            6 => {
                let mut q = m.message_field(tag, wt, "ValueAtQuantile")?;
                while let Some((tag, wt)) = q.key()? {
                    match tag {
                        1 | 2 => q.fixed64_field(tag, wt)?,
                        _ => q.skip(tag, wt)?,
                    }
                }
            }
            8 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(None)
}

/// An exemplar; its first id of a wrong length (trace id first, as `check_ids` looks).
fn exemplar(mut m: Msg<'_>) -> Result<IdError, WireError> {
    let (mut trace_id, mut span_id) = (0, 0);
    while let Some((tag, wt)) = m.key()? {
        match tag {
            7 => plain_attribute(&mut m, tag, wt)?,
            2 | 3 | 6 => m.fixed64_field(tag, wt)?,
            4 => span_id = m.bytes_field(tag, wt)?.len(),
            5 => trace_id = m.bytes_field(tag, wt)?.len(),
            _ => m.skip(tag, wt)?,
        }
    }
    let bad = |len: usize, want: usize| len != 0 && len != want;
    Ok(if bad(trace_id, TRACE_ID_LEN) {
        Some(("exemplars.trace_id", trace_id, TRACE_ID_LEN))
    } else if bad(span_id, SPAN_ID_LEN) {
        Some(("exemplars.span_id", span_id, SPAN_ID_LEN))
    } else {
        None
    })
}
