//! The one list of per-task counters. Every layer derives from it: the [`Counters`] a source
//! fills (and their JSON keys), the model's notion of activity, the batch and TUI columns, the
//! exporter's metric names, and the sources' lists of what they cannot measure. Adding a
//! counter here makes the compiler point at every `match` that must say something about it.

use std::ops::{Index, IndexMut};

use serde::{Deserialize, Serialize};

/// Declares [`Counter`] and [`Counters`] from one list, so that the enum, the struct's fields
/// (also the JSON keys and the sources' field names) and their order cannot drift apart.
macro_rules! counters {
    ($( $(#[$doc:meta])* $variant:ident => $field:ident, )*) => {
        /// How many counters there are.
        pub const COUNT: usize = [$( stringify!($variant), )*].len();

        /// A per-task counter, in the order of [`Counter::ALL`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Counter {
            $( $(#[$doc])* $variant, )*
        }

        impl Counter {
            /// Every counter, in the order the JSON keys and the exporter's metrics come in.
            pub const ALL: [Counter; COUNT] = [$( Counter::$variant, )*];

            /// The field of [`Counters`], which is also its JSON key: `read_bytes`.
            pub const fn key(self) -> &'static str {
                match self {
                    $( Counter::$variant => stringify!($field), )*
                }
            }
        }

        /// One value per counter, as a source counts it. `None` means the source cannot
        /// measure that counter (not that it measured zero).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: Option<u64>, )*
        }

        impl Counters {
            pub fn get(&self, counter: Counter) -> Option<u64> {
                match counter {
                    $( Counter::$variant => self.$field, )*
                }
            }

            pub fn get_mut(&mut self, counter: Counter) -> &mut Option<u64> {
                match counter {
                    $( Counter::$variant => &mut self.$field, )*
                }
            }

            /// Every value, one per counter.
            pub fn values(&self) -> PerCounter<Option<u64>> {
                PerCounter([$( self.$field, )*])
            }
        }
    };
}

counters! {
    /// Bytes returned by read-like syscalls, page cache included.
    Rchar => rchar,
    /// Bytes passed to write-like syscalls.
    Wchar => wchar,
    /// Read-like syscalls.
    Syscr => syscr,
    /// Write-like syscalls.
    Syscw => syscw,
    /// Bytes the task caused to be read from storage.
    ReadBytes => read_bytes,
    /// Bytes of page cache the task dirtied.
    WriteBytes => write_bytes,
    /// Dirty bytes truncated away before writeback.
    CancelledWriteBytes => cancelled_write_bytes,
    /// Time waiting for block I/O (delay accounting).
    BlkioDelay => blkio_delay_ns,
    /// Time waiting for swap-in (delay accounting).
    SwapinDelay => swapin_delay_ns,
}

/// What a counter counts, which decides how every view shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Calls,
    /// Time waited; views show it as a share of the interval, the exporter in seconds.
    Nanoseconds,
}

/// Everything the views and the exporter say about one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Spec {
    pub unit: Unit,
    /// A task that moved it did I/O (`--only`); time waited does not count on its own.
    pub activity: bool,
    /// Part of the bytes moved that rank tasks for the exporter's `--top`.
    pub ranks: bool,
    /// Metric name without unit and `_total`, which the exposition appends.
    pub metric: &'static str,
    pub help: &'static str,
    /// The TUI's heading, wide and narrow (calls get `/s` appended as rates).
    pub title: &'static str,
    pub short: &'static str,
    /// The heading `iotop -b` gives it, which batch mode keeps.
    pub batch_title: &'static str,
    /// When the terminal is narrow, lower is kept first.
    pub priority: u8,
    /// A TUI column shown only on request (`x`).
    pub on_request: bool,
}

impl Counter {
    /// The TUI table's counter columns, left to right.
    pub const TABLE: &'static [Counter] = &[
        Counter::ReadBytes,
        Counter::WriteBytes,
        Counter::SwapinDelay,
        Counter::BlkioDelay,
        Counter::Syscr,
        Counter::Syscw,
        Counter::Rchar,
        Counter::Wchar,
    ];

    /// Batch mode's columns, left to right, as `iotop -b` orders them.
    pub const BATCH: &'static [Counter] = &[
        Counter::ReadBytes,
        Counter::WriteBytes,
        Counter::SwapinDelay,
        Counter::BlkioDelay,
        Counter::Rchar,
        Counter::Wchar,
        Counter::Syscr,
        Counter::Syscw,
    ];

    /// Batch mode's columns when sources are compared: exact amounts, no delays.
    pub const COMPARE: &'static [Counter] = &[
        Counter::ReadBytes,
        Counter::WriteBytes,
        Counter::Rchar,
        Counter::Wchar,
        Counter::Syscr,
        Counter::Syscw,
    ];

    pub const fn unit(self) -> Unit {
        self.spec().unit
    }

    pub const fn spec(self) -> Spec {
        match self {
            Counter::Rchar => Spec {
                unit: Unit::Bytes,
                activity: true,
                ranks: true,
                metric: "profiler_read_chars",
                help: "Bytes returned by read-like syscalls (rchar), from cache or storage",
                title: "RCHAR",
                short: "RCHAR",
                batch_title: "READ",
                priority: 12,
                on_request: true,
            },
            Counter::Wchar => Spec {
                unit: Unit::Bytes,
                activity: true,
                ranks: true,
                metric: "profiler_write_chars",
                help: "Bytes passed to write-like syscalls (wchar)",
                title: "WCHAR",
                short: "WCHAR",
                batch_title: "WRITE",
                priority: 13,
                on_request: true,
            },
            Counter::Syscr => Spec {
                unit: Unit::Calls,
                activity: true,
                ranks: false,
                metric: "profiler_read_syscalls",
                help: "Read-like syscalls (syscr)",
                title: "READ SYSCALLS",
                short: "SYSCR",
                batch_title: "SYSCR",
                priority: 7,
                on_request: false,
            },
            Counter::Syscw => Spec {
                unit: Unit::Calls,
                activity: true,
                ranks: false,
                metric: "profiler_write_syscalls",
                help: "Write-like syscalls (syscw)",
                title: "WRITE SYSCALLS",
                short: "SYSCW",
                batch_title: "SYSCW",
                priority: 8,
                on_request: false,
            },
            Counter::ReadBytes => Spec {
                unit: Unit::Bytes,
                activity: true,
                ranks: true,
                metric: "profiler_storage_read",
                help: "Bytes the task caused to be read from storage (read_bytes)",
                title: "DISK READ",
                short: "READ",
                batch_title: "DISK READ",
                priority: 2,
                on_request: false,
            },
            Counter::WriteBytes => Spec {
                unit: Unit::Bytes,
                activity: true,
                ranks: true,
                metric: "profiler_storage_write",
                help: "Bytes of page cache the task dirtied, to be written to storage \
                       (write_bytes)",
                title: "DISK WRITE",
                short: "WRITE",
                batch_title: "DISK WRITE",
                priority: 3,
                on_request: false,
            },
            Counter::CancelledWriteBytes => Spec {
                unit: Unit::Bytes,
                activity: true,
                ranks: false,
                metric: "profiler_storage_cancelled_write",
                help: "Dirty bytes truncated away before writeback (cancelled_write_bytes)",
                title: "CANCELLED WRITE",
                short: "CWRITE",
                batch_title: "CANCELLED",
                priority: 14,
                on_request: true,
            },
            Counter::BlkioDelay => Spec {
                unit: Unit::Nanoseconds,
                activity: false,
                ranks: false,
                metric: "profiler_blkio_delay",
                help: "Time spent waiting for block I/O to complete (delay accounting)",
                title: "IO>",
                short: "IO>",
                batch_title: "IO>",
                priority: 4,
                on_request: false,
            },
            Counter::SwapinDelay => Spec {
                unit: Unit::Nanoseconds,
                activity: false,
                ranks: false,
                metric: "profiler_swapin_delay",
                help: "Time spent waiting for pages to be swapped in (delay accounting)",
                title: "SWAPIN",
                short: "SWAP",
                batch_title: "SWAPIN",
                priority: 9,
                on_request: false,
            },
        }
    }
}

impl std::fmt::Display for Counter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.key())
    }
}

/// One `T` per counter, indexed by [`Counter`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerCounter<T>([T; COUNT]);

impl<T> PerCounter<T> {
    pub fn from_fn(f: impl FnMut(Counter) -> T) -> PerCounter<T> {
        PerCounter(Counter::ALL.map(f))
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> PerCounter<U> {
        PerCounter(self.0.map(f))
    }

    pub fn iter(&self) -> impl Iterator<Item = (Counter, &T)> {
        Counter::ALL.into_iter().zip(&self.0)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Counter, &mut T)> {
        Counter::ALL.into_iter().zip(&mut self.0)
    }

    /// The values in the order of [`Counter::ALL`].
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
}

impl<T> Index<Counter> for PerCounter<T> {
    type Output = T;
    fn index(&self, c: Counter) -> &T {
        &self.0[c as usize]
    }
}

impl<T> IndexMut<Counter> for PerCounter<T> {
    fn index_mut(&mut self, c: Counter) -> &mut T {
        &mut self.0[c as usize]
    }
}

impl Counters {
    pub fn from_values(values: PerCounter<Option<u64>>) -> Counters {
        let mut out = Counters::default();
        for (c, v) in values.iter() {
            *out.get_mut(c) = *v;
        }
        out
    }

    /// Counter by counter, `f(self, other)`.
    pub fn zip_with(
        &self,
        other: &Counters,
        f: impl Fn(Option<u64>, Option<u64>) -> Option<u64>,
    ) -> Counters {
        Counters::from_values(PerCounter::from_fn(|c| f(self.get(c), other.get(c))))
    }

    /// Sum where at least one side is measured.
    pub fn add(&self, other: &Counters) -> Counters {
        self.zip_with(other, |a, b| match (a, b) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_enum_the_struct_and_the_keys_agree() {
        for (i, c) in Counter::ALL.into_iter().enumerate() {
            assert_eq!(c as usize, i, "ALL is in declaration order");
            let mut counters = Counters::default();
            *counters.get_mut(c) = Some(7);
            let json = serde_json::to_value(counters).expect("serialises");
            assert_eq!(json[c.key()], 7, "{c} is its JSON key");
            assert_eq!(counters.values()[c], Some(7));
        }
    }

    #[test]
    fn view_lists_name_each_counter_once() {
        for list in [Counter::TABLE, Counter::BATCH, Counter::COMPARE] {
            let mut seen = std::collections::HashSet::new();
            assert!(list.iter().all(|c| seen.insert(*c)), "{list:?}");
        }
    }

    #[test]
    fn add_keeps_unmeasured_counters_unmeasured() {
        let a = Counters {
            rchar: Some(1),
            ..Default::default()
        };
        let b = Counters {
            rchar: Some(2),
            wchar: Some(5),
            ..Default::default()
        };
        let s = a.add(&b);
        assert_eq!(s.rchar, Some(3));
        assert_eq!(s.wchar, Some(5));
        assert_eq!(s.syscr, None);
    }
}
