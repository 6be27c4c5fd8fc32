//! A fault-injecting HTTP proxy in front of moto: requests pass through unchanged unless a
//! rule matches them, in which case the client gets a throttling error or a 503 instead, or
//! the request reaches moto and its response is lost (the client sees a 500, or no reply at
//! all). Tests use it to show that the functions retry what AWS would have them retry, and
//! never act twice.
//!
//! It speaks just enough HTTP/1.1 for the SDK's requests: `Content-Length` bodies, one
//! request per upstream connection, and `Connection: close` on every response.

use std::io::Read as _;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Not forwarded: 400 with the awsQuery `Throttling` error (what Auto Scaling and
    /// CloudWatch send when their rate limit is exceeded).
    Throttle,
    /// Not forwarded: 503 Service Unavailable.
    Unavailable,
    /// Forwarded (moto applies it), but the client gets a 500 instead of moto's answer.
    LoseResponse,
    /// Not forwarded: 403 with the awsQuery `AccessDenied` error (permanent: not retried).
    Deny,
    /// Forwarded (moto applies it), then the connection is closed without any reply: a
    /// reply lost on the way, as a crash or a network failure after sending leaves it.
    DropResponse,
}

/// Fail `times` requests whose request line or body contains `matches` (e.g.
/// `Action=SetDesiredCapacity`, or `PUT /bucket/` for S3 writes), after letting the first
/// `after` of them through.
#[derive(Clone, Debug)]
pub struct Fault {
    pub matches: &'static str,
    pub kind: FaultKind,
    pub times: usize,
    pub after: usize,
}

#[derive(Default)]
struct Rules {
    faults: Vec<Fault>,
    /// `(matches, kind)` of every fault injected so far, in order.
    injected: Vec<(&'static str, FaultKind)>,
}

/// The proxy; it stops with the runtime that started it.
pub struct FaultProxy {
    pub endpoint: String,
    rules: Arc<Mutex<Rules>>,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Vec<Fault>) -> FaultProxy {
        let upstream = upstream.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the fault proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let rules = Arc::new(Mutex::new(Rules { faults, injected: Vec::new() }));
        let shared = rules.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, rules) = (upstream.clone(), shared.clone());
                tokio::spawn(async move {
                    if let Err(error) = serve(client, &upstream, &rules).await {
                        eprintln!("fault proxy: {error}");
                    }
                });
            }
        });
        FaultProxy { endpoint, rules }
    }

    /// `config` with its endpoint replaced by this proxy's.
    pub fn sdk_config(&self, config: &aws_config::SdkConfig) -> aws_config::SdkConfig {
        config.to_builder().endpoint_url(&self.endpoint).build()
    }

    /// Adds a rule while the proxy runs (e.g. a storm that starts at a chosen tick).
    pub fn add(&self, fault: Fault) {
        self.rules.lock().expect("rules").faults.push(fault);
    }

    /// The faults injected so far, in order.
    pub fn injected(&self) -> Vec<(&'static str, FaultKind)> {
        self.rules.lock().expect("rules").injected.clone()
    }

    /// Faults configured but not (yet) injected.
    pub fn pending(&self) -> Vec<Fault> {
        self.rules.lock().expect("rules").faults.iter().filter(|f| f.times > 0).cloned().collect()
    }
}

/// Serves one request of a client connection (the response says `Connection: close`).
async fn serve(mut client: TcpStream, upstream: &str, rules: &Mutex<Rules>) -> std::io::Result<()> {
    let Some(request) = read_request(&mut client).await? else { return Ok(()) };
    let head_end = find(&request, b"\r\n\r\n").map_or(request.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&request[..head_end]);
    let first_line = head.lines().next().unwrap_or_default();
    // PutMetricData bodies over 10 KB arrive gzip-compressed: match on what they say.
    let body = if head.to_ascii_lowercase().contains("content-encoding: gzip") {
        let mut text = String::new();
        let _ = flate2::read::MultiGzDecoder::new(&request[head_end..]).read_to_string(&mut text);
        text
    } else {
        String::from_utf8_lossy(&request[head_end..]).into_owned()
    };
    let fault = {
        let mut rules = rules.lock().expect("rules");
        let found = rules
            .faults
            .iter_mut()
            .find(|f| f.times > 0 && (first_line.contains(f.matches) || body.contains(f.matches)))
            .and_then(|f| {
                if f.after > 0 {
                    f.after -= 1;
                    return None;
                }
                f.times -= 1;
                Some((f.matches, f.kind))
            });
        if let Some(injected) = found {
            rules.injected.push(injected);
        }
        found.map(|(_, kind)| kind)
    };
    let response = match fault {
        None => forward(&request, upstream).await?,
        Some(FaultKind::Throttle) => canned(
            "400 Bad Request",
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>\
             <Message>Rate exceeded</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
        ),
        Some(FaultKind::Unavailable) => canned("503 Service Unavailable", ""),
        Some(FaultKind::Deny) => canned(
            "403 Forbidden",
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
             <Message>User is not authorized</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
        ),
        Some(FaultKind::LoseResponse) => {
            forward(&request, upstream).await?;
            canned("500 Internal Server Error", "")
        }
        Some(FaultKind::DropResponse) => {
            forward(&request, upstream).await?;
            return Ok(()); // dropping `client` closes the connection, unanswered
        }
    };
    client.write_all(&response).await?;
    client.shutdown().await
}

fn canned(status: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends the request to moto on a connection of its own and returns moto's response,
/// marked `Connection: close`.
async fn forward(request: &[u8], upstream: &str) -> std::io::Result<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&with_header(request, "Connection: close")).await?;
    let mut response = Vec::new();
    server.read_to_end(&mut response).await?;
    Ok(with_header(&response, "Connection: close"))
}

/// The message with any `Connection` header replaced by `header`.
fn with_header(message: &[u8], header: &str) -> Vec<u8> {
    let Some(end) = find(message, b"\r\n\r\n") else { return message.to_vec() };
    let head = String::from_utf8_lossy(&message[..end]);
    let mut lines: Vec<&str> =
        head.split("\r\n").filter(|l| !l.to_ascii_lowercase().starts_with("connection:")).collect();
    lines.push(header);
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(&message[end..]);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One request: head and `Content-Length` body; `None` if the client closed first.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            break end + 4;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        return Err(std::io::Error::other("chunked request bodies are not supported"));
    }
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "request body cut short"));
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buffer))
}
