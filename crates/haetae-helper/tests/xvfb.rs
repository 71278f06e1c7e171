//! The helper on a real X server (Xvfb), driven through its loopback channel as the page
//! would, checked with xdotool and a test window of our own. Each test starts its own Xvfb
//! on a display of its own (:205-:209). Needs Debian's `xvfb` and `xdotool`; runs with
//! `HAETAE_TEST_XVFB=1` (`.ci/suites/55-helper.sh`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haetae_crypto::pk::Ed25519KeyPair;
use haetae_helper::page::{PageError, PageLink};
use haetae_remote::policy::{DEFAULT_MAX_FILE, Features, Grade, PolicyGrant};
use haetae_remote::protocol::{AppMessage, EndReason, InputEvent, MouseButton, SessionId};
use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, ImageFormat, InputFocus, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const ORIGIN: &str = "http://127.0.0.1:7400";
const SESSION: SessionId = SessionId([0x5a; 16]);

/// `.ci/run` runs ignored tests too; these need an X server and run in `55-helper.sh`.
fn enabled() -> bool {
    std::env::var("HAETAE_TEST_XVFB").is_ok_and(|v| v == "1")
}

struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn xvfb(number: u16) -> Xvfb {
    let display = format!(":{number}");
    let _ = std::fs::remove_file(format!("/tmp/.X{number}-lock"));
    let child = Command::new("Xvfb")
        // -noreset: the server must not reset when the readiness probe below disconnects.
        .args([
            &display,
            "-screen",
            "0",
            "1280x720x24",
            "-nolisten",
            "tcp",
            "-noreset",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb (Debian package xvfb)");
    let deadline = Instant::now() + Duration::from_secs(10);
    while RustConnection::connect(Some(&display)).is_err() {
        assert!(Instant::now() < deadline, "Xvfb {display} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Xvfb { child, display }
}

fn xdotool(display: &str, args: &[&str]) -> String {
    let out = Command::new("xdotool")
        .args(args)
        .env("DISPLAY", display)
        .output()
        .expect("xdotool (Debian package xdotool)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn mouse(display: &str) -> (i32, i32) {
    // "x:640 y:180 screen:0 window:..."
    let out = xdotool(display, &["getmouselocation"]);
    let field = |name: &str| {
        out.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    (field("x:"), field("y:"))
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Run {
    child: Child,
    port: u16,
    ticket: [u8; 32],
    key: Ed25519KeyPair,
    binary: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Run {
    fn drop(&mut self) {
        // A failed test leaves no helper behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Copies the helper binary somewhere of its own (as a download would), writes its launch
/// file and starts it with --self-delete.
fn start_helper(display: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("haetae-helper");
    std::fs::copy(env!("CARGO_BIN_EXE_haetae-helper"), &binary).unwrap();
    let mut ticket = [0u8; 32];
    haetae_crypto::error::os_random(&mut ticket).unwrap();
    let key = Ed25519KeyPair::generate().unwrap();
    let launch = dir.path().join("launch.json");
    std::fs::write(
        &launch,
        serde_json::json!({
            "origin": ORIGIN,
            "ticket": hex::encode(ticket),
            "session": hex::encode(SESSION.0),
            "policy_key": hex::encode(key.public_key()),
            "expires": haetae_helper::launch::now_unix() + 120,
        })
        .to_string(),
    )
    .unwrap();
    let mut child = Command::new(&binary)
        .args(["run", "--launch"])
        .arg(&launch)
        .args([
            "--display",
            display,
            "--local-pause-ms",
            "300",
            "--self-delete",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = serde_json::from_str::<serde_json::Value>(&line).unwrap()["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    assert!(
        !launch.exists(),
        "the launch file must be deleted once read"
    );
    Run {
        child,
        port,
        ticket,
        key,
        binary,
        _dir: dir,
    }
}

impl Run {
    fn policy(&self, grade: Grade) -> AppMessage {
        let now = haetae_helper::launch::now_unix();
        let signed = PolicyGrant {
            sid: SESSION,
            agent: "kim.agent".into(),
            grade,
            features: Features::of(grade),
            max_file: if grade == Grade::Direct {
                DEFAULT_MAX_FILE
            } else {
                0
            },
            issued: now,
            expires: now + 3600,
        }
        .sign(&self.key)
        .unwrap();
        AppMessage::Policy {
            payload: signed.payload,
            signature: signed.signature,
        }
    }

    /// Waits for the helper to exit and checks it removed its binary.
    fn finish(mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "the helper did not exit");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success());
        let mut rest = String::new();
        BufReader::new(self.child.stdout.take().unwrap())
            .read_line(&mut rest)
            .unwrap();
        assert!(
            !self.binary.exists(),
            "the helper's binary is still there after the session"
        );
        rest
    }
}

fn mv(x: u16, y: u16) -> AppMessage {
    AppMessage::Input(InputEvent::PointerMove { x, y })
}

fn key(code: &str, down: bool) -> AppMessage {
    AppMessage::Input(InputEvent::Key {
        code: code.into(),
        down,
        modifiers: 0,
    })
}

/// A window of the test's own that records key presses and clicks.
struct TestWindow {
    conn: RustConnection,
    window: u32,
    keysyms: Vec<u32>,
    min_keycode: u8,
    per: usize,
}

impl TestWindow {
    fn open(display: &str) -> TestWindow {
        let (conn, screen) = RustConnection::connect(Some(display)).unwrap();
        let s = conn.setup().roots[screen].clone();
        let window = conn.generate_id().unwrap();
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            s.root,
            0,
            0,
            400,
            300,
            0,
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(s.white_pixel)
                .event_mask(EventMask::KEY_PRESS | EventMask::BUTTON_PRESS | EventMask::EXPOSURE),
        )
        .unwrap();
        conn.map_window(window).unwrap();
        conn.sync().unwrap();
        conn.set_input_focus(InputFocus::POINTER_ROOT, window, x11rb::CURRENT_TIME)
            .unwrap();
        conn.sync().unwrap();
        let (min, max) = (conn.setup().min_keycode, conn.setup().max_keycode);
        let map = conn
            .get_keyboard_mapping(min, max - min + 1)
            .unwrap()
            .reply()
            .unwrap();
        TestWindow {
            conn,
            window,
            keysyms: map.keysyms,
            min_keycode: min,
            per: usize::from(map.keysyms_per_keycode),
        }
    }

    /// Text typed and clicks seen so far.
    fn drain(&self) -> (String, Vec<(i16, i16)>) {
        let mut text = String::new();
        let mut clicks = Vec::new();
        while let Some(event) = self.conn.poll_for_event().unwrap() {
            match event {
                Event::KeyPress(e) if e.event == self.window => {
                    let i = usize::from(e.detail - self.min_keycode) * self.per;
                    if let Some(c) = self.keysyms.get(i).and_then(|s| char::from_u32(*s)) {
                        text.push(c);
                    }
                }
                Event::ButtonPress(e) if e.event == self.window => {
                    clicks.push((e.event_x, e.event_y));
                }
                _ => {}
            }
        }
        (text, clicks)
    }
}

async fn expect(page: &mut PageLink, what: impl Fn(&AppMessage) -> bool) -> (u64, AppMessage) {
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let (seq, msg) = page.recv().await.unwrap();
            if what(&msg) {
                return (seq, msg);
            }
        }
    })
    .await
    .expect("the helper did not answer")
}

async fn consent(page: &mut PageLink) {
    page.send(&AppMessage::ControlRequest).await.unwrap();
    page.send(&AppMessage::ControlGrant).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb and xdotool: set HAETAE_TEST_XVFB=1 (.ci/suites/55-helper.sh)"]
async fn consented_control_types_clicks_and_ctrl_alt_shift_takes_it_back() {
    if !enabled() {
        eprintln!("skipped: set HAETAE_TEST_XVFB=1 (needs xvfb and xdotool)");
        return;
    }
    let x = xvfb(205);
    let d = x.display.as_str();
    let window = TestWindow::open(d);
    let run = start_helper(d);
    let mut page = PageLink::connect(run.port, ORIGIN, &run.ticket)
        .await
        .unwrap();
    page.send(&run.policy(Grade::Direct)).await.unwrap();

    // Before consent nothing moves.
    xdotool(d, &["mousemove", "10", "10"]);
    page.send(&mv(65_535, 65_535)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mouse(d), (10, 10));

    consent(&mut page).await;
    // 32768/65535 of 1280x720 is (640, 180) for y = 16384.
    page.send(&mv(32_768, 16_384)).await.unwrap();
    wait_for("the pointer at (640, 180)", || mouse(d) == (640, 180));

    // A click on the test window, at (100, 50) of the screen.
    let (cx, cy) = (100 * 65_535 / 1279, 50 * 65_535 / 719);
    for down in [true, false] {
        page.send(&AppMessage::Input(InputEvent::Button {
            button: MouseButton::Left,
            down,
            x: u16::try_from(cx).unwrap(),
            y: u16::try_from(cy).unwrap(),
        }))
        .await
        .unwrap();
    }
    wait_for("the pointer at (100, 50)", || mouse(d) == (100, 50));
    // Typing into the test window (it has the focus).
    for code in ["KeyH", "KeyE", "KeyL", "KeyL", "KeyO", "Digit1"] {
        page.send(&key(code, true)).await.unwrap();
        page.send(&key(code, false)).await.unwrap();
    }
    let mut typed = String::new();
    let mut clicks = Vec::new();
    wait_for("typed text in the test window", || {
        let (t, c) = window.drain();
        typed.push_str(&t);
        clicks.extend(c);
        typed == "hello1"
    });
    assert_eq!(clicks, [(100, 50)]);

    // Local input wins: the customer moves the mouse; remote moves pause.
    xdotool(d, &["mousemove", "700", "500"]);
    page.send(&mv(0, 0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        mouse(d),
        (700, 500),
        "remote input must pause after local movement"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    page.send(&mv(0, 0)).await.unwrap();
    wait_for("remote input resumed after the pause", || {
        mouse(d) == (0, 0)
    });

    // Ctrl+Alt+Shift, measured from just before xdotool starts to the page being told.
    let started = Instant::now();
    let status = Command::new("xdotool")
        .args(["key", "ctrl+alt+shift"])
        .env("DISPLAY", d)
        .spawn()
        .unwrap();
    let (revoke_seq, _) = expect(&mut page, |m| *m == AppMessage::ControlRevoke).await;
    let latency = started.elapsed();
    let mut status = status;
    status.wait().unwrap();
    // The hotkey's own key presses reached the focused window; set them aside.
    window.drain();
    println!("revoke latency (xdotool start to the page told): {latency:?}");
    assert!(
        latency < Duration::from_millis(100),
        "Ctrl+Alt+Shift took {latency:?}"
    );
    // Further input is ignored.
    page.send(&mv(65_535, 65_535)).await.unwrap();
    page.send(&key("KeyX", true)).await.unwrap();
    page.send(&key("KeyX", false)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mouse(d), (0, 0));
    // A grant that does not acknowledge the revocation is refused...
    consent(&mut page).await;
    let (_, refused) = expect(&mut page, |m| matches!(m, AppMessage::Error { .. })).await;
    assert!(
        matches!(refused, AppMessage::Error { code: 409, .. }),
        "{refused:?}"
    );
    page.send(&mv(65_535, 65_535)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mouse(d), (0, 0));
    assert_eq!(window.drain().0, "", "nothing typed after the revocation");
    // ...a new consent after the acknowledgement works.
    page.send(&AppMessage::Ack { seq: revoke_seq })
        .await
        .unwrap();
    consent(&mut page).await;
    page.send(&mv(65_535, 65_535)).await.unwrap();
    wait_for("control after the new consent", || mouse(d) == (1279, 719));

    // The session ends: the helper removes itself.
    page.send(&AppMessage::Bye {
        reason: EndReason::Normal,
    })
    .await
    .unwrap();
    let end = run.finish();
    assert!(end.contains("\"end\":\"Normal\""), "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb and xdotool: set HAETAE_TEST_XVFB=1 (.ci/suites/55-helper.sh)"]
async fn an_indirect_session_injects_nothing() {
    if !enabled() {
        eprintln!("skipped: set HAETAE_TEST_XVFB=1 (needs xvfb and xdotool)");
        return;
    }
    let x = xvfb(206);
    let d = x.display.as_str();
    let run = start_helper(d);
    let mut page = PageLink::connect(run.port, ORIGIN, &run.ticket)
        .await
        .unwrap();
    page.send(&run.policy(Grade::Indirect)).await.unwrap();
    xdotool(d, &["mousemove", "10", "10"]);
    consent(&mut page).await;
    let (_, e) = expect(&mut page, |m| matches!(m, AppMessage::Error { .. })).await;
    assert!(matches!(e, AppMessage::Error { code: 403, .. }), "{e:?}");
    page.send(&mv(65_535, 65_535)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mouse(d), (10, 10));
    // A policy that was not signed by the Center ends the session (a second one too).
    page.send(&run.policy(Grade::Direct)).await.unwrap();
    let (_, bye) = expect(&mut page, |m| matches!(m, AppMessage::Bye { .. })).await;
    assert_eq!(
        bye,
        AppMessage::Bye {
            reason: EndReason::Protocol
        }
    );
    let end = run.finish();
    assert!(end.contains("Protocol"), "{end}");
}

fn write_png(path: &Path, width: u32, height: u32, rgb: &[u8]) {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for row in rgb.chunks(width as usize * 3) {
        raw.push(0);
        raw.extend_from_slice(row);
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    chunk(
        &mut png,
        b"IDAT",
        &miniz_oxide::deflate::compress_to_vec_zlib(&raw, 6),
    );
    chunk(&mut png, b"IEND", &[]);
    std::fs::write(path, png).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb and xdotool: set HAETAE_TEST_XVFB=1 (.ci/suites/55-helper.sh)"]
async fn the_notice_is_on_top_bottom_right_and_its_button_ends_the_session() {
    if !enabled() {
        eprintln!("skipped: set HAETAE_TEST_XVFB=1 (needs xvfb and xdotool)");
        return;
    }
    let x = xvfb(207);
    let d = x.display.as_str();
    // A big window that covers the whole screen, mapped before and raised after the notice.
    let window = TestWindow::open(d);
    window
        .conn
        .configure_window(
            window.window,
            &x11rb::protocol::xproto::ConfigureWindowAux::new()
                .width(1280)
                .height(720),
        )
        .unwrap();
    window.conn.sync().unwrap();
    let run = start_helper(d);
    let mut page = PageLink::connect(run.port, ORIGIN, &run.ticket)
        .await
        .unwrap();
    page.send(&run.policy(Grade::Direct)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    window
        .conn
        .configure_window(
            window.window,
            &x11rb::protocol::xproto::ConfigureWindowAux::new()
                .stack_mode(x11rb::protocol::xproto::StackMode::ABOVE),
        )
        .unwrap();
    window.conn.sync().unwrap();
    // The helper raises it again within a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let conn = &window.conn;
    let root = conn.setup().roots[0].root;
    let tree = conn.query_tree(root).unwrap().reply().unwrap();
    let top = *tree.children.last().unwrap();
    assert_ne!(
        top, window.window,
        "the notice must stay above other windows"
    );
    let geo = conn.get_geometry(top).unwrap().reply().unwrap();
    // Bottom-right: 16 px from the edges (plus its 2 px border).
    assert_eq!(
        (
            geo.x + i16::try_from(geo.width).unwrap() + 4,
            geo.y + i16::try_from(geo.height).unwrap() + 4
        ),
        (1280 - 16, 720 - 16)
    );
    // The screenshot, to look at: target/tmp/helper-notice.png.
    let image = conn
        .get_image(ImageFormat::Z_PIXMAP, root, 0, 0, 1280, 720, !0)
        .unwrap()
        .reply()
        .unwrap();
    let rgb: Vec<u8> = image
        .data
        .chunks(4)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("helper-notice.png");
    write_png(&shot, 1280, 720, &rgb);
    println!("screenshot: {}", shot.display());
    // The notice's red in its corner, text pixels (white) inside it.
    let px = |x: i32, y: i32| {
        let i = ((y * 1280 + x) * 3) as usize;
        (rgb[i], rgb[i + 1], rgb[i + 2])
    };
    let (gx, gy) = (i32::from(geo.x) + 2, i32::from(geo.y) + 2);
    assert_eq!(px(gx + 4, gy + 4), (0xb0, 0x00, 0x20));
    let white = (0..260)
        .flat_map(|dx| (0..60).map(move |dy| (dx, dy)))
        .filter(|(dx, dy)| px(gx + dx, gy + dy) == (255, 255, 255))
        .count();
    assert!(
        white > 200,
        "no text drawn in the notice ({white} white pixels)"
    );
    // A click outside the button goes through to the window below (click-through).
    xdotool(
        d,
        &[
            "mousemove",
            &(gx + 20).to_string(),
            &(gy + 20).to_string(),
            "click",
            "1",
        ],
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, clicks) = window.drain();
    assert_eq!(
        clicks.len(),
        1,
        "a click on the notice's text must reach the window below"
    );
    // The end button ends the session; the helper tells the page and removes itself.
    xdotool(
        d,
        &[
            "mousemove",
            &(gx + 300).to_string(),
            &(gy + 30).to_string(),
            "click",
            "1",
        ],
    );
    let (_, bye) = expect(&mut page, |m| matches!(m, AppMessage::Bye { .. })).await;
    assert_eq!(
        bye,
        AppMessage::Bye {
            reason: EndReason::Normal
        }
    );
    assert!(matches!(page.recv().await, Err(PageError::Closed)));
    let end = run.finish();
    assert!(end.contains("Normal"), "{end}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Xvfb and xdotool: set HAETAE_TEST_XVFB=1 (.ci/suites/55-helper.sh)"]
async fn losing_the_display_ends_the_session_and_removes_the_helper() {
    if !enabled() {
        eprintln!("skipped: set HAETAE_TEST_XVFB=1 (needs xvfb and xdotool)");
        return;
    }
    let x = xvfb(208);
    let run = start_helper(&x.display);
    let mut page = PageLink::connect(run.port, ORIGIN, &run.ticket)
        .await
        .unwrap();
    page.send(&run.policy(Grade::Direct)).await.unwrap();
    consent(&mut page).await;
    page.send(&mv(0, 0)).await.unwrap();
    wait_for("the session running", || mouse(&x.display) == (0, 0));
    // Without the watcher nobody could take control back: the helper must stop.
    drop(x);
    let (_, bye) = expect(&mut page, |m| matches!(m, AppMessage::Bye { .. })).await;
    assert_eq!(
        bye,
        AppMessage::Bye {
            reason: EndReason::Shutdown
        }
    );
    let end = run.finish();
    assert!(end.contains("Shutdown"), "{end}");
}
