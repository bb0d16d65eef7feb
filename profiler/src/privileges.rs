//! Why the kernel refused a privileged operation (loading eBPF, querying taskstats), told from
//! what this process holds: its effective capabilities and seccomp mode (/proc/self/status) and
//! whether it runs in a user namespace (/proc/self/uid_map). The advice names the container
//! flag that fixes the real cause, and never tells a process that is root to run as root.

use std::path::Path;

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What this process holds, as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privileges {
    pub euid: u32,
    /// Effective capabilities (`CapEff:`), one bit per capability.
    pub cap_eff: u64,
    /// `Seccomp:`: 0 none, 1 strict, 2 a filter.
    pub seccomp: u8,
    /// The first line of /proc/self/uid_map when it is not the initial namespace's identity map.
    pub user_namespace: Option<String>,
}

/// The identity map of the initial user namespace.
fn is_initial_uid_map(text: &str) -> bool {
    let fields: Vec<&str> = text.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

impl Privileges {
    /// Reads them from `proc_root` (normally /proc).
    pub fn read(proc_root: &Path) -> Privileges {
        let status = std::fs::read_to_string(proc_root.join("self/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
        };
        let uid_map = std::fs::read_to_string(proc_root.join("self/uid_map")).unwrap_or_default();
        Privileges {
            // Uid: real, effective, saved, fs.
            euid: field("Uid:")
                .and_then(|v| v.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(u32::MAX),
            cap_eff: field("CapEff:")
                .and_then(|v| u64::from_str_radix(v, 16).ok())
                .unwrap_or(0),
            seccomp: field("Seccomp:").and_then(|v| v.parse().ok()).unwrap_or(0),
            user_namespace: (!uid_map.is_empty() && !is_initial_uid_map(&uid_map)).then(|| {
                let first = uid_map.lines().next().unwrap_or_default();
                first.split_whitespace().collect::<Vec<_>>().join(" ")
            }),
        }
    }

    pub fn has(&self, cap: u32) -> bool {
        self.cap_eff & (1 << cap) != 0
    }

    /// CAP_SYS_ADMIN stands in for CAP_BPF and CAP_PERFMON (and is required before Linux 5.8).
    fn may_bpf(&self) -> bool {
        self.has(CAP_SYS_ADMIN) || (self.has(CAP_BPF) && self.has(CAP_PERFMON))
    }

    fn user_namespace_advice(&self, map: &str, what: &str) -> String {
        format!(
            "this process runs in a user namespace (uid_map \"{map}\"), where the kernel refuses \
             {what} whatever the capabilities: run it as root in the initial user namespace (a \
             container without --userns/--uidmap, not a rootless engine)"
        )
    }
}

/// Advice for an EPERM/EACCES from loading or attaching eBPF programs.
pub fn ebpf_advice(p: &Privileges) -> String {
    if let Some(map) = &p.user_namespace {
        return p.user_namespace_advice(map, "eBPF");
    }
    if !p.may_bpf() {
        let missing = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
            .iter()
            .filter(|(cap, _)| !p.has(*cap))
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(" and ");
        if p.euid == 0 {
            return format!(
                "this process is root but lacks {missing} (CapEff {:016x}): start the container \
                 with --cap-add BPF --cap-add PERFMON (Docker >= 23, Podman; Docker 20.10 knows \
                 neither name: use --cap-add SYS_ADMIN there), or --privileged",
                p.cap_eff
            );
        }
        return format!(
            "this process lacks {missing}: run it as root, or give the binary the capabilities \
             (`setcap cap_bpf,cap_perfmon+ep profiler`)"
        );
    }
    if p.seccomp == 2 {
        return "the capabilities are held, but a seccomp filter blocks bpf() (Seccomp: 2 in \
                /proc/self/status; Podman's default profile does): start the container with \
                --security-opt seccomp=unconfined, or with a seccomp profile that allows bpf and \
                perf_event_open"
            .into();
    }
    "the capabilities are held, no seccomp filter and no user namespace are in the way: a Linux \
     security module (lockdown, SELinux, AppArmor) refused it; see the kernel log (dmesg)"
        .into()
}

/// Advice for an EPERM answer to a TASKSTATS query.
pub fn taskstats_advice(p: &Privileges) -> String {
    if let Some(map) = &p.user_namespace {
        return p.user_namespace_advice(map, "taskstats");
    }
    if !p.has(CAP_NET_ADMIN) {
        if p.euid == 0 {
            return format!(
                "this process is root but lacks CAP_NET_ADMIN (CapEff {:016x}): start the \
                 container with --cap-add NET_ADMIN, or --privileged",
                p.cap_eff
            );
        }
        return "this process lacks CAP_NET_ADMIN: run it as root, or give the binary the \
                capability (`setcap cap_net_admin+ep profiler`)"
            .into();
    }
    "CAP_NET_ADMIN is held and there is no user namespace: a Linux security module refused it; \
     see the kernel log (dmesg)"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 = (1 << 41) - 1;

    fn root(cap_eff: u64) -> Privileges {
        Privileges {
            euid: 0,
            cap_eff,
            seccomp: 0,
            user_namespace: None,
        }
    }

    #[test]
    fn reads_this_process() {
        let p = Privileges::read(Path::new("/proc"));
        // SAFETY: geteuid has no preconditions.
        assert_eq!(p.euid, unsafe { libc::geteuid() });
        let status = std::fs::read_to_string("/proc/self/status").expect("status");
        assert!(status.contains(&format!("{:016x}", p.cap_eff)), "{status}");
    }

    #[test]
    fn a_user_namespace_comes_first() {
        let p = Privileges {
            user_namespace: Some("0 100000 65536".into()),
            ..root(ALL)
        };
        let advice = ebpf_advice(&p);
        assert!(advice.contains("user namespace"), "{advice}");
        assert!(advice.contains("0 100000 65536"), "{advice}");
        assert!(taskstats_advice(&p).contains("user namespace"));
    }

    #[test]
    fn root_without_the_capabilities_is_told_the_container_flags() {
        let advice = ebpf_advice(&root(0xa80425fb));
        assert!(
            advice.contains("--cap-add BPF --cap-add PERFMON"),
            "{advice}"
        );
        assert!(advice.contains("--privileged"), "{advice}");
        assert!(!advice.contains("run it as root"), "{advice}");
        let only_bpf = ebpf_advice(&root(1 << CAP_BPF));
        assert!(only_bpf.contains("lacks CAP_PERFMON ("), "{only_bpf}");
        let net = taskstats_advice(&root(0));
        assert!(net.contains("--cap-add NET_ADMIN"), "{net}");
    }

    #[test]
    fn a_seccomp_filter_is_named_when_the_capabilities_are_held() {
        let p = Privileges {
            seccomp: 2,
            ..root((1 << CAP_BPF) | (1 << CAP_PERFMON))
        };
        let advice = ebpf_advice(&p);
        assert!(
            advice.contains("--security-opt seccomp=unconfined"),
            "{advice}"
        );
        // CAP_SYS_ADMIN alone counts as both.
        let admin = Privileges {
            seccomp: 2,
            ..root(1 << CAP_SYS_ADMIN)
        };
        assert!(ebpf_advice(&admin).contains("seccomp"));
    }

    #[test]
    fn a_user_who_is_not_root_is_told_to_become_root() {
        let p = Privileges {
            euid: 1000,
            ..root(0)
        };
        assert!(ebpf_advice(&p).contains("run it as root"));
    }
}
