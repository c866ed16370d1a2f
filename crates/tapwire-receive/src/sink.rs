//! The demultiplexer: datagrams in, counted and written to the right capture file.
//!
//! [`Output`] owns every open file, the rotation policy, the `--count` limit and the
//! counters. It is shared by the receive workers behind one mutex taken once per batch.
//! Invariants: every datagram handed in is counted exactly once (written, refused for
//! its source, malformed or over the limit); a file is flushed before it is closed; once the limit is reached
//! nothing more is written. Steady state (known file, known interface, known VNI)
//! allocates nothing.
//!
//! Bounded against spoofed sources and VNIs: `--split-by` opens at most the split limit
//! of files (later keys share `src-other`/`vni-other`), each pcapng file describes at
//! most [`crate::encode::MAX_INTERFACES`] pairs, and at most [`MAX_VNI_COUNTS`] VNIs are
//! counted one by one; every frame past a limit is still written, and counted.

use std::collections::hash_map::Entry;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use crate::Map;
use crate::decap::{Malformed, decap};
use crate::dedup::{Dedup, Seen};
use crate::encode::{CaptureWriter, Format, Recorded};
use crate::rotate::{Rotation, SplitBy, SplitKey, rotated_path};

/// Write buffer of the one stream of `--write`, `--stdout` or an unsplit `--write-dir`.
const WRITE_BUFFER: usize = 1 << 20;
/// Write buffer of each `--split-by` stream: split limit × this is the worst case.
const SPLIT_WRITE_BUFFER: usize = 64 << 10;
/// Default `--split-limit`: keys `--split-by` gives a file of their own.
pub const DEFAULT_SPLIT_LIMIT: u16 = 256;
/// VNIs counted one by one; frames of later VNIs are counted together
/// ([`Stats::other_vnis`]).
pub const MAX_VNI_COUNTS: usize = 4096;

/// Where frames are written.
#[derive(Debug, Clone)]
pub enum Target {
    /// One file (plus rotated `.1`, `.2`, … files).
    File(PathBuf),
    /// A directory, one stream per split key.
    Dir {
        /// The directory (created if missing).
        dir: PathBuf,
        /// How to split; `None` writes `mirror.<ext>`.
        split: Option<SplitBy>,
    },
    /// Standard output, flushed after every batch.
    Stdout,
}

/// Packets and bytes of one VNI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VniCount {
    /// Frames written.
    pub frames: u64,
    /// Inner frame bytes written.
    pub bytes: u64,
}

/// Everything counted so far.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// Datagrams received (valid or not, refused included).
    pub received: u64,
    /// Datagrams from an outer source outside `--allow-source`, written nowhere.
    pub refused_source: u64,
    /// `--capture`: frames to the port on another of the host's addresses than
    /// `--listen`'s, written nowhere and not counted as received.
    pub other_destination: u64,
    /// UDP payload bytes received.
    pub received_bytes: u64,
    /// Frames written.
    pub written: u64,
    /// Inner frame bytes written.
    pub written_bytes: u64,
    /// Datagrams shorter than the VXLAN header.
    pub short: u64,
    /// Datagrams without the I flag.
    pub no_i_flag: u64,
    /// Inner frames shorter than an Ethernet header.
    pub runt: u64,
    /// Datagrams larger than the receive buffer.
    pub truncated: u64,
    /// `--capture`: outer fragments skipped (a capture does not reassemble them).
    pub fragmented: u64,
    /// `--capture`: frames whose outer headers could not be read.
    pub outer_malformed: u64,
    /// `--capture`: packets the kernel dropped because a capture ring was full.
    pub ring_drops: u64,
    /// Valid frames not written because `--count` was reached.
    pub over_limit: u64,
    /// Files opened (rotations included).
    pub files: u64,
    /// Receive batches (`recvmmsg` calls that returned datagrams).
    pub batches: u64,
    /// Per-VNI counts of written frames (the first [`MAX_VNI_COUNTS`] VNIs seen).
    pub per_vni: Map<u32, VniCount>,
    /// Written frames of VNIs past the first [`MAX_VNI_COUNTS`].
    pub other_vnis: VniCount,
    /// Frames written to the `src-other`/`vni-other` file: their key came after the
    /// split limit was reached.
    pub split_overflow: u64,
    /// pcapng frames recorded on a file's overflow interface: their (source, VNI) came
    /// after the file described [`crate::encode::MAX_INTERFACES`] pairs.
    pub interface_overflow: u64,
    /// Copies dropped by `--dedup` as identical to one within the window.
    pub duplicates: u64,
    /// `--dedup` keys forgotten before their window ended, for room.
    pub dedup_evicted: u64,
}

impl Stats {
    /// All malformed datagrams.
    pub fn malformed(&self) -> u64 {
        self.short + self.no_i_flag + self.runt + self.truncated + self.fragmented + self.outer_malformed
    }

    /// Datagrams that reached an outcome: written, malformed, duplicate, refused for its
    /// source, or over the limit. Each received datagram has exactly one, so this always
    /// equals `received`.
    pub fn settled(&self) -> u64 {
        self.written + self.malformed() + self.duplicates + self.refused_source + self.over_limit
    }

    /// Counts one skipped datagram.
    pub fn count_malformed(&mut self, why: Malformed) {
        match why {
            Malformed::Short => self.short += 1,
            Malformed::NoIFlag => self.no_i_flag += 1,
            Malformed::Runt => self.runt += 1,
            Malformed::Truncated => self.truncated += 1,
            Malformed::Fragment => self.fragmented += 1,
            Malformed::Outer => self.outer_malformed += 1,
        }
    }
}

/// Whether the workers should keep going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep receiving.
    Continue,
    /// `--count` frames are written (or standard output was closed): stop.
    Stop,
}

struct Stream {
    writer: CaptureWriter<Box<dyn Write + Send>>,
    /// First file of the stream; `None` for standard output.
    base: Option<PathBuf>,
    seq: u32,
    opened: Instant,
}

/// Open files, policy and counters. See the module docs.
pub struct Output {
    target: Target,
    format: Format,
    rotation: Rotation,
    limit: Option<u64>,
    streams: Map<SplitKey, Stream>,
    /// Most `--split-by` keys with a file of their own.
    split_limit: usize,
    stats: Stats,
    closed: bool,
    dedup: Option<Dedup>,
    /// `--allow-source`: the outer sources accepted; empty accepts every source.
    allowed_sources: Vec<IpNet>,
}

impl Output {
    /// Prepares the output. `--write` files and standard output are opened (and get
    /// their file header) at once, so a reader sees a valid stream before any packet;
    /// `--write-dir` files are opened on their first frame.
    pub fn new(target: Target, format: Format, rotation: Rotation, limit: Option<u64>) -> io::Result<Self> {
        let mut out = Self {
            target,
            format,
            rotation,
            limit,
            streams: Map::default(),
            split_limit: usize::from(DEFAULT_SPLIT_LIMIT),
            stats: Stats::default(),
            closed: false,
            dedup: None,
            allowed_sources: Vec::new(),
        };
        match &out.target {
            Target::Dir { dir, .. } => fs::create_dir_all(dir)?,
            Target::File(_) | Target::Stdout => {
                let stream = open(&out.target, out.format, &mut out.stats, SplitKey::All)?;
                out.streams.insert(SplitKey::All, stream);
            }
        }
        Ok(out)
    }

    /// Gives at most `limit` (at least 1) `--split-by` keys a file of their own.
    pub fn with_split_limit(mut self, limit: usize) -> Self {
        self.split_limit = limit.max(1);
        self
    }

    /// Drops copies identical to one received within `window` ([`Dedup`]).
    pub fn with_dedup(mut self, window: Duration) -> Self {
        self.dedup = Some(Dedup::new(window));
        self
    }

    /// Counts a captured frame to the port on another address than the one listened on.
    pub fn count_other_destination(&mut self) {
        self.stats.other_destination += 1;
    }

    /// Accepts datagrams only from outer sources in `nets` (none: from every source).
    pub fn with_allowed_sources(mut self, nets: Vec<IpNet>) -> Self {
        self.allowed_sources = nets;
        self
    }

    fn split(&self) -> Option<SplitBy> {
        match &self.target {
            Target::Dir { split, .. } => *split,
            Target::File(_) | Target::Stdout => None,
        }
    }

    /// Counts and (if valid) writes one datagram from `src`, received at `ts` (since
    /// the Unix epoch); `now` drives time rotation.
    pub fn handle(&mut self, src: IpAddr, datagram: &[u8], ts: Duration, now: Instant) -> io::Result<Flow> {
        self.stats.received += 1;
        self.stats.received_bytes += datagram.len() as u64;
        if !self.allowed_sources.is_empty() && !self.allowed_sources.iter().any(|net| net.contains(&src)) {
            self.stats.refused_source += 1;
            return Ok(self.flow());
        }
        match decap(datagram) {
            Ok((_, frame))
                if self.dedup.as_mut().is_some_and(|d| {
                    let seen = d.check(frame, ts);
                    self.stats.dedup_evicted = d.evicted_early;
                    seen == Seen::Duplicate
                }) =>
            {
                self.stats.duplicates += 1;
                Ok(self.flow())
            }
            Ok((vni, frame)) => self.write(src, vni, frame, ts, now),
            Err(why) => {
                self.stats.count_malformed(why);
                Ok(self.flow())
            }
        }
    }

    /// Counts a datagram or captured frame of `len` bytes skipped for `why`.
    pub fn handle_skipped(&mut self, len: usize, why: Malformed) {
        self.stats.received += 1;
        self.stats.received_bytes += len as u64;
        self.stats.count_malformed(why);
    }

    /// Adds packets the kernel dropped at a full capture ring.
    pub fn record_ring_drops(&mut self, drops: u64) {
        self.stats.ring_drops += drops;
    }

    fn flow(&self) -> Flow {
        if self.closed || self.limit.is_some_and(|l| self.stats.written >= l) { Flow::Stop } else { Flow::Continue }
    }

    fn write(&mut self, src: IpAddr, vni: u32, frame: &[u8], ts: Duration, now: Instant) -> io::Result<Flow> {
        if self.flow() == Flow::Stop {
            self.stats.over_limit += 1;
            return Ok(Flow::Stop);
        }
        let split = self.split();
        let mut key = SplitKey::of(split, src, vni);
        // Only at the limit does a new key cost a second lookup; the overflow stream
        // itself is one of `streams`, so own keys never pass the limit.
        if let Some(by) = split
            && self.streams.len() >= self.split_limit
            && !self.streams.contains_key(&key)
        {
            key = SplitKey::Overflow(by);
        }
        if let SplitKey::Overflow(_) = key {
            self.stats.split_overflow += 1;
        }
        let stream = match self.streams.entry(key) {
            Entry::Occupied(known) => known.into_mut(),
            Entry::Vacant(new) => new.insert(open(&self.target, self.format, &mut self.stats, key)?),
        };
        let next = stream.writer.format().record_len(frame.len());
        if let Some(base) = &stream.base
            && self.rotation.due(
                stream.writer.bytes(),
                stream.writer.frames(),
                now.saturating_duration_since(stream.opened),
                next,
            )
        {
            let seq = stream.seq + 1;
            let path = rotated_path(base, seq);
            stream.writer.flush()?;
            stream.writer = CaptureWriter::new(file_sink(key, &path)?, self.format)?;
            stream.seq = seq;
            stream.opened = now;
            self.stats.files += 1;
        }
        match stream.writer.write_frame(src, vni, ts, frame) {
            Ok(Recorded::Own) => {}
            Ok(Recorded::Overflow) => self.stats.interface_overflow += 1,
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe && stream.base.is_none() => {
                // The reader of standard output went away (e.g. `| head`): a normal end.
                self.closed = true;
                return Ok(Flow::Stop);
            }
            Err(e) => return Err(e),
        }
        self.stats.written += 1;
        self.stats.written_bytes += frame.len() as u64;
        let per_vni = &mut self.stats.per_vni;
        let v = if per_vni.len() < MAX_VNI_COUNTS || per_vni.contains_key(&vni) {
            per_vni.entry(vni).or_default()
        } else {
            &mut self.stats.other_vnis
        };
        v.frames += 1;
        v.bytes += frame.len() as u64;
        Ok(self.flow())
    }

    /// Flushes standard output at the end of a batch (files are flushed by [`Self::flush`]).
    pub fn end_batch(&mut self) -> io::Result<Flow> {
        self.stats.batches += 1;
        if matches!(self.target, Target::Stdout) {
            self.flush()?;
        }
        Ok(self.flow())
    }

    /// Flushes every open file. A closed standard output is a normal end, not an error.
    pub fn flush(&mut self) -> io::Result<()> {
        let mut first_err = None;
        for stream in self.streams.values_mut() {
            match stream.writer.flush() {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe && stream.base.is_none() => {
                    self.closed = true;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Paths of the files opened so far (the current file of each stream).
    pub fn current_files(&self) -> Vec<PathBuf> {
        self.streams.values().filter_map(|s| s.base.as_deref().map(|b| rotated_path(b, s.seq))).collect()
    }
}

/// Opens the stream of `key` (a file, or standard output), counting it in `stats`.
/// Takes the output's fields rather than the output, so a caller can hold one of its
/// table entries meanwhile.
fn open(target: &Target, format: Format, stats: &mut Stats, key: SplitKey) -> io::Result<Stream> {
    let base = match target {
        Target::File(path) => Some(path.clone()),
        Target::Dir { dir, .. } => Some(dir.join(key.file_name(format))),
        Target::Stdout => None,
    };
    let sink: Box<dyn Write + Send> = match &base {
        Some(path) => file_sink(key, path)?,
        // A File on a duplicate of fd 1 skips Stdout's line buffering.
        None => {
            Box::new(BufWriter::with_capacity(WRITE_BUFFER, File::from(io::stdout().as_fd().try_clone_to_owned()?)))
        }
    };
    stats.files += 1;
    Ok(Stream { writer: CaptureWriter::new(sink, format)?, base, seq: 0, opened: Instant::now() })
}

/// A new file at `path` for `key`'s stream, buffered: split streams are many, so
/// theirs buffer less.
fn file_sink(key: SplitKey, path: &Path) -> io::Result<Box<dyn Write + Send>> {
    let capacity = if key == SplitKey::All { WRITE_BUFFER } else { SPLIT_WRITE_BUFFER };
    let file = File::create(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(Box::new(BufWriter::with_capacity(capacity, file)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use tapwire_wire::vxlan;

    fn datagram(vni: u32, inner: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; vxlan::HEADER_LEN];
        vxlan::emit_header(&mut d, vni).unwrap();
        d.extend_from_slice(inner);
        d
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tapwire-receive-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    /// An unlimited pcapng output into `dir`, split by `by`.
    fn split_output(dir: &Path, by: SplitBy) -> Output {
        let target = Target::Dir { dir: dir.to_path_buf(), split: Some(by) };
        Output::new(target, Format::Pcapng, Rotation::default(), None).unwrap()
    }

    #[test]
    fn splits_by_vni_and_counts_everything_once() {
        let dir = temp_dir("split");
        let mut out = split_output(&dir, SplitBy::Vni);
        let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2));
        let now = Instant::now();
        for vni in [1, 2, 1, 3] {
            out.handle(src, &datagram(vni, &[0x11; 60]), Duration::ZERO, now).unwrap();
        }
        out.handle(src, &[8, 0, 0], Duration::ZERO, now).unwrap();
        out.handle(src, &[0; 40], Duration::ZERO, now).unwrap();
        out.handle(src, &datagram(1, &[0; 5]), Duration::ZERO, now).unwrap();
        out.flush().unwrap();
        let s = out.stats();
        assert_eq!((s.received, s.written, s.malformed()), (7, 4, 3));
        assert_eq!((s.short, s.no_i_flag, s.runt), (1, 1, 1));
        assert_eq!(s.per_vni[&1], VniCount { frames: 2, bytes: 120 });
        assert_eq!(names(&dir), ["vni-1.pcapng", "vni-2.pcapng", "vni-3.pcapng"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn keys_past_the_split_limit_share_the_other_file_and_are_counted() {
        let dir = temp_dir("split-limit");
        let mut out = split_output(&dir, SplitBy::Source).with_split_limit(2);
        let now = Instant::now();
        let source = |n: u8| IpAddr::V4(Ipv4Addr::new(198, 18, 0, n));
        // 1 and 2 get files; 3 and 4 go to src-other; 1 again keeps its own file.
        for n in [1, 2, 3, 4, 1, 3] {
            out.handle(source(n), &datagram(9, &[n; 60]), Duration::ZERO, now).unwrap();
        }
        out.flush().unwrap();
        let s = out.stats();
        assert_eq!((s.written, s.split_overflow, s.files), (6, 3, 3));
        assert_eq!(names(&dir), ["src-198.18.0.1.pcapng", "src-198.18.0.2.pcapng", "src-other.pcapng"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn vnis_past_the_counted_ones_are_counted_together() {
        let mut out = Output::new(Target::File("/dev/null".into()), Format::Pcap, Rotation::default(), None).unwrap();
        let (src, now) = (IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), Instant::now());
        for vni in 0..MAX_VNI_COUNTS as u32 + 2 {
            out.handle(src, &datagram(vni, &[0; 60]), Duration::ZERO, now).unwrap();
        }
        out.handle(src, &datagram(0, &[0; 60]), Duration::ZERO, now).unwrap();
        let s = out.stats();
        assert_eq!(s.per_vni.len(), MAX_VNI_COUNTS);
        assert_eq!(s.per_vni[&0].frames, 2);
        assert_eq!(s.other_vnis, VniCount { frames: 2, bytes: 120 });
    }

    #[test]
    fn rotates_by_size_with_numbered_suffixes() {
        let dir = temp_dir("rotate");
        let path = dir.join("m.pcap");
        fs::create_dir_all(&dir).unwrap();
        // pcap: 24-byte header + 3 records of 16 + 100 bytes fit in 400; the 4th does not.
        let mut out = Output::new(
            Target::File(path.clone()),
            Format::Pcap,
            Rotation { max_bytes: Some(400), max_age: None },
            None,
        )
        .unwrap();
        let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..7 {
            out.handle(src, &datagram(5, &[0x22; 100]), Duration::ZERO, Instant::now()).unwrap();
        }
        out.flush().unwrap();
        assert_eq!(names(&dir), ["m.pcap", "m.pcap.1", "m.pcap.2"]);
        let sizes: Vec<u64> =
            ["m.pcap", "m.pcap.1", "m.pcap.2"].iter().map(|n| fs::metadata(dir.join(n)).unwrap().len()).collect();
        assert_eq!(sizes, [24 + 3 * 116, 24 + 3 * 116, 24 + 116]);
        assert_eq!(out.stats().files, 3);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotates_by_age() {
        let dir = temp_dir("age");
        let path = dir.join("t.pcapng");
        fs::create_dir_all(&dir).unwrap();
        let mut out = Output::new(
            Target::File(path),
            Format::Pcapng,
            Rotation { max_bytes: None, max_age: Some(Duration::from_secs(60)) },
            None,
        )
        .unwrap();
        let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let t0 = Instant::now();
        let d = datagram(5, &[0x22; 64]);
        out.handle(src, &d, Duration::ZERO, t0).unwrap();
        out.handle(src, &d, Duration::ZERO, t0 + Duration::from_secs(59)).unwrap();
        out.handle(src, &d, Duration::ZERO, t0 + Duration::from_secs(61)).unwrap();
        out.flush().unwrap();
        assert_eq!(names(&dir), ["t.pcapng", "t.pcapng.1"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stops_at_the_limit_and_writes_no_more() {
        let dir = temp_dir("limit");
        let mut out =
            Output::new(Target::Dir { dir: dir.clone(), split: None }, Format::Pcapng, Rotation::default(), Some(2))
                .unwrap();
        let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let d = datagram(5, &[0x22; 64]);
        let flows: Vec<Flow> = (0..3).map(|_| out.handle(src, &d, Duration::ZERO, Instant::now()).unwrap()).collect();
        assert_eq!(flows, [Flow::Continue, Flow::Stop, Flow::Stop]);
        assert_eq!((out.stats().written, out.stats().over_limit), (2, 1));
        assert_eq!(names(&dir), ["mirror.pcapng"]);
        fs::remove_dir_all(&dir).unwrap();
    }
}
