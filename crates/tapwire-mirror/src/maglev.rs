//! Maglev consistent hashing (Eisenbud et al., NSDI 2016): a lookup table of [`TABLE_SIZE`]
//! slots, each naming one member, built when a configuration is applied; a flow's slot is
//! its hash modulo the size, so choosing a member costs one load on the packet path.
//!
//! Invariants:
//! - Each member fills its own preference list (an offset and a skip from its name, not
//!   its position), taking turns, so members hold within one slot of an even share.
//! - When a member goes, only its slots (and a few others) move: the rest keep their
//!   member, so the flows of the others stay where they were.

/// Slots in a table: a prime, well over 100 × the most members a group has.
pub const TABLE_SIZE: usize = 65_537;

/// FNV-1a over `bytes`, from `seed`.
fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(seed, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A lookup table over named members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maglev {
    slots: Vec<u8>,
}

impl Maglev {
    /// The table of `members` (names, at most 255); `None` without any.
    pub fn build<S: AsRef<[u8]>>(members: &[S]) -> Option<Self> {
        if members.is_empty() || members.len() > usize::from(u8::MAX) {
            return None;
        }
        let size = TABLE_SIZE as u64;
        let prefs: Vec<(u64, u64)> = members
            .iter()
            .map(|m| {
                let name = m.as_ref();
                (fnv(0xcbf2_9ce4_8422_2325, name) % size, fnv(0x8422_2325_cbf2_9ce4, name) % (size - 1) + 1)
            })
            .collect();
        let mut next = vec![0u64; members.len()];
        let mut slots = vec![u8::MAX; TABLE_SIZE];
        let mut filled = 0;
        'fill: loop {
            for (i, &(offset, skip)) in prefs.iter().enumerate() {
                let mut slot = (offset + next[i] * skip) % size;
                while slots[slot as usize] != u8::MAX {
                    next[i] += 1;
                    slot = (offset + next[i] * skip) % size;
                }
                slots[slot as usize] = i as u8;
                next[i] += 1;
                filled += 1;
                if filled == TABLE_SIZE {
                    break 'fill;
                }
            }
        }
        Some(Self { slots })
    }

    /// The member of a flow of hash `flow_hash`.
    #[inline]
    pub fn member(&self, flow_hash: u64) -> usize {
        usize::from(self.slots[(flow_hash % TABLE_SIZE as u64) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("eni-{i:017x}")).collect()
    }

    #[test]
    fn members_hold_an_even_share() {
        let table = Maglev::build(&names(3)).unwrap();
        let mut share = [0usize; 3];
        for slot in 0..TABLE_SIZE as u64 {
            share[table.member(slot)] += 1;
        }
        for s in share {
            assert!(s.abs_diff(TABLE_SIZE / 3) <= 1, "{share:?}");
        }
    }

    #[test]
    fn a_member_gone_moves_little_but_its_own_slots() {
        let all = names(5);
        let before = Maglev::build(&all).unwrap();
        // The third member goes; the others keep their names, so their preferences.
        let rest: Vec<String> = all.iter().enumerate().filter(|(i, _)| *i != 2).map(|(_, n)| n.clone()).collect();
        let after = Maglev::build(&rest).unwrap();
        let name_after = |i: usize| &rest[i];
        let (mut moved, mut its_own) = (0, 0);
        for slot in 0..TABLE_SIZE as u64 {
            let was = &all[before.member(slot)];
            if was == &all[2] {
                its_own += 1;
            } else if was != name_after(after.member(slot)) {
                moved += 1;
            }
        }
        assert!(its_own > 0);
        // Maglev's bound is loose; in practice a few percent of the others' slots move.
        assert!(moved * 100 <= (TABLE_SIZE - its_own) * 5, "{moved} of the others' slots moved");
    }

    #[test]
    fn no_members_no_table() {
        assert!(Maglev::build::<&str>(&[]).is_none());
        assert_eq!(Maglev::build(&["only"]).unwrap().member(12345), 0);
    }
}
