//! What reaches a sensor from the network: any sequence of datagrams (or, for
//! `--capture`, of captured frames) never panics the receiver's output, and every
//! datagram lands in exactly one of its counters, with `--count`, `--dedup` and
//! `--allow-source` on or off as the input says.
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tapwire_receive::decap;
use tapwire_receive::rotate::Rotation;
use tapwire_receive::{Format, Output, Target};

const SOURCES: [[u8; 4]; 4] = [[198, 18, 0, 1], [198, 18, 9, 9], [198, 19, 0, 1], [198, 19, 255, 254]];

fuzz_target!(|data: &[u8]| {
    let Some((&options, mut rest)) = data.split_first() else { return };
    let format = if options & 1 == 0 { Format::Pcapng } else { Format::Pcap };
    let limit = (options & 2 != 0).then_some(u64::from(options >> 4));
    let Ok(mut out) = Output::new(Target::File("/dev/null".into()), format, Rotation::default(), limit) else {
        return;
    };
    if options & 4 != 0 {
        out = out.with_dedup(Duration::from_millis(50));
    }
    if options & 8 != 0 {
        out = out.with_allowed_sources(vec!["198.18.0.0/16".parse().unwrap()]);
    }
    let now = Instant::now();
    let mut received = 0u64;
    // Each datagram: a length byte, a byte saying the source (and whether it is a
    // captured frame), then that many bytes.
    while let [len, how, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (bytes, next) = tail.split_at(len);
        rest = next;
        let source = IpAddr::from(SOURCES[usize::from(how & 3)]);
        let ts = Duration::from_micros(received * 10);
        let datagram = if how & 4 != 0 {
            match decap::outer_udp(bytes, 4789) {
                Ok(outer) => outer.payload,
                Err(why) => {
                    out.handle_skipped(bytes.len(), why);
                    received += 1;
                    continue;
                }
            }
        } else {
            bytes
        };
        let _ = out.handle(source, datagram, ts, now);
        received += 1;
        let s = out.stats();
        assert_eq!(s.received, received);
        assert_eq!(s.settled(), s.received, "{s:?}");
        assert!(limit.is_none_or(|l| s.written <= l));
    }
    let _ = out.flush();
});
