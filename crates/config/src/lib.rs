//! Config (stub).
