//! `attributes` and `resource` processors: insert, update, upsert and delete attributes, with
//! otelcol's semantics (insert only when absent, update only when present, upsert always).

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value::Value};

use crate::pipeline::Decoded;

/// What an action does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Set the key only when it is absent.
    Insert,
    /// Set the key only when it is present.
    Update,
    /// Set the key in any case.
    Upsert,
    /// Remove the key.
    Delete,
}

/// Where the new value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueSource {
    /// A literal from the config.
    Literal(AnyValue),
    /// Another attribute of the same item.
    FromAttribute(String),
    /// Nothing (delete).
    None,
}

/// One configured action.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeAction {
    /// The attribute key.
    pub key: String,
    /// The action.
    pub kind: ActionKind,
    /// The value to set.
    pub value: ValueSource,
}

/// Converts a config value (string, integer, float, bool) into an OTLP value.
pub fn any_value_from_json(v: &serde_json::Value) -> Option<AnyValue> {
    let value = match v {
        serde_json::Value::String(s) => Value::StringValue(s.clone()),
        serde_json::Value::Bool(b) => Value::BoolValue(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::IntValue(i),
            None => Value::DoubleValue(n.as_f64()?),
        },
        _ => return None,
    };
    Some(AnyValue { value: Some(value) })
}

/// Applies `actions` to one attribute list.
pub fn apply_actions(actions: &[AttributeAction], attrs: &mut Vec<KeyValue>) {
    for a in actions {
        let pos = attrs.iter().position(|kv| kv.key == a.key);
        if a.kind == ActionKind::Delete {
            attrs.retain(|kv| kv.key != a.key);
            continue;
        }
        let value = match &a.value {
            ValueSource::Literal(v) => Some(v.clone()),
            ValueSource::FromAttribute(from) => attrs
                .iter()
                .find(|kv| &kv.key == from)
                .and_then(|kv| kv.value.clone()),
            ValueSource::None => None,
        };
        let Some(value) = value else { continue };
        match (a.kind, pos) {
            (ActionKind::Insert, None) | (ActionKind::Upsert, None) => attrs.push(KeyValue {
                key: a.key.clone(),
                value: Some(value),
                ..Default::default()
            }),
            (ActionKind::Update, Some(i)) | (ActionKind::Upsert, Some(i)) => {
                attrs[i].value = Some(value)
            }
            _ => {}
        }
    }
}

/// Applies actions to every resource's attributes (`resource` processor).
pub fn apply_to_resources(actions: &[AttributeAction], data: &mut Decoded) {
    let apply = |r: &mut Option<opentelemetry_proto::tonic::resource::v1::Resource>| {
        apply_actions(
            actions,
            &mut r.get_or_insert_with(Default::default).attributes,
        )
    };
    match data {
        Decoded::Logs(r) => r
            .resource_logs
            .iter_mut()
            .for_each(|x| apply(&mut x.resource)),
        Decoded::Traces(r) => r
            .resource_spans
            .iter_mut()
            .for_each(|x| apply(&mut x.resource)),
        Decoded::Metrics(r) => r
            .resource_metrics
            .iter_mut()
            .for_each(|x| apply(&mut x.resource)),
    }
}

/// Applies actions to every log record, span and data point (`attributes` processor).
pub fn apply_to_items(actions: &[AttributeAction], data: &mut Decoded) {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    match data {
        Decoded::Logs(r) => {
            for rec in r
                .resource_logs
                .iter_mut()
                .flat_map(|x| &mut x.scope_logs)
                .flat_map(|s| &mut s.log_records)
            {
                apply_actions(actions, &mut rec.attributes);
            }
        }
        Decoded::Traces(r) => {
            for span in r
                .resource_spans
                .iter_mut()
                .flat_map(|x| &mut x.scope_spans)
                .flat_map(|s| &mut s.spans)
            {
                apply_actions(actions, &mut span.attributes);
            }
        }
        Decoded::Metrics(r) => {
            for m in r
                .resource_metrics
                .iter_mut()
                .flat_map(|x| &mut x.scope_metrics)
                .flat_map(|s| &mut s.metrics)
            {
                match &mut m.data {
                    Some(Data::Gauge(g)) => g
                        .data_points
                        .iter_mut()
                        .for_each(|p| apply_actions(actions, &mut p.attributes)),
                    Some(Data::Sum(g)) => g
                        .data_points
                        .iter_mut()
                        .for_each(|p| apply_actions(actions, &mut p.attributes)),
                    Some(Data::Histogram(g)) => g
                        .data_points
                        .iter_mut()
                        .for_each(|p| apply_actions(actions, &mut p.attributes)),
                    Some(Data::ExponentialHistogram(g)) => g
                        .data_points
                        .iter_mut()
                        .for_each(|p| apply_actions(actions, &mut p.attributes)),
                    Some(Data::Summary(g)) => g
                        .data_points
                        .iter_mut()
                        .for_each(|p| apply_actions(actions, &mut p.attributes)),
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Value::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }
    fn lit(v: &str) -> ValueSource {
        ValueSource::Literal(AnyValue {
            value: Some(Value::StringValue(v.into())),
        })
    }
    fn action(key: &str, kind: ActionKind, value: ValueSource) -> AttributeAction {
        AttributeAction {
            key: key.into(),
            kind,
            value,
        }
    }

    /// Scenario: each action kind against a present and an absent key.
    /// Guarantees: otelcol's semantics: insert never overwrites, update never creates.
    #[test]
    fn actions_follow_otelcol_semantics() {
        let mut attrs = vec![kv("a", "1"), kv("b", "2")];
        apply_actions(
            &[
                action("a", ActionKind::Insert, lit("x")),
                action("c", ActionKind::Insert, lit("3")),
                action("b", ActionKind::Update, lit("20")),
                action("d", ActionKind::Update, lit("nope")),
                action(
                    "e",
                    ActionKind::Upsert,
                    ValueSource::FromAttribute("a".into()),
                ),
                action("a", ActionKind::Delete, ValueSource::None),
            ],
            &mut attrs,
        );
        assert_eq!(attrs, vec![kv("b", "20"), kv("c", "3"), kv("e", "1")]);
    }
}
