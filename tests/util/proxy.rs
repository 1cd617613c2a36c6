//! A fault-injecting HTTP/1.1 proxy in front of the test S3 server: every request is forwarded
//! on its own upstream connection, unless a rule says to refuse it (as a server out of space or
//! denying access would).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A running proxy.
pub struct Proxy {
    pub port: u16,
    /// Refuse (HTTP 503) every PUT whose path contains `/blobs/` while set.
    pub refuse_blob_puts: Arc<AtomicBool>,
    /// How many requests were refused.
    pub refused: Arc<AtomicUsize>,
}

impl Proxy {
    /// Listen on a free loopback port, forwarding to `upstream` (`host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refuse = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let (r, n, up) = (refuse.clone(), refused.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (r, n, up) = (r.clone(), n.clone(), up.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &r, &n);
                });
            }
        });
        Proxy {
            port,
            refuse_blob_puts: refuse,
            refused,
        }
    }

    /// The endpoint to give sameframe.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A request or response head: the first line, the header lines, and the body length.
struct Head {
    first: String,
    lines: Vec<String>,
    length: usize,
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<Head>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut lines = Vec::new();
    let mut length = 0;
    loop {
        let mut l = String::new();
        r.read_line(&mut l)?;
        if l == "\r\n" || l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
        lines.push(l);
    }
    Ok(Some(Head {
        first,
        lines,
        length,
    }))
}

fn serve(
    client: TcpStream,
    upstream: &str,
    refuse: &AtomicBool,
    refused: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    while let Some(head) = read_head(&mut reader)? {
        let mut body = vec![0; head.length];
        reader.read_exact(&mut body)?;
        let is_blob_put = head.first.starts_with("PUT ") && head.first.contains("/blobs/");
        if is_blob_put && refuse.load(Ordering::SeqCst) {
            refused.fetch_add(1, Ordering::SeqCst);
            let msg = "<?xml version=\"1.0\"?><Error><Code>ServiceUnavailable</Code><Message>refused by the test proxy</Message></Error>";
            write!(
                client,
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n{msg}",
                msg.len()
            )?;
            client.flush()?;
            continue;
        }
        let mut up = TcpStream::connect(upstream)?;
        up.write_all(head.first.as_bytes())?;
        for l in &head.lines {
            // One request per upstream connection.
            if l.to_ascii_lowercase().starts_with("connection:") {
                continue;
            }
            up.write_all(l.as_bytes())?;
        }
        up.write_all(b"Connection: close\r\n\r\n")?;
        up.write_all(&body)?;
        up.flush()?;
        let mut upr = BufReader::new(up);
        let Some(resp) = read_head(&mut upr)? else {
            return Ok(());
        };
        let has = |name: &str| {
            resp.lines
                .iter()
                .any(|l| l.to_ascii_lowercase().starts_with(name))
        };
        // Headers pass as they are, but for the connection (the client's stays open).
        client.write_all(resp.first.as_bytes())?;
        for l in &resp.lines {
            if !l.to_ascii_lowercase().starts_with("connection:") {
                client.write_all(l.as_bytes())?;
            }
        }
        if head.first.starts_with("HEAD ") {
            client.write_all(b"\r\n")?;
        } else if has("content-length") {
            let mut rbody = vec![0; resp.length];
            upr.read_exact(&mut rbody)?;
            client.write_all(b"\r\n")?;
            client.write_all(&rbody)?;
        } else if has("transfer-encoding") {
            // Chunked: the upstream closes after its last chunk; the bytes pass as they are.
            let mut rbody = Vec::new();
            upr.read_to_end(&mut rbody)?;
            client.write_all(b"\r\n")?;
            client.write_all(&rbody)?;
        } else {
            let mut rbody = Vec::new();
            upr.read_to_end(&mut rbody)?;
            write!(client, "Content-Length: {}\r\n\r\n", rbody.len())?;
            client.write_all(&rbody)?;
        }
        client.flush()?;
    }
    Ok(())
}
