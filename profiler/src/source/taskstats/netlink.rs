//! Generic netlink for taskstats: neli resolves the family; the per-task traffic is written and
//! walked by hand in buffers that live as long as the socket, because it runs once per thread
//! per refresh and neli's message types allocate for every message and attribute.

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use neli::consts::genl::{CtrlAttr, CtrlCmd};
use neli::consts::nl::{GenlId, NlmF};
use neli::consts::socket::{Msg, NlFamily};
use neli::genl::{AttrTypeBuilder, Genlmsghdr, GenlmsghdrBuilder, NlattrBuilder, NoUserHeader};
use neli::nl::{NlPayload, NlmsghdrBuilder};
use neli::socket::synchronous::NlSocketHandle;
use neli::socket::NlSocket;
use neli::types::GenlBuffer;
use neli::utils::Groups;

use super::TaskstatsError;

const FAMILY_NAME: &str = "TASKSTATS";

const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
/// Type bits of `nla_type`, without NLA_F_NESTED and NLA_F_NET_BYTEORDER.
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_ERROR: u16 = libc::NLMSG_ERROR as u16;
const NLM_F_REQUEST: u16 = libc::NLM_F_REQUEST as u16;
const NLM_F_ACK: u16 = libc::NLM_F_ACK as u16;

const TASKSTATS_GENL_VERSION: u8 = 1;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_NEW: u8 = 2;
const TASKSTATS_TYPE_PID: u16 = 1;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_CMD_ATTR_PID: u16 = 1;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;

/// Requests sent in one `send` before the replies are read: the kernel answers each one while
/// `send` runs, so a batch costs two system calls instead of two per task. Measured at 10,000
/// threads (profiler/benches/sources.rs): 10.7 us per thread one at a time, 7.1 in batches of
/// 8, about 6.4 in batches of 32 to 128, no better at 256.
pub const BATCH: usize = 64;
/// Room for one reply: about 600 bytes for struct taskstats v16, plus headers.
const SLOT: usize = 2048;
/// Receive buffer the batches need: the kernel charges each queued reply at its allocation
/// size (about 2 KiB), and drops replies that do not fit.
const QUERY_RCVBUF: i32 = 1 << 20;
/// Exits from a whole busy machine queue up here while the reader thread waits for a CPU: the
/// kernel charges each about 2 KiB, so this holds a burst of some 16,000. Memory is used only
/// while they queue.
const LISTENER_RCVBUF: i32 = 32 << 20;

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Appends one request: netlink header, generic netlink header, and one attribute.
fn push_request(buf: &mut Vec<u8>, family: u16, flags: u16, seq: u32, attr: u16, payload: &[u8]) {
    let attr_len = NLA_HDRLEN + payload.len();
    let len = NLMSG_HDRLEN + GENL_HDRLEN + align4(attr_len);
    let start = buf.len();
    buf.extend_from_slice(&(len as u32).to_ne_bytes());
    buf.extend_from_slice(&family.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel fills in ours.
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(&[TASKSTATS_CMD_GET, TASKSTATS_GENL_VERSION, 0, 0]);
    buf.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    buf.extend_from_slice(&attr.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(start + len, 0);
}

/// The netlink attributes in `b`; stops at the first one that does not fit.
fn attributes(mut b: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_at(b, 0)?);
        let kind = u16_at(b, 2)? & NLA_TYPE_MASK;
        let payload = b.get(NLA_HDRLEN..len)?;
        b = b.get(align4(len)..).unwrap_or(&[]);
        Some((kind, payload))
    })
}

/// What the kernel answered about one task.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply<'a> {
    /// The thread id the reply is about (TASKSTATS_TYPE_PID, which the kernel fills with a
    /// TID) and its `struct taskstats`, undecoded.
    Stats {
        tid: u32,
        stats: &'a [u8],
    },
    /// The request failed with this errno.
    Errno(i32),
    Malformed(&'static str),
}

/// Splits one netlink message into its sequence number and what it says. Messages of other
/// families, and acknowledgements, say nothing.
fn parse_message(b: &[u8], family: u16, cmd: u8) -> Option<(u32, Reply<'_>)> {
    let len = u32_at(b, 0)? as usize;
    let kind = u16_at(b, 4)?;
    let seq = u32_at(b, 8)?;
    let Some(b) = b.get(..len).filter(|_| len >= NLMSG_HDRLEN) else {
        return Some((
            seq,
            Reply::Malformed("netlink message with a bad length or cut short"),
        ));
    };
    if kind == NLMSG_ERROR {
        let error = i32::from_ne_bytes(b.get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)?.try_into().ok()?);
        return (error != 0).then_some((seq, Reply::Errno(-error)));
    }
    if kind != family {
        return None;
    }
    if b.get(NLMSG_HDRLEN) != Some(&cmd) {
        return Some((seq, Reply::Malformed("unexpected generic netlink command")));
    }
    let attrs = b.get(NLMSG_HDRLEN + GENL_HDRLEN..).unwrap_or(&[]);
    Some((seq, parse_aggr_pid(attrs)))
}

/// Finds TASKSTATS_TYPE_AGGR_PID { TASKSTATS_TYPE_PID, TASKSTATS_TYPE_STATS } among `attrs`; an
/// exit message may carry a TASKSTATS_TYPE_AGGR_TGID as well, which has no I/O fields.
fn parse_aggr_pid(attrs: &[u8]) -> Reply<'_> {
    let Some((_, aggr)) = attributes(attrs).find(|&(kind, _)| kind == TASKSTATS_TYPE_AGGR_PID)
    else {
        return Reply::Malformed("no TASKSTATS_TYPE_AGGR_PID attribute");
    };
    let (mut tid, mut stats) = (None, None);
    for (kind, payload) in attributes(aggr) {
        match kind {
            TASKSTATS_TYPE_PID => tid = u32_at(payload, 0),
            TASKSTATS_TYPE_STATS => stats = Some(payload),
            _ => {}
        }
    }
    match (tid, stats) {
        (Some(tid), Some(stats)) => Reply::Stats { tid, stats },
        (None, _) => Reply::Malformed("no TASKSTATS_TYPE_PID in TASKSTATS_TYPE_AGGR_PID"),
        (_, None) => Reply::Malformed("no TASKSTATS_TYPE_STATS in TASKSTATS_TYPE_AGGR_PID"),
    }
}

fn set_int_option(fd: RawFd, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: `value` outlives the call and its size is passed with it.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// SO_RCVBUFFORCE passes rmem_max with CAP_NET_ADMIN, which taskstats needs anyway; SO_RCVBUF,
/// capped at rmem_max, is the fallback.
fn grow_receive_buffer(fd: RawFd, bytes: libc::c_int) {
    if set_int_option(fd, libc::SO_RCVBUFFORCE, bytes).is_err() {
        if let Err(e) = set_int_option(fd, libc::SO_RCVBUF, bytes) {
            log::debug!("taskstats: cannot grow the netlink receive buffer: {e}");
        }
    }
}

fn netlink_error(during: &'static str) -> impl Fn(&dyn std::fmt::Display) -> TaskstatsError {
    move |e| TaskstatsError::Netlink {
        during,
        message: e.to_string(),
    }
}

/// Asks the generic netlink controller for the TASKSTATS family's id.
fn resolve_family(handle: &NlSocketHandle) -> Result<u16, TaskstatsError> {
    const DURING: &str = "resolving the TASKSTATS generic netlink family";
    let err = netlink_error(DURING);
    let name = AttrTypeBuilder::default()
        .nla_type(CtrlAttr::FamilyName)
        .build()
        .map_err(|e| err(&e))?;
    let attr = NlattrBuilder::default()
        .nla_type(name)
        .nla_payload(FAMILY_NAME)
        .build()
        .map_err(|e| err(&e))?;
    let genl = GenlmsghdrBuilder::<CtrlCmd, CtrlAttr, NoUserHeader>::default()
        .cmd(CtrlCmd::Getfamily)
        .version(2)
        .attrs(std::iter::once(attr).collect::<GenlBuffer<_, _>>())
        .build()
        .map_err(|e| err(&e))?;
    let msg = NlmsghdrBuilder::default()
        .nl_type(GenlId::Ctrl)
        .nl_flags(NlmF::REQUEST)
        .nl_payload(NlPayload::Payload(genl))
        .build()
        .map_err(|e| err(&e))?;
    handle.send(&msg).map_err(|e| err(&e))?;
    let (replies, _) = handle
        .recv::<GenlId, Genlmsghdr<CtrlCmd, CtrlAttr>>()
        .map_err(|e| err(&e))?;
    for reply in replies {
        let reply = reply.map_err(|e| TaskstatsError::BadReply {
            during: DURING,
            detail: e.to_string(),
        })?;
        match reply.nl_payload() {
            NlPayload::Payload(p) => {
                return p
                    .attrs()
                    .get_attr_handle()
                    .get_attr_payload_as::<u16>(CtrlAttr::FamilyId)
                    .map_err(|e| TaskstatsError::BadReply {
                        during: DURING,
                        detail: format!("CTRL_ATTR_FAMILY_ID: {e}"),
                    });
            }
            NlPayload::Err(e) if -*e.error() == libc::ENOENT => {
                return Err(TaskstatsError::FamilyNotFound)
            }
            NlPayload::Err(e) => return Err(err(&e)),
            _ => {}
        }
    }
    Err(TaskstatsError::BadReply {
        during: DURING,
        detail: "no answer from the controller".into(),
    })
}

/// The socket that queries tasks, with its buffers.
pub struct Conn {
    sock: NlSocket,
    family: u16,
    next_seq: u32,
    requests: Vec<u8>,
    replies: Vec<u8>,
}

impl Conn {
    pub fn open() -> Result<Conn, TaskstatsError> {
        let handle = NlSocketHandle::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| TaskstatsError::Socket(e.to_string()))?;
        let family = resolve_family(&handle)?;
        let sock = NlSocket::from(handle);
        grow_receive_buffer(sock.as_raw_fd(), QUERY_RCVBUF);
        Ok(Conn {
            sock,
            family,
            next_seq: 1,
            requests: Vec::with_capacity(BATCH * (NLMSG_HDRLEN + GENL_HDRLEN + NLA_HDRLEN + 4)),
            replies: vec![0; BATCH * SLOT],
        })
    }

    pub fn family(&self) -> u16 {
        self.family
    }

    /// Asks for the statistics of every thread in `tids` (at most [`BATCH`]) and calls
    /// `each(index in tids, reply)` for every answer. Returns how many were answered: the kernel
    /// drops replies that do not fit the receive buffer.
    pub fn query(
        &mut self,
        tids: &[u32],
        mut each: impl FnMut(usize, Reply<'_>),
    ) -> io::Result<usize> {
        debug_assert!(tids.len() <= BATCH, "{} requests in one batch", tids.len());
        let n = tids.len().min(BATCH);
        let first_seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(n as u32);
        self.requests.clear();
        for (i, tid) in tids[..n].iter().enumerate() {
            let seq = first_seq.wrapping_add(i as u32);
            push_request(
                &mut self.requests,
                self.family,
                NLM_F_REQUEST,
                seq,
                TASKSTATS_CMD_ATTR_PID,
                &tid.to_ne_bytes(),
            );
        }
        self.sock.send(&self.requests, Msg::empty())?;

        // Generic netlink handles the requests inside `send`, so every reply that will come is
        // queued by now: drain without blocking.
        // SAFETY: iovec and mmsghdr are plain C structs for which all-zero bytes are valid
        // (null pointers, zero lengths).
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, slot) in self.replies.chunks_exact_mut(SLOT).take(n).enumerate() {
            iov[i] = libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: SLOT,
            };
        }
        for (hdr, iov) in hdrs.iter_mut().zip(iov.iter_mut()).take(n) {
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
        }
        let mut answered = [false; BATCH];
        let mut count = 0;
        while count < n {
            // SAFETY: the first `n` headers point at `n` distinct SLOT-byte slots of
            // `self.replies`, which is not otherwise touched until the call returns.
            let got = unsafe {
                libc::recvmmsg(
                    self.sock.as_raw_fd(),
                    hdrs.as_mut_ptr(),
                    n as u32,
                    // c_int in glibc's declaration, c_uint in musl's.
                    libc::MSG_DONTWAIT as _,
                    std::ptr::null_mut(),
                )
            };
            if got < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => break,
                    Some(libc::EINTR) => continue,
                    // Some replies were dropped; read the rest.
                    Some(libc::ENOBUFS) => continue,
                    _ => return Err(e),
                }
            }
            if got == 0 {
                break;
            }
            for (slot, hdr) in hdrs.iter().take(got as usize).enumerate() {
                let len = (hdr.msg_len as usize).min(SLOT);
                let msg = &self.replies[slot * SLOT..slot * SLOT + len];
                let Some((seq, reply)) = parse_message(msg, self.family, TASKSTATS_CMD_NEW) else {
                    continue;
                };
                let i = seq.wrapping_sub(first_seq) as usize;
                if i >= n || answered[i] {
                    continue;
                }
                answered[i] = true;
                count += 1;
                if hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    each(i, Reply::Malformed("reply larger than its buffer"));
                } else {
                    each(i, reply);
                }
            }
        }
        Ok(count)
    }
}

/// The possible CPUs as a cpulist ("0-63"), which is what REGISTER_CPUMASK takes.
fn possible_cpus() -> io::Result<String> {
    Ok(std::fs::read_to_string("/sys/devices/system/cpu/possible")?
        .trim()
        .to_owned())
}

/// A second socket, registered for the statistics of every task that exits on any CPU.
pub struct ExitListener {
    sock: NlSocket,
    family: u16,
    cpus: String,
    buf: Vec<u8>,
}

impl ExitListener {
    /// Registers; the kernel allows it only from the initial user and pid namespaces.
    pub fn register(family: u16) -> Result<ExitListener, String> {
        let cpus = possible_cpus()
            .map_err(|e| format!("reading /sys/devices/system/cpu/possible: {e}"))?;
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| e.to_string())?;
        grow_receive_buffer(sock.as_raw_fd(), LISTENER_RCVBUF);
        // Bounds the wait for the acknowledgement below.
        let timeout = libc::timeval {
            tv_sec: 2,
            tv_usec: 0,
        };
        // SAFETY: `timeout` outlives the call and its size is passed with it.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(format!(
                "setting a receive timeout: {}",
                io::Error::last_os_error()
            ));
        }
        let mut listener = ExitListener {
            sock,
            family,
            cpus,
            buf: vec![0; 16 * 1024],
        };
        let seq = 1;
        listener
            .send_cpumask(
                TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
            )
            .map_err(|e| e.to_string())?;
        loop {
            let (len, _) = listener
                .sock
                .recv(&mut listener.buf[..], Msg::empty())
                .map_err(|e| e.to_string())?;
            let msg = &listener.buf[..len.min(listener.buf.len())];
            // Exits that raced the acknowledgement come before it; they precede the first refresh.
            if u16_at(msg, 4) != Some(NLMSG_ERROR) || u32_at(msg, 8) != Some(seq) {
                continue;
            }
            match msg
                .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                .map(|e| i32::from_ne_bytes(e.try_into().unwrap_or_default()))
            {
                Some(0) => break,
                Some(error) => return Err(io::Error::from_raw_os_error(-error).to_string()),
                None => return Err("truncated acknowledgement".into()),
            }
        }
        listener.sock.nonblock().map_err(|e| e.to_string())?;
        Ok(listener)
    }

    /// The socket, to wait on with poll(2).
    pub fn raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The socket's inode, which names its row in /proc/net/netlink (see [`socket_drops`]).
    pub fn inode(&self) -> Option<u64> {
        // SAFETY: the descriptor is this listener's socket, open for as long as `self`.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(self.sock.as_raw_fd()) };
        Some(rustix::fs::fstat(fd).ok()?.st_ino)
    }

    fn send_cpumask(&mut self, attr: u16, flags: u16, seq: u32) -> io::Result<()> {
        let mut payload = Vec::with_capacity(self.cpus.len() + 1);
        payload.extend_from_slice(self.cpus.as_bytes());
        payload.push(0);
        let mut req = Vec::new();
        push_request(&mut req, self.family, flags, seq, attr, &payload);
        self.sock.send(&req, Msg::empty()).map(drop)
    }

    /// Reads every exit queued since the last call, without blocking. Returns how many times
    /// the queue overflowed, each losing at least one exit.
    pub fn drain(&mut self, mut each: impl FnMut(Reply<'_>)) -> u64 {
        let mut overflows = 0;
        loop {
            match self
                .sock
                .recv(&mut self.buf[..], Msg::DONTWAIT | Msg::TRUNC)
            {
                Ok((len, _)) if len > self.buf.len() => {
                    each(Reply::Malformed("exit message larger than its buffer"))
                }
                Ok((len, _)) => {
                    if let Some((_, reply)) =
                        parse_message(&self.buf[..len], self.family, TASKSTATS_CMD_NEW)
                    {
                        each(reply);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => overflows += 1,
                Err(e) => {
                    log::debug!("taskstats: reading exits: {e}");
                    break;
                }
            }
        }
        overflows
    }
}

/// The `Drops` column of the /proc/net/netlink row of the socket with this inode: messages
/// the kernel dropped because its queue was full (sk_drops), one per exit here.
pub fn socket_drops(table: &str, inode: u64) -> Option<u64> {
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let drops = header.iter().position(|&c| c == "Drops")?;
    let ino = header.iter().position(|&c| c == "Inode")?;
    lines.find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(ino)?.parse::<u64>().ok()? == inode)
            .then(|| cols.get(drops)?.parse().ok())
            .flatten()
    })
}

impl Drop for ExitListener {
    fn drop(&mut self) {
        // Otherwise the kernel keeps the registration until an exit finds the socket closed.
        let _ = self.send_cpumask(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, NLM_F_REQUEST, 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAMILY: u16 = 31;

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        a.resize(align4(a.len()), 0);
        a
    }

    fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&0u16.to_ne_bytes());
        m.extend_from_slice(&seq.to_ne_bytes());
        m.extend_from_slice(&0u32.to_ne_bytes());
        m.extend_from_slice(body);
        m
    }

    fn reply(seq: u32, pid: u32, stats: &[u8]) -> Vec<u8> {
        let mut nested = attr(TASKSTATS_TYPE_PID, &pid.to_ne_bytes());
        nested.extend(attr(TASKSTATS_TYPE_STATS, stats));
        let mut body = vec![TASKSTATS_CMD_NEW, TASKSTATS_GENL_VERSION, 0, 0];
        body.extend(attr(TASKSTATS_TYPE_AGGR_PID, &nested));
        message(FAMILY, seq, &body)
    }

    #[test]
    fn a_request_is_what_the_kernel_expects() {
        let mut buf = Vec::new();
        push_request(
            &mut buf,
            FAMILY,
            NLM_F_REQUEST,
            7,
            TASKSTATS_CMD_ATTR_PID,
            &1234u32.to_ne_bytes(),
        );
        assert_eq!(buf.len(), 28);
        assert_eq!(u32_at(&buf, 0), Some(28));
        assert_eq!(u16_at(&buf, 4), Some(FAMILY));
        assert_eq!(u32_at(&buf, 8), Some(7));
        assert_eq!(&buf[16..20], &[TASKSTATS_CMD_GET, 1, 0, 0]);
        assert_eq!(u16_at(&buf, 20), Some(8));
        assert_eq!(u16_at(&buf, 22), Some(TASKSTATS_CMD_ATTR_PID));
        assert_eq!(u32_at(&buf, 24), Some(1234));
        // A string attribute is padded to four bytes.
        let mut buf = Vec::new();
        push_request(
            &mut buf,
            FAMILY,
            NLM_F_REQUEST,
            1,
            TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
            b"0-1\0\0",
        );
        assert_eq!(buf.len(), 16 + 4 + 12);
        assert_eq!(u16_at(&buf, 20), Some(9));
    }

    /// Bounded fuzz: replies with random bytes changed, cut or extended, and noise. Parsing
    /// yields a reply, an error or nothing; it never panics.
    #[test]
    fn random_and_damaged_messages_never_panic() {
        let mut rng = crate::fuzz::Rng::from_env("netlink parser");
        let good = reply(7, 4242, &[0x10; 400]);
        for _ in 0..5_000 {
            let mut b = if rng.below(4) == 0 {
                let len = rng.below(600);
                rng.bytes(len)
            } else {
                good.clone()
            };
            for _ in 0..rng.below(8) {
                let at = rng.below(b.len().max(1));
                if let Some(byte) = b.get_mut(at) {
                    *byte = rng.next_u64() as u8;
                }
            }
            if rng.below(2) == 0 {
                b.truncate(rng.below(b.len() + 1));
            }
            let _ = parse_message(&b, FAMILY, TASKSTATS_CMD_NEW);
            let _ = attributes(&b).count();
        }
    }

    #[test]
    fn drops_of_a_socket_by_inode() {
        let table = "sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode\n\
                     0000000093b677f3 0   0          00000000 0        0        0     2        0        4\n\
                     000000002f7f7b9e 16  4242       00000000 8192     0        0     2        6360     91234\n";
        assert_eq!(socket_drops(table, 91234), Some(6360));
        assert_eq!(socket_drops(table, 4), Some(0));
        assert_eq!(socket_drops(table, 5), None);
        assert_eq!(socket_drops("garbage", 4), None);
    }

    #[test]
    fn parses_a_reply_an_error_and_garbage() {
        let stats = [16u8, 0, 1, 2, 3, 4, 5, 6];
        let msg = reply(9, 4321, &stats);
        assert_eq!(
            parse_message(&msg, FAMILY, TASKSTATS_CMD_NEW),
            Some((
                9,
                Reply::Stats {
                    tid: 4321,
                    stats: &stats
                }
            ))
        );

        let err = message(NLMSG_ERROR, 10, &(-libc::ESRCH).to_ne_bytes());
        assert_eq!(
            parse_message(&err, FAMILY, TASKSTATS_CMD_NEW),
            Some((10, Reply::Errno(libc::ESRCH)))
        );
        let ack = message(NLMSG_ERROR, 11, &0i32.to_ne_bytes());
        assert_eq!(parse_message(&ack, FAMILY, TASKSTATS_CMD_NEW), None);
        assert_eq!(parse_message(&msg, FAMILY + 1, TASKSTATS_CMD_NEW), None);

        // Every cut of a valid reply parses to something or nothing, never panics; cuts inside
        // the nested attributes are malformed.
        for len in 0..msg.len() {
            let mut cut = msg[..len].to_vec();
            if cut.len() >= 4 {
                cut[..4].copy_from_slice(&(len as u32).to_ne_bytes());
            }
            if let Some((_, r)) = parse_message(&cut, FAMILY, TASKSTATS_CMD_NEW) {
                assert!(matches!(r, Reply::Malformed(_)), "cut at {len}: {r:?}");
            }
        }
        // A message claiming more bytes than arrived.
        let mut long = msg.clone();
        long[..4].copy_from_slice(&(msg.len() as u32 + 64).to_ne_bytes());
        assert!(matches!(
            parse_message(&long, FAMILY, TASKSTATS_CMD_NEW),
            Some((9, Reply::Malformed(_)))
        ));
    }
}
