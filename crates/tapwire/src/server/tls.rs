//! `--tls auto`: a private CA for this installation and a server certificate it signs,
//! in `DATA_DIR/tls/` (mode 0700): `ca.pem` (give it to clients: `--ca-bundle`,
//! `--ca-cert`), `ca.key`, `server.pem`, `server.key` (keys mode 0600).
//!
//! The CA is made once and kept; its name is derived from its key, so the key alone
//! rebuilds the issuer. The server certificate is issued again at every start (clients
//! trust the CA, not the leaf), for `localhost`, the loopback addresses, the listen
//! address, the host name and every `--tls-san`.

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use sha2::{Digest, Sha256};

use crate::credentials::write_private;

/// Where the certificate and key the listener serves are, and the CA's fingerprint.
pub struct AutoTls {
    /// `server.pem`.
    pub cert: PathBuf,
    /// `server.key`.
    pub key: PathBuf,
    /// `ca.pem`.
    pub ca: PathBuf,
    /// SHA-256 of the CA certificate (DER), as `AB:CD:…`.
    pub ca_fingerprint: String,
}

fn ca_params(key: &KeyPair) -> CertificateParams {
    let digest = hex::encode(Sha256::digest(key.public_key_raw()));
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, format!("tapwire CA {}", &digest[..16]));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    params
}

/// Writes `contents` to `path`, replacing what was there (mode 0600 for keys).
fn replace(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, contents)?;
    std::fs::rename(&tmp, path).with_context(|| format!("replacing {}", path.display()))
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der).iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Makes (or reuses) the CA and issues a server certificate for `names`.
pub fn auto(data_dir: &Path, listen: SocketAddr, extra_names: &[String]) -> anyhow::Result<AutoTls> {
    let dir = data_dir.join("tls");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let (ca_pem, ca_key_path) = (dir.join("ca.pem"), dir.join("ca.key"));
    let ca_key = if ca_key_path.exists() {
        let text =
            std::fs::read_to_string(&ca_key_path).with_context(|| format!("reading {}", ca_key_path.display()))?;
        KeyPair::from_pem(&text).with_context(|| format!("{} is not a key", ca_key_path.display()))?
    } else {
        let key = KeyPair::generate().context("making the CA key")?;
        replace(&ca_key_path, key.serialize_pem().as_bytes())?;
        key
    };
    let params = ca_params(&ca_key);
    if !ca_pem.exists() {
        let cert = params.self_signed(&ca_key).context("making the CA certificate")?;
        std::fs::write(&ca_pem, cert.pem()).with_context(|| format!("writing {}", ca_pem.display()))?;
    }
    let ca_text = std::fs::read_to_string(&ca_pem).with_context(|| format!("reading {}", ca_pem.display()))?;
    let ca_der = rustls_pki_types::pem::PemObject::from_pem_slice(ca_text.as_bytes())
        .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
        .with_context(|| format!("{} is not a PEM certificate", ca_pem.display()))?;
    let issuer = Issuer::new(params, &ca_key);

    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() {
        names.push(listen.ip().to_string());
    }
    if let Ok(host) = nix::unistd::gethostname()
        && let Some(host) = host.to_str()
    {
        names.push(host.to_owned());
    }
    names.extend(extra_names.iter().cloned());
    names.sort();
    names.dedup();
    let mut leaf =
        CertificateParams::new(names.iter().filter(|n| n.parse::<IpAddr>().is_err()).cloned().collect::<Vec<_>>())
            .context("server certificate names")?;
    for ip in names.iter().filter_map(|n| n.parse::<IpAddr>().ok()) {
        leaf.subject_alt_names.push(rcgen::SanType::IpAddress(ip));
    }
    leaf.distinguished_name.push(DnType::CommonName, "tapwire server");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let now = time::OffsetDateTime::now_utc();
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(397);
    let leaf_key = KeyPair::generate().context("making the server key")?;
    let cert = leaf.signed_by(&leaf_key, &issuer).context("signing the server certificate")?;
    let (cert_path, key_path) = (dir.join("server.pem"), dir.join("server.key"));
    replace(&key_path, leaf_key.serialize_pem().as_bytes())?;
    replace(&cert_path, format!("{}{ca_text}", cert.pem()).as_bytes())?;
    Ok(AutoTls { cert: cert_path, key: key_path, ca: ca_pem, ca_fingerprint: fingerprint(&ca_der) })
}
