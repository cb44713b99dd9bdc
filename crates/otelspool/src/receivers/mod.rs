//! Receivers: where data enters. Only `otlp` (gRPC and HTTP) for now.

pub mod otlp;
