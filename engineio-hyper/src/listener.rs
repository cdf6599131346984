//! The listening socket, the same for every binding: a chosen listen backlog
//! ([`bind_listener`], [`bind_first`]), which the standard library hides.

use std::io;
use std::net::SocketAddr;

/// Binds a non-blocking TCP listener on `addr` with a listen backlog of `backlog`
/// connections (the kernel caps it at `net.core.somaxconn`, 4096 on Linux 5.4 and later).
///
/// The standard library's and mio's `bind` always ask for 128, which a burst of connects
/// overflows: the kernel then drops SYNs and those clients wait a second or more for the
/// retransmission. `SO_REUSEADDR` is set on Unix as the standard library does, so a
/// restarted server can bind while old connections are in `TIME_WAIT`.
///
/// The bindings wrap the result in their runtime's listener (`engineio_tokio::bind_listener`,
/// `engineio_smol::bind_listener`).
///
/// ```
/// let listener = engineio_hyper::listener::bind_listener("127.0.0.1:0".parse()?, 1024)?;
/// assert!(listener.local_addr()?.port() != 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    // listen(2) takes an int; anything larger than i32::MAX means "as many as allowed".
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// [`bind_listener`] on the first of `addrs` that can be bound (a host name may resolve
/// to several addresses), or the last error.
pub fn bind_first(
    addrs: impl IntoIterator<Item = SocketAddr>,
    backlog: u32,
) -> io::Result<std::net::TcpListener> {
    let mut last_error = None;
    for addr in addrs {
        match bind_listener(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the address resolved to no socket address",
        )
    }))
}
