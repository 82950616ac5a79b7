//! A customer's conversation as the chat page shows it: messages both ways across channels,
//! with each broadcast message where it was sent.

use serde::{Deserialize, Serialize};

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `m<id>` for a stored message, `d<id>` for a broadcast delivery (unique on the page).
    pub key: String,
    /// The stored message's id (what live updates continue from); 0 for deliveries.
    pub message_id: i64,
    pub inbound: bool,
    pub body: String,
    pub channel: String,
    /// When, in the viewer's time zone.
    pub at: String,
    /// The broadcast it was (or answers), with its id.
    pub broadcast: Option<(i64, String)>,
    /// Who on the staff wrote it (replies and test sends).
    pub staff: Option<String>,
    /// A broadcast delivery's state ("Delivered", "Failed: …").
    pub status: Option<String>,
    /// Arrived since staff last opened this chat.
    pub unread: bool,
}

/// The chat page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatView {
    pub customer_id: i64,
    pub name: String,
    pub assignee: Option<String>,
    pub assigned_to_me: bool,
    pub messages: Vec<ChatMessage>,
    /// The channel a reply goes out on (the one they last wrote on, else the last that reached
    /// them), or why none can.
    pub reply_channel: Result<String, String>,
    /// Staff and admins reply and take the chat; managers read.
    pub can_reply: bool,
    /// The last stored message's id: live updates start after it.
    pub last_message_id: i64,
    /// Older messages than those shown exist: the first shown message's id (the next page
    /// is the messages before it).
    pub earlier: Option<i64>,
    /// This page ends before that message (an earlier page of the conversation).
    pub before: Option<i64>,
}

/// A sent reply: its key on the page and its line as HTML (all the page needs, so the
/// browser bundle has no message type to decode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatReplied {
    pub key: String,
    pub html: String,
}
