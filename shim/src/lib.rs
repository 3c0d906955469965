//! `latch shim`.
