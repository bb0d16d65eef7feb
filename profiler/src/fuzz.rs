//! A small seeded random generator for the bounded fuzz tests: fast enough to run a few
//! thousand cases in CI, and reproducible (the seed is printed; `FUZZ_SEED=N` replays it).

pub struct Rng(u64);

impl Rng {
    /// Seeded from `FUZZ_SEED`, else from the clock; says which on stderr.
    pub fn from_env(test: &str) -> Rng {
        let seed = std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            });
        eprintln!("{test}: FUZZ_SEED={seed}");
        Rng(seed | 1)
    }

    /// The same sequence every run, for benchmarks that must measure one workload.
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    /// xorshift64*.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// In `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, from: &'a [T]) -> &'a T {
        &from[self.below(from.len())]
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
