//! The messages every signal shares (`opentelemetry.proto.common.v1` and `resource.v1`):
//! `AnyValue`, `KeyValue` and their lists, `InstrumentationScope`, `Resource`, `EntityRef`; and
//! the per-request state of a walk: the item count, the first id-length error, and the
//! visitor's attribute lookups on items, scopes and resources.

use super::reader::{LEN, Msg};
use super::{ItemVisitor, WireError, same_str};
use crate::pipeline::PayloadError;

/// Keys a visitor may ask for without the walk allocating.
const INLINE_KEYS: usize = 8;

/// What one attribute list says about one of the visitor's keys.
#[derive(Debug, Clone, Copy, Default)]
pub enum Slot<'a> {
    /// No attribute with that key.
    #[default]
    Absent,
    /// The first attribute with that key, and its value when it is a string.
    Found(Option<&'a str>),
}

impl<'a> Slot<'a> {
    fn string(self) -> Option<&'a str> {
        match self {
            Slot::Absent => None,
            Slot::Found(s) => s,
        }
    }
}

/// `n` values kept inline up to [`INLINE_KEYS`], on the heap past that (once per request).
#[derive(Debug)]
pub struct Slots<T> {
    inline: [T; INLINE_KEYS],
    heap: Vec<T>,
    len: usize,
}

impl<T: Copy + Default> Slots<T> {
    fn new(len: usize) -> Self {
        Slots {
            inline: [T::default(); INLINE_KEYS],
            heap: if len > INLINE_KEYS {
                vec![T::default(); len]
            } else {
                Vec::new()
            },
            len,
        }
    }

    fn as_slice(&self) -> &[T] {
        if self.len > INLINE_KEYS {
            &self.heap
        } else {
            &self.inline[..self.len]
        }
    }

    fn as_mut_slice(&mut self) -> &mut [T] {
        if self.len > INLINE_KEYS {
            &mut self.heap
        } else {
            &mut self.inline[..self.len]
        }
    }

    fn reset(&mut self) {
        self.as_mut_slice().fill(T::default());
    }
}

/// Which attribute list an attribute belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The item's own attributes.
    Item,
    /// Its scope's.
    Scope,
    /// Its resource's.
    Resource,
}

/// The state of one walk over one request.
pub struct Walk<'v, 'a, V> {
    visitor: &'v mut V,
    keys: usize,
    /// Bit `n` set when a wanted key is `n` bytes long (bit 63: 63 or more): most attributes
    /// are passed over on their key's length alone.
    key_lengths: u64,
    /// Items counted so far.
    pub items: u64,
    /// The first trace or span id of a wrong length: returned once the whole request is
    /// known to be well-formed, as `check_ids` runs after the decode.
    pub id_error: Option<PayloadError>,
    item: Slots<Slot<'a>>,
    scope: Slots<Slot<'a>>,
    resource: Slots<Slot<'a>>,
    values: Slots<Option<&'a str>>,
    /// In order: a resource's (scope's) attributes are noted where they sit in the bytes,
    /// with no look-ahead; right whenever they come before its scopes (items), as every
    /// encoder writes them (field 1 first). Otherwise: looked ahead for first.
    ordered: bool,
    /// In order, a resource (scope) field came after some of its scopes (items), whose
    /// reported values may then lack its attributes: the walk must be run again, looking
    /// ahead.
    pub late: bool,
}

impl<'v, 'a, V: ItemVisitor> Walk<'v, 'a, V> {
    /// A walk reporting to `visitor`; `ordered`: without looking ahead (see `ordered`).
    pub fn new(visitor: &'v mut V, ordered: bool) -> Self {
        let keys = visitor.keys().len();
        let key_lengths = visitor
            .keys()
            .iter()
            .fold(0u64, |m, k| m | 1 << k.len().min(63));
        Walk {
            key_lengths,
            ordered,
            late: false,
            visitor,
            keys,
            items: 0,
            id_error: None,
            item: Slots::new(keys),
            scope: Slots::new(keys),
            resource: Slots::new(keys),
            values: Slots::new(keys),
        }
    }

    /// Whether the visitor wants attribute values.
    pub fn wants_values(&self) -> bool {
        self.keys > 0
    }

    /// Forgets the attributes of `level` (a new resource, scope or item starts).
    pub fn reset(&mut self, level: Level) {
        if self.keys > 0 {
            self.slots(level).reset();
        }
    }

    fn slots(&mut self, level: Level) -> &mut Slots<Slot<'a>> {
        match level {
            Level::Item => &mut self.item,
            Level::Scope => &mut self.scope,
            Level::Resource => &mut self.resource,
        }
    }

    /// Notes an attribute of `level`: the first one with a wanted key is the one that counts.
    #[inline]
    pub fn attribute(&mut self, level: Level, key: &str, value: Option<&'a str>) {
        if self.key_lengths & 1 << key.len().min(63) == 0 {
            return;
        }
        let slots = match level {
            Level::Item => &mut self.item,
            Level::Scope => &mut self.scope,
            Level::Resource => &mut self.resource,
        };
        if let [wanted] = self.visitor.keys() {
            // One key (the default): no iteration over the slots.
            let slot = &mut slots.inline[0];
            if matches!(slot, Slot::Absent) && same_str(wanted, key) {
                *slot = Slot::Found(value);
            }
            return;
        }
        for (slot, wanted) in slots.as_mut_slice().iter_mut().zip(self.visitor.keys()) {
            if matches!(slot, Slot::Absent) && same_str(wanted, key) {
                *slot = Slot::Found(value);
            }
        }
    }

    /// Counts one item and reports it with its values (item, else scope, else resource).
    #[inline]
    pub fn item(&mut self) {
        self.items += 1;
        if self.keys == 1 {
            let at = |s: &Slots<Slot<'a>>| s.inline[0].string();
            self.values.inline[0] = at(&self.item).or(at(&self.scope)).or(at(&self.resource));
        } else if self.keys > 0 {
            let values = self.values.as_mut_slice();
            let levels = self
                .item
                .as_slice()
                .iter()
                .zip(self.scope.as_slice())
                .zip(self.resource.as_slice());
            for (v, ((item, scope), resource)) in values.iter_mut().zip(levels) {
                *v = item.string().or(scope.string()).or(resource.string());
            }
        }
        self.visitor.item(self.values.as_slice());
    }

    /// Keeps the first id-length error.
    pub fn id(&mut self, field: &'static str, len: usize, want: usize) {
        if self.id_error.is_none() && len != 0 && len != want {
            self.id_error = Some(PayloadError::IdLength { field, len, want });
        }
    }
}

/// What an `AnyValue` holds, as far as a lookup cares: the oneof field set last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// No field of the oneof.
    Unset,
    /// `string_value`.
    Str(&'a str),
    /// Any other field of the oneof.
    Other,
}

/// `AnyValue`: validated, nested arrays and lists included.
pub fn any_value<'a>(mut m: Msg<'a>) -> Result<Value<'a>, WireError> {
    let mut value = Value::Unset;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => value = Value::Str(m.string_field(tag, wt)?),
            2 | 3 | 8 => {
                m.varint_field(tag, wt)?;
                value = Value::Other;
            }
            4 => {
                m.fixed64_field(tag, wt)?;
                value = Value::Other;
            }
            5 => {
                let mut array = m.message_field(tag, wt, "ArrayValue")?;
                while let Some((tag, wt)) = array.key()? {
                    match tag {
                        1 => {
                            any_value(array.message_field(tag, wt, "AnyValue")?)?;
                        }
                        _ => array.skip(tag, wt)?,
                    }
                }
                value = Value::Other;
            }
            6 => {
                key_value_list(m.message_field(tag, wt, "KeyValueList")?)?;
                value = Value::Other;
            }
            7 => {
                m.bytes_field(tag, wt)?;
                value = Value::Other;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(value)
}

fn key_value_list(mut m: Msg<'_>) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => {
                key_value(m.message_field(tag, wt, "KeyValue")?)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// `KeyValue`: its key (the last one, as prost keeps) and its value's string, if the value
/// (all of its occurrences merged) holds one.
pub fn key_value<'a>(mut m: Msg<'a>) -> Result<(&'a str, Option<&'a str>), WireError> {
    let mut key = "";
    let mut value = Value::Unset;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => key = m.string_field(tag, wt)?,
            2 => match any_value(m.message_field(tag, wt, "AnyValue")?)? {
                Value::Unset => {}
                set => value = set,
            },
            3 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    let string = match value {
        Value::Str(s) => Some(s),
        Value::Unset | Value::Other => None,
    };
    Ok((key, string))
}

/// A `KeyValue` field of an item, scope or resource, noted for the visitor.
#[inline]
pub fn attribute<'a, V: ItemVisitor>(
    m: &mut Msg<'a>,
    tag: u32,
    wt: u8,
    walk: &mut Walk<'_, 'a, V>,
    level: Level,
) -> Result<(), WireError> {
    let (key, value) = key_value(m.message_field(tag, wt, "KeyValue")?)?;
    walk.attribute(level, key, value);
    Ok(())
}

/// A `KeyValue` field nobody looks up (event, link, exemplar attributes, metric metadata).
#[inline]
pub fn plain_attribute(m: &mut Msg<'_>, tag: u32, wt: u8) -> Result<(), WireError> {
    key_value(m.message_field(tag, wt, "KeyValue")?).map(drop)
}

/// `InstrumentationScope`; its attributes are noted as the scope's when `note`.
pub fn scope<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    note: bool,
) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 | 2 => {
                m.string_field(tag, wt)?;
            }
            3 if note => attribute(&mut m, tag, wt, walk, Level::Scope)?,
            3 => plain_attribute(&mut m, tag, wt)?,
            4 => {
                m.varint_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// `Resource`; its attributes are noted as the resource's when `note`.
pub fn resource<'a, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'_, 'a, V>,
    note: bool,
) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 if note => attribute(&mut m, tag, wt, walk, Level::Resource)?,
            1 => plain_attribute(&mut m, tag, wt)?,
            2 => {
                m.varint_field(tag, wt)?;
            }
            3 => entity_ref(m.message_field(tag, wt, "EntityRef")?)?,
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

fn entity_ref(mut m: Msg<'_>) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1..=4 => {
                m.string_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// Before a `Resource{Logs,Spans,Metrics}` or `Scope{...}` is walked, finds the attributes of
/// its `resource` (or `scope`) field, `field` 1 wherever it sits in the bytes (all of its
/// occurrences, merged as prost merges them), so that items before it see them. Only on the
/// second pass of a walk whose first pass, in byte order, found such a field after the
/// scopes or items it applies to (see `walk`); encoders write it first. A malformed
/// message stops the look-ahead; the walk proper then rejects it.
pub fn look_ahead<'a, V: ItemVisitor>(mut m: Msg<'a>, walk: &mut Walk<'_, 'a, V>, level: Level) {
    walk.reset(level);
    if !walk.wants_values() {
        return;
    }
    let mut scan = || -> Result<(), WireError> {
        while let Some((tag, wt)) = m.key()? {
            if tag == 1 && wt == LEN {
                match level {
                    Level::Resource => resource(m.message_field(tag, wt, "Resource")?, walk, true)?,
                    _ => scope(
                        m.message_field(tag, wt, "InstrumentationScope")?,
                        walk,
                        true,
                    )?,
                }
            } else {
                m.skip(tag, wt)?;
            }
        }
        Ok(())
    };
    let _ = scan();
}

/// The message names of one signal's envelope, as errors name them.
pub struct Envelope {
    /// `ResourceLogs`, `ResourceSpans`, `ResourceMetrics`.
    pub resource: &'static str,
    /// `ScopeLogs`, `ScopeSpans`, `ScopeMetrics`.
    pub scope: &'static str,
    /// `LogRecord`, `Span`, `Metric`.
    pub item: &'static str,
}

/// The envelope every signal shares: the request (1: its resources), a
/// `Resource{Logs,Spans,Metrics}` (1 resource, 2 its scopes, 3 schema_url) and a
/// `Scope{Logs,Spans,Metrics}` (1 scope, 2 its items, 3 schema_url); `item` walks each item
/// field (a log record, a span, a metric).
pub fn request<'a, 'v, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'v, 'a, V>,
    names: &Envelope,
    item: impl Fn(Msg<'a>, &mut Walk<'v, 'a, V>) -> Result<(), WireError> + Copy,
) -> Result<(), WireError> {
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => resource_level(m.message_field(tag, wt, names.resource)?, walk, names, item)?,
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

/// Starts a resource or scope (`level`): in byte order, forgets the previous one's
/// attributes (its own are noted as they come); otherwise looks ahead for them. Returns
/// whether the walk is in byte order.
fn enter<'a, V: ItemVisitor>(m: Msg<'a>, walk: &mut Walk<'_, 'a, V>, level: Level) -> bool {
    if walk.ordered {
        walk.reset(level);
    } else {
        look_ahead(m, walk, level);
    }
    walk.ordered
}

fn resource_level<'a, 'v, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'v, 'a, V>,
    names: &Envelope,
    item: impl Fn(Msg<'a>, &mut Walk<'v, 'a, V>) -> Result<(), WireError> + Copy,
) -> Result<(), WireError> {
    let ordered = enter(m, walk, Level::Resource);
    let mut scopes_seen = false;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => {
                walk.late |= ordered && scopes_seen;
                resource(m.message_field(tag, wt, "Resource")?, walk, ordered)?
            }
            2 => {
                scopes_seen = true;
                scope_level(m.message_field(tag, wt, names.scope)?, walk, names, item)?
            }
            3 => {
                m.string_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}

fn scope_level<'a, 'v, V: ItemVisitor>(
    mut m: Msg<'a>,
    walk: &mut Walk<'v, 'a, V>,
    names: &Envelope,
    item: impl Fn(Msg<'a>, &mut Walk<'v, 'a, V>) -> Result<(), WireError> + Copy,
) -> Result<(), WireError> {
    let ordered = enter(m, walk, Level::Scope);
    let mut items_seen = false;
    while let Some((tag, wt)) = m.key()? {
        match tag {
            1 => {
                walk.late |= ordered && items_seen;
                scope(
                    m.message_field(tag, wt, "InstrumentationScope")?,
                    walk,
                    ordered,
                )?
            }
            2 => {
                items_seen = true;
                item(m.message_field(tag, wt, names.item)?, walk)?
            }
            3 => {
                m.string_field(tag, wt)?;
            }
            _ => m.skip(tag, wt)?,
        }
    }
    Ok(())
}
