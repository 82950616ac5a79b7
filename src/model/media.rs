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

const MB: u64 = 1024 * 1024;

/// How a provider carries one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carry {
    /// As its own kind of message (`image`, `video`, `audio`, `photo`, …).
    Native(&'static str),
    /// As a document: the provider does not show this type (or this size) natively.
    Document,
    /// Not at all: the reason, in plain words.
    Cannot(String),
}

/// WhatsApp's rules (Cloud API "Supported media types"): images JPEG or PNG up to 5 MB, video
/// MP4 or 3GPP up to 16 MB, audio AAC, AMR, MP3, M4A or OGG (Opus) up to 16 MB; anything else,
/// or larger, as a document up to 100 MB.
pub fn whatsapp(file: &AttachmentRef) -> Carry {
    let native = match file.mime.as_str() {
        "image/jpeg" | "image/png" => Some(("image", 5 * MB)),
        "video/mp4" | "video/3gpp" => Some(("video", 16 * MB)),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/x-m4a" | "audio/ogg" => {
            Some(("audio", 16 * MB))
        }
        _ => None,
    };
    match native {
        Some((kind, limit)) if file.size <= limit => Carry::Native(kind),
        _ if file.size <= 100 * MB => Carry::Document,
        _ => Carry::Cannot(format!(
            "{} is larger than the 100 MB WhatsApp takes.",
            file.name
        )),
    }
}

/// Telegram's rules (Bot API): photos JPEG or PNG up to 10 MB; GIF animations, MP4 video,
/// MP3/M4A audio and OGG voice as their own kinds; every file a bot uploads at most 50 MB,
/// anything else as a document.
pub fn telegram(file: &AttachmentRef) -> Carry {
    if file.size > 50 * MB {
        return Carry::Cannot(format!(
            "{} is larger than the 50 MB a Telegram bot may send.",
            file.name
        ));
    }
    match file.mime.as_str() {
        "image/png" | "image/jpeg" if file.size <= 10 * MB => Carry::Native("photo"),
        "image/gif" => Carry::Native("animation"),
        "video/mp4" => Carry::Native("video"),
        "audio/mpeg" | "audio/mp4" | "audio/x-m4a" => Carry::Native("audio"),
        "audio/ogg" => Carry::Native("voice"),
        _ => Carry::Document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(mime: &str, mb: f64) -> AttachmentRef {
        AttachmentRef {
            id: "x".into(),
            name: "f".into(),
            mime: mime.into(),
            size: (mb * MB as f64) as u64,
        }
    }

    #[test]
    fn each_provider_s_types_and_sizes() {
        assert_eq!(whatsapp(&file("image/png", 4.9)), Carry::Native("image"));
        assert_eq!(whatsapp(&file("image/png", 5.1)), Carry::Document);
        assert_eq!(whatsapp(&file("image/gif", 1.0)), Carry::Document);
        assert_eq!(whatsapp(&file("video/mp4", 16.0)), Carry::Native("video"));
        assert_eq!(whatsapp(&file("video/mp4", 17.0)), Carry::Document);
        assert_eq!(whatsapp(&file("audio/ogg", 2.0)), Carry::Native("audio"));
        assert_eq!(whatsapp(&file("application/pdf", 99.0)), Carry::Document);
        assert!(matches!(
            whatsapp(&file("application/pdf", 101.0)),
            Carry::Cannot(_)
        ));
        assert_eq!(telegram(&file("image/jpeg", 9.0)), Carry::Native("photo"));
        assert_eq!(telegram(&file("image/jpeg", 11.0)), Carry::Document);
        assert_eq!(telegram(&file("audio/ogg", 1.0)), Carry::Native("voice"));
        assert_eq!(telegram(&file("application/zip", 49.0)), Carry::Document);
        assert!(matches!(
            telegram(&file("video/mp4", 51.0)),
            Carry::Cannot(_)
        ));
    }
}
