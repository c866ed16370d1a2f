//! Reaching the database: what a `postgres://` URL asks for (TLS or not), and a small
//! pool of connections.
//!
//! TLS (rustls, the ring provider) always verifies the server's certificate and name,
//! against `sslrootcert=FILE` when given and the public Web PKI roots otherwise: tapwire
//! has no "encrypt but trust anyone" mode, so `sslmode=require` and `verify-ca` mean
//! `verify-full` here. Without `sslmode`, a database on a loopback address or a Unix
//! socket is reached in plain text, any other host with `verify-full`. `prefer` and
//! `allow` (plain text when TLS fails, silently) are refused; `sslmode=disable` says
//! plain text on purpose.
//!
//! The pool fails fast: a connection is made when none is idle and fewer than
//! [`POOL_SIZE`] are out, and a database out of reach fails that call at once with
//! [`StoreError::Unavailable`] rather than after a queue's timeout. When all are out, a
//! caller waits at most [`CHECKOUT_WAIT`]. A call that finds its connection broken
//! (the database restarted) drops every idle one: they share its fate.

use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::config::{Host, SslMode};
use postgres::{Client, NoTls, Statement};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::StoreError;

/// Most connections one replica holds for reads and commits (the listener is apart).
pub const POOL_SIZE: usize = 8;
/// Longest a call waits for a connection when all are out.
pub const CHECKOUT_WAIT: Duration = Duration::from_secs(5);
/// Longest a connection attempt takes before the database counts as out of reach.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How connections are made: the parsed URL and its TLS.
pub struct Connector {
    config: postgres::Config,
    tls: Option<MakeRustlsConnect>,
}

/// What `sslmode` and `sslrootcert` say, taken out of the URL (the driver knows neither
/// the verify modes nor the root file).
fn split_tls_options(url: &str) -> (String, Option<String>, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None, None) };
    let (mut mode, mut root, mut rest) = (None, None, Vec::new());
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_owned()),
            Some(("sslrootcert", v)) => root = Some(PathBuf::from(v)),
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (url, mode, root)
}

fn is_local(host: &Host) -> bool {
    match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name == "localhost"
                || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
    }
}

fn invalid(message: impl Into<String>) -> StoreError {
    StoreError::Backend(message.into())
}

/// The TLS client configuration: the given roots, or the Web PKI's.
fn tls_config(root: Option<&PathBuf>) -> Result<MakeRustlsConnect, StoreError> {
    let mut roots = rustls::RootCertStore::empty();
    match root {
        Some(path) => {
            let pem =
                std::fs::read(path).map_err(|e| invalid(format!("reading sslrootcert {}: {e}", path.display())))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| invalid(format!("sslrootcert {} is not PEM: {e}", path.display())))?;
                roots.add(cert).map_err(|e| invalid(format!("sslrootcert {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(invalid(format!("sslrootcert {} holds no certificate", path.display())));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

impl Connector {
    /// Reads `url` (`postgres://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`).
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        let (url, mode, root) = split_tls_options(url);
        let mut config: postgres::Config =
            url.parse().map_err(|e| invalid(format!("the PostgreSQL URL does not parse: {e}")))?;
        let local = config.get_hosts().iter().all(is_local);
        let tls = match mode.as_deref() {
            Some("disable") => false,
            Some("require" | "verify-ca" | "verify-full") => true,
            Some(other @ ("prefer" | "allow")) => {
                return Err(invalid(format!(
                    "sslmode={other} falls back to plain text without a word; say sslmode=verify-full \
                     (sslrootcert=CA.pem for a private CA) or sslmode=disable"
                )));
            }
            Some(other) => {
                return Err(invalid(format!("sslmode={other} is not one of disable, require, verify-ca, verify-full")));
            }
            None => !local,
        };
        if root.is_some() && !tls {
            return Err(invalid("sslrootcert is given but TLS is off (sslmode=disable, or a local database)"));
        }
        config.ssl_mode(if tls { SslMode::Require } else { SslMode::Disable });
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let tls = tls.then(|| tls_config(root.as_ref())).transpose()?;
        Ok(Self { config, tls })
    }

    /// Whether connections are encrypted.
    pub fn encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// A new connection.
    pub fn connect(&self) -> Result<Client, StoreError> {
        let made = match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(NoTls),
        };
        made.map_err(|e| StoreError::Unavailable(format!("connecting to PostgreSQL: {e}")))
    }
}

/// Idle connections and how many are out.
#[derive(Default)]
struct Slots {
    idle: Vec<Conn>,
    out: usize,
}

/// A pooled connection and the statements prepared on it (a statement belongs to the
/// connection that prepared it).
struct Conn {
    client: Client,
    prepared: Vec<(&'static str, Statement)>,
}

impl Conn {
    fn new(client: Client) -> Self {
        Self { client, prepared: Vec::new() }
    }
}

/// A bounded set of connections; see the module doc.
pub struct Pool {
    connector: Connector,
    slots: Mutex<Slots>,
    returned: Condvar,
}

/// A connection taken from the pool; back to it when dropped, unless found broken.
pub struct Pooled<'a> {
    pool: &'a Pool,
    conn: Option<Conn>,
}

impl Pool {
    /// An empty pool; connections are made as calls need them.
    pub fn new(connector: Connector) -> Self {
        Self { connector, slots: Mutex::new(Slots::default()), returned: Condvar::new() }
    }

    /// The connector (for connections that live outside the pool).
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle connection, a new one, or one returned within [`CHECKOUT_WAIT`].
    pub fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let mut slots = self.slots();
        let deadline = std::time::Instant::now() + CHECKOUT_WAIT;
        loop {
            while let Some(conn) = slots.idle.pop() {
                if !conn.client.is_closed() {
                    slots.out += 1;
                    return Ok(Pooled { pool: self, conn: Some(conn) });
                }
            }
            if slots.out < POOL_SIZE {
                slots.out += 1;
                drop(slots);
                return match self.connector.connect() {
                    Ok(client) => Ok(Pooled { pool: self, conn: Some(Conn::new(client)) }),
                    Err(e) => {
                        self.slots().out -= 1;
                        self.returned.notify_one();
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(StoreError::Unavailable(format!(
                    "all {POOL_SIZE} connections to PostgreSQL stayed busy for {CHECKOUT_WAIT:?}"
                )));
            }
            slots = self.returned.wait_timeout(slots, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Every idle connection, taken out (to be closed off any async thread).
    pub fn drain(&self) -> Vec<Client> {
        std::mem::take(&mut self.slots().idle).into_iter().map(|conn| conn.client).collect()
    }
}

impl Pooled<'_> {
    /// The connection failed: it, and every idle one, are not given out again.
    pub fn discard(mut self) {
        drop(self.conn.take());
        let idle = self.pool.drain();
        drop(idle);
    }

    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!("a pooled connection is held until dropped"))
    }

    /// `sql` prepared on this connection: once, then from its cache (a statement used
    /// on every commit is parsed and planned once per connection, not per call).
    pub fn prepared(&mut self, sql: &'static str) -> Result<Statement, postgres::Error> {
        let conn = self.conn();
        if let Some((_, statement)) = conn.prepared.iter().find(|(text, _)| *text == sql) {
            return Ok(statement.clone());
        }
        let statement = conn.client.prepare(sql)?;
        conn.prepared.push((sql, statement.clone()));
        Ok(statement)
    }
}

impl std::ops::Deref for Pooled<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.conn.as_ref().unwrap_or_else(|| unreachable!("a pooled connection is held until dropped")).client
    }
}

impl std::ops::DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.conn().client
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let mut slots = self.pool.slots();
        slots.out -= 1;
        if let Some(conn) = self.conn.take().filter(|c| !c.client.is_closed()) {
            slots.idle.push(conn);
        }
        drop(slots);
        self.pool.returned.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Result<bool, String> {
        Connector::from_url(url).map(|c| c.encrypted()).map_err(|e| e.to_string())
    }

    #[test]
    fn tls_is_on_off_loopback_and_never_silently_off() {
        assert_eq!(mode("postgres://t@127.0.0.1/db"), Ok(false), "loopback: plain by default");
        assert_eq!(mode("postgres://t@localhost:5433/db"), Ok(false));
        assert_eq!(mode("postgres://t@[::1]/db"), Ok(false));
        assert_eq!(mode("postgres://t@db.example/db"), Ok(true), "a network host: verified TLS by default");
        assert_eq!(mode("postgres://t@198.18.0.5/db?sslmode=disable"), Ok(false), "plain only when said");
        assert_eq!(mode("postgres://t@127.0.0.1/db?sslmode=require&application_name=x"), Ok(true));
        for refused in ["prefer", "allow", "bogus"] {
            let err = mode(&format!("postgres://t@db.example/db?sslmode={refused}")).unwrap_err();
            assert!(err.contains(&format!("sslmode={refused}")), "{err}");
        }
        let err = mode("postgres://t@127.0.0.1/db?sslrootcert=/nonexistent/ca.pem&sslmode=verify-full").unwrap_err();
        assert!(err.contains("reading sslrootcert /nonexistent/ca.pem"), "{err}");
        let err = mode("postgres://t@127.0.0.1/db?sslrootcert=/x.pem").unwrap_err();
        assert!(err.contains("TLS is off"), "{err}");
    }

    #[test]
    fn the_options_tapwire_reads_leave_the_rest_of_the_url_alone() {
        let (url, mode, root) = split_tls_options("postgres://u:p@h/d?sslmode=verify-full&a=1&sslrootcert=/c");
        assert_eq!(
            (url.as_str(), mode.as_deref(), root),
            ("postgres://u:p@h/d?a=1", Some("verify-full"), Some("/c".into()))
        );
    }
}
