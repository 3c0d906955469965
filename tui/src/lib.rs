//! The approval console (`latch tui`). A client of the daemon.
