//! The exit listener on a thread of its own. A burst of exits (thousands of short threads)
//! fills the socket's queue far faster than one read per refresh could empty it, and the
//! kernel drops what does not fit; read continuously, the queue stays short. Each record
//! leaves with the window in which the kernel queued it, which bounds the exited thread's
//! start time far better than the whole seconds of `ac_btime`. A refresh asks the thread to
//! catch up first, so that every exit queued before the refresh is in it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::time::ClockId;

use super::decode::{self, Taskstats};
use super::micros;
use super::netlink::{socket_drops, ExitListener, Reply};

/// How long the thread sleeps in poll(2) before it looks at the stop flag.
const POLL_MS: i32 = 100;
/// How long a refresh waits for the thread to catch up; only a starved thread takes so long,
/// and then the exits it has not read come with the next refresh.
const CATCH_UP: Duration = Duration::from_millis(250);

enum Message {
    Records(Vec<ExitRecord>),
    /// Everything queued before catch-up request `n` has been sent.
    CaughtUp(u64),
}

/// One exited thread's last counters.
pub struct ExitRecord {
    pub tid: u32,
    pub stats: Taskstats,
    /// CLOCK_MONOTONIC microseconds: the queue was empty at `queued_after_us` and this record
    /// had been read by `read_us`, so the kernel wrote it (and took `ac_etime`) in between.
    pub queued_after_us: u64,
    pub read_us: u64,
}

pub struct ExitReader {
    messages: mpsc::Receiver<Message>,
    /// Wakes the thread with the number of a catch-up request.
    wake: UnixStream,
    requests: u64,
    listener_overflows: Arc<AtomicU64>,
    inode: Option<u64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ExitReader {
    pub fn spawn(mut listener: ExitListener) -> std::io::Result<ExitReader> {
        let (send, messages) = mpsc::channel();
        let (wake, mut woken) = UnixStream::pair()?;
        woken.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let listener_overflows = Arc::new(AtomicU64::new(0));
        let inode = listener.inode();
        let (stop2, overflows2) = (Arc::clone(&stop), Arc::clone(&listener_overflows));
        let thread = std::thread::Builder::new()
            .name("taskstats-exits".into())
            .spawn(move || {
                let mut empty_at = micros(ClockId::Monotonic);
                let mut request = [0u8; 8];
                while !stop2.load(Ordering::Relaxed) {
                    let mut fds = [
                        libc::pollfd {
                            fd: listener.raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        },
                        libc::pollfd {
                            fd: woken.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        },
                    ];
                    // SAFETY: two valid pollfds, their count passed with them.
                    unsafe { libc::poll(fds.as_mut_ptr(), 2, POLL_MS) };
                    // The latest request, before the drain that answers it.
                    let mut caught_up = None;
                    while woken.read_exact(&mut request).is_ok() {
                        caught_up = Some(u64::from_ne_bytes(request));
                    }
                    let mut batch = Vec::new();
                    // Whatever this drain leaves was queued after it began: the next records'
                    // lower bound. (Read after the drain, the clock could be late by however
                    // long this thread waited for a CPU, and a thread's start seem too late.)
                    let drain_began = micros(ClockId::Monotonic);
                    let overflows = listener.drain(|reply| match reply {
                        Reply::Stats { tid, stats } => match decode::decode(stats) {
                            Ok(stats) => batch.push(ExitRecord {
                                tid,
                                stats,
                                queued_after_us: empty_at,
                                read_us: micros(ClockId::Monotonic),
                            }),
                            Err(e) => log::debug!("taskstats: exit of {tid}: {e}"),
                        },
                        other => log::debug!("taskstats: exit message: {other:?}"),
                    });
                    empty_at = drain_began;
                    overflows2.fetch_add(overflows, Ordering::Relaxed);
                    let sent = (batch.is_empty() || send.send(Message::Records(batch)).is_ok())
                        && caught_up.is_none_or(|n| send.send(Message::CaughtUp(n)).is_ok());
                    if !sent {
                        break;
                    }
                }
                // Dropping the listener deregisters it.
            })?;
        Ok(ExitReader {
            messages,
            wake,
            requests: 0,
            listener_overflows,
            inode,
            stop,
            thread: Some(thread),
        })
    }

    /// Every record of an exit queued before this call, oldest first (and perhaps some after).
    pub fn take(&mut self, out: &mut Vec<ExitRecord>) {
        self.requests += 1;
        let request = self.requests;
        let asked = self.wake.write_all(&request.to_ne_bytes()).is_ok();
        let deadline = std::time::Instant::now() + CATCH_UP;
        loop {
            let wait = deadline.saturating_duration_since(std::time::Instant::now());
            let message = if asked {
                self.messages.recv_timeout(wait).ok()
            } else {
                self.messages.try_recv().ok()
            };
            match message {
                Some(Message::Records(batch)) => out.extend(batch),
                Some(Message::CaughtUp(n)) if n >= request => return,
                Some(Message::CaughtUp(_)) => {}
                None => {
                    if asked {
                        log::debug!("taskstats: the exit reader did not catch up in time");
                    }
                    return;
                }
            }
        }
    }

    /// Exits the kernel could not queue, since the start: counted exactly from the socket's
    /// drop counter where /proc/net/netlink shows it, else at least one per overflow.
    pub fn lost(&self) -> u64 {
        let overflows = self.listener_overflows.load(Ordering::Relaxed);
        if overflows == 0 {
            return 0;
        }
        let dropped = self
            .inode
            .zip(std::fs::read_to_string("/proc/self/net/netlink").ok())
            .and_then(|(inode, table)| socket_drops(&table, inode));
        dropped.unwrap_or(0).max(overflows)
    }
}

impl Drop for ExitReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
