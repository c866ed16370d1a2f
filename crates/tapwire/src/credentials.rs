//! Where the `tapwire` CLI finds its access key: the aws CLI's order, then the data
//! directory the server wrote.
//!
//! 1. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (with `AWS_REGION` /
//!    `AWS_DEFAULT_REGION`);
//! 2. when `AWS_SHARED_CREDENTIALS_FILE` or `AWS_PROFILE` is set: that file (default
//!    `~/.aws/credentials`) and profile (default `default`), which must exist;
//! 3. `DATA_DIR/credentials`, profile `tapwire`, for `--data-dir` (default
//!    `./tapwire-data`, where `tapwire server` writes the root key at first start).
//!
//! Secrets are held in memory only; [`Credentials`]' `Debug` never shows one.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// The profile `tapwire server` writes.
pub const PROFILE: &str = "tapwire";
/// The server's default data directory.
pub const DEFAULT_DATA_DIR: &str = "./tapwire-data";

/// An access key pair and the region it names.
#[derive(Clone)]
pub struct Credentials {
    /// Access key ID.
    pub key_id: String,
    /// Secret access key.
    pub secret: String,
    /// Region from the environment or the profile.
    pub region: Option<String>,
    /// Where they came from, for error messages.
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key_id", &self.key_id)
            .field("region", &self.region)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The variables discovery reads, so tests need not touch the process environment.
pub trait Environment {
    /// A variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// Finds the key, in the order of the module doc.
pub fn discover(env: &dyn Environment, data_dir: Option<&Path>) -> anyhow::Result<Credentials> {
    let region = env.var("AWS_REGION").or_else(|| env.var("AWS_DEFAULT_REGION"));
    if let (Some(key_id), Some(secret)) = (env.var("AWS_ACCESS_KEY_ID"), env.var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials { key_id, secret, region, source: "AWS_ACCESS_KEY_ID".into() });
    }
    let file = env.var("AWS_SHARED_CREDENTIALS_FILE");
    let profile = env.var("AWS_PROFILE");
    if file.is_some() || profile.is_some() {
        let path = match file {
            Some(f) => PathBuf::from(f),
            None => home_credentials(env).context("AWS_PROFILE is set but HOME is not")?,
        };
        let profile = profile.unwrap_or_else(|| "default".into());
        let mut found = read_profile(&path, &profile)?;
        found.region = region.or(found.region);
        return Ok(found);
    }
    let dir = data_dir.unwrap_or(Path::new(DEFAULT_DATA_DIR));
    let path = dir.join("credentials");
    if !path.exists() {
        bail!(
            "no access key: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE and \
             AWS_PROFILE, or give --data-dir of the server ({} does not exist)",
            path.display()
        );
    }
    let mut found = read_profile(&path, PROFILE)?;
    found.region = region.or(found.region);
    Ok(found)
}

fn home_credentials(env: &dyn Environment) -> Option<PathBuf> {
    env.var("HOME").map(|h| PathBuf::from(h).join(".aws").join("credentials"))
}

/// Writes a file only its owner can read, refusing to replace one.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// Reads `profile` from a shared-credentials file.
pub fn read_profile(path: &Path, profile: &str) -> anyhow::Result<Credentials> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let source = format!("{} [{profile}]", path.display());
    let fields =
        profile_fields(&text, profile).with_context(|| format!("{} has no profile [{profile}]", path.display()))?;
    let get = |k: &str| fields.iter().find(|(name, _)| name == k).map(|(_, v)| v.clone());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(key_id), Some(secret)) => Ok(Credentials { key_id, secret, region: get("region"), source }),
        _ => bail!("{source} needs aws_access_key_id and aws_secret_access_key"),
    }
}

/// The `name = value` lines of one `[profile]` section (INI as the aws CLI reads it:
/// `#` and `;` comments, names case-insensitive).
fn profile_fields(text: &str, profile: &str) -> Option<Vec<(String, String)>> {
    let mut current: Option<&str> = None;
    let mut fields = None::<Vec<(String, String)>>;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim();
            current = Some(name.strip_prefix("profile ").map_or(name, str::trim));
            if current == Some(profile) {
                fields.get_or_insert_with(Vec::new);
            }
            continue;
        }
        if current == Some(profile)
            && let (Some(section), Some((k, v))) = (fields.as_mut(), line.split_once('='))
        {
            section.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Vars(HashMap<&'static str, String>);

    impl Environment for Vars {
        fn var(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned()
        }
    }

    fn file(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tapwire-creds-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn environment_keys_come_first() {
        let dir = tempdir("env");
        file(&dir, "credentials", "[tapwire]\naws_access_key_id = FILE\naws_secret_access_key = s\n");
        let vars = Vars(HashMap::from([
            ("AWS_ACCESS_KEY_ID", "ENVKEY".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "envsecret".to_owned()),
            ("AWS_DEFAULT_REGION", "eu-west-1".to_owned()),
        ]));
        let c = discover(&vars, Some(&dir)).unwrap();
        assert_eq!((c.key_id.as_str(), c.region.as_deref()), ("ENVKEY", Some("eu-west-1")));
    }

    #[test]
    fn a_named_profile_is_read_and_must_exist() {
        let dir = tempdir("profile");
        let path = file(
            &dir,
            "shared",
            "# comment\n[default]\naws_access_key_id = D\naws_secret_access_key = d\n\n[ops]\nAWS_ACCESS_KEY_ID = OPS\naws_secret_access_key = o=o\nregion = cn-hangzhou\n",
        );
        let vars = Vars(HashMap::from([
            ("AWS_SHARED_CREDENTIALS_FILE", path.display().to_string()),
            ("AWS_PROFILE", "ops".to_owned()),
        ]));
        let c = discover(&vars, None).unwrap();
        assert_eq!((c.key_id.as_str(), c.secret.as_str(), c.region.as_deref()), ("OPS", "o=o", Some("cn-hangzhou")));
        let missing = Vars(HashMap::from([
            ("AWS_SHARED_CREDENTIALS_FILE", path.display().to_string()),
            ("AWS_PROFILE", "nope".to_owned()),
        ]));
        let err = discover(&missing, None).unwrap_err();
        assert!(format!("{err:#}").contains("no profile [nope]"), "{err:#}");
    }

    #[test]
    fn the_data_dir_is_the_fallback_and_secrets_stay_out_of_debug() {
        let dir = tempdir("data");
        file(
            &dir,
            "credentials",
            "[tapwire]\naws_access_key_id = TWAK1\naws_secret_access_key = hush\nregion = us-east-1\n",
        );
        let c = discover(&Vars(HashMap::new()), Some(&dir)).unwrap();
        assert_eq!(c.key_id, "TWAK1");
        assert!(!format!("{c:?}").contains("hush"));
        let empty = tempdir("empty");
        assert!(discover(&Vars(HashMap::new()), Some(&empty)).is_err());
    }
}
