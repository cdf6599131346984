//! How the servers (both bindings) report the end of a WebSocket: a close frame is a
//! clean `TransportClose`; a TCP reset, or a connection dropped without a close frame
//! (RFC 6455's abnormal closure), is a `TransportError(Reset)`. The client side of the
//! same mapping is tested in `client_faults.rs`.
#![allow(missing_docs, clippy::disallowed_methods)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use engineio_hyper::server::{Config, ConnectRequest, Handler, Rejection, Socket};
use engineio_proto::{CloseReason, Message, TransportError};
use engineio_tests::binding::{Binding, SmolBinding, TokioBinding, engine};
use engineio_tests::net::{WsMessage, next, wait_until, ws_connect};
use futures_util::SinkExt;
use tokio_tungstenite::MaybeTlsStream;

#[derive(Clone, Default)]
struct Ends(Arc<Mutex<Vec<CloseReason>>>);

impl Handler for Ends {
    type Data = ();

    async fn on_connect(&self, _: &ConnectRequest<'_>) -> Result<(), Rejection> {
        Ok(())
    }

    fn on_message(&self, _: &Socket<()>, _: Message) {}

    fn on_disconnect(&self, _: &Socket<()>, reason: &CloseReason) {
        self.0.lock().unwrap().push(reason.clone());
    }
}

#[derive(Debug, Clone, Copy)]
enum End {
    /// A close frame, then the connection closes.
    CloseFrame,
    /// `SO_LINGER` 0 and close: a TCP reset.
    Reset,
    /// The TCP connection closes (FIN) without a close frame.
    DropWithoutClose,
}

async fn websocket_end_is_reported<B: Binding>(end: End) {
    let ends = Ends::default();
    let addr = B::serve(engine::<B, _>(ends.clone(), Config::default()));
    let mut ws = ws_connect(addr, "").await;
    next(&mut ws).await.expect("the open packet");
    match end {
        End::CloseFrame => {
            ws.send(WsMessage::Close(None)).await.unwrap();
            // Read until the server's close reply ends the stream.
            while next(&mut ws).await.is_some() {}
        }
        End::Reset => {
            if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                socket2::SockRef::from(tcp)
                    .set_linger(Some(Duration::ZERO))
                    .unwrap();
            }
            drop(ws);
        }
        End::DropWithoutClose => {
            if let MaybeTlsStream::Plain(tcp) = ws.get_ref() {
                socket2::SockRef::from(tcp)
                    .shutdown(std::net::Shutdown::Write)
                    .unwrap();
            }
            // Keep the socket until the server has seen the end.
            wait_until(|| !ends.0.lock().unwrap().is_empty()).await;
            drop(ws);
        }
    }
    wait_until(|| !ends.0.lock().unwrap().is_empty()).await;
    let reason = ends.0.lock().unwrap()[0].clone();
    match end {
        End::CloseFrame => assert_eq!(reason, CloseReason::TransportClose, "{}", B::NAME),
        End::Reset | End::DropWithoutClose => assert!(
            matches!(
                reason,
                CloseReason::TransportError(TransportError::Reset(_))
            ),
            "{} {end:?}: {reason:?}",
            B::NAME
        ),
    }
}

macro_rules! cases {
    ($($name:ident: $binding:ty, $end:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                websocket_end_is_reported::<$binding>($end).await
            }
        )*
    };
}

cases! {
    tokio_close_frame_is_a_transport_close: TokioBinding, End::CloseFrame;
    tokio_reset_is_a_transport_error: TokioBinding, End::Reset;
    tokio_drop_without_close_frame_is_a_transport_error: TokioBinding, End::DropWithoutClose;
    smol_close_frame_is_a_transport_close: SmolBinding, End::CloseFrame;
    smol_reset_is_a_transport_error: SmolBinding, End::Reset;
    smol_drop_without_close_frame_is_a_transport_error: SmolBinding, End::DropWithoutClose;
}
