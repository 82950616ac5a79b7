//! A bound on the live streams one person keeps open (tabs, and pages just left whose stream
//! the server has not seen close yet): the chat's and the live pages' each have one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::model::UserId;

/// Open streams per person, at most `max` each.
pub struct StreamSlots {
    max: usize,
    open: Arc<Mutex<HashMap<UserId, usize>>>,
}

/// One open stream of a person; counted until dropped.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<UserId, usize>>>,
    user: UserId,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.open.lock()
            && let Some(n) = open.get_mut(&self.user)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl StreamSlots {
    pub fn new(max: usize) -> StreamSlots {
        StreamSlots {
            max,
            open: Default::default(),
        }
    }

    /// A slot for one more stream of `user`, unless they have `max` open.
    pub fn open(&self, user: UserId) -> Option<StreamSlot> {
        let mut open = self.open.lock().ok()?;
        let n = open.entry(user).or_default();
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(StreamSlot {
            open: self.open.clone(),
            user,
        })
    }
}
