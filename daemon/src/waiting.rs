//! What calls that wait for a person will count if they are approved,
//! kept per call id up to a bound: beyond it the call that began waiting
//! longest ago is forgotten first (its approval then counts nothing).

use std::collections::{HashMap, VecDeque};

/// Values by call id, in the order the calls began waiting, at most `MAX`.
pub(crate) struct Waiting<V, const MAX: usize> {
    by_id: HashMap<String, V>,
    order: VecDeque<String>,
}

impl<V, const MAX: usize> Default for Waiting<V, MAX> {
    fn default() -> Self {
        Waiting { by_id: HashMap::new(), order: VecDeque::new() }
    }
}

impl<V, const MAX: usize> Waiting<V, MAX> {
    /// Remembers `value` for `call_id`, replacing what it had (the call
    /// then counts as waiting from now), forgetting the oldest when full.
    pub(crate) fn insert(&mut self, call_id: &str, value: V) {
        if self.by_id.remove(call_id).is_some() {
            self.order.retain(|c| c != call_id);
        }
        while self.by_id.len() >= MAX.max(1) {
            match self.order.pop_front() {
                Some(old) => {
                    self.by_id.remove(&old);
                }
                None => break,
            }
        }
        self.by_id.insert(call_id.to_owned(), value);
        self.order.push_back(call_id.to_owned());
    }

    /// Takes what `call_id` would count, if it still waits.
    pub(crate) fn remove(&mut self, call_id: &str) -> Option<V> {
        let value = self.by_id.remove(call_id)?;
        self.order.retain(|c| c != call_id);
        Some(value)
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.by_id.values_mut()
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Waiting;

    #[test]
    fn the_oldest_is_forgotten_beyond_the_bound() {
        let mut w: Waiting<u32, 3> = Waiting::default();
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            w.insert(id, i as u32);
        }
        assert_eq!(w.len(), 3);
        assert_eq!(w.remove("a"), None);
        assert_eq!(w.remove("d"), Some(3));
    }

    #[test]
    fn waiting_again_moves_a_call_to_the_back_without_a_stale_entry() {
        // Before this type, a call id inserted twice stood twice in the
        // order, and forgetting its stale place forgot the live value.
        let mut w: Waiting<u32, 2> = Waiting::default();
        w.insert("a", 1);
        w.insert("b", 2);
        w.insert("a", 3);
        w.insert("c", 4);
        assert_eq!(w.remove("b"), None, "b began waiting longest ago");
        assert_eq!(w.remove("a"), Some(3));
        assert_eq!(w.remove("c"), Some(4));
        assert_eq!(w.len(), 0);
    }
}
