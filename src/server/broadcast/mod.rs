//! A broadcast from the staff's side: composing it in the wizard (with attachments and test
//! sends), scheduling it, the list with its pause toggle, and its results.

pub mod ab;
pub mod approval;
pub mod attachments;
pub mod compose;
pub mod compose_ab;
pub mod cost;
pub mod fit;
pub mod list;
pub mod results;
pub mod retarget;
pub mod test_send;
pub mod waves;
