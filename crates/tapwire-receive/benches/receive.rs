//! Frames per second of the pure receive path on one core: VXLAN decapsulation plus
//! pcapng (and classic pcap) encoding into a writer, for 64-byte and 1500-byte inner
//! frames, 64 datagrams (one `recvmmsg` batch) per iteration from four (source, VNI)
//! pairs; and the same through [`Output::handle`], the receiver's whole per-datagram
//! call, into `/dev/null`. The end-to-end comparison with tcpdump is the `receive_e2e` bench. Beside the
//! pcapng path, the same with `--dedup`'s check in front (every frame new, so each is
//! keyed, remembered and written: its whole cost), as a ratio.

use std::hint::black_box;
use std::io::{self, BufWriter};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tapwire_receive::decap::decap;
use tapwire_receive::dedup::{Dedup, Seen};
use tapwire_receive::encode::{CaptureWriter, Format};
use tapwire_receive::rotate::Rotation;
use tapwire_receive::{Output, Target};
use tapwire_wire::vxlan;

const BATCH: usize = 64;

fn datagrams(frame_len: usize) -> Vec<(IpAddr, Vec<u8>)> {
    (0..BATCH)
        .map(|i| {
            let mut d = vec![0u8; vxlan::HEADER_LEN + frame_len];
            vxlan::emit_header(&mut d, 40 + (i % 2) as u32).expect("header fits");
            for (j, b) in d[vxlan::HEADER_LEN..].iter_mut().enumerate() {
                *b = (i + j) as u8;
            }
            let src = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2 + (i % 4 / 2) as u8));
            (src, d)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decap_encode");
    group.throughput(Throughput::Elements(BATCH as u64));
    for frame_len in [64usize, 1500] {
        let input = datagrams(frame_len);
        for format in [Format::Pcapng, Format::Pcap] {
            // A BufWriter over a sink: the same buffering as a real file, no disk.
            let mut w = CaptureWriter::new(BufWriter::with_capacity(1 << 20, io::sink()), format).expect("header");
            let ts = Duration::new(1_700_000_000, 0);
            group.bench_function(format!("{format:?}/{frame_len}B"), |b| {
                b.iter(|| {
                    for (src, d) in &input {
                        let (vni, frame) = decap(black_box(d)).expect("valid");
                        w.write_frame(*src, vni, ts, frame).expect("sink");
                    }
                });
            });
        }
        // The whole per-datagram path the receiver calls (decapsulation, the stream and
        // per-VNI tables, encoding), into /dev/null through the real file buffering.
        for format in [Format::Pcapng, Format::Pcap] {
            let mut output =
                Output::new(Target::File("/dev/null".into()), format, Rotation::default(), None).expect("/dev/null");
            let ts = Duration::new(1_700_000_000, 0);
            let now = Instant::now();
            group.bench_function(format!("Output/{format:?}/{frame_len}B"), |b| {
                b.iter(|| {
                    for (src, d) in &input {
                        output.handle(*src, black_box(d), ts, now).expect("/dev/null");
                    }
                });
            });
        }
        // 4,096 distinct frames, one a microsecond: a 2 ms window holds 2,000 keys, and a
        // frame comes back only after 4 ms, so every one is new (keyed, remembered and
        // written: the check's whole cost).
        let distinct: Vec<(IpAddr, Vec<u8>)> = (0..4096u32)
            .map(|n| {
                let (src, mut d) = input[n as usize % BATCH].clone();
                d[vxlan::HEADER_LEN + 14..vxlan::HEADER_LEN + 18].copy_from_slice(&n.to_be_bytes());
                (src, d)
            })
            .collect();
        let mut w = CaptureWriter::new(BufWriter::with_capacity(1 << 20, io::sink()), Format::Pcapng).expect("header");
        let mut dedup = Dedup::new(Duration::from_millis(2));
        let mut at = Duration::new(1_700_000_000, 0);
        let mut next = distinct.chunks(BATCH).cycle();
        group.bench_function(format!("Pcapng+dedup/{frame_len}B"), |b| {
            b.iter(|| {
                for (src, d) in next.next().expect("cycles") {
                    at += Duration::from_micros(1);
                    let (vni, frame) = decap(black_box(d)).expect("valid");
                    if dedup.check(frame, at) == Seen::New {
                        w.write_frame(*src, vni, at, frame).expect("sink");
                    }
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
