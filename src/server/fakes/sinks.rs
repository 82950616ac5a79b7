//! Sinks that take what Herald sends and keep none of it, for measuring Herald itself (its
//! memory, its time in flight) rather than checking a protocol: an SMTP server that accepts
//! every message and a Bot API stand-in where every method succeeds. What they read goes as
//! it arrives, so they add next to nothing to a process's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Multipart, Path};
use axum::routing::post;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// What the sinks received.
#[derive(Debug, Default)]
pub struct Seen {
    pub mails: AtomicU64,
    pub mail_bytes: AtomicU64,
    pub telegram_calls: AtomicU64,
    pub uploaded_bytes: AtomicU64,
    /// Messages each recipient (`RCPT TO`) was sent, as SMTP deduplicates nothing.
    pub mail_to: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

/// An SMTP server that accepts every message and keeps none: what it reads of a message's
/// data goes as it comes. Its port.
pub async fn smtp_sink(seen: Arc<Seen>) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let _ = smtp_session(socket, &seen).await;
            });
        }
    });
    Ok(port)
}

async fn smtp_session(socket: tokio::net::TcpStream, seen: &Seen) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::with_capacity(1 << 16, read);
    write.write_all(b"220 sink.herald.test ESMTP\r\n").await?;
    let mut line = String::new();
    let mut to: Vec<String> = Vec::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let answer: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" => b"250-sink.herald.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "RCPT" => {
                let addr = line.split(['<', '>']).nth(1).unwrap_or_default();
                to.push(addr.to_ascii_lowercase());
                b"250 ok\r\n"
            }
            "RSET" | "MAIL" => {
                to.clear();
                b"250 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let bytes = read_data(&mut read).await?;
                seen.mails.fetch_add(1, Ordering::Relaxed);
                seen.mail_bytes.fetch_add(bytes, Ordering::Relaxed);
                let mut counts = seen.mail_to.lock().unwrap_or_else(|e| e.into_inner());
                for addr in to.drain(..) {
                    *counts.entry(addr).or_default() += 1;
                }
                b"250 2.0.0 queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// Reads a message's data up to the line holding only "." and forgets it; its size.
async fn read_data(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<u64> {
    const END: &[u8] = b"\r\n.\r\n";
    let mut buf = vec![0u8; 1 << 16];
    // The last bytes so far, so that the end mark is found across two reads (the data of an
    // empty message starts right after the DATA line's line break).
    let mut last: Vec<u8> = b"\r\n".to_vec();
    let mut total = 0u64;
    loop {
        let got = read.read(&mut buf).await?;
        if got == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        total += got as u64;
        last.extend_from_slice(&buf[got.saturating_sub(END.len())..got]);
        if last.ends_with(END) {
            return Ok(total);
        }
        last.drain(..last.len().saturating_sub(END.len() - 1));
    }
}

/// A Bot API stand-in at `http://127.0.0.1:port`: every method succeeds; an uploaded file is
/// read as it arrives and answered with a `file_id`, as Telegram does.
pub async fn telegram_stand_in(seen: Arc<Seen>) -> anyhow::Result<String> {
    let next = Arc::new(AtomicU64::new(1));
    let app = axum::Router::new()
        .route(
            "/{bot}/{method}",
            post(
                move |Path((_bot, method)): Path<(String, String)>, mut form: Multipart| {
                    let (seen, next) = (seen.clone(), next.clone());
                    async move {
                        seen.telegram_calls.fetch_add(1, Ordering::Relaxed);
                        let mut uploaded = None;
                        while let Ok(Some(mut field)) = form.next_field().await {
                            if field.file_name().is_none() {
                                let _ = field.text().await;
                                continue;
                            }
                            let name = field.name().unwrap_or("document").to_string();
                            while let Ok(Some(chunk)) = field.chunk().await {
                                seen.uploaded_bytes
                                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                            }
                            uploaded = Some(name);
                        }
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        let mut result = serde_json::json!({ "message_id": id, "date": 0 });
                        if let Some(field) = uploaded {
                            let file = serde_json::json!({ "file_id": format!("BQAC{id}"), "file_unique_id": format!("u{id}") });
                            result[field] = if field == "photo" {
                                serde_json::json!([file])
                            } else {
                                file
                            };
                        }
                        let _ = method;
                        axum::Json(serde_json::json!({ "ok": true, "result": result }))
                    }
                },
            ),
        )
        .layer(axum::extract::DefaultBodyLimit::disable());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}"))
}

/// `count` files of `mb` MB in `dir` that read as PDFs (what an upload's content check takes),
/// their bytes random so that they encode as real documents do; their references.
pub fn write_pdfs(
    dir: &std::path::Path,
    count: usize,
    mb: usize,
) -> std::io::Result<Vec<crate::model::compose::AttachmentRef>> {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::new();
    for i in 0..count {
        let mut bytes = Vec::with_capacity(mb << 20);
        bytes.extend_from_slice(b"%PDF-1.7\n");
        while bytes.len() < mb << 20 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            bytes.extend_from_slice(&seed.to_le_bytes());
        }
        bytes.truncate(mb << 20);
        let id = format!("catalogue-{i}-{mb}mb");
        std::fs::write(dir.join(&id), &bytes)?;
        out.push(crate::model::compose::AttachmentRef {
            id,
            name: format!("catalogue-{i}.pdf"),
            mime: "application/pdf".into(),
            size: bytes.len() as u64,
        });
    }
    Ok(out)
}

/// `n` customers for the sinks: the even ones with only an email address, the odd ones with
/// only a Telegram chat (phones from `+1` `prefix` on, unique per prefix).
pub fn email_and_telegram_customers(n: usize, prefix: u32) -> Vec<crate::server::db::NewCustomer> {
    (0..n)
        .map(|i| crate::server::db::NewCustomer {
            name: format!("Customer {i}"),
            phone: Some(format!("+1{prefix}{i:07}")),
            email: (i % 2 == 0).then(|| format!("c{i}@mail.herald.test")),
            whatsapp_id: None,
            telegram_chat_id: (i % 2 == 1).then(|| format!("{}", 100_000 + i)),
            assignee_id: None,
            time_zone: "UTC".into(),
            opted_out: false,
            tag_ids: Vec::new(),
            group_ids: Vec::new(),
        })
        .collect()
}
