//! The approval lifecycle as a pure state machine: `handle(event) -> effects`.
