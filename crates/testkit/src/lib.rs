//! Test kit (stub).
