//! The email adapter against a real SMTP server (mailin-embedded, in this process): the
//! message as it arrives, parsed as a mail client would, and the server's refusals.

use std::sync::{Arc, Mutex};

use herald::model::compose::AttachmentRef;
use herald::server::channels::email::{Email, Settings};
use herald::server::channels::{Channel, Outgoing, SendError};
use mail_parser::{MessageParser, MimeHeaders};
use mailin_embedded::response::{INTERNAL_ERROR, NO_MAILBOX, OK};
use mailin_embedded::{Handler, Response, Server, SslConfig};

/// (envelope from, envelope to, the raw message) of each accepted mail.
type Inbox = Arc<Mutex<Vec<(String, Vec<String>, Vec<u8>)>>>;

#[derive(Clone)]
struct Mailbox {
    inbox: Inbox,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Mailbox {
    fn rcpt(&mut self, to: &str) -> Response {
        if to.starts_with("gone@") {
            NO_MAILBOX
        } else if to.starts_with("later@") {
            INTERNAL_ERROR
        } else {
            OK
        }
    }

    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_string();
        self.to = to.to_vec();
        self.data.clear();
        OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        self.inbox.lock().unwrap().push((
            self.from.clone(),
            self.to.clone(),
            std::mem::take(&mut self.data),
        ));
        OK
    }
}

/// A real SMTP server on a free port of this host, and what it has received.
fn smtp_server() -> (u16, Inbox) {
    let inbox: Inbox = Default::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::new(Mailbox {
        inbox: inbox.clone(),
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
    });
    server
        .with_name("mx.herald.test")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, inbox)
}

fn settings(port: u16) -> Settings {
    Settings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: serde_json::json!(port.to_string()),
        security: "none".into(),
        from: "Herald News <news@herald.test>".into(),
        timeout_secs: Some(5),
        ..Default::default()
    }
}

fn out(to: &str, attachments: Vec<AttachmentRef>) -> Outgoing {
    Outgoing {
        parts: Default::default(),
        idempotency_key: "herald-delivery-42".into(),
        address: to.into(),
        body:
            "Hi Ann 🌷\nOur spring menu is out: https://shop.test/menu?a=1&b=2\n\nSee you <soon>!"
                .into(),
        attachments,
        subject: "Spring menu".into(),
        unsubscribe_url: Some("https://herald.test/unsubscribe/7-email-abc".into()),
        template: None,
    }
}

const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

/// Files are encoded into the message from disk a block at a time: one larger than several
/// blocks (and not a whole number of lines) arrives byte for byte, its base64 in lines of 76
/// characters as MIME wants, and an empty file arrives empty.
#[tokio::test]
async fn large_files_are_encoded_block_by_block_and_arrive_whole() {
    let (port, inbox) = smtp_server();
    let files = tempfile::tempdir().unwrap();
    let mut big = b"%PDF-1.7\n".to_vec();
    let mut x: u32 = 7;
    while big.len() < 200_003 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        big.push((x >> 16) as u8);
    }
    std::fs::write(files.path().join("b".repeat(32)), &big).unwrap();
    std::fs::write(files.path().join("e".repeat(32)), b"").unwrap();
    let email = Email::new(
        settings(port),
        herald::server::files::Files::in_folder(files.path()),
    );
    let attachments = vec![
        AttachmentRef {
            id: "b".repeat(32),
            name: "catalogue.pdf".into(),
            mime: "application/pdf".into(),
            size: big.len() as u64,
        },
        AttachmentRef {
            id: "e".repeat(32),
            name: "empty.txt".into(),
            mime: "text/plain".into(),
            size: 0,
        },
    ];
    email
        .send(&out("ann@example.com", attachments))
        .await
        .unwrap();
    let got = inbox.lock().unwrap().clone();
    let raw = &got[0].2;
    let m = MessageParser::default().parse(raw).unwrap();
    let parts: Vec<_> = m.attachments().collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].attachment_name(), Some("catalogue.pdf"));
    assert!(
        parts[0].contents() == big.as_slice(),
        "the file arrives whole"
    );
    assert_eq!(parts[1].contents(), b"");
    let text = String::from_utf8_lossy(raw);
    assert!(!text.contains('\0'), "no mark is left in the message");
    let longest = text.split("\r\n").map(str::len).max().unwrap();
    assert!(longest <= 998, "no line over SMTP's limit ({longest})");
    let base64_lines = text
        .split("\r\n")
        .filter(|l| l.len() == 76 && !l.contains(' '))
        .count();
    assert!(
        base64_lines >= big.len() / 57 - 1,
        "{base64_lines} full lines"
    );
}

#[tokio::test]
async fn a_message_arrives_with_both_bodies_its_files_and_the_unsubscribe_headers() {
    let (port, inbox) = smtp_server();
    let files = tempfile::tempdir().unwrap();
    std::fs::write(files.path().join("p".repeat(32)), PNG).unwrap();
    std::fs::write(files.path().join("d".repeat(32)), b"%PDF-1.7\nmenu\n").unwrap();
    let email = Email::new(
        settings(port),
        herald::server::files::Files::in_folder(files.path()),
    );
    let attachments = vec![
        AttachmentRef {
            id: "p".repeat(32),
            name: "photo.png".into(),
            mime: "image/png".into(),
            size: PNG.len() as u64,
        },
        AttachmentRef {
            id: "d".repeat(32),
            name: "menu.pdf".into(),
            mime: "application/pdf".into(),
            size: 14,
        },
    ];
    let accepted = email
        .send(&out("ann@example.com", attachments))
        .await
        .unwrap();
    assert_eq!(
        accepted.provider_message_id,
        "<herald-delivery-42@herald.test>"
    );
    assert!(!accepted.replayed);

    let got = inbox.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let (from, to, raw) = &got[0];
    assert_eq!(from, "news@herald.test");
    assert_eq!(to, &vec!["ann@example.com".to_string()]);
    let m = MessageParser::default()
        .parse(raw)
        .expect("a parseable message");
    assert_eq!(m.subject(), Some("Spring menu"));
    assert_eq!(m.message_id(), Some("herald-delivery-42@herald.test"));
    let sender = m.from().unwrap().first().unwrap();
    assert_eq!(sender.name.as_deref(), Some("Herald News"));
    assert_eq!(sender.address(), Some("news@herald.test"));
    assert_eq!(
        m.to().unwrap().first().unwrap().address(),
        Some("ann@example.com")
    );
    assert_eq!(
        // Unfolded (long headers are folded onto continuation lines).
        m.header_raw("List-Unsubscribe")
            .map(|v| v.replace("\r\n ", " ").trim().to_string())
            .as_deref(),
        Some(
            "<https://herald.test/unsubscribe/7-email-abc>, <mailto:news@herald.test?subject=unsubscribe>"
        )
    );
    assert_eq!(
        m.header_raw("List-Unsubscribe-Post").map(str::trim),
        Some("List-Unsubscribe=One-Click")
    );
    let top = m.content_type().unwrap();
    assert_eq!((top.ctype(), top.subtype()), ("multipart", Some("mixed")));
    assert!(
        String::from_utf8_lossy(raw).contains("multipart/alternative"),
        "text and HTML are alternatives of one another"
    );
    // Mail travels with CRLF line ends.
    let text = m.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(text.starts_with("Hi Ann 🌷\nOur spring menu is out: https://shop.test/menu?a=1&b=2"));
    assert!(text.contains("Unsubscribe: https://herald.test/unsubscribe/7-email-abc"));
    let html = m.body_html(0).unwrap().replace("\r\n", "\n");
    assert!(html.contains(
        "Hi Ann 🌷<br>Our spring menu is out: <a href=\"https://shop.test/menu?a=1&amp;b=2\">"
    ));
    assert!(html.contains("See you &lt;soon&gt;!"));
    assert!(
        html.contains("<a href=\"https://herald.test/unsubscribe/7-email-abc\">Unsubscribe</a>")
    );
    let parts: Vec<_> = m.attachments().collect();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].attachment_name(), Some("photo.png"));
    let png_type = parts[0].content_type().unwrap();
    assert_eq!(
        (png_type.ctype(), png_type.subtype()),
        ("image", Some("png"))
    );
    assert_eq!(parts[0].contents(), PNG);
    assert_eq!(parts[1].attachment_name(), Some("menu.pdf"));
    assert_eq!(parts[1].contents(), b"%PDF-1.7\nmenu\n");

    // A plain message has no mixed wrapper; without a link there are no unsubscribe headers.
    let plain = Outgoing {
        parts: Default::default(),
        unsubscribe_url: None,
        ..out("bob@example.com", vec![])
    };
    email.send(&plain).await.unwrap();
    let raw = inbox.lock().unwrap()[1].2.clone();
    let m = MessageParser::default().parse(&raw).unwrap();
    let top = m.content_type().unwrap();
    assert_eq!(
        (top.ctype(), top.subtype()),
        ("multipart", Some("alternative"))
    );
    assert_eq!(m.header_raw("List-Unsubscribe"), None);
    assert_eq!(m.attachments().count(), 0);
}

#[tokio::test]
async fn refusals_are_read_as_the_smtp_codes_mean() {
    let (port, inbox) = smtp_server();
    let files = tempfile::tempdir().unwrap();
    let email = Email::new(
        settings(port),
        herald::server::files::Files::in_folder(files.path()),
    );
    // 550 on RCPT: the mailbox is gone; the address is unreachable from now on.
    assert!(matches!(
        email.send(&out("gone@example.com", vec![])).await,
        Err(SendError::Unreachable { reason }) if reason.contains("550")
    ));
    // 451: try again later.
    assert!(matches!(
        email.send(&out("later@example.com", vec![])).await,
        Err(SendError::Transient { reason, .. }) if reason.contains("451")
    ));
    // Not an address at all: refused before any connection.
    assert!(matches!(
        email.send(&out("not an address", vec![])).await,
        Err(SendError::Permanent { reason }) if reason.contains("not an email address")
    ));
    // A file that went missing fails the delivery rather than sending without it.
    let missing = AttachmentRef {
        id: "m".repeat(32),
        name: "gone.pdf".into(),
        mime: "application/pdf".into(),
        size: 1,
    };
    assert!(matches!(
        email.send(&out("ann@example.com", vec![missing])).await,
        Err(SendError::Permanent { reason }) if reason.contains("gone.pdf")
    ));
    assert!(inbox.lock().unwrap().is_empty());
    // Nobody listening: worth retrying.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let down = Email::new(
        settings(closed),
        herald::server::files::Files::in_folder(files.path()),
    );
    assert!(matches!(
        down.send(&out("ann@example.com", vec![])).await,
        Err(SendError::Transient { .. })
    ));
    // A channel without a host or with a bad From refuses every message, saying why.
    let no_host = Email::new(
        Settings::default(),
        herald::server::files::Files::in_folder(files.path()),
    );
    assert!(matches!(
        no_host.send(&out("ann@example.com", vec![])).await,
        Err(SendError::Permanent { reason }) if reason.contains("no SMTP host")
    ));
    let bad_from = Email::new(
        Settings {
            from: "herald".into(),
            ..settings(port)
        },
        herald::server::files::Files::in_folder(files.path()),
    );
    assert!(matches!(
        bad_from.send(&out("ann@example.com", vec![])).await,
        Err(SendError::Permanent { reason }) if reason.contains("From address")
    ));
}

/// Public-only (production without allow-private-endpoints): a host *name* that resolves to
/// loopback is refused before any connection, so the mail server hears nothing; the same
/// server is reached when private endpoints are allowed.
#[tokio::test]
async fn a_host_name_resolving_to_a_private_address_is_refused_before_connecting() {
    let (port, inbox) = smtp_server();
    let files = tempfile::tempdir().unwrap();
    let by_name = Settings {
        smtp_host: "localhost".into(),
        ..settings(port)
    };
    let guarded = Email::new(
        by_name.clone(),
        herald::server::files::Files::in_folder(files.path()),
    )
    .public_only(true);
    let e = guarded
        .send(&out("ann@example.com", vec![]))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SendError::Permanent { reason } if reason.contains("no public address")),
        "{e:?}"
    );
    assert!(
        inbox.lock().unwrap().is_empty(),
        "nothing reached the server"
    );
    let open = Email::new(
        by_name,
        herald::server::files::Files::in_folder(files.path()),
    )
    .public_only(false);
    open.send(&out("ann@example.com", vec![])).await.unwrap();
    assert_eq!(inbox.lock().unwrap().len(), 1);
}

/// A relay on a free port that takes a whole message and then answers `after_data`, or, with
/// none, closes the connection without a word (the message may have been taken).
fn relay(after_data: Option<&'static [u8]>) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        out.write_all(b"220 mx.herald.test ESMTP\r\n").unwrap();
        let mut in_data = false;
        let mut line = String::new();
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            let said = std::mem::take(&mut line);
            let answer: &[u8] = if in_data {
                if said != ".\r\n" {
                    continue;
                }
                in_data = false;
                match after_data {
                    Some(a) => a,
                    None => return,
                }
            } else if said.starts_with("EHLO") {
                b"250-mx.herald.test\r\n250 8BITMIME\r\n"
            } else if said.starts_with("DATA") {
                in_data = true;
                b"354 Go ahead\r\n"
            } else if said.starts_with("QUIT") {
                let _ = out.write_all(b"221 Bye\r\n");
                break;
            } else {
                b"250 OK\r\n"
            };
            if out.write_all(answer).is_err() {
                break;
            }
        }
    });
    port
}

/// Sent, maybe sent, not sent: a connection that could not be made sent nothing (tried again);
/// a session that broke after the message's data may have delivered it (maybe sent).
#[tokio::test]
async fn a_session_broken_after_the_data_may_have_sent_it() {
    let files = tempfile::tempdir().unwrap();
    let dropped = Email::new(
        settings(relay(None)),
        herald::server::files::Files::in_folder(files.path()),
    );
    let sent = dropped.send(&out("ann@example.com", vec![])).await;
    assert!(matches!(sent, Err(SendError::MaybeSent { .. })), "{sent:?}");
    let nobody = Email::new(
        settings(9),
        herald::server::files::Files::in_folder(files.path()),
    );
    let sent = nobody.send(&out("ann@example.com", vec![])).await;
    assert!(matches!(sent, Err(SendError::Transient { .. })), "{sent:?}");
}

/// A relay that takes the whole message, then refuses it as too large (552 5.3.4 after the
/// data, as most do when the client declared no size): every email of the broadcast carries
/// the same files, so the refusal pauses the broadcast.
#[tokio::test]
async fn a_message_refused_after_its_data_as_too_big_pauses_the_broadcast() {
    let port = relay(Some(b"552 5.3.4 Message too big for system\r\n"));
    let files = tempfile::tempdir().unwrap();
    let email = Email::new(
        settings(port),
        herald::server::files::Files::in_folder(files.path()),
    );
    let sent = email.send(&out("ann@example.com", vec![])).await;
    assert!(
        matches!(&sent, Err(SendError::Systemic { reason })
            if reason.contains("larger than the mail server takes") && reason.contains("5.3.4")),
        "{sent:?}"
    );
}
