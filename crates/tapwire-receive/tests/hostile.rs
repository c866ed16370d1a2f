//! Hostile input at the sensor: anyone who can reach the VXLAN port can send anything.
//! Arbitrary datagrams never panic [`Output::handle`], and each lands in exactly one of
//! its counters (written, malformed, duplicate, refused source, over the limit), whatever
//! mix of `--count`, `--dedup` and `--allow-source` is on; arbitrary captured frames never
//! panic [`decap::outer_udp`], and a well-formed one gives exactly its UDP payload.

#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use tapwire_receive::decap::{self, Malformed};
use tapwire_receive::rotate::Rotation;
use tapwire_receive::{Format, Output, Target};
use tapwire_wire::build::{FrameSpec, L4};
use tapwire_wire::vxlan;

const SOURCES: [[u8; 4]; 3] = [[198, 18, 0, 1], [198, 18, 7, 9], [198, 19, 0, 1]];

/// A datagram: random bytes, or a VXLAN header (flags chosen to be valid or not) over
/// random inner bytes, or a copy of an earlier datagram (what `--dedup` looks for).
#[derive(Debug, Clone)]
enum Sent {
    Bytes(Vec<u8>),
    Vxlan { flags: u8, vni: u32, inner: Vec<u8> },
    Again(usize),
}

fn sent() -> impl Strategy<Value = (usize, Sent)> {
    let sent = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Sent::Bytes),
        (prop_oneof![Just(vxlan::FLAG_I), any::<u8>()], 0u32..4, prop::collection::vec(any::<u8>(), 0..120))
            .prop_map(|(flags, vni, inner)| Sent::Vxlan { flags, vni, inner }),
        (0usize..64).prop_map(Sent::Again),
    ];
    (0..SOURCES.len(), sent)
}

fn bytes(sent: &Sent, earlier: &[Vec<u8>]) -> Vec<u8> {
    match sent {
        Sent::Bytes(b) => b.clone(),
        Sent::Vxlan { flags, vni, inner } => {
            let mut d = vec![0u8; vxlan::HEADER_LEN];
            vxlan::emit_header(&mut d, *vni).unwrap();
            d[0] = *flags;
            d.extend_from_slice(inner);
            d
        }
        Sent::Again(i) => earlier.get(i % earlier.len().max(1)).cloned().unwrap_or_default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_datagram_lands_in_exactly_one_counter(
        datagrams in prop::collection::vec(sent(), 1..80),
        limit in prop::option::of(0u64..30),
        dedup in any::<bool>(),
        allow in any::<bool>(),
        pcapng in any::<bool>(),
    ) {
        let format = if pcapng { Format::Pcapng } else { Format::Pcap };
        let mut out = Output::new(Target::File("/dev/null".into()), format, Rotation::default(), limit).unwrap();
        if dedup {
            out = out.with_dedup(Duration::from_millis(100));
        }
        if allow {
            out = out.with_allowed_sources(vec!["198.18.0.0/16".parse().unwrap()]);
        }
        let now = Instant::now();
        let mut earlier = Vec::new();
        for (i, (source, sent)) in datagrams.iter().enumerate() {
            let datagram = bytes(sent, &earlier);
            let _ = out.handle(IpAddr::from(SOURCES[*source]), &datagram, Duration::from_micros(i as u64), now).unwrap();
            earlier.push(datagram);
            let s = out.stats();
            prop_assert_eq!(s.received, i as u64 + 1);
            prop_assert_eq!(s.settled(), s.received, "{:?}", s);
            prop_assert!(limit.is_none_or(|l| s.written <= l), "{:?}", s);
        }
        out.flush().unwrap();
    }

    #[test]
    fn arbitrary_captured_frames_never_panic_the_outer_parse(
        frame in prop::collection::vec(any::<u8>(), 0..200),
        port in any::<u16>(),
    ) {
        if let Ok(outer) = decap::outer_udp(&frame, port) {
            // The payload lies inside the frame.
            let start = outer.payload.as_ptr() as usize - frame.as_ptr() as usize;
            prop_assert!(start + outer.payload.len() <= frame.len());
        }
    }

    #[test]
    fn a_well_formed_udp_frame_gives_exactly_its_payload(
        v6 in any::<bool>(),
        tags in 0usize..3,
        payload_len in 0usize..300,
        fragment in prop_oneof![Just((0u16, false)), Just((0, true)), Just((8, false))],
        padding in 0usize..40,
    ) {
        let (source, destination): (IpAddr, IpAddr) = if v6 {
            ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
        } else {
            ([198, 18, 0, 1].into(), [198, 18, 0, 2].into())
        };
        // IPv6 fragments are an extension header, which this builder leaves to IPv4.
        let (fragment_offset, more_fragments) = if v6 { (0, false) } else { fragment };
        let mut frame = FrameSpec {
            vlan_tags: (0..tags).map(|i| (0x8100, 10 + i as u16)).collect(),
            source,
            destination,
            l4: L4::Udp { source_port: 50000, destination_port: 4789 },
            payload_len,
            fragment_offset,
            more_fragments,
            ..FrameSpec::default()
        }
        .to_bytes();
        let udp_end = frame.len();
        // Ethernet padding after the packet never reaches the output.
        frame.extend(std::iter::repeat_n(0xee, padding));
        match decap::outer_udp(&frame, 4789) {
            Ok(outer) => {
                prop_assert!(fragment_offset == 0 && !more_fragments);
                prop_assert_eq!((outer.source, outer.destination), (source, destination));
                prop_assert_eq!(outer.payload, &frame[udp_end - payload_len..udp_end]);
            }
            Err(why) => {
                prop_assert!(fragment_offset != 0 || more_fragments, "{:?}", why);
                prop_assert_eq!(why, Malformed::Fragment);
            }
        }
        // To another port, it is not ours (a fragment stays a fragment: no port to read).
        let elsewhere = if fragment_offset == 0 && !more_fragments { Malformed::Outer } else { Malformed::Fragment };
        prop_assert_eq!(decap::outer_udp(&frame, 4790).err(), Some(elsewhere));
    }
}
