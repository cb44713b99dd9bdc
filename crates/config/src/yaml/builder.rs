//! From yaml-rust2's marked events to a `serde_json::Value` tree and the lines of its keys.
//!
//! Each open sequence or mapping is a frame on a stack; a finished node is pushed into its
//! parent together with the lines of its descendants, relative to it, so that absolute key
//! paths are known when the root completes. Anchored nodes are kept for their aliases; merge
//! keys (`<<`) copy entries that the mapping does not set itself.
//!
//! Aliases copy their anchored node, so a few lines can name billions of nodes ("billion
//! laughs"). Every node's size (nodes and scalar bytes) is known when it completes; each alias
//! adds its node's size to a budget, and the alias that would take the copies past
//! [`MAX_ALIAS_NODES`] or [`MAX_ALIAS_BYTES`] is refused with its line, before anything is
//! copied.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scalar::resolve_plain;
use super::{Seg, YamlError, YamlErrorKind, path_string};

/// Most nodes that aliases may copy in one document, all aliases together.
pub(super) const MAX_ALIAS_NODES: usize = 10_000;
/// Most scalar bytes (keys and values) that aliases may copy in one document.
pub(super) const MAX_ALIAS_BYTES: usize = 1024 * 1024;

/// The size of a node: itself and its descendants, and the bytes of their scalars.
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    nodes: usize,
    bytes: usize,
}

impl std::ops::AddAssign for Size {
    fn add_assign(&mut self, other: Size) {
        self.nodes = self.nodes.saturating_add(other.nodes);
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// An open sequence or mapping: its frame, the line it starts on, and the size of what it
/// holds so far.
struct Open {
    frame: Frame,
    line: usize,
    size: Size,
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<(Value, usize)>,
    },
    Map {
        anchor: usize,
        entries: Vec<(String, usize, Value)>,
        key: Option<(String, usize)>,
        merged: HashSet<String>,
    },
}

/// Receives the parser's events; see the module doc.
#[derive(Default)]
pub(super) struct Builder {
    stack: Vec<Open>,
    anchors: HashMap<usize, (Value, Size)>,
    /// What aliases have copied so far.
    expanded: Size,
    pub(super) root: Option<Value>,
    docs: usize,
    pub(super) error: Option<YamlError>,
    /// Absolute key paths and lines, filled when the root node completes.
    pub(super) lines: Vec<(String, usize)>,
    /// For each open frame, the lines of its descendants relative to it.
    pending: Vec<PendingLines>,
}

/// Lines of the children of a finished node, relative to that node.
type PendingLines = Vec<(Vec<Seg>, usize)>;

impl Builder {
    fn fail(&mut self, line: usize, message: String) {
        self.fail_as(YamlErrorKind::Syntax, line, message);
    }

    fn fail_as(&mut self, kind: YamlErrorKind, line: usize, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                kind,
                line,
                message,
            });
        }
    }

    /// Copies the node anchored as `id` for an alias on `line`, within the alias budget.
    fn alias(&mut self, id: usize, line: usize) {
        let Some((value, size)) = self.anchors.get(&id) else {
            self.fail(line, "alias to an unknown anchor".into());
            return;
        };
        let size = *size;
        self.expanded += size;
        let over = if self.expanded.nodes > MAX_ALIAS_NODES {
            Some(format!("{MAX_ALIAS_NODES} nodes"))
        } else if self.expanded.bytes > MAX_ALIAS_BYTES {
            Some(format!("{MAX_ALIAS_BYTES} bytes"))
        } else {
            None
        };
        if let Some(limit) = over {
            self.fail_as(
                YamlErrorKind::AliasBudget,
                line,
                format!(
                    "YAML aliases would copy more than {limit} in total; this alias is refused \
                     (the limit guards against alias bombs: use fewer or smaller aliases)"
                ),
            );
            return;
        }
        let value = value.clone();
        self.push(value, line, 0, Vec::new(), size);
    }

    /// Adds a finished node of `size` (with the relative lines of its children) to the parent.
    fn push(
        &mut self,
        value: Value,
        line: usize,
        anchor: usize,
        children: PendingLines,
        size: Size,
    ) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        let Some(Open {
            frame: top,
            size: parent_size,
            ..
        }) = self.stack.last_mut()
        else {
            if self.root.is_some() {
                self.fail(line, "only one YAML document is supported".into());
                return;
            }
            self.root = Some(value);
            for (segs, l) in children {
                self.lines.push((path_string(&segs), l));
            }
            return;
        };
        *parent_size += size;
        let rel = self.pending.last_mut();
        let mut err: Option<(usize, String)> = None;
        match top {
            Frame::Seq { items, .. } => {
                let i = items.len();
                items.push((value, line));
                if let Some(rel) = rel {
                    rel.push((vec![Seg::Index(i)], line));
                    for (mut segs, l) in children {
                        segs.insert(0, Seg::Index(i));
                        rel.push((segs, l));
                    }
                }
            }
            Frame::Map {
                entries,
                key,
                merged,
                ..
            } => match key.take() {
                None => {
                    let k = match value {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        Value::Bool(_) | Value::Number(_) => value.to_string(),
                        _ => {
                            err = Some((line, "complex mapping keys are not supported".into()));
                            String::new()
                        }
                    };
                    *key = Some((k, line));
                }
                Some((k, key_line)) if k == "<<" => {
                    let sources = match value {
                        Value::Object(m) => vec![m],
                        Value::Array(a) => a
                            .into_iter()
                            .filter_map(|v| match v {
                                Value::Object(m) => Some(m),
                                _ => None,
                            })
                            .collect(),
                        _ => {
                            err = Some((key_line, "a merge key (<<) needs a mapping".into()));
                            Vec::new()
                        }
                    };
                    for m in sources {
                        for (mk, mv) in m {
                            if !entries.iter().any(|(ek, _, _)| *ek == mk) {
                                merged.insert(mk.clone());
                                entries.push((mk, key_line, mv));
                            }
                        }
                    }
                }
                Some((k, key_line)) => {
                    if let Some(pos) = entries.iter().position(|(ek, _, _)| *ek == k) {
                        if merged.remove(&k) {
                            entries.remove(pos);
                        } else {
                            err = Some((key_line, format!("duplicate key {k:?}")));
                        }
                    }
                    if let Some(rel) = rel {
                        rel.push((vec![Seg::Key(k.clone())], key_line));
                        for (mut segs, l) in children {
                            segs.insert(0, Seg::Key(k.clone()));
                            rel.push((segs, l));
                        }
                    }
                    entries.push((k, key_line, value));
                }
            },
        }
        if let Some((line, message)) = err {
            self.fail(line, message);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::DocumentStart => {
                self.docs += 1;
                if self.docs > 1 {
                    self.fail(line, "only one YAML document is supported".into());
                }
            }
            Event::Scalar(v, style, anchor, tag) => {
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let size = Size {
                    nodes: 1,
                    bytes: v.len(),
                };
                let value = if style != TScalarStyle::Plain || is_str_tag {
                    Value::String(v)
                } else {
                    resolve_plain(&v)
                };
                self.push(value, line, anchor, Vec::new(), size);
            }
            Event::Alias(id) => self.alias(id, line),
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Open {
                    frame: Frame::Seq {
                        anchor,
                        items: Vec::new(),
                    },
                    line,
                    size: Size::default(),
                });
                self.pending.push(Vec::new());
            }
            Event::MappingStart(anchor, _) => {
                let frame = Frame::Map {
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    merged: HashSet::new(),
                };
                self.stack.push(Open {
                    frame,
                    line,
                    size: Size::default(),
                });
                self.pending.push(Vec::new());
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(Open {
                    frame,
                    line: start,
                    mut size,
                }) = self.stack.pop()
                else {
                    return;
                };
                size += Size { nodes: 1, bytes: 0 };
                let children = self.pending.pop().unwrap_or_default();
                let (value, anchor) = match frame {
                    Frame::Seq { anchor, items } => (
                        Value::Array(items.into_iter().map(|(v, _)| v).collect()),
                        anchor,
                    ),
                    Frame::Map {
                        anchor, entries, ..
                    } => {
                        let mut m = Map::new();
                        for (k, _, v) in entries {
                            m.insert(k, v);
                        }
                        (Value::Object(m), anchor)
                    }
                };
                self.push(value, start, anchor, children, size);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}
