//! Where frames go and when a file is closed for the next one: split keys, file names,
//! the rotation policy and the parsers for `--rotate 100MB` / `--rotate-interval 60s`.
//!
//! Pure: no I/O. A file is never rotated before it holds one frame, so a frame larger
//! than the size limit still gets written (alone in its file) instead of looping.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::encode::Format;

/// How `--write-dir` spreads frames over files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SplitBy {
    /// One file per VNI: `vni-42.pcapng`.
    Vni,
    /// One file per outer source address: `src-198.18.0.2.pcapng`.
    Source,
}

/// Which file a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SplitKey {
    /// Everything in one file.
    All,
    /// One VNI.
    Vni(u32),
    /// One outer source address.
    Source(IpAddr),
    /// Every key past the split limit: `src-other.pcapng` or `vni-other.pcapng`.
    Overflow(SplitBy),
}

impl SplitKey {
    /// The key of a frame from `src` on `vni` under `split`.
    pub fn of(split: Option<SplitBy>, src: IpAddr, vni: u32) -> Self {
        match split {
            None => SplitKey::All,
            Some(SplitBy::Vni) => SplitKey::Vni(vni),
            Some(SplitBy::Source) => SplitKey::Source(src),
        }
    }

    /// File name of this key's first file inside `--write-dir`.
    pub fn file_name(self, format: Format) -> String {
        let ext = format.extension();
        match self {
            SplitKey::All => format!("mirror.{ext}"),
            SplitKey::Vni(vni) => format!("vni-{vni}.{ext}"),
            SplitKey::Source(src) => format!("src-{src}.{ext}"),
            SplitKey::Overflow(SplitBy::Vni) => format!("vni-other.{ext}"),
            SplitKey::Overflow(SplitBy::Source) => format!("src-other.{ext}"),
        }
    }
}

/// Path of the `seq`-th file of a stream: `base` itself, then `base.1`, `base.2`, …
/// (numbers grow with time, as with `tcpdump -C`).
pub fn rotated_path(base: &Path, seq: u32) -> PathBuf {
    if seq == 0 {
        return base.to_path_buf();
    }
    let mut name = base.as_os_str().to_os_string();
    name.push(format!(".{seq}"));
    PathBuf::from(name)
}

/// When to close a file and start the next one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rotation {
    /// Close before a record would make the file larger than this many bytes.
    pub max_bytes: Option<u64>,
    /// Close once the file has been open this long (checked when a frame arrives).
    pub max_age: Option<Duration>,
}

impl Rotation {
    /// True when the next record (`next_record` bytes) must go to a new file.
    pub fn due(&self, file_bytes: u64, file_frames: u64, age: Duration, next_record: u64) -> bool {
        if file_frames == 0 {
            return false;
        }
        self.max_bytes.is_some_and(|max| file_bytes.saturating_add(next_record) > max)
            || self.max_age.is_some_and(|max| age >= max)
    }
}

/// Parses a byte size: `1500`, `64KB`, `100MB`, `2GB` (powers of 1000, as `tcpdump -C`),
/// `64KiB`, `32MiB`, `1GiB` (powers of 1024). Case-insensitive; `K`/`M`/`G` alone mean
/// KB/MB/GB.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a size (e.g. 100MB)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        other => {
            return Err(format!("unknown size unit `{other}` (use KB, MB, GB, KiB, MiB, GiB)"));
        }
    };
    let v = n.checked_mul(mult).ok_or_else(|| format!("`{s}` is too large"))?;
    if v == 0 {
        return Err("size must be greater than zero".into());
    }
    Ok(v)
}

/// Parses a duration: `500ms`, `60s`, `5m`, `1h`; a bare number means seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| format!("`{s}` is not a duration (e.g. 60s)"))?;
    let d = match unit.trim().to_ascii_lowercase().as_str() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        other => return Err(format!("unknown duration unit `{other}` (use ms, s, m, h)")),
    };
    if d.is_zero() {
        return Err("duration must be greater than zero".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("64kb"), Ok(64_000));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("1500"), Ok(1500));
        assert_eq!(parse_size("32MiB"), Ok(32 << 20));
        assert!(parse_size("MB").is_err());
        assert!(parse_size("10XB").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("99999999999999GB").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1d").is_err());
    }

    #[test]
    fn names_and_rotation_suffixes() {
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(SplitKey::of(Some(SplitBy::Vni), src, 42).file_name(Format::Pcapng), "vni-42.pcapng");
        assert_eq!(SplitKey::of(Some(SplitBy::Source), src, 42).file_name(Format::Pcap), "src-198.18.0.2.pcap");
        assert_eq!(SplitKey::of(None, src, 42), SplitKey::All);
        assert_eq!(SplitKey::Overflow(SplitBy::Vni).file_name(Format::Pcapng), "vni-other.pcapng");
        assert_eq!(SplitKey::Overflow(SplitBy::Source).file_name(Format::Pcap), "src-other.pcap");
        let base = Path::new("/x/vni-42.pcapng");
        assert_eq!(rotated_path(base, 0), PathBuf::from("/x/vni-42.pcapng"));
        assert_eq!(rotated_path(base, 2), PathBuf::from("/x/vni-42.pcapng.2"));
    }

    #[test]
    fn rotation_policy() {
        let size = Rotation { max_bytes: Some(1000), max_age: None };
        assert!(!size.due(900, 3, Duration::ZERO, 100));
        assert!(size.due(901, 3, Duration::ZERO, 100));
        // An empty file takes any frame, however large.
        assert!(!size.due(28, 0, Duration::ZERO, 5000));
        let age = Rotation { max_bytes: None, max_age: Some(Duration::from_secs(60)) };
        assert!(!age.due(1 << 40, 1, Duration::from_secs(59), 100));
        assert!(age.due(10, 1, Duration::from_secs(60), 100));
        assert!(!Rotation::default().due(u64::MAX, u64::MAX, Duration::MAX, u64::MAX));
    }
}
