//! The wall clock watched against elapsed time.
//!
//! Grants and pending approvals carry wall-clock times (Unix ms: stored,
//! shown, compared with the wall clock of the next event). A wall clock set
//! backwards would lengthen every grant by the jump. [`JumpWatch`] keeps the
//! difference between the wall clock and `CLOCK_BOOTTIME`; when it changes
//! the wall clock was set, and the approval machine is told to move its
//! times by as much ([`latch_core::approval::Event::ClockJumped`]), so a
//! grant lasts its TTL of elapsed time whatever the wall clock does.
//!
//! `CLOCK_BOOTTIME`, not `CLOCK_MONOTONIC`: both are immune to the clock
//! being set, but only `CLOCK_BOOTTIME` counts the time a laptop spends
//! suspended. A grant of fifteen minutes given before the lid closes for
//! the night must be over in the morning; with `CLOCK_MONOTONIC` it would
//! still have its fifteen minutes (fail open by the length of the sleep).

use std::sync::atomic::{AtomicI64, Ordering};

use crate::now_ms;

/// A drift smaller than this (NTP slewing the clock, the two clocks read a
/// few microseconds apart) is not a jump; it adds up until it is one.
const JUMP_MS: i64 = 1_000;

/// Milliseconds of `CLOCK_BOOTTIME`: elapsed since boot, suspend included,
/// never set.
pub(crate) fn boottime_ms() -> i64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec.saturating_mul(1_000).saturating_add(ts.tv_nsec / 1_000_000)
}

fn offset_now() -> i64 {
    now_ms().saturating_sub(boottime_ms())
}

/// Watches the wall clock for being set.
#[derive(Debug)]
pub(crate) struct JumpWatch {
    /// Wall clock minus `CLOCK_BOOTTIME` when last looked at.
    offset: AtomicI64,
}

impl JumpWatch {
    pub(crate) fn new() -> JumpWatch {
        JumpWatch { offset: AtomicI64::new(offset_now()) }
    }

    /// How far the wall clock was set since the last jump seen (negative:
    /// back), when that is a jump. Call it under the lock of what it
    /// corrects, so that the correction and the new offset go together.
    pub(crate) fn jumped(&self) -> Option<i64> {
        let now = offset_now();
        let by = now.saturating_sub(self.offset.load(Ordering::Relaxed));
        if by.abs() < JUMP_MS {
            return None;
        }
        self.offset.store(now, Ordering::Relaxed);
        Some(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boottime_runs_and_no_jump_is_seen_without_one() {
        let a = boottime_ms();
        assert!(a > 0);
        let w = JumpWatch::new();
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(boottime_ms() >= a + 20);
        assert_eq!(w.jumped(), None);
    }

    #[test]
    fn a_changed_offset_is_a_jump_of_that_size_once() {
        let w = JumpWatch::new();
        w.offset.fetch_add(3_600_000, Ordering::Relaxed); // as if the clock was an hour ahead before
        let by = w.jumped().unwrap();
        assert!((-3_600_100..=-3_599_900).contains(&by), "{by}");
        assert_eq!(w.jumped(), None);
    }
}
