//! Running CRC-64 of an RDB stream, updated as bytes are fed, with the ability to take back the
//! bytes fed after the EOF opcode (the checksum covers the magic through the `FF` byte only).

use crc::{Crc, Table};

use crate::proto::crc64;

static CRC: Crc<u64, Table<16>> = crc64::REDIS;

/// CRC-64/Redis state (reflected, init 0, xorout 0: the state is the checksum value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RunningCrc {
    state: u64,
}

impl RunningCrc {
    /// Adds `data` at the end.
    pub(crate) fn update(&mut self, data: &[u8]) {
        // `digest_with_initial` reflects its argument; the state is kept reflected already.
        let mut d = CRC.digest_with_initial(self.state.reverse_bits());
        d.update(data);
        self.state = d.finalize();
    }

    /// Removes `tail`, which must be the last bytes added, from the end.
    pub(crate) fn rewind(&mut self, tail: &[u8]) {
        let table = &CRC.table()[0];
        // The top byte of table[i] is distinct for every i: it identifies the index.
        let mut by_top = [0u8; 256];
        for (i, t) in table.iter().enumerate() {
            by_top[(t >> 56) as usize] = i as u8;
        }
        let mut s = self.state;
        for &b in tail.iter().rev() {
            let idx = by_top[(s >> 56) as usize];
            s = ((s ^ table[usize::from(idx)]) << 8) | u64::from(idx ^ b);
        }
        self.state = s;
    }

    /// The checksum of everything added so far.
    pub(crate) fn value(&self) -> u64 {
        self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn incremental_and_rewind(a in proptest::collection::vec(any::<u8>(), 0..300),
                                  b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut c = RunningCrc::default();
            c.update(&a);
            prop_assert_eq!(c.value(), crc64::checksum(&a));
            c.update(&b);
            let mut ab = a.clone();
            ab.extend_from_slice(&b);
            prop_assert_eq!(c.value(), crc64::checksum(&ab));
            c.rewind(&b);
            prop_assert_eq!(c.value(), crc64::checksum(&a));
        }
    }
}
