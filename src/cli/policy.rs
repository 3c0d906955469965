//! `latch policy check|explain|test`.
