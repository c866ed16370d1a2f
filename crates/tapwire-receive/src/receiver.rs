//! Socket I/O: `SO_REUSEPORT` UDP sockets, one `recvmmsg` worker thread each, or
//! `--capture` rings ([`crate::capture`]), one worker thread each, and the supervising
//! loop (periodic flush, live status line, shutdown).
//!
//! Invariants: every socket has `SO_RCVTIMEO` set, so a worker notices the stop flag
//! within [`WAKE`]; after a stop by signal each worker drains what its socket already
//! holds (bounded by [`DRAIN_LIMIT`]) before the final flush, so datagrams the kernel
//! accepted before the signal are written; receive buffers are allocated once per
//! worker and reused.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use socket2::{Domain, Protocol, Socket, Type};

use crate::decap::Malformed;
use crate::sink::{Flow, MAX_VNI_COUNTS, Output, Stats};
use crate::sys::{RecvBatch, enable_receive_timestamps, set_rcvbuf_force, thread_cpu_time};

/// Datagrams per `recvmmsg` call.
pub const BATCH: usize = 64;
/// Bytes per receive slot: the largest UDP payload, so nothing is ever cut.
pub const SLOT: usize = 65_536;
/// How often an idle worker wakes to look at the stop flag.
pub const WAKE: Duration = Duration::from_millis(100);
/// How long the drain after a stop may take at most.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Pause after a short batch; bounds the added latency per datagram.
pub const COALESCE: Duration = Duration::from_micros(200);
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Bound sockets or open rings, ready to run.
pub struct Receiver {
    input: Input,
    local: SocketAddr,
    rcvbuf: usize,
}

/// One worker's loop, over the shared output and stop flag.
type WorkerFn = Box<dyn FnOnce(&Mutex<Output>, &AtomicBool) -> anyhow::Result<()> + Send>;

/// Where datagrams come from.
enum Input {
    Sockets(Vec<Socket>),
    Rings(crate::capture::Rings),
}

/// What a run did.
#[derive(Debug)]
pub struct Summary {
    /// The final counters.
    pub stats: Stats,
    /// Wall time from start to the final flush.
    pub elapsed: Duration,
    /// CPU time (user + system) of the receive workers.
    pub worker_cpu: Duration,
    /// The first error that ended the run, if any.
    pub error: Option<anyhow::Error>,
}

impl Receiver {
    /// Binds `workers` sockets to `listen` with `SO_REUSEPORT` (port 0: the first
    /// socket picks a free port and the others join it) and asks for `rcvbuf` bytes of
    /// receive buffer (forced past `rmem_max` when allowed).
    pub fn bind(listen: SocketAddr, workers: usize, rcvbuf: usize) -> anyhow::Result<Self> {
        let mut addr = listen;
        let mut sockets = Vec::with_capacity(workers.max(1));
        for _ in 0..workers.max(1) {
            let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
            s.set_reuse_port(true)?;
            if set_rcvbuf_force(&s, rcvbuf).is_err() {
                s.set_recv_buffer_size(rcvbuf)?;
            }
            s.set_read_timeout(Some(WAKE))?;
            enable_receive_timestamps(&s).context("asking for receive timestamps")?;
            s.bind(&addr.into()).with_context(|| format!("cannot listen on {addr}"))?;
            if addr.port() == 0 {
                addr = s.local_addr()?.as_socket().context("socket has no inet address")?;
            }
            sockets.push(s);
        }
        let rcvbuf = sockets[0].recv_buffer_size()?;
        Ok(Self { input: Input::Sockets(sockets), local: addr, rcvbuf })
    }

    /// Opens `workers` capture rings on `interface` for UDP to `listen`'s port
    /// (`--capture`; see [`crate::capture`]).
    pub fn capture(interface: &str, listen: SocketAddr, workers: usize) -> anyhow::Result<Self> {
        let rings = crate::capture::open(interface, listen, workers)?;
        let local = rings.listen;
        let rcvbuf = rings.blocker.recv_buffer_size()?;
        Ok(Self { input: Input::Rings(rings), local, rcvbuf })
    }

    /// The address the sockets are bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Number of sockets or rings (= worker threads).
    pub fn workers(&self) -> usize {
        match &self.input {
            Input::Sockets(sockets) => sockets.len(),
            Input::Rings(rings) => rings.rings.len(),
        }
    }

    /// The receive buffer the kernel granted (as `SO_RCVBUF` reports it).
    pub fn rcvbuf(&self) -> usize {
        self.rcvbuf
    }

    /// Receives until `stop` is set (by a signal, `--count` or an error), then drains,
    /// flushes and returns the summary. `status` draws the live line on stderr.
    pub fn run(self, output: Output, stop: Arc<AtomicBool>, status: bool) -> Summary {
        let start = Instant::now();
        let output = Arc::new(Mutex::new(output));
        let spawn = |run: WorkerFn| {
            let (output, stop) = (Arc::clone(&output), Arc::clone(&stop));
            thread::spawn(move || {
                let result = run(&output, &stop);
                // Whatever ended this worker ends the run.
                stop.store(true, Ordering::SeqCst);
                (result, thread_cpu_time())
            })
        };
        let (handles, _blocker): (Vec<_>, _) = match self.input {
            Input::Sockets(sockets) => {
                (sockets.into_iter().map(|socket| spawn(Box::new(move |o, s| worker(&socket, o, s)))).collect(), None)
            }
            Input::Rings(rings) => {
                let listen = rings.listen;
                let handles = rings
                    .rings
                    .into_iter()
                    .map(|mut ring| spawn(Box::new(move |o, s| crate::capture::worker(&mut ring, listen, o, s))))
                    .collect();
                (handles, Some(rings.blocker))
            }
        };

        let mut line = StatusLine::new(start);
        let mut last_flush = Instant::now();
        let mut error: Option<anyhow::Error> = None;
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(WAKE);
            if last_flush.elapsed() >= FLUSH_EVERY {
                last_flush = Instant::now();
                let mut out = lock(&output);
                if let Err(e) = out.flush() {
                    error.get_or_insert(anyhow::Error::new(e).context("flush"));
                    stop.store(true, Ordering::SeqCst);
                }
                if status {
                    line.draw(out.stats());
                }
            }
        }

        let mut worker_cpu = Duration::ZERO;
        for h in handles {
            match h.join() {
                Ok((result, cpu)) => {
                    worker_cpu += cpu;
                    if let Err(e) = result {
                        error.get_or_insert(e);
                    }
                }
                Err(_) => {
                    error.get_or_insert(anyhow::anyhow!("a receive worker panicked"));
                }
            }
        }
        let mut out = lock(&output);
        if let Err(e) = out.flush() {
            error.get_or_insert(anyhow::Error::new(e).context("final flush"));
        }
        if status {
            line.clear();
        }
        Summary { stats: out.stats().clone(), elapsed: start.elapsed(), worker_cpu, error }
    }
}

pub(crate) fn lock(output: &Mutex<Output>) -> MutexGuard<'_, Output> {
    // A worker that panicked mid-batch leaves counters and buffers consistent enough
    // to flush what was written; keep going.
    output.lock().unwrap_or_else(|p| p.into_inner())
}

fn worker(socket: &Socket, output: &Mutex<Output>, stop: &AtomicBool) -> anyhow::Result<()> {
    let mut batch = RecvBatch::new(BATCH, SLOT);
    while !stop.load(Ordering::Relaxed) {
        match batch.recv(socket, false) {
            Ok(n) => {
                if deliver(&batch, n, output)? == Flow::Stop {
                    stop.store(true, Ordering::SeqCst);
                    return Ok(());
                }
                // A short batch means the socket ran dry: let a few more datagrams
                // queue up instead of paying one syscall for every one or two of them
                // (interrupt coalescing; the rcvbuf absorbs the pause).
                if n < BATCH {
                    thread::sleep(COALESCE);
                }
            }
            Err(e) if is_idle(&e) => {}
            Err(e) => return Err(anyhow::Error::new(e).context("recvmmsg")),
        }
    }
    // Stopped from outside (signal, another worker): take what the kernel already holds.
    let deadline = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < deadline {
        match batch.recv(socket, true) {
            Ok(0) => break,
            Ok(n) => {
                if deliver(&batch, n, output)? == Flow::Stop {
                    break;
                }
            }
            Err(e) if is_idle(&e) => break,
            Err(e) => return Err(anyhow::Error::new(e).context("recvmmsg")),
        }
    }
    Ok(())
}

fn is_idle(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Hands one batch to the output under one lock. Each datagram carries the time the
/// kernel received it (`SO_TIMESTAMPNS`); one without falls back to the time the batch
/// was read.
fn deliver(batch: &RecvBatch, n: usize, output: &Mutex<Output>) -> anyhow::Result<Flow> {
    let read_at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = Instant::now();
    let mut out = lock(output);
    let mut flow = Flow::Continue;
    for i in 0..n {
        let d = batch.get(i);
        let src = d.src.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if d.truncated {
            out.handle_skipped(d.payload.len(), Malformed::Truncated);
            continue;
        }
        if out.handle(src, d.payload, d.received_at.unwrap_or(read_at), now)? == Flow::Stop {
            flow = Flow::Stop;
        }
    }
    if out.end_batch()? == Flow::Stop {
        flow = Flow::Stop;
    }
    Ok(flow)
}

/// The live one-line summary on a terminal, redrawn in place with `\r`.
struct StatusLine {
    last: Instant,
    last_received: u64,
    last_bytes: u64,
    last_vni: Vec<(u32, u64)>,
}

impl StatusLine {
    fn new(start: Instant) -> Self {
        Self { last: start, last_received: 0, last_bytes: 0, last_vni: Vec::new() }
    }

    fn draw(&mut self, s: &Stats) {
        let dt = self.last.elapsed().as_secs_f64().max(1e-3);
        let (text, vnis) = self.text(s, dt);
        let mut err = io::stderr().lock();
        let _ = write!(err, "\r\x1b[K{text}");
        let _ = err.flush();
        self.last = Instant::now();
        self.last_received = s.written;
        self.last_bytes = s.written_bytes;
        self.last_vni = vnis;
    }

    /// The line for `s`, `dt` seconds after the last one, and the VNI counts it shows.
    fn text(&self, s: &Stats, dt: f64) -> (String, Vec<(u32, u64)>) {
        let pps = (s.written - self.last_received) as f64 / dt;
        let bps = (s.written_bytes - self.last_bytes) as f64 * 8.0 / dt;
        let mut vnis: Vec<(u32, u64)> = s.per_vni.iter().map(|(&v, c)| (v, c.frames)).collect();
        vnis.sort_unstable_by_key(|&(vni, frames)| (std::cmp::Reverse(frames), vni));
        let mut per_vni = String::new();
        for &(vni, frames) in vnis.iter().take(4) {
            let before = self.last_vni.iter().find(|(v, _)| *v == vni).map_or(0, |&(_, f)| f);
            per_vni.push_str(&format!(" | vni {vni}: {} pkts {}pps", frames, human((frames - before) as f64 / dt)));
        }
        if vnis.len() > 4 {
            per_vni.push_str(&format!(" | +{} vnis", vnis.len() - 4));
        }
        if s.other_vnis.frames > 0 {
            per_vni.push_str(&format!(" | {} pkts of vnis past the first {MAX_VNI_COUNTS}", s.other_vnis.frames));
        }
        let mut refused = String::new();
        if s.refused_source > 0 {
            refused.push_str(&format!(" refused {} (source)", s.refused_source));
        }
        if s.other_destination > 0 {
            refused.push_str(&format!(" skipped {} (other address)", s.other_destination));
        }
        let text = format!(
            "written {} pkts {}B ({}pps {}b/s) malformed {}{refused}{per_vni}",
            s.written,
            human(s.written_bytes as f64),
            human(pps),
            human(bps),
            s.malformed(),
        );
        (text, vnis)
    }

    fn clear(&self) {
        let _ = write!(io::stderr().lock(), "\r\x1b[K");
    }
}

/// 1234567 → "1.23M": counts and rates for a person (also `tapwire session status`).
pub fn human(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(12.0), "12");
        assert_eq!(human(1234.0), "1.2k");
        assert_eq!(human(2_500_000.0), "2.50M");
        assert_eq!(human(3e9), "3.00G");
    }

    #[test]
    fn the_live_line_shows_rates_since_the_last_and_every_refusal() {
        let mut stats = Stats { written: 3_000, written_bytes: 1_500_000, ..Stats::default() };
        stats.per_vni.insert(7, crate::sink::VniCount { frames: 2_000, bytes: 1_000_000 });
        stats.per_vni.insert(9, crate::sink::VniCount { frames: 1_000, bytes: 500_000 });
        let mut line = StatusLine::new(Instant::now());
        line.last_received = 1_000;
        line.last_bytes = 500_000;
        line.last_vni = vec![(7, 1_000)];
        let (text, _) = line.text(&stats, 2.0);
        assert_eq!(
            text,
            "written 3000 pkts 1.50MB (1.0kpps 4.00Mb/s) malformed 0 | vni 7: 2000 pkts 500pps | vni 9: 1000 pkts 500pps"
        );
        stats.refused_source = 4;
        stats.other_destination = 2;
        stats.short = 1;
        let (text, _) = line.text(&stats, 2.0);
        assert!(text.contains("malformed 1 refused 4 (source) skipped 2 (other address) | vni 7"), "{text}");
    }
}
