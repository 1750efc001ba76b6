//! The HTTP side: the page, `GET /metrics`, `GET /api/snapshot`, and the page's WebSocket.

use std::net::SocketAddr;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::dev::{ServerHandle, Service as _};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use actix_ws::{AggregatedMessage, Session};
use futures_util::StreamExt as _;
use janitoo_actors::{ActorKind, Metrics, MqttBridge};
use janitoo_protocol::{Data, Genre, Hadd};
use serde_json::json;
use tokio::sync::broadcast;
use tracing::info;

use crate::hub::{GetSnapshot, SetFromPage, WebHub};
use crate::login::{Logins, Role};
use crate::login_pages;
use crate::WebError;

/// The page, its script and style inline: no build step, nothing fetched.
const INDEX_HTML: &str = include_str!("../assets/index.html");

/// Events buffered for a slow page; past that it gets a fresh snapshot instead.
const PAGE_BUFFER: usize = 1024;

/// How often an open page is pinged.
const PAGE_PING: std::time::Duration = std::time::Duration::from_secs(20);

/// How long a page may stay silent (no message, no pong) before its socket is closed.
const PAGE_SILENCE: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone)]
pub(crate) struct State {
    hub: Addr<WebHub>,
    updates: broadcast::Sender<Arc<str>>,
    metrics: Arc<Metrics>,
    /// The users, when a login is required.
    pub(crate) logins: Option<Arc<Logins>>,
}

/// A running web manager.
pub struct WebServer {
    handle: ServerHandle,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl WebServer {
    /// Stops serving (open pages are closed).
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// The headers of every answer: no framing, no sniffing, nothing loaded from elsewhere (the
/// page's script and style are inline; it talks only to its own WebSocket).
const SECURITY_HEADERS: [(&str, &str); 4] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
];

/// Starts the web manager on `listen`, inside the running actix System: it observes the
/// network through `bridge`, answers to `hadd`, and shows `metrics` on `/metrics`. It serves
/// requests for IP addresses, `localhost` and the names in `hosts` only; with `logins`, only
/// to users logged in (`/login` excepted), and sets only from operators. `keyed`: whether the
/// process has the network's key (the page warns when it has not).
pub fn start(
    listen: SocketAddr,
    hosts: &[String],
    logins: Option<Arc<Logins>>,
    hadd: Hadd,
    keyed: bool,
    bridge: Addr<MqttBridge>,
    metrics: Arc<Metrics>,
) -> Result<WebServer, WebError> {
    let (updates, _) = broadcast::channel(PAGE_BUFFER);
    let hub = WebHub::new(
        hadd,
        keyed,
        bridge.clone().recipient(),
        bridge.recipient(),
        updates.clone(),
        metrics.clone(),
    )
    .start();
    let state = State {
        hub,
        updates,
        metrics,
        logins: logins.clone(),
    };
    let hosts: Arc<[String]> = hosts.iter().map(|h| h.to_ascii_lowercase()).collect();
    let server = HttpServer::new(move || {
        let hosts = hosts.clone();
        let gate = login_pages::Gate(logins.clone());
        let logins = logins.clone();
        App::new()
            .wrap_fn(move |request, service| {
                let served = host_is_served(request.headers(), &hosts);
                let admitted = admitted(&request, logins.as_deref());
                let call = (served && admitted.is_ok()).then(|| service.call(request));
                async move {
                    if !served {
                        return Err(actix_web::error::ErrorMisdirectedRequest(
                            "this host name is not one the web manager serves ([web] hosts)",
                        ));
                    }
                    admitted?;
                    let Some(call) = call else {
                        return Err(actix_web::error::ErrorInternalServerError("not served"));
                    };
                    let mut response = call.await?;
                    for (name, value) in SECURITY_HEADERS {
                        response.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static(name),
                            actix_web::http::header::HeaderValue::from_static(value),
                        );
                    }
                    Ok(response)
                }
            })
            .app_data(web::Data::new(state.clone()))
            .app_data(web::Data::new(gate))
            .route("/", web::get().to(index))
            .route("/login", web::get().to(login_pages::form))
            .route("/login", web::post().to(login_pages::log_in))
            .route("/logout", web::post().to(login_pages::log_out))
            .route("/metrics", web::get().to(metrics_text))
            .route("/api/snapshot", web::get().to(snapshot))
            .route("/ws", web::get().to(socket))
    })
    .workers(1)
    .disable_signals()
    .bind(listen)
    .map_err(|source| WebError::Bind { listen, source })?;
    let addr = server.addrs().first().copied().unwrap_or(listen);
    let server = server.run();
    let handle = server.handle();
    actix::spawn(async move {
        if let Err(err) = server.await {
            tracing::error!(%err, "the web manager stopped");
        }
    });
    info!(%addr, "web manager listening");
    Ok(WebServer { handle, addr })
}

async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(INDEX_HTML)
}

async fn metrics_text(state: web::Data<State>) -> HttpResponse {
    let mut text = String::with_capacity(8 * 1024);
    state.metrics.encode(&mut text);
    if let Some(logins) = &state.logins {
        logins.encode_metrics(&mut text);
    }
    text.push_str(Metrics::EXPOSITION_END);
    HttpResponse::Ok()
        .content_type(Metrics::EXPOSITION_TYPE)
        .body(text)
}

async fn snapshot(state: web::Data<State>) -> HttpResponse {
    match {
        state.metrics.sent(ActorKind::Web);
        state.hub.send(GetSnapshot)
    }
    .await
    {
        Ok(text) => HttpResponse::Ok()
            .content_type("application/json")
            .body(text),
        Err(_) => HttpResponse::ServiceUnavailable().body("the web manager is restarting"),
    }
}

async fn socket(
    request: HttpRequest,
    body: web::Payload,
    state: web::Data<State>,
) -> Result<HttpResponse, actix_web::Error> {
    if !same_origin(&request) {
        // Another site open in the operator's browser must not set values on the network.
        return Ok(HttpResponse::Forbidden().body("cross-origin WebSocket refused"));
    }
    let (response, session, stream) = actix_ws::handle(&request, body)?;
    let stream = stream
        .aggregate_continuations()
        .max_continuation_size(64 * 1024);
    // With users, only an operator sets values; a viewer browses; the socket closes with
    // the session.
    let token = login_pages::session_token(&request);
    let may_set = state.logins.as_ref().is_none_or(|logins| {
        logins
            .session(token.as_deref())
            .is_some_and(|(_, role)| role == Role::Operator)
    });
    let open = state
        .logins
        .as_ref()
        .and_then(|logins| logins.watch(token.as_deref()));
    actix_web::rt::spawn(serve_page(
        state.get_ref().clone(),
        session,
        stream,
        may_set,
        open.map(|open| (open, token)),
    ));
    Ok(response)
}

/// With users, whether a request may be served: `/login` always, the rest with an open
/// session; else the page redirects to `/login` and the rest is 401.
fn admitted(
    request: &actix_web::dev::ServiceRequest,
    logins: Option<&Logins>,
) -> Result<(), actix_web::Error> {
    let Some(logins) = logins else {
        return Ok(());
    };
    if request.path() == "/login" || request.path() == "/logout" {
        return Ok(());
    }
    if logins
        .session(login_pages::session_token(request.request()).as_deref())
        .is_some()
    {
        return Ok(());
    }
    if request.path() == "/" {
        let redirect = HttpResponse::SeeOther()
            .insert_header(("location", "/login"))
            .finish();
        return Err(
            actix_web::error::InternalError::from_response("log in first", redirect).into(),
        );
    }
    Err(actix_web::error::ErrorUnauthorized(
        "log in first: POST /login",
    ))
}

/// Whether the `Host` of a request is one this server is reached by: an IP address
/// (rebinding needs a name), `localhost`, or a configured name. A page of another site whose
/// name was re-pointed at this machine (DNS rebinding) sends its own name and is refused.
fn host_is_served(headers: &actix_web::http::header::HeaderMap, hosts: &[String]) -> bool {
    let Some(host) = headers.get("host").and_then(|value| value.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        // [v6]:port
        Some(rest) => {
            return rest
                .split_once(']')
                .is_some_and(|(ip, _)| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name.parse::<std::net::Ipv4Addr>().is_ok() || name == "localhost" || hosts.contains(&name)
}

/// Whether a WebSocket upgrade comes from our own page: browsers always send `Origin`, and it
/// must name the host the page was loaded from. Clients that are not browsers send none.
fn same_origin(request: &HttpRequest) -> bool {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    match (header("origin"), header("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, origin_host)| origin_host.trim_end_matches('/') == host),
        (Some(_), None) => false,
    }
}

/// One open page: the snapshot, then every event, and the sets it makes; until the page goes,
/// or its login session ends (`open`, when there are users).
async fn serve_page(
    state: State,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    may_set: bool,
    open: Option<(tokio::sync::watch::Receiver<()>, Option<String>)>,
) {
    let logged_in = open.is_some();
    let (mut open, token) = open.unwrap_or_else(|| (tokio::sync::watch::channel(()).1, None));
    // A session also ends by expiring, seen at the next ping.
    let expired = |state: &State| {
        state
            .logins
            .as_ref()
            .is_some_and(|logins| logins.session(token.as_deref()).is_none())
    };
    // Subscribe before the snapshot: an event in between is sent twice, never lost.
    let mut updates = state.updates.subscribe();
    let Ok(snapshot) = {
        state.metrics.sent(ActorKind::Web);
        state.hub.send(GetSnapshot)
    }
    .await
    else {
        return;
    };
    if session.text(snapshot).await.is_err() {
        return;
    }
    // A page that answers nothing (not even pings) for PAGE_SILENCE is gone: a closed laptop,
    // a dropped Wi-Fi. Its socket is closed rather than kept.
    let mut ping = tokio::time::interval(PAGE_PING);
    let mut heard = tokio::time::Instant::now();
    loop {
        tokio::select! {
            ended = open.changed(), if logged_in => {
                if ended.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if heard.elapsed() > PAGE_SILENCE || expired(&state) || session.ping(b"").await.is_err() {
                    break;
                }
            }
            update = updates.recv() => {
                let text = match update {
                    Ok(text) => text.to_string(),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Start again from now: what was missed is in the snapshot.
                        updates = updates.resubscribe();
                        match { state.metrics.sent(ActorKind::Web); state.hub.send(GetSnapshot) }.await {
                            Ok(snapshot) => snapshot,
                            Err(_) => break,
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if session.text(text).await.is_err() {
                    break;
                }
            }
            message = stream.next() => match message.inspect(|_| heard = tokio::time::Instant::now()) {
                Some(Ok(AggregatedMessage::Text(text))) => {
                    if let Err(refusal) = page_request(&state, &text, may_set) {
                        if session.text(refusal.to_string()).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(AggregatedMessage::Ping(bytes))) => {
                    if session.pong(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(Ok(AggregatedMessage::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = session.close(None).await;
}

/// A message from a page: `{"type":"set","hadd","uuid","genre","index","data","request_id"}`.
/// A bad one is answered at once with a 400 `reply` naming what was wrong.
fn page_request(state: &State, text: &str, may_set: bool) -> Result<(), Data> {
    let request: Data =
        serde_json::from_str(text).map_err(|err| refusal(None, &format!("not JSON: {err}")))?;
    let request_id = request["request_id"].as_str().map(str::to_owned);
    let bad = |why: &str| refusal(request_id.clone(), why);
    if request["type"] != "set" {
        return Err(bad("expected {\"type\": \"set\", ...}"));
    }
    if !may_set {
        return Err(json!({
            "type": "reply",
            "request_id": request_id,
            "status": 403,
            "error": "a viewer cannot set values: log in as an operator",
        }));
    }
    let hadd = request["hadd"]
        .as_str()
        .and_then(|text| Hadd::parse(text).ok())
        .ok_or_else(|| bad("hadd: expected a HADD like \"0220/0001\""))?;
    let uuid = request["uuid"]
        .as_str()
        .filter(|uuid| !uuid.is_empty())
        .ok_or_else(|| bad("uuid: expected the value's uuid"))?;
    let genre = request["genre"]
        .as_str()
        .and_then(Genre::from_segment)
        .ok_or_else(|| bad("genre: expected user, basic, config, system or command"))?;
    let index = match &request["index"] {
        Data::Null => 0,
        index => index
            .as_u64()
            .and_then(|index| u32::try_from(index).ok())
            .ok_or_else(|| bad("index: expected an instance number (0, 1, ...)"))?,
    };
    state.metrics.sent(ActorKind::Web);
    state.hub.do_send(SetFromPage {
        hadd,
        uuid: uuid.to_owned(),
        genre,
        index,
        data: request["data"].clone(),
        request_id: request_id.clone().unwrap_or_default(),
    });
    Ok(())
}

fn refusal(request_id: Option<String>, why: &str) -> Data {
    json!({"type": "reply", "request_id": request_id, "status": 400, "error": why})
}
