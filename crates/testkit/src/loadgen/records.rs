//! ComfyUI-like log records, each carrying a unique id in its body.
//!
//! A record id is `<run>-<job>-<seq>` (job as four digits, seq counting from 0 within the job)
//! and appears in the body as the last whitespace-separated token `id=<id>`, which is how
//! [`crate::check`] finds it again in the backend's record file. Attributes: `emerge.job_id`
//! (`j-NNNN`), `emerge.workflow_id` (`wf-NNN`), `seq` (int); resource `service.name =
//! comfyui-worker`.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

/// The marker before a record id in a body.
pub const ID_MARKER: &str = "id=";

/// Finds the record id in a body written by [`JobRecords`], if any.
pub fn id_in_body(body: &str) -> Option<&str> {
    let start = body.rfind(ID_MARKER)? + ID_MARKER.len();
    let id = body[start..].split_whitespace().next()?;
    (!id.is_empty()).then_some(id)
}

/// Builds the requests of one job: one batch at a time, with consecutive sequence numbers.
#[derive(Debug)]
pub struct JobRecords {
    run_id: String,
    job: u32,
    job_id: String,
    workflow_id: String,
    record_size: usize,
    next_seq: u64,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl JobRecords {
    /// Records of job number `job` in run `run_id`, bodies padded to about `record_size` bytes.
    pub fn new(run_id: &str, job: u32, record_size: usize) -> Self {
        JobRecords {
            run_id: run_id.to_owned(),
            job,
            job_id: format!("j-{job:04}"),
            workflow_id: format!("wf-{:03}", job % 17),
            record_size,
            next_seq: 0,
        }
    }

    /// The id of record `seq` of this job.
    pub fn id(&self, seq: u64) -> String {
        format!("{}-{:04}-{seq}", self.run_id, self.job)
    }

    fn body(&self, seq: u64, id: &str) -> String {
        let mut body = String::with_capacity(self.record_size + 16);
        let step = seq % 20 + 1;
        let _ = match seq % 25 {
            0 => write!(body, "[job {}] got prompt", self.job_id),
            21 => write!(
                body,
                "[job {}] Requested to load SDXL; loading 1 new model",
                self.job_id
            ),
            22 => write!(body, "[job {}] VAE decode 1024x1024 tiles=4", self.job_id),
            23 => write!(body, "[job {}] Saved ComfyUI_{seq:05}_.png", self.job_id),
            24 => write!(
                body,
                "[job {}] Prompt executed in {}.{:02} seconds",
                self.job_id,
                seq % 9,
                seq % 100
            ),
            _ => write!(
                body,
                "[job {}] KSampler step {step}/20 |{}{}| {}.{:02}it/s",
                self.job_id,
                "#".repeat(usize::try_from(step).unwrap_or(0)),
                " ".repeat(20 - usize::try_from(step).unwrap_or(20)),
                1 + seq % 4,
                seq % 100,
            ),
        };
        let tail = ID_MARKER.len() + id.len() + 1;
        if body.len() + 1 + tail <= self.record_size {
            body.push(' ');
            let pad = self.record_size - body.len() - tail;
            body.extend(std::iter::repeat_n('.', pad));
        }
        body.push(' ');
        body.push_str(ID_MARKER);
        body.push_str(id);
        body
    }

    /// The next `count` records as one request, with their ids in order.
    pub fn next_batch(&mut self, count: usize) -> (ExportLogsServiceRequest, Vec<String>) {
        let now = now_nanos();
        let mut ids = Vec::with_capacity(count);
        let mut log_records = Vec::with_capacity(count);
        for _ in 0..count {
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = self.id(seq);
            let (severity_number, severity_text) = if seq % 25 == 21 {
                (13, "WARN")
            } else {
                (9, "INFO")
            };
            log_records.push(LogRecord {
                time_unix_nano: now,
                observed_time_unix_nano: now,
                severity_number,
                severity_text: severity_text.to_owned(),
                body: Some(AnyValue {
                    value: Some(Value::StringValue(self.body(seq, &id))),
                }),
                attributes: vec![
                    kv("emerge.job_id", Value::StringValue(self.job_id.clone())),
                    kv(
                        "emerge.workflow_id",
                        Value::StringValue(self.workflow_id.clone()),
                    ),
                    kv(
                        "seq",
                        Value::IntValue(i64::try_from(seq).unwrap_or(i64::MAX)),
                    ),
                ],
                ..LogRecord::default()
            });
            ids.push(id);
        }
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![kv(
                        "service.name",
                        Value::StringValue("comfyui-worker".into()),
                    )],
                    ..Resource::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "comfyui".into(),
                        ..InstrumentationScope::default()
                    }),
                    log_records,
                    ..ScopeLogs::default()
                }],
                ..ResourceLogs::default()
            }],
        };
        (request, ids)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_padded_and_carry_their_id() {
        let mut job = JobRecords::new("run1", 7, 300);
        let (request, ids) = job.next_batch(30);
        assert_eq!(ids[0], "run1-0007-0");
        assert_eq!(ids[29], "run1-0007-29");
        let records = &request.resource_logs[0].scope_logs[0].log_records;
        for (record, id) in records.iter().zip(&ids) {
            let Some(Value::StringValue(body)) =
                record.body.as_ref().and_then(|b| b.value.as_ref())
            else {
                panic!("body is not a string");
            };
            assert!(body.starts_with("[job j-0007] "), "{body}");
            assert_eq!(body.len(), 300, "{body}");
            assert_eq!(id_in_body(body), Some(id.as_str()));
        }
        let (_, next) = job.next_batch(1);
        assert_eq!(next, vec!["run1-0007-30".to_owned()]);
    }

    #[test]
    fn finds_no_id_where_there_is_none() {
        assert_eq!(id_in_body("plain line"), None);
        assert_eq!(id_in_body("ends with id="), None);
        assert_eq!(id_in_body("x id=a-1 "), Some("a-1"));
    }
}
