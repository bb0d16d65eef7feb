//! Decodes `struct taskstats` (include/uapi/linux/taskstats.h) from the payload of a
//! TASKSTATS_TYPE_STATS attribute, by the struct's `version` field and the payload's length.
//!
//! The struct is meant to grow only at its end, and did, except once: v15 put a
//! `*_delay_max`/`*_delay_min` pair right after each delay total, in the middle, and v16 moved
//! them all to the end again. So v15 has a layout of its own; every other version shares the
//! layout of v14, cut at the length the kernel sent (a field past it is absent, not zero).

/// `TS_COMM_LEN`.
pub const COMM_LEN: usize = 32;

/// The fields of one `struct taskstats` this program uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Taskstats {
    pub version: u16,
    /// `ac_comm`, NUL-padded.
    pub comm: [u8; COMM_LEN],
    /// `ac_uid`, in the user namespace of the asking process.
    pub uid: u32,
    /// `ac_pid`: the thread id, in the pid namespace of the asking process.
    pub pid: u32,
    /// `ac_tgid` (v12 on).
    pub tgid: Option<u32>,
    /// When the task started, whole seconds since the epoch: `ac_btime64` (v10 on), else `ac_btime`.
    /// The kernel derives it afresh for every reply, so it can move by one second between replies.
    pub btime_s: u64,
    /// `ac_etime`: microseconds since the task started, as of the reply (or of the exit).
    pub etime_us: u64,
    pub read_char: u64,
    pub write_char: u64,
    pub read_syscalls: u64,
    pub write_syscalls: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
    pub blkio_delay_total: u64,
    pub swapin_delay_total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("struct taskstats of {len} bytes has no version field")]
    NoVersion { len: usize },
    #[error(
        "struct taskstats v{version} of {len} bytes is cut short: its I/O fields need {needed}"
    )]
    Truncated {
        version: u16,
        len: usize,
        needed: usize,
    },
}

/// Byte offsets of the fields [`Taskstats`] reads.
struct Layout {
    blkio_delay_total: usize,
    swapin_delay_total: usize,
    comm: usize,
    uid: usize,
    pid: usize,
    btime: usize,
    etime: usize,
    read_char: usize,
    write_char: usize,
    read_syscalls: usize,
    write_syscalls: usize,
    read_bytes: usize,
    write_bytes: usize,
    cancelled_write_bytes: usize,
    btime64: usize,
    tgid: usize,
}

/// Every version but 15.
const COMMON: Layout = Layout {
    blkio_delay_total: 40,
    swapin_delay_total: 56,
    comm: 80,
    uid: 120,
    pid: 128,
    btime: 136,
    etime: 144,
    read_char: 216,
    write_char: 224,
    read_syscalls: 232,
    write_syscalls: 240,
    read_bytes: 248,
    write_bytes: 256,
    cancelled_write_bytes: 264,
    btime64: 344,
    tgid: 368,
};

/// v15: 16 more bytes after each of cpu, blkio, swapin, freepages, thrashing, compact and wpcopy
/// `_delay_total`, so each field sits 16 bytes further per delay total before it.
const V15: Layout = Layout {
    blkio_delay_total: 40 + 16,
    swapin_delay_total: 56 + 2 * 16,
    comm: 80 + 3 * 16,
    uid: 120 + 3 * 16,
    pid: 128 + 3 * 16,
    btime: 136 + 3 * 16,
    etime: 144 + 3 * 16,
    read_char: 216 + 3 * 16,
    write_char: 224 + 3 * 16,
    read_syscalls: 232 + 3 * 16,
    write_syscalls: 240 + 3 * 16,
    read_bytes: 248 + 3 * 16,
    write_bytes: 256 + 3 * 16,
    cancelled_write_bytes: 264 + 3 * 16,
    // After freepages (v8) and thrashing (v9).
    btime64: 344 + 5 * 16,
    // After compact (v11) as well.
    tgid: 368 + 6 * 16,
};

/// Size of `struct taskstats` of each version this decoder knows in full (on 64-bit targets);
/// a kernel that sends another size for one of these runs a patched struct.
pub fn known_size(version: u16) -> Option<usize> {
    match version {
        8 => Some(328),
        9 => Some(344),
        10 => Some(352),
        11 => Some(368),
        12 => Some(400),
        13 => Some(416),
        14 => Some(432),
        15 | 16 => Some(560),
        _ => None,
    }
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(off..off + 8)?.try_into().ok()?))
}

/// Decodes the payload of a TASKSTATS_TYPE_STATS attribute.
pub fn decode(b: &[u8]) -> Result<Taskstats, DecodeError> {
    let version = u16_at(b, 0).ok_or(DecodeError::NoVersion { len: b.len() })?;
    let l = if version == 15 { &V15 } else { &COMMON };
    // The last field every reply must carry; the comm, ids and delays all lie before it.
    let needed = l.cancelled_write_bytes + 8;
    let truncated = DecodeError::Truncated {
        version,
        len: b.len(),
        needed,
    };
    if b.len() < needed {
        return Err(truncated);
    }
    let field = |off| u64_at(b, off).ok_or_else(|| truncated.clone());
    let field32 = |off| u32_at(b, off).ok_or_else(|| truncated.clone());
    let btime_s = match u64_at(b, l.btime64).filter(|_| version >= 10) {
        Some(btime64) => btime64,
        None => u64::from(field32(l.btime)?),
    };
    let mut comm = [0; COMM_LEN];
    comm.copy_from_slice(&b[l.comm..l.comm + COMM_LEN]);
    Ok(Taskstats {
        version,
        comm,
        uid: field32(l.uid)?,
        pid: field32(l.pid)?,
        tgid: u32_at(b, l.tgid).filter(|_| version >= 12),
        btime_s,
        etime_us: field(l.etime)?,
        read_char: field(l.read_char)?,
        write_char: field(l.write_char)?,
        read_syscalls: field(l.read_syscalls)?,
        write_syscalls: field(l.write_syscalls)?,
        read_bytes: field(l.read_bytes)?,
        write_bytes: field(l.write_bytes)?,
        cancelled_write_bytes: field(l.cancelled_write_bytes)?,
        blkio_delay_total: field(l.blkio_delay_total)?,
        swapin_delay_total: field(l.swapin_delay_total)?,
    })
}

#[cfg(test)]
mod tests {
    //! Byte images built from the header's field lists, laid out by C's rules, independently of
    //! the offset tables above.

    use std::collections::HashMap;

    use super::*;

    /// (name, size, alignment)
    type Field = (&'static str, usize, usize);

    fn u64s(names: &[&'static str]) -> Vec<Field> {
        names.iter().map(|&n| (n, 8, 8)).collect()
    }

    /// The members of `struct taskstats` in declaration order, as of `version` (8 and on).
    fn fields(version: u16) -> Vec<Field> {
        let v15 = version == 15;
        let max_min = |kind: &str| -> Vec<Field> {
            if !v15 {
                return Vec::new();
            }
            let (max, min): (&'static str, &'static str) = match kind {
                "cpu" => ("cpu_delay_max", "cpu_delay_min"),
                "blkio" => ("blkio_delay_max", "blkio_delay_min"),
                "swapin" => ("swapin_delay_max", "swapin_delay_min"),
                "freepages" => ("freepages_delay_max", "freepages_delay_min"),
                "thrashing" => ("thrashing_delay_max", "thrashing_delay_min"),
                "compact" => ("compact_delay_max", "compact_delay_min"),
                "wpcopy" => ("wpcopy_delay_max", "wpcopy_delay_min"),
                _ => ("irq_delay_max", "irq_delay_min"),
            };
            u64s(&[max, min])
        };
        let mut f: Vec<Field> = vec![
            ("version", 2, 2),
            ("ac_exitcode", 4, 4),
            ("ac_flag", 1, 1),
            ("ac_nice", 1, 1),
        ];
        f.extend(u64s(&["cpu_count", "cpu_delay_total"]));
        f.extend(max_min("cpu"));
        f.extend(u64s(&["blkio_count", "blkio_delay_total"]));
        f.extend(max_min("blkio"));
        f.extend(u64s(&["swapin_count", "swapin_delay_total"]));
        f.extend(max_min("swapin"));
        f.extend(u64s(&["cpu_run_real_total", "cpu_run_virtual_total"]));
        f.extend([
            ("ac_comm", COMM_LEN, 1),
            ("ac_sched", 1, 8),
            ("ac_pad", 3, 1),
            ("ac_uid", 4, 8),
            ("ac_gid", 4, 4),
            ("ac_pid", 4, 4),
            ("ac_ppid", 4, 4),
            ("ac_btime", 4, 4),
        ]);
        f.extend(u64s(&[
            "ac_etime",
            "ac_utime",
            "ac_stime",
            "ac_minflt",
            "ac_majflt",
            "coremem",
            "virtmem",
            "hiwater_rss",
            "hiwater_vm",
            "read_char",
            "write_char",
            "read_syscalls",
            "write_syscalls",
            "read_bytes",
            "write_bytes",
            "cancelled_write_bytes",
            "nvcsw",
            "nivcsw",
            "ac_utimescaled",
            "ac_stimescaled",
            "cpu_scaled_run_real_total",
            "freepages_count",
            "freepages_delay_total",
        ]));
        f.extend(max_min("freepages"));
        if version >= 9 {
            f.extend(u64s(&["thrashing_count", "thrashing_delay_total"]));
            f.extend(max_min("thrashing"));
        }
        if version >= 10 {
            f.extend(u64s(&["ac_btime64"]));
        }
        if version >= 11 {
            f.extend(u64s(&["compact_count", "compact_delay_total"]));
            f.extend(max_min("compact"));
        }
        if version >= 12 {
            f.push(("ac_tgid", 4, 4));
            f.extend(u64s(&["ac_tgetime", "ac_exe_dev", "ac_exe_inode"]));
        }
        if version >= 13 {
            f.extend(u64s(&["wpcopy_count", "wpcopy_delay_total"]));
            f.extend(max_min("wpcopy"));
        }
        if version >= 14 {
            f.extend(u64s(&["irq_count", "irq_delay_total"]));
            f.extend(max_min("irq"));
        }
        if version >= 16 {
            for kind in [
                "cpu",
                "blkio",
                "swapin",
                "freepages",
                "thrashing",
                "compact",
                "wpcopy",
                "irq",
            ] {
                f.extend(u64s(&[
                    leak(format!("{kind}_delay_max")),
                    leak(format!("{kind}_delay_min")),
                ]));
            }
        }
        if version >= 17 {
            // v17 appends; which fields differed between the proposals. The decoder reads none.
            f.extend(u64s(&["v17_a", "v17_b", "v17_c", "v17_d"]));
        }
        f
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    /// Lays the fields out as a C compiler does and fills each with a value of its own.
    fn image(version: u16) -> (Vec<u8>, HashMap<&'static str, u64>) {
        let mut bytes = Vec::new();
        let mut values = HashMap::new();
        for (i, (name, size, align)) in fields(version).into_iter().enumerate() {
            bytes.resize(bytes.len().next_multiple_of(align), 0xee);
            let value = match name {
                "version" => u64::from(version),
                // Different in every field, and wider than 32 bits where the field is.
                _ => (i as u64 + 1) * 0x0100_0000_0101,
            };
            if name == "ac_comm" {
                let mut comm = [0u8; COMM_LEN];
                comm[..8].copy_from_slice(b"workload");
                bytes.extend_from_slice(&comm);
            } else {
                bytes.extend_from_slice(&value.to_ne_bytes()[..size]);
                values.insert(name, value & (u64::MAX >> (64 - 8 * size)));
            }
        }
        bytes.resize(bytes.len().next_multiple_of(8), 0xee);
        (bytes, values)
    }

    fn check(version: u16) {
        let (bytes, v) = image(version);
        let t = decode(&bytes).unwrap_or_else(|e| panic!("v{version}: {e}"));
        assert_eq!(t.version, version);
        assert_eq!(&t.comm[..9], b"workload\0");
        assert_eq!(u64::from(t.uid), v["ac_uid"], "v{version} ac_uid");
        assert_eq!(u64::from(t.pid), v["ac_pid"], "v{version} ac_pid");
        assert_eq!(t.etime_us, v["ac_etime"], "v{version} ac_etime");
        assert_eq!(t.read_char, v["read_char"], "v{version} read_char");
        assert_eq!(t.write_char, v["write_char"], "v{version} write_char");
        assert_eq!(
            t.read_syscalls, v["read_syscalls"],
            "v{version} read_syscalls"
        );
        assert_eq!(
            t.write_syscalls, v["write_syscalls"],
            "v{version} write_syscalls"
        );
        assert_eq!(t.read_bytes, v["read_bytes"], "v{version} read_bytes");
        assert_eq!(t.write_bytes, v["write_bytes"], "v{version} write_bytes");
        assert_eq!(
            t.cancelled_write_bytes, v["cancelled_write_bytes"],
            "v{version} cancelled_write_bytes"
        );
        assert_eq!(
            t.blkio_delay_total, v["blkio_delay_total"],
            "v{version} blkio_delay_total"
        );
        assert_eq!(
            t.swapin_delay_total, v["swapin_delay_total"],
            "v{version} swapin_delay_total"
        );
        let btime = if version >= 10 {
            v["ac_btime64"]
        } else {
            v["ac_btime"]
        };
        assert_eq!(t.btime_s, btime, "v{version} btime");
        assert_eq!(
            t.tgid.map(u64::from),
            v.get("ac_tgid").copied(),
            "v{version} ac_tgid"
        );
        if let Some(size) = known_size(version) {
            assert_eq!(bytes.len(), size, "v{version} size");
        }
    }

    #[test]
    fn decodes_v10() {
        check(10);
    }

    #[test]
    fn decodes_v14() {
        check(14);
    }

    #[test]
    fn decodes_v15_with_its_mid_struct_fields() {
        check(15);
        // Same size as v16, different places: only the version tells them apart.
        assert_eq!(image(15).0.len(), image(16).0.len());
    }

    #[test]
    fn decodes_v16() {
        check(16);
    }

    #[test]
    fn decodes_a_later_version_that_appends() {
        check(17);
    }

    #[test]
    fn known_sizes_match_the_field_lists() {
        for version in 8..=16 {
            assert_eq!(
                known_size(version),
                Some(image(version).0.len()),
                "v{version}"
            );
        }
    }

    /// Only a taskstats reply tells the running kernel's version, so the check against the live
    /// kernel is in tests/tests/taskstats.rs; here, every version from 8 on.
    #[test]
    fn decodes_every_known_version() {
        for version in 8..=17 {
            check(version);
        }
    }

    #[test]
    fn a_truncated_struct_is_an_error_not_a_panic() {
        let (bytes, _) = image(16);
        let needed = COMMON.cancelled_write_bytes + 8;
        assert_eq!(
            decode(&bytes[..needed - 1]),
            Err(DecodeError::Truncated {
                version: 16,
                len: needed - 1,
                needed
            })
        );
        assert_eq!(decode(&[]), Err(DecodeError::NoVersion { len: 0 }));
        assert_eq!(decode(&[16]), Err(DecodeError::NoVersion { len: 1 }));
        // v15 needs more than the common layout for the same fields.
        let (v15, _) = image(15);
        assert!(matches!(
            decode(&v15[..needed]),
            Err(DecodeError::Truncated { version: 15, .. })
        ));
        for version in [10, 14, 15, 16, 17] {
            let (bytes, _) = image(version);
            for len in 0..=bytes.len() {
                let _ = decode(&bytes[..len]);
            }
        }
    }

    /// Bounded fuzz: images of every version, with random bytes changed, cut or extended,
    /// and pure noise. Decoding returns an error or a struct; it never panics.
    #[test]
    fn random_and_damaged_structs_never_panic() {
        let mut rng = crate::fuzz::Rng::from_env("taskstats decoder");
        let images: Vec<Vec<u8>> = (8..=17).map(|v| image(v).0).collect();
        for _ in 0..5_000 {
            let mut b = match rng.below(4) {
                0 => {
                    let len = rng.below(700);
                    rng.bytes(len)
                }
                _ => rng.pick(&images).clone(),
            };
            for _ in 0..rng.below(8) {
                if !b.is_empty() {
                    let at = rng.below(b.len());
                    b[at] = rng.next_u64() as u8;
                }
            }
            if rng.below(3) == 0 && !b.is_empty() {
                // Any version number, the layouts it selects included.
                let v = (rng.next_u64() as u16).to_ne_bytes();
                b[0] = v[0];
                if b.len() > 1 {
                    b[1] = v[1];
                }
            }
            match rng.below(3) {
                0 => b.truncate(rng.below(b.len() + 1)),
                1 => {
                    let more = rng.below(64);
                    b.extend(rng.bytes(more));
                }
                _ => {}
            }
            if let Ok(t) = decode(&b) {
                assert_eq!(Some(t.version), u16_at(&b, 0), "version as sent");
            }
        }
    }

    #[test]
    fn fields_past_the_length_are_absent_not_zero() {
        // A v12 struct cut before ac_tgid (as a kernel sending fewer bytes than its version).
        let (bytes, v) = image(12);
        let t = decode(&bytes[..368]).expect("decodes");
        assert_eq!(t.tgid, None);
        assert_eq!(t.btime_s, v["ac_btime64"]);
        let t = decode(&bytes[..344]).expect("decodes");
        assert_eq!(t.btime_s, v["ac_btime"], "falls back to the 32-bit btime");
    }
}
