//! A value decided once by one thread and waited for by others.
use std::sync::{Condvar, Mutex};

/// Set once ([`Decision::decide`]; the first decision stands) and waited for
/// ([`Decision::wait`]) by any number of threads.
pub(crate) struct Decision<T> {
    decided: Mutex<Option<T>>,
    changed: Condvar,
}

impl<T> Default for Decision<T> {
    fn default() -> Self {
        Self { decided: Mutex::new(None), changed: Condvar::new() }
    }
}

impl<T: Clone> Decision<T> {
    /// The first decision stands; later ones are ignored.
    pub(crate) fn decide(&self, value: T) {
        let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        if decided.is_none() {
            *decided = Some(value);
            self.changed.notify_all();
        }
    }

    /// The decision, once made.
    pub(crate) fn wait(&self) -> T {
        let mut decided = self.decided.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(value) = decided.as_ref() {
                return value.clone();
            }
            decided = self.changed.wait(decided).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn the_first_decision_stands_for_every_waiter() {
        let decision = Arc::new(Decision::<u32>::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let decision = decision.clone();
                std::thread::spawn(move || decision.wait())
            })
            .collect();
        decision.decide(7);
        decision.decide(8);
        for waiter in waiters {
            assert_eq!(waiter.join().ok(), Some(7));
        }
        assert_eq!(decision.wait(), 7);
    }
}
