//! For tests: a webhook receiver that checks signatures, as a chat service or a customer's endpoint would.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::webhook_signature;

/// A webhook receiver on a free local port that answers 500 to the first `failures` signed POSTs and 200
/// after, keeping every body it accepts; a POST whose `X-Murmur-Signature` does not check out against
/// `secret` is answered 401.
pub async fn webhook_receiver(secret: &[u8], failures: usize) -> (SocketAddr, Arc<Mutex<Vec<Value>>>) {
    let secret = secret.to_vec();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 65536];
            // Read the head, then as many body bytes as content-length says.
            let body = loop {
                let n = socket.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        let signature = text[..end].lines().find_map(|l| {
                            l.to_ascii_lowercase().strip_prefix("x-murmur-signature:").map(|v| v.trim().to_owned())
                        });
                        break Some((buf[end + 4..end + 4 + length].to_vec(), signature));
                    }
                }
            };
            let Some((body, signature)) = body else { continue };
            served += 1;
            let signed = signature.as_deref() == Some(&webhook_signature(&secret, &body));
            let status = match (served, signed) {
                (_, false) => "401 Unauthorized",
                (n, true) if n <= failures => "500 Internal Server Error",
                _ => "200 OK",
            };
            if served > failures && signed {
                seen.lock().expect("lock").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            }
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            socket.write_all(reply.as_bytes()).await.ok();
        }
    });
    (addr, bodies)
}
