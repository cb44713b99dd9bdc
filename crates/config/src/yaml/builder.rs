//! From yaml-rust2's marked events to a `serde_json::Value` tree, the lines of its keys and the
//! [`Sources`] of their values.
//!
//! Each open sequence or mapping is a frame on a stack; a finished node is pushed into its
//! parent together with the lines and sources of its descendants, relative to it, so that
//! absolute key paths are known when the root completes. A scalar's text runs from its event
//! to the next event, which is where the substitutions that made it are looked for; a mapping
//! entry's sources are its key's and its value's. Anchored nodes are kept for their aliases
//! (with their sources); merge keys (`<<`) copy entries that the mapping does not set itself.
//!
//! Aliases copy their anchored node, so a few lines can name billions of nodes ("billion
//! laughs"). Every node's size (nodes and scalar bytes) is known when it completes; each alias
//! adds its node's size to a budget, and the alias that would take the copies past
//! [`MAX_ALIAS_NODES`] or [`MAX_ALIAS_BYTES`] is refused with its line, before anything is
//! copied.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use yaml_rust2::parser::Event;
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::scalar::resolve_plain;
use super::{Seg, YamlError, YamlErrorKind};
use crate::env::Substitution;
use crate::redact::Sources;

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

/// Lines and sources of the descendants of a node, by path relative to it.
type Descendants = Vec<(Vec<Seg>, usize, Sources)>;

/// A finished node, on its way into its parent.
struct Node {
    value: Value,
    line: usize,
    size: Size,
    sources: Sources,
    descendants: Descendants,
}

/// An open sequence or mapping and what it holds so far.
struct Open {
    frame: Frame,
    anchor: usize,
    line: usize,
    size: Size,
    sources: Sources,
    descendants: Descendants,
}

enum Frame {
    Seq(Vec<Value>),
    Map {
        entries: Vec<(String, Value)>,
        /// The key read, waiting for its value: name, line, sources.
        key: Option<(String, usize, Sources)>,
        merged: HashSet<String>,
    },
}

/// Receives the parser's events; see the module doc.
pub(super) struct Builder<'t> {
    text: &'t str,
    subs: &'t [Substitution],
    stack: Vec<Open>,
    anchors: HashMap<usize, (Value, Size, Sources)>,
    /// What aliases have copied so far.
    expanded: Size,
    docs: usize,
    pub(super) root: Option<Value>,
    pub(super) error: Option<YamlError>,
    /// Absolute key paths with their lines and sources, filled when the root completes.
    pub(super) paths: Descendants,
}

impl<'t> Builder<'t> {
    /// A builder for `text`, whose substitutions are `subs`.
    pub(super) fn new(text: &'t str, subs: &'t [Substitution]) -> Self {
        Builder {
            text,
            subs,
            stack: Vec::new(),
            anchors: HashMap::new(),
            expanded: Size::default(),
            docs: 0,
            root: None,
            error: None,
            paths: Vec::new(),
        }
    }

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
        let Some((value, size, sources)) = self.anchors.get(&id) else {
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
        let node = Node {
            value: value.clone(),
            line,
            size,
            sources: sources.clone(),
            descendants: Vec::new(),
        };
        self.push(node, 0);
    }

    /// Adds a finished node to its parent (or makes it the root), keeping it if anchored.
    fn push(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let kept = (node.value.clone(), node.size, node.sources.clone());
            self.anchors.insert(anchor, kept);
        }
        let Some(open) = self.stack.last_mut() else {
            if self.root.is_some() {
                self.fail(node.line, "only one YAML document is supported".into());
                return;
            }
            self.root = Some(node.value);
            self.paths = node.descendants;
            return;
        };
        open.size += node.size;
        open.sources.merge(&node.sources);
        let nest = |seg: Seg, into: &mut Descendants, node: Node, sources: Sources| {
            into.push((vec![seg.clone()], node.line, sources));
            for (mut segs, l, s) in node.descendants {
                segs.insert(0, seg.clone());
                into.push((segs, l, s));
            }
            node.value
        };
        let mut err: Option<(usize, String)> = None;
        match &mut open.frame {
            Frame::Seq(items) => {
                let seg = Seg::Index(items.len());
                let sources = node.sources.clone();
                items.push(nest(seg, &mut open.descendants, node, sources));
            }
            Frame::Map {
                entries,
                key,
                merged,
            } => match key.take() {
                None => {
                    let k = match node.value {
                        Value::String(s) => s,
                        Value::Null => String::new(),
                        Value::Bool(_) | Value::Number(_) => node.value.to_string(),
                        _ => {
                            err =
                                Some((node.line, "complex mapping keys are not supported".into()));
                            String::new()
                        }
                    };
                    *key = Some((k, node.line, node.sources));
                }
                Some((k, key_line, _)) if k == "<<" => {
                    let sources = match node.value {
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
                            if !entries.iter().any(|(ek, _)| *ek == mk) {
                                merged.insert(mk.clone());
                                entries.push((mk, mv));
                            }
                        }
                    }
                }
                Some((k, key_line, mut sources)) => {
                    if let Some(pos) = entries.iter().position(|(ek, _)| *ek == k) {
                        if merged.remove(&k) {
                            entries.remove(pos);
                        } else {
                            err = Some((key_line, format!("duplicate key {k:?}")));
                        }
                    }
                    sources.merge(&node.sources);
                    let node = Node {
                        line: key_line,
                        ..node
                    };
                    let value = nest(Seg::Key(k.clone()), &mut open.descendants, node, sources);
                    entries.push((k, value));
                }
            },
        }
        if let Some((line, message)) = err {
            self.fail(line, message);
        }
    }

    /// Handles one event; the next event starts at byte `next` of the text.
    pub(super) fn event(&mut self, ev: Event, mark: Marker, next: usize) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        let range = mark.index()..next.max(mark.index());
        match ev {
            Event::DocumentStart => {
                self.docs += 1;
                if self.docs > 1 {
                    self.fail(line, "only one YAML document is supported".into());
                }
            }
            Event::Scalar(v, style, anchor, tag) => {
                let sources = Sources::of_scalar(self.subs, self.text, range, &v);
                let size = Size {
                    nodes: 1,
                    bytes: v.len(),
                };
                let is_str_tag = tag.as_ref().is_some_and(|t| t.suffix == "str");
                let value = if style != TScalarStyle::Plain || is_str_tag {
                    Value::String(v)
                } else {
                    resolve_plain(&v)
                };
                let node = Node {
                    value,
                    line,
                    size,
                    sources,
                    descendants: Vec::new(),
                };
                self.push(node, anchor);
            }
            Event::Alias(id) => self.alias(id, line),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new())
                } else {
                    Frame::Map {
                        entries: Vec::new(),
                        key: None,
                        merged: HashSet::new(),
                    }
                };
                self.stack.push(Open {
                    frame,
                    anchor,
                    line,
                    size: Size::default(),
                    sources: Sources::of_range(self.subs, range),
                    descendants: Vec::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(open) = self.stack.pop() else {
                    return;
                };
                let value = match open.frame {
                    Frame::Seq(items) => Value::Array(items),
                    Frame::Map { entries, .. } => Value::Object(entries.into_iter().collect()),
                };
                let mut size = open.size;
                size += Size { nodes: 1, bytes: 0 };
                let node = Node {
                    value,
                    line: open.line,
                    size,
                    sources: open.sources,
                    descendants: open.descendants,
                };
                self.push(node, open.anchor);
            }
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}
