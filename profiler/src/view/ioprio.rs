//! A task's I/O priority, read (`ioprio_get`) for the PRIO column and set (`ioprio_set`) by
//! the full-screen view's `i`, as `ionice` does.

/// A task's I/O scheduling class and level, as `ioprio_get` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoPrio {
    Realtime(u8),
    BestEffort(u8),
    Idle,
}

impl IoPrio {
    /// Highest priority first.
    pub fn rank(self) -> (u8, u8) {
        match self {
            IoPrio::Realtime(l) => (0, l),
            IoPrio::BestEffort(l) => (1, l),
            IoPrio::Idle => (2, 0),
        }
    }
}

impl std::fmt::Display for IoPrio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IoPrio::Realtime(l) => write!(f, "rt/{l}"),
            IoPrio::BestEffort(l) => write!(f, "be/{l}"),
            IoPrio::Idle => f.write_str("idle"),
        }
    }
}

pub const IOPRIO_WHO_PROCESS: libc::c_long = 1;
pub const IOPRIO_CLASS_SHIFT: libc::c_long = 13;

/// The I/O priority of one thread; None when it is gone.
pub fn ioprio(tid: u32) -> Option<IoPrio> {
    // SAFETY: ioprio_get takes two integers and touches no memory of ours.
    let value = unsafe {
        libc::syscall(
            libc::SYS_ioprio_get,
            IOPRIO_WHO_PROCESS,
            tid as libc::c_long,
        )
    };
    if value < 0 {
        return None;
    }
    // Levels are the low three bits; newer kernels keep hints above them.
    let level = (value & 0x7) as u8;
    match value >> IOPRIO_CLASS_SHIFT {
        1 => Some(IoPrio::Realtime(level)),
        2 => Some(IoPrio::BestEffort(level)),
        3 => Some(IoPrio::Idle),
        _ => nice_ioprio(tid),
    }
}

/// A task that never set an I/O priority gets one from its CPU policy and nice value, as the
/// kernel's `task_nice_ioclass`/`task_nice_ioprio` derive it.
fn nice_ioprio(tid: u32) -> Option<IoPrio> {
    // SAFETY: sched_getscheduler takes a task id and touches no memory of ours.
    let policy = unsafe { libc::sched_getscheduler(tid as libc::pid_t) };
    // SAFETY: the raw getpriority syscall takes two integers and touches no memory of ours; it
    // returns 20 - nice (1..=40), so unlike the libc wrapper a failure is not a valid value.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_getpriority,
            libc::PRIO_PROCESS as libc::c_long,
            tid as libc::c_long,
        )
    };
    if policy < 0 || ret < 0 {
        return None;
    }
    let level = ((20 - ret) + 20).clamp(0, 39) as u8 / 5;
    Some(match policy {
        libc::SCHED_IDLE => IoPrio::Idle,
        libc::SCHED_FIFO | libc::SCHED_RR => IoPrio::Realtime(level),
        _ => IoPrio::BestEffort(level),
    })
}

/// The value `ioprio_set` takes: the class in the high bits, the level in the low ones.
pub fn ioprio_value(prio: IoPrio) -> libc::c_long {
    let (class, level) = match prio {
        IoPrio::Realtime(l) => (1, l),
        IoPrio::BestEffort(l) => (2, l),
        IoPrio::Idle => (3, 0),
    };
    (class << IOPRIO_CLASS_SHIFT) | libc::c_long::from(level)
}

/// Sets the I/O priority of one thread.
pub fn ioprio_set(tid: u32, prio: IoPrio) -> std::io::Result<()> {
    // SAFETY: ioprio_set takes three integers and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            libc::c_long::from(tid),
            ioprio_value(prio),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
