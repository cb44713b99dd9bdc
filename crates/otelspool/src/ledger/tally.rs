//! Per-request job counts: an [`ItemVisitor`] that adds up items per job key value while the
//! wire walker goes through one encoded request. It allocates once per distinct job value in a
//! request (and its vector once), never per record.

use std::sync::Arc;

use crate::pipeline::Signal;
use crate::pipeline::wire::{ItemVisitor, same_str, walk};

/// Items per job value in one request (or one queued record): `(key index, value, items)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobTally {
    /// One entry per distinct (key, value).
    pub jobs: Vec<(u8, Box<str>, u64)>,
    /// Items with no value for any key.
    pub unkeyed: u64,
}

impl JobTally {
    /// True when every keyed item belongs to one value per key and no item is unkeyed: the
    /// request held one job (what partial-success attribution needs).
    pub fn single_job(&self, keys: usize) -> bool {
        self.unkeyed == 0
            && self.jobs.len() == keys
            && (0..keys).all(|k| self.jobs.iter().filter(|j| j.0 as usize == k).count() == 1)
    }
}

/// Walks requests for the ledger's keys, filling a [`JobTally`].
#[derive(Debug)]
pub struct TallyVisitor {
    keys: Arc<[Box<str>]>,
    /// The tally being filled.
    pub tally: JobTally,
    /// Index in `tally.jobs` of the entry the last item matched.
    last: usize,
}

impl TallyVisitor {
    /// A visitor for `keys`.
    pub fn new(keys: Arc<[Box<str>]>) -> Self {
        TallyVisitor {
            keys,
            tally: JobTally::default(),
            last: 0,
        }
    }

    /// Walks `body` (an export request of `signal`) and returns its tally; `None` when it is
    /// not a valid request (it was validated on receive, so only damage or a bug gets here).
    pub fn tally_of(keys: &Arc<[Box<str>]>, signal: Signal, body: &[u8]) -> Option<JobTally> {
        let mut v = TallyVisitor::new(keys.clone());
        walk(signal, body, &mut v).ok()?;
        Some(v.tally)
    }
}

impl TallyVisitor {
    /// One item of the job `v` of key `k`.
    #[inline]
    fn count(&mut self, k: u8, v: &str) {
        // Consecutive items mostly belong to the same job: try the entry found last.
        if let Some(j) = self.tally.jobs.get_mut(self.last)
            && j.0 == k
            && same_str(&j.1, v)
        {
            j.2 += 1;
            return;
        }
        match self
            .tally
            .jobs
            .iter()
            .position(|j| j.0 == k && same_str(&j.1, v))
        {
            Some(i) => {
                self.tally.jobs[i].2 += 1;
                self.last = i;
            }
            None => {
                self.last = self.tally.jobs.len();
                self.tally.jobs.push((k, v.into(), 1));
            }
        }
    }
}

impl ItemVisitor for TallyVisitor {
    fn keys(&self) -> &[Box<str>] {
        &self.keys
    }

    fn item(&mut self, values: &[Option<&str>]) {
        if let [value] = values {
            // One key (the default).
            match value {
                Some(v) => self.count(0, v),
                None => self.tally.unkeyed += 1,
            }
            return;
        }
        let mut keyed = false;
        for (k, v) in values.iter().enumerate() {
            let Some(v) = v else { continue };
            keyed = true;
            self.count(k as u8, v);
        }
        if !keyed {
            self.tally.unkeyed += 1;
        }
    }

    fn restart(&mut self) {
        self.tally.jobs.clear();
        self.tally.unkeyed = 0;
        self.last = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenario: a visitor with two keys sees items of two jobs, one workflow, and one item
    /// with no key.
    /// Guarantees: one entry per (key, value) with its count, unkeyed counted apart; a
    /// request of one job per key is `single_job`, this one is not.
    #[test]
    fn items_add_up_per_key_value() {
        let keys: Arc<[Box<str>]> =
            vec!["emerge.job_id".into(), "emerge.workflow_id".into()].into();
        let mut v = TallyVisitor::new(keys);
        v.item(&[Some("j1"), Some("wf")]);
        v.item(&[Some("j1"), Some("wf")]);
        v.item(&[Some("j2"), Some("wf")]);
        v.item(&[None, None]);
        assert_eq!(
            v.tally.jobs,
            vec![
                (0, "j1".into(), 2),
                (1, "wf".into(), 3),
                (0, "j2".into(), 1)
            ]
        );
        assert_eq!(v.tally.unkeyed, 1);
        assert!(!v.tally.single_job(2));
        let one = JobTally {
            jobs: vec![(0, "j1".into(), 2), (1, "wf".into(), 2)],
            unkeyed: 0,
        };
        assert!(one.single_job(2));
    }

    /// Scenario: one key, items of job `a`, `a`, `b`, then `a` again (the entry matched last
    /// is tried first), then the visitor restarts and sees `c`.
    /// Guarantees: each value is counted on its own entry whichever was matched last, and a
    /// restart forgets everything reported before it.
    #[test]
    fn a_job_seen_again_after_another_is_counted_on_its_entry() {
        let mut v = TallyVisitor::new(vec!["emerge.job_id".into()].into());
        for job in ["a", "a", "b", "a"] {
            v.item(&[Some(job)]);
        }
        assert_eq!(v.tally.jobs, vec![(0, "a".into(), 3), (0, "b".into(), 1)]);
        v.restart();
        v.item(&[Some("c")]);
        assert_eq!(v.tally.jobs, vec![(0, "c".into(), 1)]);
        assert_eq!(v.tally.unkeyed, 0);
    }
}

#[cfg(test)]
mod walk_tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(
                    opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(v.into()),
                ),
            }),
            ..KeyValue::default()
        }
    }

    /// Scenario: a trace request whose resource names job `r`, one scope naming job `s`, and
    /// one span naming job `i` itself.
    /// Guarantees: spans count for the job found on the span, else the scope, else the
    /// resource.
    #[test]
    fn spans_take_the_nearest_job_value() {
        let span = |attrs: Vec<KeyValue>| Span {
            attributes: attrs,
            ..Span::default()
        };
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("emerge.job_id", "r")],
                    ..Resource::default()
                }),
                scope_spans: vec![
                    ScopeSpans {
                        spans: vec![span(vec![]), span(vec![kv("emerge.job_id", "i")])],
                        ..ScopeSpans::default()
                    },
                    ScopeSpans {
                        scope: Some(InstrumentationScope {
                            attributes: vec![kv("emerge.job_id", "s")],
                            ..InstrumentationScope::default()
                        }),
                        spans: vec![span(vec![]), span(vec![])],
                        ..ScopeSpans::default()
                    },
                ],
                ..ResourceSpans::default()
            }],
        };
        let keys: Arc<[Box<str>]> = vec!["emerge.job_id".into()].into();
        let t = TallyVisitor::tally_of(&keys, Signal::Traces, &req.encode_to_vec())
            .expect("valid request");
        assert_eq!(
            t.jobs,
            vec![(0, "r".into(), 1), (0, "i".into(), 1), (0, "s".into(), 2)]
        );
    }
}
