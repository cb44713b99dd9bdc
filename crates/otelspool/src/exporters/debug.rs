//! `debug` exporter: writes a summary of each batch to stdout, like otelcol's. `basic` prints
//! one line per batch, `normal` one line per item, `detailed` every field.

use bytes::Bytes;

use super::Accepted;
use crate::pipeline::{Decoded, Signal};

/// How much the debug exporter prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// One line per batch.
    Basic,
    /// One line per item.
    Normal,
    /// Everything.
    Detailed,
}

/// The `debug` exporter.
#[derive(Debug, Clone)]
pub struct DebugExporter {
    id: String,
    verbosity: Verbosity,
}

impl DebugExporter {
    /// A debug exporter named `id`.
    pub fn new(id: impl Into<String>, verbosity: Verbosity) -> Self {
        DebugExporter {
            id: id.into(),
            verbosity,
        }
    }

    /// Prints the batch; never fails (undecodable data is reported as such).
    pub fn export(&self, signal: Signal, body: &Bytes) -> Accepted {
        let decoded = match Decoded::from_protobuf(signal, body) {
            Ok(d) => d,
            Err(e) => {
                println!(
                    "{} {signal}: undecodable batch of {} bytes: {e}",
                    self.id,
                    body.len()
                );
                return Accepted::default();
            }
        };
        let resources = match &decoded {
            Decoded::Logs(r) => r.resource_logs.len(),
            Decoded::Traces(r) => r.resource_spans.len(),
            Decoded::Metrics(r) => r.resource_metrics.len(),
        };
        println!(
            "{} {signal}: {} resource(s), {} {}, {} bytes",
            self.id,
            resources,
            decoded.items(),
            signal.item_noun().replace('_', " "),
            body.len()
        );
        match (self.verbosity, &decoded) {
            (Verbosity::Basic, _) => {}
            (Verbosity::Normal, Decoded::Logs(r)) => {
                for rec in r
                    .resource_logs
                    .iter()
                    .flat_map(|x| &x.scope_logs)
                    .flat_map(|s| &s.log_records)
                {
                    let attrs: Vec<String> = rec
                        .attributes
                        .iter()
                        .map(|kv| format!("{}={}", kv.key, short(&kv.value)))
                        .collect();
                    println!(
                        "  {} {} [{}]",
                        rec.severity_text,
                        short(&rec.body),
                        attrs.join(" ")
                    );
                }
            }
            (Verbosity::Normal, _) => {}
            (Verbosity::Detailed, d) => println!("{d:#?}"),
        }
        Accepted::default()
    }
}

fn short(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
