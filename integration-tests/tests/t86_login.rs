//! The web manager with users (`[web] users_file`, lines made by `janitoo web-user`): nothing
//! but the login page without a session; the session cookie is HttpOnly and SameSite=Strict;
//! failed logins are slowed and counted; in headless Chromium, a set is refused before the
//! login, made after it as an operator, refused to a viewer. And a web manager open to the
//! network without users does not start. Chromium is required with `JANITOO_TEST_BROWSER`.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use janitoo_integration_tests::network::copy_example;
use janitoo_integration_tests::process::{BrokerKind, BrokerProcess, ControllerProcess};
use janitoo_integration_tests::web::{
    chromium, http_get_as, http_post_form, wait_for_listener, Browser, HttpAnswer,
};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

fn free_port() -> u16 {
    janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap()
}

/// `janitoo web-user NAME --role ROLE`, the password on standard input: its line.
fn user_line(name: &str, role: &str, password: &str) -> String {
    let mut child = Command::new(JANITOO)
        .args(["web-user", name, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// `POST /login` with a form: the status and the head.
fn post_login(web: SocketAddr, name: &str, password: &str) -> HttpAnswer {
    http_post_form(web, "/login", &[("name", name), ("password", password)])
}

struct Manager {
    web: SocketAddr,
    _controller: ControllerProcess,
    _broker: BrokerProcess,
    _dir: tempfile::TempDir,
}

fn manager() -> Manager {
    let broker = BrokerProcess::start(BrokerKind::Embedded, Path::new(JANITOO), None);
    let dir = tempfile::tempdir().unwrap();
    let users = format!(
        "{}{}",
        user_line("alice", "operator", "alice-password"),
        user_line("bob", "viewer", "bob-password")
    );
    std::fs::write(dir.path().join("web-users"), users).unwrap();
    let web: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let config = copy_example("tutorial.toml", dir.path(), |text| {
        text + &format!("\n[web]\nlisten = \"{web}\"\nusers_file = \"web-users\"\n")
    });
    let controller = ControllerProcess::start_with(
        Path::new(JANITOO),
        &config,
        &["--broker", &broker.address(), "--simulate"],
    );
    wait_for_listener(web, Duration::from_secs(20));
    Manager {
        web,
        _controller: controller,
        _broker: broker,
        _dir: dir,
    }
}

#[test]
fn without_a_session_there_is_only_the_login() {
    let Manager { web, .. } = &manager();
    let host = web.to_string();
    let page = http_get_as(*web, "/", &host);
    assert_eq!(
        (page.status, page.header("location")),
        (303, Some("/login"))
    );
    for path in ["/api/snapshot", "/ws", "/metrics"] {
        assert_eq!(http_get_as(*web, path, &host).status, 401, "{path}");
    }
    let login = http_get_as(*web, "/login", &host);
    assert!(login.status == 200 && login.body.contains("name=\"password\""));

    // A wrong password: 401, and the next attempt from here waits.
    assert_eq!(post_login(*web, "alice", "wrong").status, 401);
    let started = Instant::now();
    let login = post_login(*web, "alice", "alice-password");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "not slowed after a failure"
    );
    assert_eq!(login.status, 303, "{:?}", login.headers);
    let cookie = login.header("set-cookie").expect("no session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_an_operator_sets_and_a_viewer_cannot() {
    let Some(chromium) = chromium() else {
        return;
    };
    let manager = manager();
    let web = manager.web;
    let mut browser = Browser::open(&chromium, &format!("http://{web}/")).await;
    assert!(
        browser
            .wait_for("location.pathname === '/login'", Duration::from_secs(10))
            .await,
        "the page is shown without a login"
    );
    // A set over the socket before the login: the socket is refused.
    let try_set = |id: &str| {
        format!(
            r#"(() => {{
                window.replies = window.replies || {{}};
                const ws = new WebSocket(`ws://${{location.host}}/ws`);
                ws.onerror = () => {{ window.replies['{id}'] = 'refused'; }};
                ws.onmessage = (event) => {{
                    const message = JSON.parse(event.data);
                    if (message.type === 'reply' && message.request_id === '{id}') {{
                        window.replies['{id}'] = message.status;
                    }}
                }};
                ws.onopen = () => ws.send(JSON.stringify({{type: 'set', hadd: '0220/0001',
                    uuid: 'location', genre: 'config', data: 'Kitchen {id}', request_id: '{id}'}}));
                return true;
            }})()"#
        )
    };
    let outcome = |id: &str| format!("window.replies && window.replies['{id}']");
    browser.eval(&try_set("before")).await;
    assert!(
        browser
            .wait_for(
                &format!("{} === 'refused'", outcome("before")),
                Duration::from_secs(10)
            )
            .await,
        "a socket opened without a login"
    );
    let log_in = |name: &str, password: &str| {
        format!(
            "document.getElementById('name').value = '{name}';
             document.getElementById('password').value = '{password}';
             document.getElementById('login').click(); true"
        )
    };
    browser.eval(&log_in("alice", "alice-password")).await;
    assert!(
        browser
            .wait_for(
                "location.pathname === '/' && document.getElementById('logout') !== null",
                Duration::from_secs(10)
            )
            .await,
        "the operator's login did not lead to the page"
    );
    browser.eval(&try_set("alice")).await;
    assert!(
        browser
            .wait_for(
                &format!("{} === 200", outcome("alice")),
                Duration::from_secs(10)
            )
            .await,
        "the operator's set was not answered 200: {:?}",
        browser.eval(&outcome("alice")).await
    );
    browser
        .eval("document.getElementById('logout').click(); true")
        .await;
    assert!(
        browser
            .wait_for("location.pathname === '/login'", Duration::from_secs(10))
            .await,
        "the logout did not lead to the login"
    );
    browser.eval(&log_in("bob", "bob-password")).await;
    assert!(
        browser
            .wait_for("location.pathname === '/'", Duration::from_secs(10))
            .await
    );
    browser.eval(&try_set("bob")).await;
    assert!(
        browser
            .wait_for(
                &format!("{} === 403", outcome("bob")),
                Duration::from_secs(10)
            )
            .await,
        "the viewer's set was not refused 403: {:?}",
        browser.eval(&outcome("bob")).await
    );
}

#[test]
fn a_manager_open_to_the_network_without_users_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = copy_example("minimal.toml", dir.path(), |text| {
        text + "\n[web]\nlisten = \"0.0.0.0:0\"\n"
    });
    let output = Command::new(JANITOO)
        .args(["run", "--broker", "127.0.0.1:1", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("users_file"), "{stderr}");
}
