//! When a request arrived: the instant its session judges it by.
//!
//! Two requests sent at the same moment on two connections can be read by the server in
//! either order: a runtime runs the task it woke last first (tokio's LIFO slot), a busy
//! machine deschedules a worker between two reads. So the standalone servers ask the
//! kernel when the bytes arrived (`SO_TIMESTAMPNS` on Linux) and fall back to the time
//! they were read elsewhere. Each connection's [`ArrivalStamp`] holds the instant its next
//! request started to arrive; [`serve_connection_with`](crate::server::serve_connection_with)
//! hands it to the request.
#![allow(unsafe_code)]

use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The instant a connection's next request started to arrive: noted by the connection's
/// reads (the first read after the last request was dispatched), taken when the next
/// request is dispatched. Cheap to clone; the clones share the slot.
#[derive(Debug, Clone, Default)]
pub struct ArrivalStamp(Arc<Mutex<Option<Instant>>>);

impl ArrivalStamp {
    /// Notes that bytes arrived at `at()`, unless an earlier read already did for this
    /// request (`at` is only called then).
    pub fn note(&self, at: impl FnOnce() -> Instant) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(at());
        }
    }

    /// Takes the noted instant (for the request being dispatched).
    pub fn take(&self) -> Option<Instant> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Converts a kernel receive time (the wall clock) to an [`Instant`], against the two
/// clocks read now. A time in the future, or implausibly old (the wall clock jumped), is
/// taken as now.
pub fn wall_time_to_instant(at: std::time::SystemTime) -> Instant {
    // The two clocks are read back to back; a thread descheduled between the reads would
    // skew every conversion by its pause, so the pair is taken again (a few times at
    // most) until both readings fall within a few microseconds.
    let mut pair = None;
    for _ in 0..4 {
        let before = Instant::now();
        let wall = std::time::SystemTime::now();
        let after = Instant::now();
        let tight = after.duration_since(before) < std::time::Duration::from_micros(20);
        pair = Some((after, wall));
        if tight {
            break;
        }
    }
    let Some((now, wall)) = pair else {
        return Instant::now();
    };
    match wall.duration_since(at) {
        Ok(ago) if ago < std::time::Duration::from_secs(10) => now.checked_sub(ago).unwrap_or(now),
        _ => now,
    }
}

/// Kernel receive timestamps on TCP sockets (Linux).
#[cfg(target_os = "linux")]
pub mod kernel {
    use std::io;
    use std::mem::MaybeUninit;
    use std::os::fd::{AsRawFd, BorrowedFd};
    use std::time::{Duration, SystemTime};

    /// Asks the kernel to stamp the data it receives on `fd` (`SO_TIMESTAMPNS`).
    pub fn enable(fd: BorrowedFd<'_>) -> io::Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: `fd` is a live socket for the duration of the call; the option value is
        // a valid c_int whose size is passed alongside it.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_TIMESTAMPNS,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Reads what `fd` has into `buf` without blocking (`WouldBlock` when nothing is
    /// there), with the kernel's receive time of the first bytes read when it has one.
    pub fn recv(
        fd: BorrowedFd<'_>,
        buf: &mut [MaybeUninit<u8>],
    ) -> io::Result<(usize, Option<SystemTime>)> {
        // Room for one SCM_TIMESTAMPNS control message, aligned for cmsghdr.
        #[repr(C, align(8))]
        struct Control([u8; 64]);
        let mut control = Control([0; 64]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is a valid empty header; the pointers set below
        // point at `iov` and `control`, which outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = control.0.len() as _;
        // SAFETY: `fd` is a live socket; `msg` describes `buf` (writable for its length,
        // whose bytes the kernel only writes) and `control`, both valid for the call.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut at = None;
        // SAFETY: `msg` was filled by recvmsg; CMSG_FIRSTHDR/CMSG_NXTHDR walk the control
        // buffer within `msg_controllen`, and a SCM_TIMESTAMPNS message's data is a
        // timespec (read unaligned, as the macros give no alignment guarantee for it).
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
                {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    at = SystemTime::UNIX_EPOCH
                        .checked_add(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((n as usize, at))
    }

    /// [`recv`] into hyper's read cursor, which it advances past the bytes read.
    pub fn recv_into(
        fd: BorrowedFd<'_>,
        cursor: &mut hyper::rt::ReadBufCursor<'_>,
    ) -> io::Result<Option<SystemTime>> {
        // SAFETY: recvmsg only writes into the unfilled part (it never de-initializes a
        // byte), as `as_mut` requires.
        let (n, at) = recv(fd, unsafe { cursor.as_mut() })?;
        // SAFETY: the kernel initialized the first `n` bytes of the unfilled part.
        unsafe { cursor.advance(n) };
        Ok(at)
    }
}
