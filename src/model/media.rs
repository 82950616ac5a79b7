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
/// MP4 or 3GPP up to 16 MB, audio AAC, AMR, MP3, M4A or OGG (Opus) up to 16 MB, documents (PDF,
/// text, Word, Excel, PowerPoint) up to 100 MB. WhatsApp takes no other type, and a file over
/// its type's limit not at all: an image too large for an image is no document either.
pub fn whatsapp(file: &AttachmentRef) -> Carry {
    let (kind, limit, limit_mb) = match file.mime.as_str() {
        "image/jpeg" | "image/png" => (Some("image"), 5 * MB, 5),
        "video/mp4" | "video/3gpp" => (Some("video"), 16 * MB, 16),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/x-m4a" | "audio/ogg" => {
            (Some("audio"), 16 * MB, 16)
        }
        "application/pdf"
        | "text/plain"
        | "application/msword"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.ms-excel"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            (None, 100 * MB, 100)
        }
        other => {
            return Carry::Cannot(format!("WhatsApp takes no {other} files ({}).", file.name));
        }
    };
    match kind {
        _ if file.size > limit => Carry::Cannot(format!(
            "{} is larger than the {limit_mb} MB WhatsApp takes for this type.",
            file.name
        )),
        Some(kind) => Carry::Native(kind),
        None => Carry::Document,
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

/// The size of one email carrying `files`: each file in base64 (76 characters and a line
/// break for every 57 bytes), plus room for the headers, the text and the HTML body.
pub fn email_size(files: &[AttachmentRef], body_bytes: u64) -> u64 {
    let files: u64 = files.iter().map(|f| f.size.div_ceil(57) * 78 + 512).sum();
    files + 3 * body_bytes + 16 * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_its_files_in_base64_and_its_bodies() {
        let ten = vec![file("application/pdf", 20.0); 10];
        let size = email_size(&ten, 1000);
        // herald-bench media measured 143.5 GB through SMTP for 500 of these: 287 MB each.
        let exact = 10 * (20 * MB).div_ceil(57) * 78;
        assert!(size > exact && size < exact + 64 * 1024, "{size}");
        assert_eq!(size / 1_000_000, 287, "{size}");
        assert!(email_size(&[], 1000) < 32 * 1024);
    }

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
        assert!(matches!(
            whatsapp(&file("image/png", 5.1)),
            Carry::Cannot(_)
        ));
        assert!(matches!(
            whatsapp(&file("image/gif", 1.0)),
            Carry::Cannot(_)
        ));
        assert!(matches!(
            whatsapp(&file("application/zip", 1.0)),
            Carry::Cannot(_)
        ));
        assert_eq!(whatsapp(&file("text/plain", 1.0)), Carry::Document);
        assert_eq!(whatsapp(&file("video/mp4", 16.0)), Carry::Native("video"));
        assert!(matches!(
            whatsapp(&file("video/mp4", 17.0)),
            Carry::Cannot(_)
        ));
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
