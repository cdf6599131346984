//! WebSocket upgrades that another HTTP stack performs: the hook for web frameworks that
//! do not run on hyper (actix-web), where no `hyper::upgrade::OnUpgrade` exists.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::ws::WsConfig as WebSocketConfig;

type Start<W> =
    Box<dyn FnOnce(WebSocketConfig) -> Pin<Box<dyn Future<Output = io::Result<W>> + Send>> + Send>;

/// How a request can become a WebSocket when hyper does not serve it: put one in the
/// request's extensions (instead of hyper's `OnUpgrade`) before handing the request to
/// [`EngineIo::handle`](super::EngineIo::handle). `W` is the runtime's
/// [`WebSocket`](crate::Runtime::WebSocket) type.
///
/// The protocol decides as for any upgrade request. If it accepts, the answer is the
/// `101 Switching Protocols` response, which the framework must send as it is; then the
/// function given to [`new`](Self::new) is called once, with the WebSocket settings the
/// server uses (message size limits, buffers), and its future yields the WebSocket
/// stream over the upgraded connection. If it refuses, the function is dropped unused
/// and the answer is the protocol's error.
pub struct ExternalUpgrade<W> {
    start: Arc<Mutex<Option<Start<W>>>>,
}

impl<W> Clone for ExternalUpgrade<W> {
    fn clone(&self) -> Self {
        ExternalUpgrade {
            start: Arc::clone(&self.start),
        }
    }
}

impl<W> fmt::Debug for ExternalUpgrade<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalUpgrade").finish_non_exhaustive()
    }
}

impl<W: Send + 'static> ExternalUpgrade<W> {
    /// An upgrade completed by `start` once the server has accepted it.
    pub fn new<F, Fut>(start: F) -> Self
    where
        F: FnOnce(WebSocketConfig) -> Fut + Send + 'static,
        Fut: Future<Output = io::Result<W>> + Send + 'static,
    {
        let start: Start<W> = Box::new(move |config| Box::pin(start(config)));
        ExternalUpgrade {
            start: Arc::new(Mutex::new(Some(start))),
        }
    }

    /// Completes the upgrade (at most once; a second call fails).
    pub(crate) async fn complete(self, config: WebSocketConfig) -> io::Result<W> {
        let start = self.start.lock().unwrap_or_else(|e| e.into_inner()).take();
        match start {
            Some(start) => start(config).await,
            None => Err(io::Error::other("the upgrade was already completed")),
        }
    }
}
