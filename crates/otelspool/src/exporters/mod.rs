//! Exporters: send queued OTLP payloads to a backend and say whether a failure may be retried.
