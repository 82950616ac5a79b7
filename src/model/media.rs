//! Files a broadcast carries, and what each provider takes of them.

use serde::{Deserialize, Serialize};

/// A file the broadcast carries (the file itself is kept by the server under `id`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
}

impl AttachmentRef {
    pub fn is_image(&self) -> bool {
        self.mime.starts_with("image/")
    }
}
