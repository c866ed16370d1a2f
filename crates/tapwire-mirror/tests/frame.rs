//! [`Classifier::decide_frame`] (the fused parse and decision) agrees with
//! [`FlowKey::extract`] followed by [`Classifier::decide`] on every input: random bytes
//! and built frames of every shape (VLAN, QinQ, fragments, IPv6 extension headers,
//! truncated L4), across random classifiers, both directions, counted or not.

#![allow(clippy::unwrap_used)]

mod common;

use common::Rng;
use proptest::prelude::*;
use tapwire_mirror::{Classifier, outer_source_port};
use tapwire_model::Direction;
use tapwire_wire::FlowKey;

/// Checks one frame in both directions, plain and counted.
fn check(classifier: &Classifier, frame: &[u8]) -> Result<(), TestCaseError> {
    let key = FlowKey::extract(frame).ok();
    for direction in [Direction::Ingress, Direction::Egress] {
        let want = key.as_ref().and_then(|k| classifier.decide(direction, k));
        prop_assert_eq!(classifier.decide_frame(direction, frame), want, "frame {:02x?}", frame);
        if let (Some(d), Some(k)) = (want, &key) {
            // The same port the encapsulation of the flow key would use.
            prop_assert_eq!(d.outer_source_port, outer_source_port(k));
        }
        let (mut a, mut b) = (classifier.new_counters(), classifier.new_counters());
        let counted = classifier.decide_frame_counted(direction, frame, frame.len() + 4, &mut a);
        let split = key.as_ref().and_then(|k| classifier.decide_counted(direction, k, frame.len() + 4, &mut b));
        // No key exactly when the two-stage path has none, for the same reason.
        let no_key = FlowKey::extract(frame).err();
        prop_assert_eq!(counted.as_ref().err(), no_key.as_ref());
        prop_assert_eq!(counted.ok().flatten(), want);
        prop_assert_eq!(split, want);
        prop_assert_eq!(a, b);
    }
    Ok(())
}

/// Random bytes, with the EtherType, VLAN tags and IP version nudged towards IP so most
/// frames get past the first checks.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(any::<u8>(), 0..160),
        0usize..3,
        prop_oneof![Just(0x0800u16), Just(0x86dd), any::<u16>()],
        prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
        prop_oneof![Just(6u8), Just(17), Just(1), Just(58), Just(0), Just(44), any::<u8>()],
    )
        .prop_map(|(mut f, tags, ether, first, proto)| {
            let mut at = 12;
            for _ in 0..tags {
                if f.len() >= at + 4 {
                    f[at..at + 2].copy_from_slice(&0x8100u16.to_be_bytes());
                }
                at += 4;
            }
            if f.len() >= at + 2 {
                f[at..at + 2].copy_from_slice(&ether.to_be_bytes());
            }
            if let Some(b) = f.get_mut(at + 2) {
                *b = first;
            }
            let proto_at = if ether == 0x86dd { at + 2 + 6 } else { at + 2 + 9 };
            if let Some(b) = f.get_mut(proto_at) {
                *b = proto;
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn decide_frame_agrees_on_built_frames(seed in any::<u64>()) {
        let mut rng = Rng::new(seed);
        let classifier = Classifier::compile(&common::config(&mut rng)).unwrap();
        for _ in 0..64 {
            let frame = common::packet(&mut rng).frame();
            check(&classifier, &frame)?;
            // Also cut anywhere, down to nothing.
            let cut = rng.below(frame.len() as u64 + 1) as usize;
            check(&classifier, &frame[..cut])?;
            // And with a header byte changed (tags, versions, lengths, fragment bits, ...).
            let mut bent = frame.clone();
            let at = rng.below(bent.len().min(80) as u64) as usize;
            bent[at] = rng.next() as u8;
            check(&classifier, &bent)?;
        }
    }

    #[test]
    fn decide_frame_agrees_on_arbitrary_bytes(seed in any::<u64>(), frames in proptest::collection::vec(frame_bytes(), 1..16)) {
        let classifier = Classifier::compile(&common::config(&mut Rng::new(seed))).unwrap();
        for frame in &frames {
            check(&classifier, frame)?;
        }
    }
}
