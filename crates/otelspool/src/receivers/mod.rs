//! Receivers: where data enters. Only `otlp` (gRPC and HTTP) for now, with the server-side
//! security any receiver may use: `tls` (TLS and mTLS) and `auth` (`bearertokenauth`).

pub mod auth;
pub mod otlp;
pub mod tls;
