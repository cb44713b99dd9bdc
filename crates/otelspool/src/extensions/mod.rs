//! Extensions: `health_check` (served here) and `file_storage` (a data folder handed to the
//! queues; see `app`).

pub mod health_check;
