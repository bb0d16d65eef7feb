//! A child with an exactly known I/O workload, for the integration tests.
//!
//! `workload [--stop] OP...`, each OP one of
//!   write:PATH:N:B  read:PATH:N:B  pwrite:PATH:N:B  pread:PATH:N:B
//!   writev:PATH:N:B  readv:PATH:N:B  (two iovecs of B/2 bytes)
//!   sendfile:IN:OUT:N:B  copy_file_range:IN:OUT:N:B
//!   direct-read:PATH:N:B (O_DIRECT)  fadvise-read:PATH:N:B (drops the page cache first)
//!   sleep:MS
//!   threads:N (N more threads that wait, idle, until the process exits)
//!   thread-write:PATH:N:B:MS (a thread does write:PATH:N:B, lingers MS ms and exits; joined)
//!   short-threads:T:N:B (T threads one after another, each writing N×B bytes to /dev/null
//!     and exiting at once; joined)
//!   thread-burst:T:N:B (T threads started first, then all released at once to write N×B
//!     bytes to /dev/null and exit; joined)
//!   short-procs:P:N:B (P child processes one after another, each writing N×B bytes to
//!     /dev/null and exiting at once; reaped)
//! With --stop the process stops itself (SIGSTOP) before the first and after the last OP, so the
//! parent can read counters around exactly the workload. It makes no other read or write calls.

use std::ffi::CString;
use std::os::fd::RawFd;

fn die(msg: &str) -> ! {
    eprintln!("workload: {msg}");
    std::process::exit(2)
}

fn open(path: &str, flags: i32) -> RawFd {
    let c = CString::new(path).unwrap_or_else(|_| die("path has a NUL"));
    // SAFETY: `c` is a valid NUL-terminated path.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o644) };
    if fd < 0 {
        die(&format!("open {path}: {}", std::io::Error::last_os_error()));
    }
    fd
}

fn check(what: &str, ret: isize, want: usize) {
    if ret < 0 || ret as usize != want {
        die(&format!(
            "{what} returned {ret} (wanted {want}): {}",
            std::io::Error::last_os_error()
        ));
    }
}

/// A page-aligned buffer, as O_DIRECT wants.
struct Aligned {
    ptr: *mut u8,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let mut ptr = std::ptr::null_mut();
        // SAFETY: posix_memalign writes a valid allocation of `len` bytes (or fails) into `ptr`.
        if unsafe { libc::posix_memalign(&mut ptr, 4096, len.max(1)) } != 0 {
            die("posix_memalign failed");
        }
        // SAFETY: freshly allocated, `len` bytes.
        unsafe { std::ptr::write_bytes(ptr.cast::<u8>(), b'x', len) };
        Aligned {
            ptr: ptr.cast(),
            len,
        }
    }
}

fn run(op: &str) {
    let parts: Vec<&str> = op.split(':').collect();
    let num = |s: &str| {
        s.parse::<usize>()
            .unwrap_or_else(|_| die(&format!("bad number {s} in {op}")))
    };
    match parts.as_slice() {
        ["sleep", ms] => std::thread::sleep(std::time::Duration::from_millis(num(ms) as u64)),
        ["threads", n] => {
            for i in 0..num(n) {
                // The smallest stack the C library allows: only the count of threads matters.
                std::thread::Builder::new()
                    .stack_size(16 * 1024)
                    .spawn(|| loop {
                        std::thread::park();
                    })
                    .unwrap_or_else(|e| die(&format!("thread {i}: {e}")));
            }
        }
        ["thread-write", path, n, b, ms] => {
            let op = format!("write:{path}:{n}:{b}");
            let linger = std::time::Duration::from_millis(num(ms) as u64);
            std::thread::spawn(move || {
                run(&op);
                std::thread::sleep(linger);
            })
            .join()
            .unwrap_or_else(|_| die("thread-write: the thread failed"));
        }
        ["short-threads", t, n, b] => {
            let op = format!("write:/dev/null:{n}:{b}");
            for i in 0..num(t) {
                let op = op.clone();
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || run(&op))
                    .unwrap_or_else(|e| die(&format!("thread {i}: {e}")))
                    .join()
                    .unwrap_or_else(|_| die("short-threads: a thread failed"));
            }
        }
        ["thread-burst", t, n, b] => {
            let op = format!("write:/dev/null:{n}:{b}");
            let t = num(t);
            let start = std::sync::Arc::new(std::sync::Barrier::new(t + 1));
            let threads: Vec<_> = (0..t)
                .map(|i| {
                    let (op, start) = (op.clone(), std::sync::Arc::clone(&start));
                    std::thread::Builder::new()
                        .stack_size(64 * 1024)
                        .spawn(move || {
                            start.wait();
                            run(&op);
                        })
                        .unwrap_or_else(|e| die(&format!("thread {i}: {e}")))
                })
                .collect();
            start.wait();
            for t in threads {
                t.join()
                    .unwrap_or_else(|_| die("thread-burst: a thread failed"));
            }
        }
        ["short-procs", p, n, b] => {
            let op = format!("write:/dev/null:{n}:{b}");
            for _ in 0..num(p) {
                // SAFETY: this process has one thread here; the child only writes and exits.
                match unsafe { libc::fork() } {
                    -1 => die(&format!("fork: {}", std::io::Error::last_os_error())),
                    0 => {
                        run(&op);
                        // SAFETY: ends the child without running the parent's exit handlers.
                        unsafe { libc::_exit(0) }
                    }
                    child => {
                        let mut status = 0;
                        // SAFETY: waiting on our own child with a valid status pointer.
                        unsafe { libc::waitpid(child, &mut status, 0) };
                        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
                            die(&format!("short-procs: child failed ({status:#x})"));
                        }
                    }
                }
            }
        }
        [kind @ ("sendfile" | "copy_file_range"), input, output, n, b] => {
            let (n, b) = (num(n), num(b));
            let inp = open(input, libc::O_RDONLY);
            let out = open(output, libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC);
            for _ in 0..n {
                // SAFETY: valid fds; null offsets use and advance the file positions.
                let ret = unsafe {
                    if *kind == "sendfile" {
                        libc::sendfile(out, inp, std::ptr::null_mut(), b)
                    } else {
                        libc::copy_file_range(
                            inp,
                            std::ptr::null_mut(),
                            out,
                            std::ptr::null_mut(),
                            b,
                            0,
                        )
                    }
                };
                check(kind, ret, b);
            }
            // SAFETY: closing fds this function opened.
            unsafe { libc::close(inp) };
            // SAFETY: as above.
            unsafe { libc::close(out) };
        }
        [kind, path, n, b] => {
            let (n, b) = (num(n), num(b));
            let writing = kind.contains("write");
            let flags = match *kind {
                _ if writing => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
                "direct-read" => libc::O_RDONLY | libc::O_DIRECT,
                _ => libc::O_RDONLY,
            };
            let fd = open(path, flags);
            if *kind == "fadvise-read" {
                // SAFETY: valid fd; drops this file's clean pages so the reads reach the disk.
                unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
            }
            let buf = Aligned::new(b);
            let half = b / 2;
            // SAFETY: `half` <= `b`, so the second half starts inside (or just past) the buffer.
            let second = unsafe { buf.ptr.add(half) };
            for i in 0..n {
                let off = (i * b) as libc::off_t;
                let iov = [
                    libc::iovec {
                        iov_base: buf.ptr.cast(),
                        iov_len: half,
                    },
                    libc::iovec {
                        iov_base: second.cast(),
                        iov_len: b - half,
                    },
                ];
                // SAFETY: `buf` holds `b` bytes; the iovecs cover exactly those bytes.
                let ret = unsafe {
                    match *kind {
                        "write" => libc::write(fd, buf.ptr.cast(), buf.len),
                        "pwrite" => libc::pwrite(fd, buf.ptr.cast(), buf.len, off),
                        "writev" => libc::writev(fd, iov.as_ptr(), 2),
                        "read" | "direct-read" | "fadvise-read" => {
                            libc::read(fd, buf.ptr.cast(), buf.len)
                        }
                        "pread" => libc::pread(fd, buf.ptr.cast(), buf.len, off),
                        "readv" => libc::readv(fd, iov.as_ptr(), 2),
                        other => die(&format!("unknown op {other}")),
                    }
                };
                check(kind, ret, b);
            }
            // SAFETY: closing the fd this function opened.
            unsafe { libc::close(fd) };
        }
        _ => die(&format!("cannot parse op {op}")),
    }
}

fn stop() {
    // SAFETY: raise is async-signal-safe and has no memory preconditions.
    unsafe { libc::raise(libc::SIGSTOP) };
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let stop_around = args.first().is_some_and(|a| a == "--stop");
    if stop_around {
        args.remove(0);
    }
    if stop_around {
        stop();
    }
    for op in &args {
        run(op);
    }
    if stop_around {
        stop();
    }
}
