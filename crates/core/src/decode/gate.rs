//! One memory budget shared by the threads of a process that decode at once (the review's
//! workers): each holds a [`Ticket`] for what its file and its decode need, and waits while
//! others hold too much. A ticket larger than the whole budget is let through alone.

use std::sync::{Condvar, Mutex};

/// Bytes held by tickets now.
static HELD: Mutex<u64> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Ticket(u64);

/// Wait until `bytes` fit within `budget` beside what other tickets hold (or no other ticket
/// is held), and take them.
///
/// ```
/// use sameframe_core::decode::gate;
/// let a = gate::enter(60, 100);
/// drop(a); // another thread asking for 60 of 100 would have waited until here
/// let _b = gate::enter(60, 100);
/// ```
pub fn enter(bytes: u64, budget: u64) -> Ticket {
    let bytes = bytes.min(budget);
    let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
    while *held > 0 && *held + bytes > budget {
        held = FREED.wait(held).unwrap_or_else(|p| p.into_inner());
    }
    *held += bytes;
    Ticket(bytes)
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        *held = held.saturating_sub(self.0);
        FREED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn tickets_never_hold_more_than_the_budget_together() {
        static NOW: AtomicU64 = AtomicU64::new(0);
        static PEAK: AtomicU64 = AtomicU64::new(0);
        std::thread::scope(|s| {
            for k in 0..8u64 {
                s.spawn(move || {
                    for _ in 0..20 {
                        let want = 10 + k * 7;
                        let _t = enter(want, 100);
                        let now = NOW.fetch_add(want, Ordering::SeqCst) + want;
                        PEAK.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        NOW.fetch_sub(want, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(PEAK.load(Ordering::SeqCst) <= 100);
    }
}
