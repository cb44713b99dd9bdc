//! [`ValueDeserializer`]: a serde `Deserializer` over a `serde_json::Value` whose errors are
//! [`DecodeError`]s, so that every problem reaches the decoder as a kind, not as text.
//!
//! It reads a value as `serde_json::Value`'s own deserializer does (numbers as `u64`, then
//! `i64`, then `f64`; strings as enum names), with one otelcol rule built in: `null` read as a
//! struct or a sequence is an empty one, so `tls:` with no value takes its defaults and
//! `processors:` with no value is an empty list. A test checks it against `serde_json` on the
//! shipped configurations.

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserializer, IntoDeserializer, Visitor};
use serde_json::{Map, Value};

use super::error::DecodeError;

/// Deserializes one value; see the module doc.
pub(crate) struct ValueDeserializer(pub(crate) Value);

impl ValueDeserializer {
    fn visit_array<'de, V: Visitor<'de>>(
        items: Vec<Value>,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let mut seq = SeqDeserializer::new(items.into_iter().map(ValueDeserializer));
        let out = visitor.visit_seq(&mut seq)?;
        seq.end()?;
        Ok(out)
    }

    fn visit_object<'de, V: Visitor<'de>>(
        entries: Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        let mut map =
            MapDeserializer::new(entries.into_iter().map(|(k, v)| (k, ValueDeserializer(v))));
        let out = visitor.visit_map(&mut map)?;
        map.end()?;
        Ok(out)
    }
}

impl<'de> IntoDeserializer<'de, DecodeError> for ValueDeserializer {
    type Deserializer = Self;

    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for ValueDeserializer {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => Self::visit_array(items, visitor),
            Value::Object(entries) => Self::visit_object(entries, visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            // otelcol: an empty key (`tls:`) means "all defaults".
            Value::Null => Self::visit_object(Map::new(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            // otelcol: an empty list key (`processors:`) is an empty list.
            Value::Null => Self::visit_array(Vec::new(), visitor),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct tuple tuple_struct map identifier
    }
}

/// Deserializes `T` from `value`, with the key path of the first problem.
pub(crate) fn from_value<T: de::DeserializeOwned>(
    value: Value,
) -> Result<T, serde_path_to_error::Error<DecodeError>> {
    serde_path_to_error::deserialize(ValueDeserializer(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BatchConfig, OtlpExporterConfig, OtlpReceiverConfig, ServiceConfig};

    /// Scenario: the shipped configurations' components, read by this deserializer and by
    /// `serde_json::Value`'s own.
    /// Guarantees: both give the same typed value, so replacing the deserializer changed what
    /// errors look like, not what a valid config means.
    #[test]
    fn reads_like_serde_json() {
        let (root, _) = crate::yaml::parse(crate::DEFAULT_CONFIG_YAML, &[]).expect("parses");
        let service = root["service"].clone();
        assert_eq!(
            from_value::<ServiceConfig>(service.clone()).expect("ours"),
            serde_json::from_value::<ServiceConfig>(service).expect("serde_json")
        );
        let otlp = root["receivers"]["otlp"].clone();
        assert_eq!(
            from_value::<OtlpReceiverConfig>(otlp.clone()).expect("ours"),
            serde_json::from_value::<OtlpReceiverConfig>(otlp).expect("serde_json")
        );
        let exporter = serde_json::json!({
            "endpoint": "https://b:4317", "headers": {"a": "x", "n": 42},
            "compression": "none", "timeout": "1m30s",
            "tls": {"insecure": true}, "sending_queue": {"queue_size": 10, "when_full": "drop_oldest"},
            "retry_on_failure": {"multiplier": 2, "max_elapsed_time": 0}
        });
        assert_eq!(
            from_value::<OtlpExporterConfig>(exporter.clone()).expect("ours"),
            serde_json::from_value::<OtlpExporterConfig>(exporter).expect("serde_json")
        );
        let batch = serde_json::json!({"send_batch_size": 5, "timeout": "1s"});
        assert_eq!(
            from_value::<BatchConfig>(batch.clone()).expect("ours"),
            serde_json::from_value::<BatchConfig>(batch).expect("serde_json")
        );
    }

    /// Scenario: `null` where a struct or a list is expected, and where a string is.
    /// Guarantees: a struct or list takes its empty form; a string is an `InvalidType` error
    /// carrying `null` (the kind, not a message to parse).
    #[test]
    fn null_is_empty_for_structs_and_lists_only() {
        let v = serde_json::json!({"tls": null, "sending_queue": null, "endpoint": "a:1"});
        let c: OtlpExporterConfig = from_value(v).expect("defaults");
        assert_eq!(c.tls, Default::default());
        let s: ServiceConfig = from_value(serde_json::json!({"extensions": null})).expect("[]");
        assert!(s.extensions.is_empty());
        let e = from_value::<OtlpExporterConfig>(serde_json::json!({"endpoint": null}))
            .expect_err("endpoint must be a string");
        assert_eq!(e.path().to_string(), "endpoint");
        assert!(
            matches!(
                e.inner(),
                DecodeError::InvalidType {
                    got: super::super::error::Got::Null,
                    ..
                }
            ),
            "{:?}",
            e.inner()
        );
    }
}
