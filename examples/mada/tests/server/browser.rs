//! The web page in a real browser: headless Chromium driven through chromedriver
//! (WebDriver). Sign in with a bad token, then a good one; tick a goal and see the
//! count and the calendar change; see another device's change arrive live; save a
//! screenshot under `target/`.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::harness::TestServer;

/// chromedriver on a free port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const INSTALL: &str = "chromedriver and chromium are needed: `scripts/services.sh up` \
     installs them (Debian packages chromium and chromium-driver)";

fn driver() -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}); {INSTALL}"));
    // Dropping the driver kills and reaps the process, on every path.
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return driver;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not listen on {port} within 10 s; {INSTALL}");
}

/// Waits until the text of `css` satisfies `ok` (10 s at most); returns it.
async fn wait_text(browser: &fantoccini::Client, css: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(element) = browser.find(Locator::Css(css)).await {
            last = element.text().await.unwrap_or_default();
            if ok(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{css}` never showed what was expected; last: {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_signs_in_ticks_a_goal_and_follows_live_updates() {
    let server = TestServer::start().await;
    let ada = server.client("ada");
    let health = ada.category("Health").await;
    let (run, _) = ada.goal("Morning run", &health, "2026-11-01").await;
    let (read, token) = ada.goal("Read 20 pages", &health, "2026-11-01").await;
    ada.today("2026-11-25", Some(&token)).await;

    let driver = driver();
    let capabilities = json!({
        "goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,1000"],
        }
    });
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(capabilities.as_object().unwrap().clone());
    let browser = builder
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start headless Chromium: {e}; {INSTALL}"));

    // A bad token is refused on the page, with the server's reason.
    browser
        .goto(&format!("{}/#day=2026-11-25", server.url))
        .await
        .unwrap();
    let field = browser.find(Locator::Id("token")).await.unwrap();
    field.send_keys("not-a-token").await.unwrap();
    browser
        .find(Locator::Css("#sign-in-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#sign-in-error", |t| t.contains("not valid")).await;

    // The good one signs in: today's list and the month.
    field.clear().await.unwrap();
    field.send_keys(&server.token("ada")).await.unwrap();
    browser
        .find(Locator::Css("#sign-in-form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#who", |t| t == "signed in as ada").await;
    wait_text(&browser, "#progress", |t| t == "0 of 2 done").await;
    wait_text(&browser, "#month-title", |t| t == "November 2026").await;
    let cell = "#calendar td[data-date='2026-11-25'] .count";
    wait_text(&browser, cell, |t| t == "0/2").await;
    wait_text(&browser, "#live", |t| t == "live").await;

    // Tick a goal: the count and the calendar follow.
    let box_of = |goal: &str| format!("#today li[data-goal='{goal}'] input[type=checkbox]");
    browser
        .find(Locator::Css(&box_of(&run)))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&browser, "#progress", |t| t == "1 of 2 done").await;
    wait_text(&browser, cell, |t| t == "1/2").await;

    // Another device completes the other goal: the subscription brings it here.
    ada.gql(
        "mutation($g: ID!) { completeGoal(id: $g, date: \"2026-11-25\") { token } }",
        json!({ "g": read }),
    )
    .await
    .data();
    wait_text(&browser, "#progress", |t| t == "2 of 2 done").await;
    wait_text(&browser, cell, |t| t == "2/2").await;
    let ticked = browser.find(Locator::Css(&box_of(&read))).await.unwrap();
    assert_eq!(
        ticked.prop("checked").await.unwrap().as_deref(),
        Some("true")
    );

    let png = browser.screenshot().await.unwrap();
    let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("mada-page.png"), png).unwrap();
    browser.close().await.unwrap();
}
