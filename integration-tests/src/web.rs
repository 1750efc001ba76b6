//! Clients of the web manager: HTTP (ureq), the page's WebSocket, and a headless Chromium
//! driven over the DevTools protocol.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// `GET path`: the status code and the body.
pub fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let answer = http_get_as(addr, path, &addr.to_string());
    (answer.status, answer.body)
}

/// An HTTP answer: its status, its headers and its body.
pub struct HttpAnswer {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl HttpAnswer {
    /// The value of header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn of(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> HttpAnswer {
        let mut response = response.expect("the web manager answers");
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        HttpAnswer {
            status: response.status().as_u16(),
            headers,
            body: response.body_mut().read_to_string().unwrap_or_default(),
        }
    }
}

/// A client that shows every answer as it is: no redirect followed, no status an error.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// `GET path` to `addr`, saying `Host: host`.
pub fn http_get_as(addr: SocketAddr, path: &str, host: &str) -> HttpAnswer {
    HttpAnswer::of(
        agent()
            .get(format!("http://{addr}{path}"))
            .header("host", host)
            .call(),
    )
}

/// `POST path` of an HTML form's `fields` to `addr`.
pub fn http_post_form(addr: SocketAddr, path: &str, fields: &[(&str, &str)]) -> HttpAnswer {
    HttpAnswer::of(
        agent()
            .post(format!("http://{addr}{path}"))
            .send_form(fields.iter().copied()),
    )
}

/// Waits until something listens on `addr`.
pub fn wait_for_listener(addr: SocketAddr, within: Duration) {
    let deadline = Instant::now() + within;
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The page's WebSocket, as a test sees it.
pub struct PageSocket {
    socket: Socket,
}

impl PageSocket {
    /// Opens `ws://addr/ws`.
    pub async fn open(addr: SocketAddr) -> PageSocket {
        let (socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
            .await
            .expect("the page's socket opens");
        PageSocket { socket }
    }

    /// Opens `ws://addr/ws` with the session cookie `cookie` (`name=value`).
    pub async fn open_with_cookie(addr: SocketAddr, cookie: &str) -> PageSocket {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("cookie", cookie.parse().unwrap());
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the page's socket opens");
        PageSocket { socket }
    }

    /// Whether the server closes the socket within `wait` (a close frame, or the end).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return false,
                Ok(None | Some(Err(_)) | Some(Ok(WsMessage::Close(_)))) => return true,
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.socket
            .send(WsMessage::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next event matching `wanted` within `wait`.
    pub async fn next_matching(
        &mut self,
        wait: Duration,
        wanted: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??
                .ok()?;
            if let WsMessage::Text(text) = frame {
                let event: Value = serde_json::from_str(&text).unwrap();
                if wanted(&event) {
                    return Some(event);
                }
            }
        }
    }

    /// Reads and drops every event for `wait`; how many there were.
    pub async fn drain(&mut self, wait: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + wait;
        let mut count = 0;
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, self.socket.next()).await {
            count += 1;
        }
        count
    }
}

/// Chromium, if the test may use it: `None` (the test is skipped) when it is not installed and
/// `JANITOO_TEST_BROWSER` is unset; with the variable set, a missing Chromium fails the test.
pub fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM").map(PathBuf::from).or_else(|| {
        [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
    });
    crate::require::runs(
        "JANITOO_TEST_BROWSER",
        path.is_some(),
        "Chromium is not installed",
    )?;
    path
}

/// A headless Chromium showing one page, driven over the DevTools protocol.
pub struct Browser {
    child: Child,
    socket: Socket,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` headless on `url`.
    pub async fn open(chromium: &Path, url: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = Command::new(chromium)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--remote-debugging-port=0",
                "--window-size=1400,1100",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Chromium starts");
        // Chromium writes its DevTools port into the profile.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse().ok())
            {
                break port;
            }
            assert!(Instant::now() < deadline, "Chromium did not open DevTools");
            std::thread::sleep(Duration::from_millis(100));
        };
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let page_socket = loop {
            let (_, body) = http_get(addr, "/json/list");
            let targets: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let page = targets.as_array().and_then(|targets| {
                targets.iter().find(|t| t["type"] == "page")?["webSocketDebuggerUrl"]
                    .as_str()
                    .map(str::to_owned)
            });
            if let Some(page) = page {
                break page;
            }
            assert!(Instant::now() < deadline, "Chromium shows no page");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (socket, _) = tokio_tungstenite::connect_async(page_socket).await.unwrap();
        Browser {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        }
    }

    /// Calls a DevTools method; its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let call = json!({"id": id, "method": method, "params": params});
        self.socket
            .send(WsMessage::text(call.to_string()))
            .await
            .unwrap();
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(30), self.socket.next())
                .await
                .expect("DevTools answers")
                .unwrap()
                .unwrap();
            if let WsMessage::Text(text) = frame {
                let answer: Value = serde_json::from_str(&text).unwrap();
                if answer["id"] == id {
                    assert!(answer["error"].is_null(), "{method}: {answer}");
                    return answer["result"].clone();
                }
            }
        }
    }

    /// Evaluates JavaScript in the page; its value.
    pub async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it is true, within `wait`.
    pub async fn wait_for(&mut self, expression: &str, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self.eval(expression).await == Value::Bool(true) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// A PNG of the page.
    pub async fn screenshot(&mut self) -> Vec<u8> {
        use base64::Engine as _;
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends the HTTP/1.1 request `head` (without its blank line) and `body` to `addr` from the
/// local address `source` (any of 127.0.0.0/8 on loopback): the status and the whole answer.
pub async fn http_from(
    source: std::net::Ipv4Addr,
    addr: SocketAddr,
    head: &str,
    body: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}
