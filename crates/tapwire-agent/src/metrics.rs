//! A tiny HTTP/1.0 server for `/metrics` (Prometheus text) and `/status` (JSON), on its
//! own thread, one request per connection. It only reads the published snapshots, so a
//! slow scraper never touches the packet path.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::report::{AgentStatus, prometheus};

/// Serves until `stop` (checked between connections; the listener is non-blocking).
pub fn serve(listener: TcpListener, status: Arc<dyn Fn() -> AgentStatus + Send + Sync>, stop: &AtomicBool) {
    if let Err(e) = listener.set_nonblocking(true) {
        tracing::error!(error = %e, "metrics listener unusable");
        return;
    }
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Err(e) = answer(stream, &*status) {
                    tracing::debug!(error = %e, "metrics request failed");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                tracing::warn!(error = %e, "metrics accept failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn answer(stream: TcpStream, status: &dyn Fn() -> AgentStatus) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Drain the headers so the client sees a clean close.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    let (code, content_type, body) = match path {
        "/metrics" => ("200 OK", "text/plain; version=0.0.4", prometheus(&status())),
        "/status" => (
            "200 OK",
            "application/json",
            serde_json::to_string_pretty(&status()).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
        ),
        _ => ("404 Not Found", "text/plain", "try /metrics or /status\n".to_owned()),
    };
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.0 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
