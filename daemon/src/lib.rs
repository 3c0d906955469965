//! `latch daemon`.
