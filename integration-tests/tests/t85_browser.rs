//! Headless Chromium on the web manager of a running demo: the page fills, a value change made
//! elsewhere shows up live, and editing the LED switch on the page reaches the node (checked
//! over MQTT). Skipped without Chromium unless `JANITOO_TEST_BROWSER=1` (CI sets it). A
//! screenshot of the page is written to `target/web-manager.png` (or `$JANITOO_SCREENSHOT`).

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use janitoo_integration_tests::client::Client;
use janitoo_integration_tests::web::{chromium, wait_for_listener, Browser};
use janitoo_protocol::{CommandClass, Data, Genre, Hadd, Message, Request};

const JANITOO: &str = env!("CARGO_BIN_EXE_janitoo-it");

/// The demo's tutorial LED.
const LED: Hadd = Hadd::new(220, 2);

fn free_port() -> u16 {
    janitoo_broker::free_local_port([127, 0, 0, 1].into()).unwrap()
}

/// Stops the demo (Ctrl-C, which stops everything it started) when the test ends.
struct Demo(std::process::Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_updates_live_and_edits_reach_the_node() {
    let Some(chromium) = chromium() else {
        return;
    };
    let port = free_port();
    let web: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let _demo = Demo(
        Command::new(JANITOO)
            .args(["demo", "--duration", "120", "--port", &port.to_string()])
            .args(["--web", &web.to_string()])
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_listener(web, Duration::from_secs(20));
    let mut browser = Browser::open(&chromium, &format!("http://{web}/")).await;

    let switch_row = r#"document.querySelector('tr[data-key="0220/0002|switch|0"]')"#;
    assert!(
        browser
            .wait_for(&format!("{switch_row} !== null"), Duration::from_secs(20))
            .await,
        "the LED's switch is not on the page"
    );
    assert_eq!(
        browser
            .eval("document.getElementById('link').textContent")
            .await,
        "live"
    );

    // A change made elsewhere (a plain MQTT client) appears without reloading.
    let mut client = Client::connect(port).await;
    client.subscribe("/nodes/9999/9990/reply").await;
    client.subscribe("/values/user/0220/0002/switch").await;
    client
        .ask(Request::set(
            LED,
            "blink",
            Genre::User,
            CommandClass::SWITCH_BINARY,
            Data::from("heartbeat"),
        ))
        .await;
    let blink_data =
        r#"document.querySelector('tr[data-key="0220/0002|blink|0"] td.data').textContent"#;
    assert!(
        browser
            .wait_for(
                &format!("{blink_data} === 'heartbeat'"),
                Duration::from_secs(5)
            )
            .await,
        "the change did not arrive: {}",
        browser.eval(blink_data).await
    );

    // Edit the switch on the page: choose "on", press Set.
    let current = browser
        .eval(&format!(
            "{switch_row}.querySelector('td.data').textContent"
        ))
        .await;
    let wanted = if current == "on" { "off" } else { "on" };
    browser
        .eval(&format!(
            "(() => {{ const row = {switch_row}; row.querySelector('select.edit').value = '{wanted}';
                row.querySelector('button[data-set]').click(); return true; }})()"
        ))
        .await;
    let published = client
        .next_on("/values/user/0220/0002/switch", Duration::from_secs(5))
        .await
        .expect("the set reached the node, which published its new state");
    let Message::Value(value) = published.message() else {
        panic!()
    };
    assert_eq!(value.instances()[0].data, Data::from(wanted));
    assert!(
        browser
            .wait_for(
                &format!("{switch_row}.querySelector('td.reply').textContent === '200'"),
                Duration::from_secs(5)
            )
            .await,
        "the page does not show the reply's status"
    );
    assert!(
        browser
            .wait_for(
                &format!("{switch_row}.querySelector('td.data').textContent === '{wanted}'"),
                Duration::from_secs(5)
            )
            .await
    );

    // The election's outcome shows: a primary with its epoch, in the header and the table.
    assert!(
        browser
            .wait_for(
                "window.janitoo.primary !== null && document.getElementById('primary').textContent.startsWith('primary 000')",
                Duration::from_secs(15)
            )
            .await,
        "no primary on the page"
    );
    assert!(
        browser
            .wait_for(
                "[...document.querySelectorAll('#controllers tr')].some(r => r.textContent.includes('primary') && r.cells[3].textContent === 'primary' && r.cells[4].textContent !== '0x0')",
                Duration::from_secs(10)
            )
            .await,
        "the controllers table does not show the primary's standing and epoch"
    );
    // Nodes with their state, and the map of controllers with their nodes.
    assert!(
        browser
            .wait_for(
                "[...document.querySelectorAll('#nodes tr')].some(r => r.cells[0].textContent === '0220/0002' && r.cells[4].textContent.startsWith('ONLINE') && r.cells[5].textContent.endsWith('ago'))",
                Duration::from_secs(10)
            )
            .await,
        "the LED's node is not shown ONLINE with when it was last seen"
    );
    assert!(
        browser
            .wait_for(
                "document.querySelectorAll('#map .ctrl').length >= 6 && document.querySelectorAll('#map .ctrl .dot.ONLINE').length >= 10",
                Duration::from_secs(10)
            )
            .await,
        "the map does not show the controllers and their nodes"
    );
    // A read-only value offers no editor.
    let temperature = r#"document.querySelector('tr[data-key="0220/0001|temperature|0"]')"#;
    assert_eq!(
        browser
            .eval(&format!(
                "{temperature}.querySelector('.edit') === null && {temperature}.querySelector('td.set').textContent"
            ))
            .await,
        "read-only"
    );
    // The metrics panel: every actor kind of the processes that published metrics.
    assert!(
        browser
            .wait_for(
                "[...document.querySelectorAll('#metrics tr')].filter(r => r.cells[1].textContent === 'value').length >= 1 && document.querySelectorAll('#metrics tr').length % 7 === 0",
                Duration::from_secs(15)
            )
            .await,
        "the metrics panel is empty"
    );
    let shot = browser.screenshot().await;
    assert!(shot.starts_with(b"\x89PNG"));
    let path = std::env::var_os("JANITOO_SCREENSHOT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/web-manager.png")
        });
    std::fs::write(&path, shot).unwrap();
}
