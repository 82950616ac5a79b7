//! Email over SMTP (lettre): a `multipart/mixed` message holding a `multipart/alternative`
//! text + HTML body and each attachment as its own MIME part, with `List-Unsubscribe` (a link
//! and a mailto) and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
//!
//! SMTP keeps no idempotency keys: the delivery's key becomes the `Message-ID`
//! (`<herald-delivery-42@example.com>`), which receiving systems use to drop a resend, and it
//! is also the provider message id Herald records. Plain SMTP reports neither delivery nor
//! reads; 4xx answers and lost connections are retried, 5xx answers fail the delivery, and
//! "no such mailbox" answers (550/551/553) mark the address unreachable.

use std::time::Duration;

use futures::future::BoxFuture;
use lettre::message::header::ContentTransferEncoding;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{Accepted, Channel, Outgoing, SendError, codes};
use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub smtp_host: String,
    /// A number, possibly stored as text by the channels page (default 587).
    pub smtp_port: serde_json::Value,
    /// `starttls` (default), `tls` (implicit TLS, port 465) or `none` (a relay on this host).
    pub security: String,
    pub username: String,
    pub password: String,
    /// `News <news@example.com>` or a bare address.
    pub from: String,
    /// Seconds to wait for the server (default 30).
    pub timeout_secs: Option<u64>,
    /// The largest message the server takes, in MB (a number, possibly stored as text; default
    /// [`DEFAULT_MAX_MESSAGE_MB`]).
    pub max_message_mb: serde_json::Value,
}

/// What most mail services take (Gmail and Outlook refuse larger messages).
pub const DEFAULT_MAX_MESSAGE_MB: u64 = 25;

impl Settings {
    /// The largest message the server takes, in bytes.
    pub fn max_message_bytes(&self) -> u64 {
        let mb = match &self.max_message_mb {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        mb.filter(|mb| *mb > 0).unwrap_or(DEFAULT_MAX_MESSAGE_MB) * 1024 * 1024
    }

    fn port(&self) -> u16 {
        match &self.smtp_port {
            serde_json::Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(587)
    }
}

pub struct Email {
    settings: Settings,
    /// Built on the first send and kept: its pool keeps SMTP connections open between sends.
    transport: tokio::sync::OnceCell<AsyncSmtpTransport<Tokio1Executor>>,
    /// Connect only to a public address the host name resolves to (see `channels::endpoint`).
    public_only: bool,
    files: crate::server::files::Files,
}

impl Email {
    /// An email channel that connects wherever its host is (tests and the local fakes).
    pub fn new(settings: Settings, files: crate::server::files::Files) -> Self {
        Email {
            settings,
            transport: tokio::sync::OnceCell::new(),
            public_only: false,
            files,
        }
    }

    /// The same channel, connecting only to public addresses: the host's name is resolved
    /// once, private answers are dropped, and the connection goes to the address found (so a
    /// name cannot resolve to a public address for the check and a private one for the
    /// connection), with TLS still verifying the host's name.
    pub fn public_only(mut self, public_only: bool) -> Self {
        self.public_only = public_only;
        self
    }

    async fn connect(&self) -> Result<AsyncSmtpTransport<Tokio1Executor>, SendError> {
        let permanent = |reason: String| SendError::Permanent { reason };
        let host = self.settings.smtp_host.trim();
        if host.is_empty() {
            return Err(permanent("The email channel has no SMTP host.".into()));
        }
        let connect_to = if self.public_only {
            let found = super::endpoint::public_addresses(host)
                .await
                .map_err(|e| match e {
                    super::endpoint::Unresolved::Lookup(reason) => SendError::Transient {
                        reason,
                        retry_after: None,
                    },
                    super::endpoint::Unresolved::NotPublic(reason) => permanent(reason),
                })?;
            found[0].ip().to_string()
        } else {
            host.to_string()
        };
        transport(&self.settings, &connect_to).map_err(permanent)
    }
}

/// The SMTP transport for `s`, connecting to `connect_to` (the host, or an address it
/// resolved to) and verifying TLS against the host's name.
fn transport(s: &Settings, connect_to: &str) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    let host = s.smtp_host.trim();
    let tls = || {
        TlsParameters::new(host.to_string())
            .map_err(|e| format!("The SMTP host {host:?} cannot be used: {e}"))
    };
    let plain = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(connect_to);
    let builder = match s.security.trim() {
        "none" => plain,
        "tls" => plain.tls(Tls::Wrapper(tls()?)),
        "" | "starttls" => plain.tls(Tls::Required(tls()?)),
        other => {
            return Err(format!(
                "Unknown SMTP security {other:?}: use starttls, tls or none."
            ));
        }
    };
    let mut builder = builder
        .port(s.port())
        .timeout(Some(Duration::from_secs(s.timeout_secs.unwrap_or(30))));
    if !s.username.trim().is_empty() {
        builder = builder.credentials(Credentials::new(
            s.username.trim().to_string(),
            s.password.clone(),
        ));
    }
    Ok(builder.build())
}

/// `List-Unsubscribe: <https://…>, <mailto:…>`
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (mail clients unsubscribe with a POST).
#[derive(Clone)]
struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// The HTML part: the text escaped, paragraphs kept, links made clickable.
pub fn html_body(text: &str, unsubscribe_url: Option<&str>) -> String {
    let mut html = String::from(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body style=\"font-family:sans-serif;line-height:1.5\">",
    );
    for paragraph in text.split("\n\n") {
        html.push_str("<p>");
        let lines: Vec<String> = paragraph.lines().map(link_words).collect();
        html.push_str(&lines.join("<br>"));
        html.push_str("</p>");
    }
    if let Some(url) = unsubscribe_url {
        html.push_str(&format!(
            "<p style=\"font-size:12px;color:#666\"><a href=\"{}\">Unsubscribe</a> from these messages.</p>",
            escape(url)
        ));
    }
    html.push_str("</body></html>");
    html
}

/// The text part: the message, then the unsubscribe link.
pub fn text_body(text: &str, unsubscribe_url: Option<&str>) -> String {
    match unsubscribe_url {
        Some(url) => format!("{text}\n\n--\nUnsubscribe: {url}\n"),
        None => text.to_string(),
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn link_words(line: &str) -> String {
    line.split(' ')
        .map(|w| {
            if (w.starts_with("https://") || w.starts_with("http://")) && w.len() > 8 {
                let url = escape(w);
                format!("<a href=\"{url}\">{url}</a>")
            } else {
                escape(w)
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The domain of the sender's address, for Message-IDs.
fn domain(from: &Mailbox) -> String {
    from.email.domain().to_string()
}

impl Email {
    async fn message(&self, m: &Outgoing) -> Result<(Message, String), SendError> {
        let permanent = |reason: String| SendError::Permanent { reason };
        let from: Mailbox = self.settings.from.trim().parse().map_err(|_| {
            permanent(format!(
                "The email channel's From address {:?} is not an email address.",
                self.settings.from
            ))
        })?;
        let to: Mailbox = m
            .address
            .trim()
            .parse()
            .map_err(|_| permanent(format!("{:?} is not an email address.", m.address)))?;
        let message_id = format!("<{}@{}>", m.idempotency_key, domain(&from));
        let subject = if m.subject.trim().is_empty() {
            "A message for you".to_string()
        } else {
            m.subject.trim().to_string()
        };
        let mut builder = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(message_id.clone()));
        if let Some(url) = &m.unsubscribe_url {
            builder = builder
                .header(ListUnsubscribe(format!(
                    "<{url}>, <mailto:{}?subject=unsubscribe>",
                    from.email
                )))
                .header(ListUnsubscribePost);
        }
        let url = m.unsubscribe_url.as_deref();
        let body =
            MultiPart::alternative_plain_html(text_body(&m.body, url), html_body(&m.body, url));
        let message = if m.attachments.is_empty() {
            builder.multipart(body)
        } else {
            let mut mixed = MultiPart::mixed().multipart(body);
            for (i, file) in m.attachments.iter().enumerate() {
                let there = self
                    .files
                    .size(crate::server::files::ATTACHMENTS, &file.id)
                    .await;
                if !matches!(there, Ok(Some(_))) {
                    return Err(permanent(format!(
                        "The attachment {} is missing.",
                        file.name
                    )));
                }
                let kind = ContentType::parse(&file.mime)
                    .or_else(|_| ContentType::parse("application/octet-stream"))
                    .map_err(|e| permanent(format!("{}: {e}", file.name)))?;
                // A mark where the file's base64 goes (see `with_files`).
                let body = Body::dangerous_pre_encoded(
                    file_mark(i).into_bytes(),
                    ContentTransferEncoding::Base64,
                );
                mixed = mixed.singlepart(Attachment::new(file.name.clone()).body(body, kind));
            }
            builder.multipart(mixed)
        }
        .map_err(|e| permanent(format!("The email could not be built: {e}")))?;
        Ok((message, message_id))
    }

    /// The message as sent: lettre's MIME, each attachment's mark replaced by the file's
    /// base64 (76-character lines, as lettre writes them), encoded from the file a block at a
    /// time, so the message is the only copy of a file in memory.
    async fn with_files(
        &self,
        message: &Message,
        files: &[AttachmentRef],
    ) -> Result<Vec<u8>, SendError> {
        use tokio::io::AsyncReadExt;
        let formatted = message.formatted();
        if files.is_empty() {
            return Ok(formatted);
        }
        let encoded: usize = files
            .iter()
            .map(|f| email_encoding::body::base64::encoded_len(f.size as usize))
            .sum();
        let mut out = Vec::with_capacity(formatted.len() + encoded);
        let mut rest = &formatted[..];
        // A block is a whole number of 57-byte lines, so that blocks join into full lines.
        let mut block = vec![0u8; 57 * 1024];
        let mut text = String::with_capacity(77 * 1024);
        for (i, file) in files.iter().enumerate() {
            let mark = file_mark(i);
            let missing = || SendError::Permanent {
                reason: format!("The attachment {} is missing.", file.name),
            };
            let at = find(rest, mark.as_bytes()).ok_or_else(|| SendError::Permanent {
                reason: "The email could not be built: an attachment's place was not found.".into(),
            })?;
            out.extend_from_slice(&rest[..at]);
            rest = &rest[at + mark.len()..];
            let opened = self
                .files
                .open(crate::server::files::ATTACHMENTS, &file.id)
                .await
                .map_err(|_| missing())?
                .ok_or_else(missing)?;
            let mut handle = tokio_util::io::StreamReader::new(opened.bytes);
            let mut first = true;
            loop {
                // Fill the block (a read may return less), so only the last one is short.
                let mut filled = 0;
                while filled < block.len() {
                    let got = handle
                        .read(&mut block[filled..])
                        .await
                        .map_err(|_| missing())?;
                    if got == 0 {
                        break;
                    }
                    filled += got;
                }
                if filled == 0 {
                    break;
                }
                text.clear();
                email_encoding::body::base64::encode(&block[..filled], &mut text)
                    .map_err(|_| missing())?;
                if !first {
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(text.as_bytes());
                first = false;
                if filled < block.len() {
                    break;
                }
            }
        }
        out.extend_from_slice(rest);
        Ok(out)
    }
}

/// Where attachment `i`'s base64 goes in a formatted message: NUL bytes, which a text part
/// never holds (lettre encodes them), around its number.
fn file_mark(i: usize) -> String {
    format!("\0herald-attachment-{i}\0")
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The first RFC 3463 enhanced status code (`5.1.1`) in an SMTP reply's text.
pub fn enhanced_status(said: &str) -> Option<String> {
    said.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && (1..=3).contains(&parts[1].len())
                && (1..=3).contains(&parts[2].len())
                && parts[1..]
                    .iter()
                    .all(|p| p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

/// What an SMTP failure means for the delivery: its enhanced status code's row in
/// [`codes::SMTP`], else the reply's basic code (550, 551 and 553 make the address
/// unreachable).
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    let said = e.to_string();
    if (e.is_permanent() || e.is_transient())
        && let Some(enhanced) = enhanced_status(&said)
        && let Some(row) = codes::smtp(&enhanced)
    {
        // The reply's codes stay with the table's words; a plain refusal (a policy) also
        // keeps the server's own.
        return row
            .error("Email", None)
            .map_reason(|reason| match row.meaning {
                codes::Meaning::Fail => format!("{reason} The server said: {said}"),
                _ => format!("{reason} (SMTP {code} {enhanced})"),
            });
    }
    if e.is_permanent() {
        let reason = format!("The mail server refused the message ({code}): {e}");
        if matches!(code.as_str(), "550" | "551" | "553") {
            SendError::Unreachable { reason }
        } else {
            SendError::Permanent { reason }
        }
    } else if e.is_transient() {
        SendError::Transient {
            reason: format!("The mail server asked to try later ({code}): {e}"),
            retry_after: None,
        }
    } else if never_connected(e) {
        SendError::Transient {
            reason: format!("The mail server could not be reached: {e}"),
            retry_after: None,
        }
    } else if e.is_timeout() {
        SendError::MaybeSent {
            reason: "The mail server did not answer in time after the message went out; it may have been sent.".into(),
        }
    } else {
        SendError::MaybeSent {
            reason: format!("The mail server's answer was lost ({e}); it may have been sent."),
        }
    }
}

/// Whether the error came before a session was open (no connection, or TLS refused it):
/// nothing of the message can have been sent. Any other failure without a reply (a timeout,
/// a reset) may come after the server took the message's data.
fn never_connected(e: &lettre::transport::smtp::Error) -> bool {
    e.is_tls() || e.to_string().starts_with("Connection error")
}

impl Channel for Email {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    /// SMTP takes the whole message, so the files are encoded into it: each held about
    /// three times over (base64 is a third larger, and lettre escapes the message again for
    /// the wire).
    fn memory(&self, m: &Outgoing) -> u64 {
        m.attachments.iter().map(|a| a.size).sum::<u64>() * 3
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            // Only a transport that could be built is kept: a failed lookup is tried again.
            let transport = self.transport.get_or_try_init(|| self.connect()).await?;
            let (message, message_id) = self.message(m).await?;
            let raw = self.with_files(&message, &m.attachments).await?;
            transport
                .send_raw(message.envelope(), &raw)
                .await
                .map_err(|e| classify(&e))?;
            Ok(Accepted {
                provider_message_id: message_id,
                replayed: false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped_and_links_clickable() {
        let h = html_body(
            "Hi <Ann> & co\nsee https://x.test/a?b=1&c=2\n\nBye",
            Some("https://h/u/1"),
        );
        assert!(
            h.contains("Hi &lt;Ann&gt; &amp; co<br>see <a href=\"https://x.test/a?b=1&amp;c=2\">")
        );
        assert!(h.contains("<p>Bye</p>"));
        assert!(h.contains("<a href=\"https://h/u/1\">Unsubscribe</a>"));
        assert_eq!(text_body("Hi", None), "Hi");
        assert!(text_body("Hi", Some("https://h/u/1")).ends_with("Unsubscribe: https://h/u/1\n"));
    }

    #[test]
    fn ports_may_be_text_or_numbers() {
        let s: Settings = serde_json::from_str(r#"{"smtp_port":"2525"}"#).unwrap();
        assert_eq!(s.port(), 2525);
        let s: Settings = serde_json::from_str(r#"{"smtp_port":465}"#).unwrap();
        assert_eq!(s.port(), 465);
        assert_eq!(Settings::default().port(), 587);
        let bad = Settings {
            smtp_host: "h".into(),
            security: "tls1.0".into(),
            ..Default::default()
        };
        assert!(
            transport(&bad, "h")
                .unwrap_err()
                .contains("starttls, tls or none")
        );
    }

    #[test]
    fn enhanced_status_codes_are_read_from_the_reply() {
        assert_eq!(
            enhanced_status("permanent error (550): 5.1.1 <a@b.test>: no such user").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(
            enhanced_status("transient error (451): 4.7.1 try again later").as_deref(),
            Some("4.7.1")
        );
        assert_eq!(enhanced_status("permanent error (554): rejected"), None);
        assert_eq!(enhanced_status("version 1.2.3.4 of 10.0.0.1"), None);
    }
}
