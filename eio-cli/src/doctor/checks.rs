//! The doctor's checks. Each opens its own sessions, bounds every wait, closes what it
//! opened, and returns a [`Report`] that says what it measured and, on failure, what to
//! change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use engineio_proto::{Handshake, Packet, Transport};
use http::{HeaderName, HeaderValue, Method, header};

use super::raw::{Answer, OpenError, WsError, parse_ws_open};
use super::{Ctx, Report, Verdict};
use crate::output::human_duration;

/// What the handshake told about the server.
#[derive(Debug)]
pub(crate) struct Server {
    /// The open packet's values.
    pub(crate) handshake: Handshake,
    /// Sessions can be opened by polling.
    pub(crate) polling: bool,
    /// The server offers WebSocket (an upgrade, or direct sessions).
    pub(crate) websocket: bool,
}

/// How late a ping may be before the heartbeat check warns: a tenth of the interval, and
/// at least 250 ms (timers and a busy machine).
fn ping_tolerance(interval: Duration) -> Duration {
    (interval / 10).max(Duration::from_millis(250))
}

/// A held long-poll waits this long for the server's ping.
fn hold_budget(hs: &Handshake) -> Duration {
    hs.ping_interval + hs.ping_timeout + Duration::from_secs(2)
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

fn max(v: &[Duration]) -> Duration {
    v.iter().copied().max().unwrap_or_default()
}

fn list(v: &[Duration]) -> String {
    v.iter()
        .map(|d| human_duration(*d))
        .collect::<Vec<_>>()
        .join(", ")
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

const STICKY_FIX: &str = "route every request of a session to the server that opened it: \
    nginx `ip_hash;` or `hash $remote_addr consistent;` in the upstream block (clients behind \
    one address then share a server), HAProxy `balance source` or cookie affinity \
    (`cookie SERVERID insert indirect nocache` and `cookie s1` on each server; across origins \
    browsers must send credentials), the cloud balancer's session affinity; or have clients \
    open by WebSocket only (transports: ['websocket']), which needs no stickiness";

const WS_FIX: &str = "let WebSocket through every proxy in front of the server: nginx \
    `proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header \
    Connection \"upgrade\";` in the location; HAProxy in HTTP mode needs nothing but a \
    `timeout tunnel`; cloud balancers: enable WebSocket; check that the route (path) reaches \
    the Engine.IO server";

const TIMEOUT_FIX: &str = "raise the idle/read timeout of every proxy in front of the server \
    above pingInterval + pingTimeout: nginx `proxy_read_timeout` (default 60 s), HAProxy \
    `timeout server` and `timeout tunnel`, AWS ALB idle timeout (60 s), Cloudflare (100 s); or \
    lower the server's pingInterval below the shortest of them";

fn cors_fix(origin: &str) -> String {
    format!(
        "allow {origin} on the server (errors included): engineio-rs \
         `config.engine.cors.origins = AllowedOrigins::list([\"{origin}\"])`; engine.io / Socket.IO \
         `cors: {{ origin: [\"{origin}\"], credentials: true }}`; python-engineio \
         `cors_allowed_origins=[\"{origin}\"]`; or, where a proxy handles CORS, make it answer \
         OPTIONS and add Access-Control-Allow-Origin to every answer"
    )
}

fn handshake_fix(a: &Answer) -> &'static str {
    match a.status.as_u16() {
        404 | 405 => {
            "give the Engine.IO path (Socket.IO servers use /socket.io/: \
                      eio doctor https://host/socket.io/), and check that the proxy routes it"
        }
        401 | 403 => {
            "pass what the server's connect check wants (-H 'Authorization: ...', -q token=...) \
                      or an accepted origin (-H 'Origin: ...')"
        }
        502..=504 => "start the server behind the proxy, or point the proxy at the right address",
        _ => {
            "check that the URL points at an Engine.IO v4 server (engine.io 4+, Socket.IO 3+, \
              python-engineio 4+)"
        }
    }
}

// ------------------------------------------------------------------ handshake

/// The handshake: a polling handshake (or, when polling is disabled, a WebSocket one).
pub(crate) async fn handshake(ctx: &Ctx) -> (Report, Option<Server>) {
    let raw = &ctx.raw;
    match raw.open_polling(None, &[]).await {
        Ok((hs, answer)) => {
            raw.close_polling(hs.sid.as_str(), &[]).await;
            let websocket = hs.upgrades.contains(&Transport::WebSocket);
            let mut report = Report::new(
                "handshake",
                Verdict::Pass,
                format!(
                    "open packet by polling in {}: {}",
                    human_duration(answer.took),
                    describe_handshake(&hs)
                ),
            );
            report = handshake_data(report, &hs);
            report = cookie_notes(report, &answer);
            if !websocket {
                report = report.detail(
                    "the server offers no upgrade to WebSocket (upgrades: []): clients stay on \
                     long-polling",
                );
            }
            if hs.ping_interval + hs.ping_timeout >= Duration::from_secs(60) {
                report = report.detail(format!(
                    "pingInterval + pingTimeout is {}: longer than many proxies' idle timeout \
                     (nginx proxy_read_timeout and AWS ALB: 60 s); the long-poll check tells \
                     whether a proxy cuts long-polls",
                    human_duration(hs.ping_interval + hs.ping_timeout)
                ));
            }
            let server = Server {
                handshake: hs,
                polling: true,
                websocket,
            };
            (report, Some(server))
        }
        Err(OpenError::Unreachable(e)) => (
            Report::new(
                "handshake",
                Verdict::Fail,
                format!("cannot reach the server: {e}"),
            )
            .fix(
                "check the URL (scheme, host, port) and that the server listens there; a \
                     stopped proxy or a firewall looks the same",
            )
            .data("unreachable", true),
            None,
        ),
        Err(OpenError::Refused(why, answer)) => {
            if answer.status == http::StatusCode::BAD_REQUEST && answer.error_code() == Some(0) {
                // "Transport unknown": a WebSocket-only server.
                return match ws_session(ctx, &[]).await {
                    Ok((ws, hs, took)) => {
                        ws.close().await;
                        let report = Report::new(
                            "handshake",
                            Verdict::Pass,
                            format!(
                                "polling is disabled (\"Transport unknown\"); open packet by \
                                 WebSocket in {}: {}",
                                human_duration(took),
                                describe_handshake(&hs)
                            ),
                        )
                        .detail(
                            "a WebSocket-only server: clients must connect with \
                             transports: ['websocket'] (browsers' default starts with polling)",
                        );
                        let report = handshake_data(report, &hs);
                        (
                            report,
                            Some(Server {
                                handshake: hs,
                                polling: false,
                                websocket: true,
                            }),
                        )
                    }
                    Err(e) => (
                        Report::new(
                            "handshake",
                            Verdict::Fail,
                            format!("polling is disabled (\"Transport unknown\") and {e}"),
                        )
                        .fix(WS_FIX),
                        None,
                    ),
                };
            }
            (
                Report::new("handshake", Verdict::Fail, why).fix(handshake_fix(&answer)),
                None,
            )
        }
    }
}

fn describe_handshake(hs: &Handshake) -> String {
    let upgrades: Vec<&str> = hs.upgrades.iter().map(|t| t.as_str()).collect();
    format!(
        "sid {}, upgrades [{}], pingInterval {}, pingTimeout {}, maxPayload {}",
        hs.sid.as_str(),
        upgrades.join(", "),
        human_duration(hs.ping_interval),
        human_duration(hs.ping_timeout),
        hs.max_payload
            .map_or_else(|| "none".to_owned(), |m| format!("{m} bytes"))
    )
}

fn handshake_data(report: Report, hs: &Handshake) -> Report {
    let upgrades: Vec<&str> = hs.upgrades.iter().map(|t| t.as_str()).collect();
    report
        .data("sid", hs.sid.as_str())
        .data("upgrades", upgrades)
        .data("pingInterval", ms(hs.ping_interval))
        .data("pingTimeout", ms(hs.ping_timeout))
        .data(
            "maxPayload",
            hs.max_payload.map_or(serde_json::Value::Null, Into::into),
        )
}

fn cookie_notes(mut report: Report, answer: &Answer) -> Report {
    let cookies = answer.cookies();
    let names: Vec<&str> = cookies.iter().filter_map(|c| c.split('=').next()).collect();
    if names.is_empty() {
        return report;
    }
    report = report.data("cookies", names.clone());
    report.detail(format!(
        "the answer sets cookies ({}): a cookie-affinity balancer or the sid cookie; browsers \
         send them back only with credentials across origins",
        names.join(", ")
    ))
}

/// Opens a session by WebSocket: the socket, its handshake, and how long it took.
async fn ws_session(
    ctx: &Ctx,
    headers: &[(HeaderName, HeaderValue)],
) -> Result<(super::raw::Ws, Handshake, Duration), String> {
    let started = Instant::now();
    let mut ws = ctx
        .raw
        .websocket(None, headers)
        .await
        .map_err(|e| e.explain())?;
    let frame = ws.recv(None).await.map_err(|e| {
        format!(
            "the WebSocket opened (101) but no open packet came: {e} — something between \
             holds or drops WebSocket frames (a buffering proxy, an antivirus)"
        )
    })?;
    let hs = parse_ws_open(&frame)?;
    Ok((ws, hs, started.elapsed()))
}

// ------------------------------------------------------------------ dispatch

/// Runs one of the independent checks.
pub(crate) async fn run(name: &'static str, ctx: &Arc<Ctx>, server: &Server) -> Vec<Report> {
    vec![match name {
        "cors" => cors(ctx, server).await,
        "polling" => polling(ctx, server).await,
        "websocket" => websocket(ctx, server).await,
        "upgrade" => upgrade(ctx, server).await,
        _ => sticky(ctx, server).await,
    }]
}

/// How long the long-poll and heartbeat checks may take, when they will run.
pub(crate) fn slow_checks_wait(ctx: &Ctx, server: &Server) -> Option<Duration> {
    let hs = &server.handshake;
    if hs.ping_interval + hs.ping_timeout + Duration::from_secs(1) > ctx.max_wait {
        return None;
    }
    Some(pings_needed(ctx, hs) * hs.ping_interval + hs.ping_timeout)
}

fn pings_needed(ctx: &Ctx, hs: &Handshake) -> u32 {
    if 2 * hs.ping_interval + hs.ping_timeout + Duration::from_secs(2) <= ctx.max_wait {
        2
    } else {
        1
    }
}

// ------------------------------------------------------------------ cors

async fn cors(ctx: &Ctx, server: &Server) -> Report {
    let Some(origin) = ctx.origin.as_deref() else {
        return Report::skip(
            "cors",
            "give --origin https://your.app (the origin of the page that connects) to check CORS",
        );
    };
    let Ok(origin_value) = HeaderValue::from_str(origin) else {
        return Report::skip("cors", "the origin is not a valid header value");
    };
    let raw = &ctx.raw;
    let with_origin = [(header::ORIGIN, origin_value.clone())];
    let mut problems: Vec<String> = Vec::new();
    let mut passed: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let allows = |a: &Answer| {
        let acao = a.header(header::ACCESS_CONTROL_ALLOW_ORIGIN);
        acao == "*" || acao.eq_ignore_ascii_case(origin)
    };
    let acao_of = |a: &Answer| match a.header(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        "" => "missing".to_owned(),
        v => format!("{v:?}"),
    };
    if server.polling {
        // The preflight a browser sends before a POST with custom headers.
        let target = raw.polling_target(None);
        let preflight_headers = [
            (header::ORIGIN, origin_value.clone()),
            (
                header::ACCESS_CONTROL_REQUEST_METHOD,
                HeaderValue::from_static("POST"),
            ),
            (
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                HeaderValue::from_static("content-type"),
            ),
        ];
        match raw
            .request(
                None,
                Method::OPTIONS,
                &target,
                &preflight_headers,
                b"",
                None,
            )
            .await
        {
            Err(e) => problems.push(format!("the preflight (OPTIONS) failed: {e}")),
            Ok(a) if !a.status.is_success() => problems.push(format!(
                "the preflight (OPTIONS) was answered {}: browsers then refuse requests with \
                 custom headers",
                a.describe()
            )),
            Ok(a) if !allows(&a) => problems.push(format!(
                "the preflight's Access-Control-Allow-Origin is {}, not {origin}",
                acao_of(&a)
            )),
            Ok(a) => {
                let methods = a
                    .header(header::ACCESS_CONTROL_ALLOW_METHODS)
                    .to_ascii_uppercase();
                if !methods.is_empty() && !methods.contains("POST") && methods != "*" {
                    problems.push(format!(
                        "the preflight allows the methods {methods:?}, not POST"
                    ));
                } else {
                    passed.push(format!("preflight {}", a.status.as_u16()));
                }
            }
        }
        // The handshake and a POST, as engine.io-client sends them from that origin.
        match raw.open_polling(None, &with_origin).await {
            Err(OpenError::Unreachable(e)) => problems.push(format!("the handshake failed: {e}")),
            Err(OpenError::Refused(_, a)) => problems.push(format!(
                "the handshake with Origin {origin} was refused: {}",
                super::raw::explain_refusal(&a)
            )),
            Ok((hs, a)) => {
                let sid = hs.sid.as_str().to_owned();
                if allows(&a) {
                    passed.push(format!(
                        "handshake with Access-Control-Allow-Origin {}",
                        acao_of(&a)
                    ));
                    let acao = a.header(header::ACCESS_CONTROL_ALLOW_ORIGIN);
                    let credentials = a.header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS) == "true";
                    if acao == "*" {
                        notes.push(
                            "Access-Control-Allow-Origin is *: browsers send no cookies \
                             (withCredentials) with it, which a cookie-affinity balancer needs"
                                .to_owned(),
                        );
                    } else if !credentials {
                        notes.push(
                            "no Access-Control-Allow-Credentials: true: requests with \
                             credentials (cookies, withCredentials) would be refused"
                                .to_owned(),
                        );
                    }
                } else {
                    problems.push(format!(
                        "the handshake was answered without Access-Control-Allow-Origin for \
                         {origin} ({}): browsers there cannot read it",
                        acao_of(&a)
                    ));
                }
                match raw.post(None, &sid, &with_origin, b"3").await {
                    Err(e) => problems.push(format!("a POST with Origin {origin} failed: {e}")),
                    Ok(a) if !a.status.is_success() => problems.push(format!(
                        "a POST with Origin {origin} was answered {}",
                        super::raw::explain_refusal(&a)
                    )),
                    Ok(a) if !allows(&a) => problems.push(format!(
                        "a POST was answered without Access-Control-Allow-Origin for {origin} ({})",
                        acao_of(&a)
                    )),
                    Ok(_) => passed.push("POST".to_owned()),
                }
                raw.close_polling(&sid, &with_origin).await;
            }
        }
    }
    if server.websocket {
        // Browsers send Origin on WebSockets too, and servers check it.
        match ws_session(ctx, &with_origin).await {
            Ok((ws, _, _)) => {
                ws.close().await;
                passed.push("WebSocket".to_owned());
            }
            Err(e) => problems.push(format!("with Origin {origin}, {e}")),
        }
    }
    let mut report = if problems.is_empty() {
        Report::new(
            "cors",
            Verdict::Pass,
            format!("{origin} is allowed: {}", passed.join(", ")),
        )
    } else {
        let first = problems.remove(0);
        let mut r = Report::new(
            "cors",
            Verdict::Fail,
            format!("browsers at {origin} are refused: {first}"),
        )
        .fix(cors_fix(origin));
        for p in problems {
            r = r.detail(p);
        }
        r
    };
    for n in notes {
        report = report.detail(n);
    }
    report.data("origin", origin)
}

// ------------------------------------------------------------------ polling

async fn polling(ctx: &Ctx, server: &Server) -> Report {
    if !server.polling {
        return Report::skip(
            "polling",
            "polling is disabled on the server (WebSocket only)",
        );
    }
    let raw = &ctx.raw;
    let fail = |summary: String| {
        let fix = if summary.contains("Session ID unknown") {
            "make the load balancer sticky (see the sticky check)"
        } else {
            "see the detail: a 5xx is a proxy in trouble, a 4xx a refusal by the server"
        };
        Report::new("polling", Verdict::Fail, summary).fix(fix)
    };
    let (mut get_conn, mut post_conn) = match (raw.connect().await, raw.connect().await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    let (hs, _) = match raw.open_polling(Some(&mut get_conn), &[]).await {
        Ok(x) => x,
        Err(e) => return fail(format!("cannot open a session: {e}")),
    };
    let sid = hs.sid.as_str().to_owned();
    let budget = hold_budget(&hs);
    let mut times = Vec::new();
    let mut error = None;
    'trips: for i in 0..ctx.round_trips {
        let started = Instant::now();
        if ctx.echo {
            let text = format!("eio-doctor polling {i}");
            match raw
                .post(
                    Some(&mut post_conn),
                    &sid,
                    &[],
                    format!("4{text}").as_bytes(),
                )
                .await
            {
                Ok(a) if a.status.is_success() => {}
                Ok(a) => {
                    error = Some(format!(
                        "POST {}: {}",
                        i + 1,
                        super::raw::explain_refusal(&a)
                    ));
                    break;
                }
                Err(e) => {
                    error = Some(format!("POST {}: {e}", i + 1));
                    break;
                }
            }
            let mut echoed = false;
            for _ in 0..10 {
                let target = raw.polling_target(Some(&sid));
                match raw
                    .get(Some(&mut get_conn), &target, &[], Some(budget))
                    .await
                {
                    Ok(a) if a.status.is_success() => {
                        for p in a.packets() {
                            match p {
                                Packet::Message(m) if m.as_text() == Some(text.as_str()) => {
                                    echoed = true;
                                }
                                Packet::Ping { probe: false } => {
                                    let _ = raw.post(Some(&mut post_conn), &sid, &[], b"3").await;
                                }
                                Packet::Close => {
                                    error = Some("the server closed the session".into());
                                    break 'trips;
                                }
                                _ => {}
                            }
                        }
                    }
                    Ok(a) => {
                        error = Some(format!("GET: {}", super::raw::explain_refusal(&a)));
                        break 'trips;
                    }
                    Err(e) => {
                        error = Some(format!(
                            "GET: {e} (no echo: is the server an echo server? drop --echo)"
                        ));
                        break 'trips;
                    }
                }
                if echoed {
                    break;
                }
            }
            if !echoed {
                error = Some(
                    "no echo in 10 long-polls: is the server an echo server? drop --echo".into(),
                );
                break;
            }
            times.push(started.elapsed());
        } else {
            match raw.post(Some(&mut post_conn), &sid, &[], b"3").await {
                Ok(a) if a.status.is_success() => times.push(a.took),
                Ok(a) => {
                    error = Some(format!(
                        "POST {} of {}: {}",
                        i + 1,
                        ctx.round_trips,
                        super::raw::explain_refusal(&a)
                    ));
                    break;
                }
                Err(e) => {
                    error = Some(format!("POST {} of {}: {e}", i + 1, ctx.round_trips));
                    break;
                }
            }
        }
    }
    raw.close_polling(&sid, &[]).await;
    if let Some(e) = error {
        return fail(e).data("completed", times.len());
    }
    let what = if ctx.echo {
        format!(
            "{} round trips (POST a message, long-poll its echo)",
            times.len()
        )
    } else {
        format!(
            "{} POSTs accepted on one session (--echo also times messages)",
            times.len()
        )
    };
    Report::new(
        "polling",
        Verdict::Pass,
        format!(
            "{what}: median {}, max {}",
            human_duration(median(&times)),
            human_duration(max(&times))
        ),
    )
    .data("median_ms", ms(median(&times)))
    .data("max_ms", ms(max(&times)))
}

// ------------------------------------------------------------------ websocket

async fn websocket(ctx: &Ctx, server: &Server) -> Report {
    let (mut ws, hs, took) = match ws_session(ctx, &[]).await {
        Ok(x) => x,
        Err(e) if !server.websocket => {
            return Report::skip(
                "websocket",
                format!("the server offers no WebSocket (upgrades: []), and {e}"),
            );
        }
        Err(e) => return Report::new("websocket", Verdict::Fail, e).fix(WS_FIX),
    };
    let mut summary = format!(
        "opened by WebSocket in {} (sid {})",
        human_duration(took),
        hs.sid.as_str()
    );
    let mut report_data = Vec::new();
    if ctx.echo {
        let text = "4eio-doctor websocket";
        let started = Instant::now();
        let result = match ws.send(text).await {
            Ok(()) => ws
                .recv_skipping_pings(None)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(frame) if frame == text => {
                let rtt = started.elapsed();
                summary.push_str(&format!("; message round trip {}", human_duration(rtt)));
                report_data.push(("echo_ms", ms(rtt)));
            }
            Ok(frame) => {
                ws.close().await;
                return Report::new(
                    "websocket",
                    Verdict::Fail,
                    format!(
                        "sent {text:?}, got {frame:?} back: is the server an echo server? drop --echo"
                    ),
                );
            }
            Err(e) => {
                ws.close().await;
                return Report::new(
                    "websocket",
                    Verdict::Fail,
                    format!(
                        "no echo over the WebSocket: {e} (is the server an echo server? drop --echo)"
                    ),
                );
            }
        }
    }
    ws.close().await;
    let mut report = Report::new("websocket", Verdict::Pass, summary).data("open_ms", ms(took));
    for (k, v) in report_data {
        report = report.data(k, v);
    }
    report
}

// ------------------------------------------------------------------ upgrade

async fn upgrade(ctx: &Arc<Ctx>, server: &Server) -> Report {
    if !server.polling {
        return Report::skip(
            "upgrade",
            "polling is disabled: sessions open by WebSocket directly",
        );
    }
    if !server.websocket {
        return Report::skip("upgrade", "the server offers no upgrade (upgrades: [])");
    }
    let raw = &ctx.raw;
    let mut conn = match raw.connect().await {
        Ok(c) => c,
        Err(e) => return Report::new("upgrade", Verdict::Fail, e),
    };
    let (hs, _) = match raw.open_polling(Some(&mut conn), &[]).await {
        Ok(x) => x,
        Err(e) => {
            return Report::new(
                "upgrade",
                Verdict::Fail,
                format!("cannot open a session: {e}"),
            );
        }
    };
    let sid = hs.sid.as_str().to_owned();
    // A long-poll held while the upgrade happens, as a browser has one.
    let held = {
        let ctx = Arc::clone(ctx);
        let target = raw.polling_target(Some(&sid));
        let budget = hold_budget(&hs);
        tokio::spawn(async move {
            ctx.raw
                .get(Some(&mut conn), &target, &[], Some(budget))
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let outcome = upgrade_steps(ctx, &sid, held).await;
    raw.close_polling(&sid, &[]).await;
    outcome
}

async fn upgrade_steps(
    ctx: &Ctx,
    sid: &str,
    mut held: tokio::task::JoinHandle<Result<Answer, String>>,
) -> Report {
    let started = Instant::now();
    let mut ws = match ctx.raw.websocket(Some(sid), &[]).await {
        Ok(ws) => ws,
        Err(e) => {
            held.abort();
            let fix = match &e {
                WsError::Refused(a) if a.is_unknown_sid() => STICKY_FIX,
                _ => WS_FIX,
            };
            return Report::new(
                "upgrade",
                Verdict::Fail,
                format!("the WebSocket for the polling session: {}", e.explain()),
            )
            .fix(fix)
            .data(
                "status",
                e.answer()
                    .map_or(serde_json::Value::Null, |a| a.status.as_u16().into()),
            );
        }
    };
    let probe = async {
        ws.send("2probe").await?;
        for _ in 0..5 {
            match ws.recv(None).await {
                Ok(f) if f == "3probe" => return Ok(()),
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err("no 3probe in the first five frames".to_owned())
    }
    .await;
    if let Err(e) = probe {
        held.abort();
        ws.drop_socket().await;
        return Report::new(
            "upgrade",
            Verdict::Fail,
            format!("the WebSocket opened, but the probe (2probe) got no answer (3probe): {e}"),
        )
        .fix(
            "something between the client and the server holds or drops WebSocket frames \
             (a buffering proxy, an antivirus, a proxy that does not forward WebSocket data): \
             clients then stay on polling; fix the proxy, see the websocket check",
        );
    }
    let probed = started.elapsed();
    if let Err(e) = ws.send("5").await {
        held.abort();
        return Report::new(
            "upgrade",
            Verdict::Fail,
            format!("sending the upgrade packet (5): {e}"),
        );
    }
    let upgraded_at = Instant::now();
    // The held long-poll must be answered at once (a noop) so the client can switch.
    let released = match tokio::time::timeout(Duration::from_secs(1), &mut held).await {
        Ok(Ok(Ok(a))) if a.status.is_success() => Ok(a),
        Ok(Ok(Ok(a))) => Err(format!(
            "it was answered {}",
            super::raw::explain_refusal(&a)
        )),
        Ok(Ok(Err(e))) => Err(e),
        Ok(Err(e)) => Err(format!("internal: {e}")),
        Err(_) => {
            held.abort();
            Err("it was still held 1 s after the upgrade".to_owned())
        }
    };
    let mut summary = format!(
        "WebSocket opened and probe answered in {}, upgraded",
        human_duration(probed)
    );
    let mut verdict = Verdict::Pass;
    let mut detail = None;
    match &released {
        Ok(_) => {
            summary.push_str(&format!(
                "; the held long-poll was released within {} of the upgrade",
                human_duration(upgraded_at.elapsed())
            ));
        }
        Err(e) => {
            verdict = Verdict::Warn;
            detail = Some(format!(
                "the long-poll held during the upgrade was not released: {e}; a client waits \
                 for it (up to pingInterval) before it uses the WebSocket. The server should \
                 answer it with a noop (6) during the upgrade, and no proxy should hold that \
                 answer back"
            ));
        }
    }
    if ctx.echo {
        let text = "4eio-doctor upgrade";
        let result = match ws.send(text).await {
            Ok(()) => ws
                .recv_skipping_pings(None)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(f) if f == text => {
                summary.push_str("; a message echoed over the upgraded WebSocket")
            }
            Ok(f) => {
                verdict = Verdict::Fail;
                detail = Some(format!("after the upgrade, sent {text:?} and got {f:?}"));
            }
            Err(e) => {
                verdict = Verdict::Fail;
                detail = Some(format!("after the upgrade, no echo: {e}"));
            }
        }
    }
    ws.close().await;
    let mut report = Report::new("upgrade", verdict, summary).data("probe_ms", ms(probed));
    if let Some(d) = detail {
        report = report.detail(d);
    }
    report
}

// ------------------------------------------------------------------ sticky

#[derive(Debug, Default)]
struct StickyTally {
    opened: usize,
    open_errors: usize,
    posts: usize,
    posts_unknown: usize,
    sessions_hit: usize,
    upgrades: usize,
    upgrades_unknown: usize,
    other_errors: usize,
    first_error: Option<String>,
}

impl StickyTally {
    fn error(&mut self, e: String) {
        self.other_errors += 1;
        self.first_error.get_or_insert(e);
    }
}

async fn sticky(ctx: &Arc<Ctx>, server: &Server) -> Report {
    if !server.polling {
        return Report::skip(
            "sticky",
            "polling is disabled: WebSocket-only sessions need no stickiness",
        );
    }
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let tasks: Vec<_> = (0..ctx.sessions)
        .map(|_| {
            let ctx = Arc::clone(ctx);
            let limit = Arc::clone(&limit);
            let websocket = server.websocket;
            tokio::spawn(async move {
                let _permit = limit.acquire().await;
                sticky_session(&ctx, websocket).await
            })
        })
        .collect();
    let mut total = StickyTally::default();
    for t in tasks {
        let s = match t.await {
            Ok(s) => s,
            Err(e) => {
                total.error(format!("internal: {e}"));
                continue;
            }
        };
        total.opened += s.opened;
        total.open_errors += s.open_errors;
        total.posts += s.posts;
        total.posts_unknown += s.posts_unknown;
        total.sessions_hit += s.sessions_hit;
        total.upgrades += s.upgrades;
        total.upgrades_unknown += s.upgrades_unknown;
        total.other_errors += s.other_errors;
        if total.first_error.is_none() {
            total.first_error = s.first_error;
        }
    }
    let t = &total;
    let scope = format!(
        "{} sessions × {} POSTs, each on a new connection{}",
        t.opened,
        ctx.round_trips,
        if server.websocket {
            format!(", and {} WebSocket upgrades", t.upgrades)
        } else {
            String::new()
        }
    );
    let report = if t.opened == 0 {
        Report::new(
            "sticky",
            Verdict::Fail,
            format!(
                "no session could be opened: {}",
                t.first_error.clone().unwrap_or_default()
            ),
        )
    } else if t.posts_unknown + t.upgrades_unknown > 0 {
        let mut what = Vec::new();
        if t.posts_unknown > 0 {
            what.push(format!("{} of {} POSTs", t.posts_unknown, t.posts));
        }
        if t.upgrades_unknown > 0 {
            what.push(format!(
                "{} of {} WebSocket upgrades",
                t.upgrades_unknown, t.upgrades
            ));
        }
        let mut r = Report::new(
            "sticky",
            Verdict::Fail,
            format!(
                "{} reached a server that did not know their session (400 \"Session ID \
                 unknown\"): the load balancer is not sticky",
                what.join(" and ")
            ),
        )
        .detail(format!(
            "{scope}; {} of {} sessions were hit",
            t.sessions_hit, t.opened
        ))
        .fix(STICKY_FIX);
        if t.posts_unknown == 0 {
            r = r.detail(
                "the POSTs stayed on their server but WebSocket connects did not: the \
                 affinity must cover the WebSocket connect too",
            );
        }
        r
    } else if t.other_errors > 0 || t.open_errors > 0 {
        Report::new(
            "sticky",
            Verdict::Warn,
            format!("{scope}: none reached a server that did not know its session"),
        )
        .detail(format!(
            "but {} requests failed otherwise (first: {}), and {} sessions could not be opened",
            t.other_errors,
            t.first_error.clone().unwrap_or_default(),
            t.open_errors
        ))
    } else {
        Report::new(
            "sticky",
            Verdict::Pass,
            format!("{scope}: every request reached the session's server"),
        )
    };
    report
        .data("sessions", t.opened)
        .data("posts", t.posts)
        .data("posts_unknown", t.posts_unknown)
        .data("upgrades", t.upgrades)
        .data("upgrades_unknown", t.upgrades_unknown)
        .data("other_errors", t.other_errors)
}

async fn sticky_session(ctx: &Ctx, websocket: bool) -> StickyTally {
    let raw = &ctx.raw;
    let mut tally = StickyTally::default();
    let (hs, answer) = match raw.open_polling(None, &[]).await {
        Ok(x) => x,
        Err(e) => {
            tally.open_errors += 1;
            tally.first_error = Some(format!("handshake: {e}"));
            return tally;
        }
    };
    tally.opened = 1;
    let sid = hs.sid.as_str().to_owned();
    // Cookies the server or the balancer set (affinity cookies) go back, as browsers do.
    let cookies = answer.cookies();
    let headers: Vec<(HeaderName, HeaderValue)> = if cookies.is_empty() {
        Vec::new()
    } else {
        HeaderValue::from_str(&cookies.join("; "))
            .map(|v| vec![(header::COOKIE, v)])
            .unwrap_or_default()
    };
    let mut hit = false;
    for _ in 0..ctx.round_trips {
        tally.posts += 1;
        match raw.post(None, &sid, &headers, b"3").await {
            Ok(a) if a.is_unknown_sid() => {
                tally.posts_unknown += 1;
                hit = true;
            }
            Ok(a) if a.status.is_success() => {}
            Ok(a) => tally.error(format!("POST: {}", a.describe())),
            Err(e) => tally.error(format!("POST: {e}")),
        }
    }
    if websocket {
        tally.upgrades += 1;
        match raw.websocket(Some(&sid), &headers).await {
            Ok(mut ws) => {
                // Probe, and leave it at that: the session stays on polling.
                let _ = ws.send("2probe").await;
                match ws.recv(None).await {
                    Ok(f) if f == "3probe" => {}
                    Ok(f) => tally.error(format!("WebSocket probe answered {f:?}")),
                    Err(e) => tally.error(format!("WebSocket probe: {e}")),
                }
                ws.drop_socket().await;
            }
            Err(WsError::Refused(a)) if a.is_unknown_sid() => {
                tally.upgrades_unknown += 1;
                hit = true;
            }
            Err(e) => tally.error(e.explain()),
        }
    }
    tally.sessions_hit = usize::from(hit);
    raw.close_polling(&sid, &headers).await;
    tally
}

// ------------------------------------------------------------------ long-poll + heartbeat

/// How a held session went: pings and how long each took, or what ended it.
#[derive(Debug, Default)]
struct Held {
    /// Time from the open (or the last pong) to each ping.
    pings: Vec<Duration>,
    /// How long the first long-poll was held before it was answered.
    first_hold: Option<Duration>,
    /// What ended the session before its pings: how long that request had been held,
    /// and what came.
    cut: Option<(Duration, String)>,
    /// The answer was "Session ID unknown".
    unknown_sid: bool,
    /// The session could not be opened.
    open_error: Option<String>,
    /// No ping within the budget.
    silent: Option<Duration>,
}

/// The long-poll and heartbeat checks: one polling session held until its pings, one
/// WebSocket session likewise, and a second polling session that sends while a long-poll
/// is held.
pub(crate) async fn held(
    ctx: &Arc<Ctx>,
    server: &Server,
    long_poll: bool,
    heartbeat: bool,
) -> Vec<Report> {
    let hs = &server.handshake;
    let mut out = Vec::new();
    if !long_poll && !heartbeat {
        return vec![
            Report::skip("long-poll", "not asked for"),
            Report::skip("heartbeat", "not asked for"),
        ];
    }
    if slow_checks_wait(ctx, server).is_none() {
        let why = format!(
            "pingInterval + pingTimeout ({}) is longer than --max-wait ({}): raise --max-wait to check",
            human_duration(hs.ping_interval + hs.ping_timeout),
            human_duration(ctx.max_wait)
        );
        return vec![
            Report::skip("long-poll", why.clone()),
            Report::skip("heartbeat", why),
        ];
    }
    let needed = pings_needed(ctx, hs);
    let poll_held = {
        let ctx = Arc::clone(ctx);
        let run = server.polling;
        tokio::spawn(async move {
            if run {
                Some(hold_polling(&ctx, needed).await)
            } else {
                None
            }
        })
    };
    let ws_held = {
        let ctx = Arc::clone(ctx);
        let run = server.websocket && heartbeat;
        tokio::spawn(async move {
            if run {
                Some(hold_websocket(&ctx, needed).await)
            } else {
                None
            }
        })
    };
    let lane = {
        let ctx = Arc::clone(ctx);
        let run = server.polling && long_poll;
        tokio::spawn(async move {
            if run {
                Some(send_while_held(&ctx).await)
            } else {
                None
            }
        })
    };
    let poll_held = poll_held.await.ok().flatten();
    let ws_held = ws_held.await.ok().flatten();
    let lane = lane.await.ok().flatten();
    if long_poll {
        out.push(long_poll_report(hs, poll_held.as_ref(), lane));
    } else {
        out.push(Report::skip("long-poll", "not asked for"));
    }
    if heartbeat {
        out.push(heartbeat_report(
            hs,
            needed,
            poll_held.as_ref(),
            ws_held.as_ref(),
        ));
    } else {
        out.push(Report::skip("heartbeat", "not asked for"));
    }
    out
}

async fn hold_polling(ctx: &Ctx, needed: u32) -> Held {
    let raw = &ctx.raw;
    let mut held = Held::default();
    let (mut get_conn, mut post_conn) = match (raw.connect().await, raw.connect().await) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            held.open_error = Some(e);
            return held;
        }
    };
    let (hs, _) = match raw.open_polling(Some(&mut get_conn), &[]).await {
        Ok(x) => x,
        Err(e) => {
            held.open_error = Some(e.to_string());
            return held;
        }
    };
    let sid = hs.sid.as_str().to_owned();
    let budget = hold_budget(&hs);
    let mut since = Instant::now();
    'gets: while held.pings.len() < needed as usize {
        let target = raw.polling_target(Some(&sid));
        let started = Instant::now();
        let result = raw
            .get(Some(&mut get_conn), &target, &[], Some(budget))
            .await;
        let hold = started.elapsed();
        if held.first_hold.is_none() {
            held.first_hold = Some(hold);
        }
        match result {
            Err(e) if e.starts_with("no answer within") => {
                held.silent = Some(since.elapsed());
                break;
            }
            Err(e) => {
                held.cut = Some((hold, e));
                break;
            }
            Ok(a) if !a.status.is_success() => {
                held.unknown_sid = a.is_unknown_sid();
                held.cut = Some((hold, super::raw::explain_refusal(&a)));
                break;
            }
            Ok(a) => {
                let packets = a.packets();
                if packets.is_empty() {
                    held.cut = Some((
                        hold,
                        format!("an answer that is not Engine.IO ({})", a.describe()),
                    ));
                    break;
                }
                for p in packets {
                    match p {
                        Packet::Ping { probe: false } => {
                            held.pings.push(since.elapsed());
                            match raw.post(Some(&mut post_conn), &sid, &[], b"3").await {
                                Ok(a) if a.status.is_success() => {}
                                Ok(a) => {
                                    held.unknown_sid = a.is_unknown_sid();
                                    held.cut = Some((
                                        hold,
                                        format!("the pong was answered {}", a.describe()),
                                    ));
                                    break 'gets;
                                }
                                Err(e) => {
                                    held.cut = Some((hold, format!("the pong failed: {e}")));
                                    break 'gets;
                                }
                            }
                            since = Instant::now();
                        }
                        Packet::Close => {
                            held.cut = Some((hold, "the server closed the session (1)".to_owned()));
                            break 'gets;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    raw.close_polling(&sid, &[]).await;
    held
}

async fn hold_websocket(ctx: &Ctx, needed: u32) -> Held {
    let mut held = Held::default();
    let (mut ws, hs, _) = match ws_session(ctx, &[]).await {
        Ok(x) => x,
        Err(e) => {
            held.open_error = Some(e);
            return held;
        }
    };
    let budget = hold_budget(&hs);
    let mut since = Instant::now();
    while held.pings.len() < needed as usize {
        let started = Instant::now();
        match ws.recv(Some(budget)).await {
            Ok(f) if f == "2" => {
                held.pings.push(since.elapsed());
                if let Err(e) = ws.send("3").await {
                    held.cut = Some((started.elapsed(), format!("the pong failed: {e}")));
                    break;
                }
                since = Instant::now();
            }
            Ok(f) if f == "1" => {
                held.cut = Some((
                    started.elapsed(),
                    "the server closed the session (1)".into(),
                ));
                break;
            }
            Ok(_) => {}
            Err(super::raw::WsEnd::Timeout(_)) => {
                held.silent = Some(since.elapsed());
                break;
            }
            Err(e) => {
                held.cut = Some((since.elapsed(), e.to_string()));
                break;
            }
        }
    }
    ws.close().await;
    held
}

/// What the second polling session saw.
#[derive(Debug)]
struct Lane {
    /// How long a POST sent during a held long-poll took.
    post: Result<Duration, String>,
    /// With `--echo`: how long the held long-poll took to return the message.
    echo: Option<Result<Duration, String>>,
}

async fn send_while_held(ctx: &Arc<Ctx>) -> Lane {
    let raw = &ctx.raw;
    let failed = |e: String| Lane {
        post: Err(e),
        echo: None,
    };
    let mut conn = match raw.connect().await {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let (hs, _) = match raw.open_polling(Some(&mut conn), &[]).await {
        Ok(x) => x,
        Err(e) => return failed(format!("cannot open a session: {e}")),
    };
    let sid = hs.sid.as_str().to_owned();
    let budget = hold_budget(&hs);
    let mut held = {
        let ctx = Arc::clone(ctx);
        let target = raw.polling_target(Some(&sid));
        tokio::spawn(async move {
            let r = ctx
                .raw
                .get(Some(&mut conn), &target, &[], Some(budget))
                .await;
            (r, conn)
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let text = "eio-doctor long-poll";
    let body = if ctx.echo {
        format!("4{text}")
    } else {
        "3".to_owned()
    };
    let sent = Instant::now();
    let post = match raw.post(None, &sid, &[], body.as_bytes()).await {
        Ok(a) if a.status.is_success() => {
            let took = a.took;
            if took > Duration::from_secs(1) {
                Err(format!(
                    "a POST sent while a long-poll was held took {}: the session's requests \
                     queue behind the held long-poll",
                    human_duration(took)
                ))
            } else {
                Ok(took)
            }
        }
        Ok(a) => Err(format!(
            "a POST sent while a long-poll was held was answered {}",
            super::raw::explain_refusal(&a)
        )),
        Err(e) => Err(format!(
            "a POST sent while a long-poll was held failed: {e}"
        )),
    };
    let echo = if ctx.echo && post.is_ok() {
        // The held long-poll must return the message at once.
        let mut result = Err("the held long-poll did not return the message within 1 s: \
                              something between holds answers back (a buffering proxy)"
            .to_owned());
        if let Ok(Ok((r, mut conn))) = tokio::time::timeout(Duration::from_secs(1), &mut held).await
        {
            let mut answer = r;
            for _ in 0..3 {
                match &answer {
                    Ok(a)
                        if a.packets().iter().any(
                            |p| matches!(p, Packet::Message(m) if m.as_text() == Some(text)),
                        ) =>
                    {
                        result = Ok(sent.elapsed());
                        break;
                    }
                    Ok(a) if a.status.is_success() => {
                        // A ping or a noop came first: answer it and poll again.
                        if a.packets().contains(&Packet::Ping { probe: false }) {
                            let _ = raw.post(None, &sid, &[], b"3").await;
                        }
                        let target = raw.polling_target(Some(&sid));
                        answer = raw
                            .get(Some(&mut conn), &target, &[], Some(Duration::from_secs(1)))
                            .await;
                    }
                    Ok(a) => {
                        result = Err(format!(
                            "the held long-poll was answered {}",
                            super::raw::explain_refusal(a)
                        ));
                        break;
                    }
                    Err(e) => {
                        result = Err(format!("the held long-poll failed: {e}"));
                        break;
                    }
                }
            }
        }
        Some(result)
    } else {
        None
    };
    held.abort();
    raw.close_polling(&sid, &[]).await;
    Lane { post, echo }
}

fn long_poll_report(hs: &Handshake, held: Option<&Held>, lane: Option<Lane>) -> Report {
    let Some(held) = held else {
        return Report::skip(
            "long-poll",
            "polling is disabled on the server (WebSocket only)",
        );
    };
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    let mut passed = Vec::new();
    let mut data = serde_json::Map::new();
    if let Some(lane) = lane {
        match lane.post {
            Ok(d) => {
                passed.push(format!(
                    "a POST sent during a held long-poll was answered in {}",
                    human_duration(d)
                ));
                data.insert("post_during_hold_ms".into(), ms(d).into());
            }
            Err(e) => {
                problems.push(e);
                fixes.push(
                    "find what queues a client's requests behind its held long-poll: a proxy \
                     that serializes requests or buffers answers, or a connection limit of one \
                     per client",
                );
            }
        }
        match lane.echo {
            Some(Ok(d)) => {
                passed.push(format!(
                    "the held long-poll returned the message in {}",
                    human_duration(d)
                ));
                data.insert("held_release_ms".into(), ms(d).into());
            }
            Some(Err(e)) => {
                problems.push(e);
                fixes.push(
                    "turn off response buffering for the Engine.IO path (nginx `proxy_buffering \
                     off;`), and check that nothing between holds answers back",
                );
            }
            None => {}
        }
    }
    if let Some(e) = &held.open_error {
        problems.push(format!("cannot open a session: {e}"));
    } else if let Some((hold, what)) = &held.cut {
        if held.unknown_sid {
            problems.push(format!(
                "a request of the held session reached a server that did not know it ({what}): \
                 see the sticky check"
            ));
            fixes.push("make the load balancer sticky (see the sticky check)");
        } else if held.pings.is_empty() && *hold < hs.ping_interval {
            problems.push(format!(
                "a held long-poll was cut after {} by {what}, before the server's ping \
                 (pingInterval {}): a proxy times it out",
                human_duration(*hold),
                human_duration(hs.ping_interval)
            ));
            fixes.push(TIMEOUT_FIX);
            data.insert("cut_after_ms".into(), ms(*hold).into());
        } else {
            problems.push(format!(
                "a held long-poll ended after {} with {what}",
                human_duration(*hold)
            ));
        }
    } else if let Some(hold) = held.first_hold {
        passed.push(format!(
            "a long-poll was held {} until the server's ping (pingInterval {})",
            human_duration(hold),
            human_duration(hs.ping_interval)
        ));
        data.insert("held_ms".into(), ms(hold).into());
    }
    let mut report = if problems.is_empty() {
        Report::new("long-poll", Verdict::Pass, passed.join("; "))
    } else {
        let first = problems.remove(0);
        let mut r = Report::new("long-poll", Verdict::Fail, first);
        for p in problems {
            r = r.detail(p);
        }
        for p in passed {
            r = r.detail(format!("ok: {p}"));
        }
        fixes.dedup();
        if !fixes.is_empty() {
            r = r.fix(fixes.join("; also "));
        }
        r
    };
    report.data.extend(data);
    report
}

fn heartbeat_report(
    hs: &Handshake,
    needed: u32,
    polling: Option<&Held>,
    ws: Option<&Held>,
) -> Report {
    let interval = hs.ping_interval;
    let late_after = interval + ping_tolerance(interval);
    let mut verdict = Verdict::Pass;
    let mut parts = Vec::new();
    let mut details = Vec::new();
    let mut data = serde_json::Map::new();
    for (name, held) in [("polling", polling), ("WebSocket", ws)] {
        let Some(held) = held else { continue };
        data.insert(
            format!("{}_pings_ms", name.to_lowercase()),
            held.pings.iter().map(|d| ms(*d)).collect::<Vec<_>>().into(),
        );
        if let Some(e) = &held.open_error {
            verdict = Verdict::Fail;
            details.push(format!("{name}: cannot open a session: {e}"));
            continue;
        }
        if held.pings.len() < needed as usize {
            verdict = Verdict::Fail;
            let why = if let Some(silent) = held.silent {
                format!(
                    "no ping within {} (pingInterval + pingTimeout + 2 s): clients declare the \
                     server gone",
                    human_duration(silent)
                )
            } else if let Some((after, what)) = &held.cut {
                format!("the session ended after {}: {what}", human_duration(*after))
            } else {
                "no ping".to_owned()
            };
            let got = if held.pings.is_empty() {
                "no ping".to_owned()
            } else {
                format!(
                    "{} of {needed} pings ({})",
                    held.pings.len(),
                    list(&held.pings)
                )
            };
            let why = if held.unknown_sid {
                format!("{why} (see the sticky check)")
            } else {
                why
            };
            details.push(format!("{name}: {got}; {why}"));
            continue;
        }
        if held.pings.iter().any(|d| *d > late_after) {
            if verdict == Verdict::Pass {
                verdict = Verdict::Warn;
            }
            details.push(format!(
                "{name}: pings came after {} (advertised every {}): late, though within \
                 pingTimeout",
                list(&held.pings),
                human_duration(interval)
            ));
        }
        parts.push(format!("{name} {}", list(&held.pings)));
    }
    let summary = match verdict {
        Verdict::Pass => format!(
            "pings on time (advertised every {}), pongs accepted: {}",
            human_duration(interval),
            parts.join("; ")
        ),
        Verdict::Warn => format!(
            "pings arrive, some later than the advertised {}",
            human_duration(interval)
        ),
        _ => details.first().cloned().unwrap_or_default(),
    };
    let mut report = Report::new("heartbeat", verdict, summary);
    let skip_first = verdict == Verdict::Fail;
    for (i, d) in details.into_iter().enumerate() {
        if !(skip_first && i == 0) {
            report = report.detail(d);
        }
    }
    if verdict == Verdict::Fail {
        report = report.fix(
            "the server must ping every pingInterval; when it does, something between delays \
             or drops its answers (see the long-poll check), or a proxy closes idle WebSockets \
             (nginx proxy_read_timeout applies to them too)",
        );
    }
    report.data.extend(data);
    report
}
