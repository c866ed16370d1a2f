//! What a first start makes in the data directory (mode 0700): the master key that seals access-key
//! secrets (`master.key`), and the root account's first key, written once to
//! `credentials` in the AWS shared-credentials format (profile `[tapwire]`). Both files
//! are mode 0600 and are never rewritten: a key whose file was deleted stays valid until
//! `tapwire access-key delete`.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use rand::RngCore;
use tapwire_auth::seal::{KEY_LEN, SecretBox};

use crate::credentials::write_private;

/// Makes the data directory only its owner can enter; warns when an existing one is open
/// to others (it holds the store and the master key).
pub fn data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        eprintln!(
            "tapwire: WARNING: {} is mode {:o}: others may read the store; `chmod 700` it.",
            dir.display(),
            mode & 0o777
        );
    }
    Ok(())
}

/// The master key at `path`, made on first start.
pub fn master_key(path: &Path) -> anyhow::Result<SecretBox> {
    if !path.exists() {
        let mut key = [0u8; KEY_LEN];
        rand::rng().fill_bytes(&mut key);
        write_private(path, hex::encode(key).as_bytes())?;
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = hex::decode(text.trim()).with_context(|| format!("{} is not a hex key", path.display()))?;
    let key: [u8; KEY_LEN] =
        bytes.try_into().map_err(|_| anyhow::anyhow!("{} must hold {KEY_LEN} bytes of hex", path.display()))?;
    Ok(SecretBox::new(&key))
}

/// Writes the root key to `dir/credentials` (profile `[tapwire]`) and says how to use it.
pub fn write_root_credentials(dir: &Path, key_id: &str, secret: &str, region: &str) -> anyhow::Result<()> {
    let path = dir.join("credentials");
    let body = format!(
        "# The root account's first access key, written by `tapwire server` at first start.\n\
         [tapwire]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\nregion = {region}\n"
    );
    write_private(&path, body.as_bytes())?;
    let shown = std::fs::canonicalize(&path).unwrap_or(path);
    eprintln!(
        "tapwire: made the root account and its access key {key_id}; the secret is in {} (mode 0600). Use it with:\n  \
         export AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE=tapwire",
        shown.display(),
        shown.display()
    );
    Ok(())
}
