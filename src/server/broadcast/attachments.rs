//! Broadcast attachments: which files are accepted (the extension must be allowed AND the
//! content must sniff as that type), where they are kept (a generated name under
//! `<data-dir>/attachments`, outside every served folder), and how they are served back (signed-in
//! people only, with their real type, `nosniff`, and as a download unless they are media).

use crate::model::UserId;

use axum::extract::Multipart;
use axum::http::StatusCode;
use serde::Serialize;

use crate::model::compose::AttachmentRef;
use crate::server::AppState;
use crate::server::db::DbError;
use crate::server::files::{ATTACHMENTS, Files};

/// One kind of file a broadcast may carry.
#[derive(Debug, PartialEq, Eq)]
pub struct AllowedType {
    /// File-name extensions (lower case) that announce this type.
    pub extensions: &'static [&'static str],
    /// What the content must sniff as (the sniffer's extension for it).
    pub sniffed: &'static [&'static str],
    pub mime: &'static str,
    pub max_bytes: u64,
    /// Shown in the page (images, audio, video) rather than downloaded.
    pub inline: bool,
}

const MB: u64 = 1024 * 1024;

/// The most an attachment upload's body may hold: the largest type's limit and room for the
/// multipart framing around it.
pub const MAX_UPLOAD_BYTES: usize = {
    let mut max = 0;
    let mut i = 0;
    while i < ALLOWED.len() {
        if ALLOWED[i].max_bytes > max {
            max = ALLOWED[i].max_bytes;
        }
        i += 1;
    }
    max as usize + 64 * 1024
};

/// The allowed types, with size limits near what the messaging providers take.
pub const ALLOWED: &[AllowedType] = &[
    AllowedType {
        extensions: &["png"],
        sniffed: &["png"],
        mime: "image/png",
        max_bytes: 5 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["jpg", "jpeg"],
        sniffed: &["jpg"],
        mime: "image/jpeg",
        max_bytes: 5 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["gif"],
        sniffed: &["gif"],
        mime: "image/gif",
        max_bytes: 5 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["mp3"],
        sniffed: &["mp3"],
        mime: "audio/mpeg",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["m4a"],
        sniffed: &["m4a"],
        mime: "audio/mp4",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["aac"],
        sniffed: &["aac"],
        mime: "audio/aac",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["ogg"],
        sniffed: &["ogg", "opus"],
        mime: "audio/ogg",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["wav"],
        sniffed: &["wav"],
        mime: "audio/wav",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["mp4"],
        sniffed: &["mp4", "m4v"],
        mime: "video/mp4",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["webm"],
        sniffed: &["webm"],
        mime: "video/webm",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["mov"],
        sniffed: &["mov"],
        mime: "video/quicktime",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["3gp", "3gpp"],
        sniffed: &["3gp"],
        mime: "video/3gpp",
        max_bytes: 16 * MB,
        inline: true,
    },
    AllowedType {
        extensions: &["pdf"],
        sniffed: &["pdf"],
        mime: "application/pdf",
        max_bytes: 20 * MB,
        inline: false,
    },
    AllowedType {
        extensions: &["vcf"],
        sniffed: &["vcf"],
        mime: "text/vcard",
        max_bytes: MB,
        inline: false,
    },
];

/// 3GPP video: an ISO media file whose brand starts with "3g" (the sniffer has no matcher).
fn is_3gpp(buf: &[u8]) -> bool {
    buf.len() > 11 && &buf[4..8] == b"ftyp" && &buf[8..10] == b"3g"
}

/// A vCard: text starting with BEGIN:VCARD (after an optional BOM and blank lines).
fn is_vcard(buf: &[u8]) -> bool {
    let text = buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(buf);
    let start = text
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    text[start..]
        .get(..11)
        .is_some_and(|s| s.eq_ignore_ascii_case(b"BEGIN:VCARD"))
        && !buf.contains(&0)
}

fn sniffer() -> infer::Infer {
    let mut i = infer::Infer::new();
    i.add("video/3gpp", "3gp", is_3gpp);
    i.add("text/vcard", "vcf", is_vcard);
    i
}

/// The file name to show: its last path component, without control characters, at most 120
/// characters. Never used to build a path.
pub fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last.chars().filter(|c| !c.is_control()).take(120).collect();
    let clean = clean.trim().trim_start_matches('.').to_string();
    if clean.is_empty() {
        "attachment".into()
    } else {
        clean
    }
}

/// The allowed type a file name announces, or why it is refused.
pub fn type_for_name(file_name: &str) -> Result<&'static AllowedType, String> {
    let ext = display_name(file_name)
        .rsplit_once('.')
        .map(|(_, e)| e.to_lowercase())
        .unwrap_or_default();
    ALLOWED
        .iter()
        .find(|t| t.extensions.contains(&ext.as_str()))
        .ok_or_else(|| {
            format!(
                "“{}” cannot be attached: allowed are mp3, png, jpg, jpeg, gif, mp4, m4a, webm, pdf, vcf, ogg, 3gpp, wav, mov and aac files.",
                display_name(file_name)
            )
        })
}

/// Checks a whole upload: an allowed extension, content of that very type, within its size.
pub fn check(file_name: &str, head: &[u8], size: u64) -> Result<&'static AllowedType, String> {
    let t = type_for_name(file_name)?;
    let name = display_name(file_name);
    if size > t.max_bytes {
        return Err(format!(
            "“{name}” is {:.1} MB; {} files may be up to {} MB.",
            size as f64 / MB as f64,
            t.extensions[0].to_uppercase(),
            t.max_bytes / MB
        ));
    }
    match sniffer().get(head) {
        Some(found) if t.sniffed.contains(&found.extension()) => Ok(t),
        Some(found) => Err(format!(
            "“{name}” is named like a {} file but its content is {} ({}): it was not attached.",
            t.extensions[0].to_uppercase(),
            found.extension().to_uppercase(),
            found.mime_type()
        )),
        None => Err(format!(
            "“{name}” does not contain {} data: it was not attached.",
            t.extensions[0].to_uppercase()
        )),
    }
}

/// What the page gets back for an accepted upload.
#[derive(Debug, Serialize)]
pub struct Uploaded {
    pub id: String,
    pub name: String,
    pub mime: String,
    pub size: u64,
    pub url: String,
}

/// Stores one multipart file field: streamed to a generated name within its type's limit,
/// checked by content, then recorded. On any refusal nothing is left behind.
pub async fn store(
    state: &AppState,
    user_id: UserId,
    field: axum::extract::multipart::Field<'_>,
) -> Result<AttachmentRef, (StatusCode, String)> {
    let id = crate::server::accounts::auth::new_session_token()[..32].to_string();
    // A refused upload is discarded by `to_store` before it ever becomes a file.
    let (name, t, size) = receive_field(field, &state.files, &id).await?;
    let now = state.clock.now();
    if let Err(e) = state
        .db
        .insert_attachment(&id, &name, t.mime, size, user_id, now)
        .await
    {
        tracing::error!(error = ?e, "storing an attachment's record failed");
        let _ = state.files.remove(ATTACHMENTS, &id).await;
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "The upload could not be stored; please try again.".into(),
        ));
    }
    Ok(AttachmentRef {
        id,
        name,
        mime: t.mime.to_string(),
        size,
    })
}

/// Reads a multipart body up to its `file` field and stores that ([`store`]).
pub async fn receive(
    state: &AppState,
    user_id: UserId,
    multipart: &mut Multipart,
) -> Result<AttachmentRef, (StatusCode, String)> {
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err((StatusCode::BAD_REQUEST, "Choose a file to attach.".into())),
            Err(_) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "The upload was interrupted; please try again.".into(),
                ));
            }
        };
        if field.name() == Some("file") {
            return store(state, user_id, field).await;
        }
    }
}

/// Streams one multipart file field into the store as attachment `id`, within its type's
/// limit, then checks it (a file that fails is removed).
async fn receive_field(
    field: axum::extract::multipart::Field<'_>,
    files: &Files,
    id: &str,
) -> Result<(String, &'static AllowedType, u64), (StatusCode, String)> {
    use crate::server::uploads::{self, Refused};
    let bad = |m: String| (StatusCode::UNSUPPORTED_MEDIA_TYPE, m);
    let raw_name = field.file_name().unwrap_or("").to_string();
    let name = display_name(&raw_name);
    // Refused before reading a byte when the name already rules it out.
    let t = type_for_name(&raw_name).map_err(bad)?;
    // The content is checked once the whole file is in (its type decides from the head and
    // the size together).
    match uploads::to_store(field, files, (ATTACHMENTS, id), t.max_bytes, |_| Ok(())).await {
        Ok(r) => match check(&raw_name, &r.head, r.size) {
            Ok(t) => Ok((name, t, r.size)),
            Err(m) => {
                let _ = files.remove(ATTACHMENTS, id).await;
                Err(bad(m))
            }
        },
        Err(Refused::TooBig { size, head }) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            check(&raw_name, &head, size).err().unwrap_or_default(),
        )),
        Err(Refused::Interrupted) => Err((
            StatusCode::BAD_REQUEST,
            "The upload was interrupted; please try again.".to_string(),
        )),
        Err(Refused::Content(m)) => Err(bad(m)),
        Err(Refused::Storage(e)) => {
            tracing::error!(error = ?e, "writing an attachment failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                "The upload could not be stored; please try again.".to_string(),
            ))
        }
    }
}

/// A stored attachment ready to download: its stored type, how a browser should take it
/// (media inline, other files as downloads, under a plain ASCII name), its size and bytes.
pub struct Download {
    pub mime: String,
    pub disposition: String,
    pub size: u64,
    pub bytes: futures::stream::BoxStream<'static, Result<bytes::Bytes, std::io::Error>>,
}

/// Attachment `id` opened for download; `None` when no stored file has that id.
pub async fn open(state: &AppState, id: &str) -> Result<Option<Download>, DbError> {
    // Ids are generated hex; anything else cannot name a stored file.
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let Some(record) = state.db.attachment(id).await? else {
        return Ok(None);
    };
    let Ok(Some(file)) = state.files.open(ATTACHMENTS, id).await else {
        return Ok(None);
    };
    let inline = ALLOWED.iter().any(|t| t.mime == record.mime && t.inline);
    let ascii: String = record
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{ascii}\"",
        if inline { "inline" } else { "attachment" }
    );
    Ok(Some(Download {
        mime: record.mime,
        disposition,
        size: file.size,
        bytes: file.bytes,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a real file of each allowed type.
    pub fn samples() -> Vec<(&'static str, Vec<u8>)> {
        let ftyp = |brand: &[u8]| {
            let mut v = vec![0, 0, 0, 0x18];
            v.extend_from_slice(b"ftyp");
            v.extend_from_slice(brand);
            v.extend_from_slice(&[0; 12]);
            v
        };
        vec![
            ("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec()),
            ("photo.jpg", b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01".to_vec()),
            ("photo.JPEG", b"\xFF\xD8\xFF\xE1\0\x10Exif\0\0".to_vec()),
            ("anim.gif", b"GIF89a\x01\0\x01\0\0\0\0".to_vec()),
            ("song.mp3", b"ID3\x04\0\0\0\0\0\0".to_vec()),
            ("voice.m4a", ftyp(b"M4A ")),
            ("voice.aac", b"\xFF\xF1\x50\x80\x02\x1F\xFC".to_vec()),
            ("voice.ogg", b"OggS\0\x02\0\0\0\0\0\0\0\0".to_vec()),
            ("sound.wav", b"RIFF\x24\0\0\0WAVEfmt ".to_vec()),
            ("clip.mp4", ftyp(b"isom")),
            ("clip.webm", b"\x1A\x45\xDF\xA3\x9F\x42\x86\x81\x01\x42\xF7\x81\x01\x42\xF2\x81\x04\x42\xF3\x81\x08\x42\x82\x84webm".to_vec()),
            ("clip.mov", ftyp(b"qt  ")),
            ("clip.3gp", ftyp(b"3gp5")),
            ("menu.pdf", b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec()),
            ("card.vcf", b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ada\r\nEND:VCARD\r\n".to_vec()),
        ]
    }

    #[test]
    fn every_allowed_type_is_accepted_by_content() {
        for (name, bytes) in samples() {
            let t =
                check(name, &bytes, bytes.len() as u64).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                t.extensions
                    .iter()
                    .any(|e| name.to_lowercase().ends_with(e)),
                "{name}"
            );
        }
        // Every allowed type has a sample.
        for t in ALLOWED {
            assert!(
                samples()
                    .iter()
                    .any(|(n, _)| t.extensions.iter().any(|e| n.to_lowercase().ends_with(e))),
                "{:?}",
                t.extensions
            );
        }
    }

    #[test]
    fn disguised_oversize_and_unlisted_files_are_refused() {
        let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
        let e = check("cat.png", exe, exe.len() as u64).unwrap_err();
        assert!(e.contains("its content is EXE"), "{e}");
        let png = &samples()[0].1;
        let e = check("menu.pdf", png, png.len() as u64).unwrap_err();
        assert!(e.contains("named like a PDF") && e.contains("PNG"), "{e}");
        let e = check("photo.png", png, 6 * MB).unwrap_err();
        assert!(e.contains("up to 5 MB"), "{e}");
        assert!(
            check("notes.txt", b"hello", 5)
                .unwrap_err()
                .contains("cannot be attached")
        );
        assert!(check("setup.exe", exe, 16).is_err());
        assert!(
            check("card.vcf", b"hello", 5)
                .unwrap_err()
                .contains("does not contain")
        );
    }

    #[test]
    fn file_names_are_only_shown_never_used_as_paths() {
        assert_eq!(display_name("../../etc/passwd.png"), "passwd.png");
        assert_eq!(display_name("C:\\Users\\x\\..\\photo.jpg"), "photo.jpg");
        assert_eq!(display_name(".."), "attachment");
        assert_eq!(display_name("a\u{0}b\n.png"), "ab.png");
        assert_eq!(display_name(""), "attachment");
    }
}
