//! Durable queue (stub).
