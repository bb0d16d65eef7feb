//! The one line of a BPF verifier log that says why a program was rejected: people read the
//! reason in an announcement or a JSON field; the whole log is for `-v`.

/// Lines the verifier prints after its verdict, or as context, that never are the reason.
fn is_noise(line: &str) -> bool {
    line.starts_with("processed ")
        || line.starts_with("verification time")
        || line.starts_with("stack depth")
        || line.starts_with("max_states_per_insn")
        || line.starts_with("peak_states")
        || line.starts_with("mark_read")
        || line.starts_with("; ")
        || line.starts_with("func#")
        || line.starts_with("-- BEGIN PROG LOAD LOG --")
        || line.starts_with("-- END PROG LOAD LOG --")
        || line.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// The verdict of a verifier log: its last line that is not instruction trace or statistics,
/// with a helper number named where the kernel did not know it.
pub fn reason(log: &str) -> String {
    let line = log
        .lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !is_noise(l));
    let Some(line) = line else {
        return "no verifier log (run with -v for details)".into();
    };
    let mut out = line.to_owned();
    if let Some(name) = helper_named(line) {
        out.push_str(&format!(
            " ({name}: this kernel is too old for that helper)"
        ));
    }
    out
}

/// `unknown#158` in a verifier message is a helper the kernel does not have; name the ones
/// the probes use that appeared after Linux 5.8.
fn helper_named(line: &str) -> Option<&'static str> {
    let id: u32 = line
        .split("unknown#")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    match id {
        158 => Some("bpf_get_current_task_btf, Linux 5.11"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_last_message_before_the_statistics() {
        let log = "func#0 @0\n0: R1=ctx() R10=fp0\n; let x = y;\n0: (85) call unknown#158\n\
                   invalid func unknown#158\nprocessed 12 insns (limit 1000000) \
                   max_states_per_insn 0 total_states 1 peak_states 1 mark_read 0\n";
        assert_eq!(
            reason(log),
            "invalid func unknown#158 (bpf_get_current_task_btf, Linux 5.11: this kernel is too \
             old for that helper)"
        );
    }

    #[test]
    fn a_log_of_only_trace_says_so() {
        assert_eq!(
            reason("0: (b7) r0 = 0\n1: (95) exit\n"),
            "no verifier log (run with -v for details)"
        );
    }

    #[test]
    fn a_memory_access_message_is_kept_whole() {
        let log = "12: (79) r1 = *(u64 *)(r2 +4000)\naccess beyond struct task_struct at off 4000 size 8\n\
                   processed 13 insns\n";
        assert_eq!(
            reason(log),
            "access beyond struct task_struct at off 4000 size 8"
        );
    }
}
