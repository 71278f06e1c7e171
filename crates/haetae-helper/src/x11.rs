//! The X11 side, in pure Rust over `x11rb` (no C libraries): input injection with `XTest`,
//! the global Ctrl+Alt+Shift watcher on `XInput` 2 raw key events (seen whichever window has
//! the focus, and without grabbing the keyboard), and the notice window.
//!
//! Each part opens its own connection to the display, so the watcher is never held up by
//! injection or drawing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::shape::{self, ConnectionExt as _};
use x11rb::protocol::xinput::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{
    self, ChangeGCAux, ClipOrdering, ConfigureWindowAux, ConnectionExt as _, CreateGCAux,
    CreateWindowAux, EventMask, Rectangle, StackMode, WindowClass,
};
use x11rb::protocol::xtest::{self, ConnectionExt as _};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use crate::control::{Desktop, DesktopError, RevokeSignal};

fn err(e: impl std::fmt::Display) -> DesktopError {
    DesktopError(e.to_string())
}

fn connect(display: Option<&str>) -> Result<(RustConnection, usize), DesktopError> {
    RustConnection::connect(display)
        .map_err(|e| DesktopError(format!("cannot open the display: {e}")))
}

/// The X keysym for a `KeyboardEvent.code` (the key's position on a US keyboard, which is
/// what `code` names, whatever the layout).
#[must_use]
pub fn keysym_for_code(code: &str) -> Option<u32> {
    if let Some(letter) = code.strip_prefix("Key") {
        let b = letter.as_bytes();
        if b.len() == 1 && b[0].is_ascii_uppercase() {
            return Some(u32::from(b[0].to_ascii_lowercase()));
        }
        return None;
    }
    if let Some(digit) = code.strip_prefix("Digit") {
        let b = digit.as_bytes();
        if b.len() == 1 && b[0].is_ascii_digit() {
            return Some(u32::from(b[0]));
        }
        return None;
    }
    if let Some(n) = code.strip_prefix('F').and_then(|n| n.parse::<u32>().ok()) {
        return (1..=12).contains(&n).then(|| 0xffbd + n);
    }
    Some(match code {
        "Enter" | "NumpadEnter" => 0xff0d,
        "Space" => 0x20,
        "Backspace" => 0xff08,
        "Tab" => 0xff09,
        "Escape" => 0xff1b,
        "Delete" => 0xffff,
        "Insert" => 0xff63,
        "Home" => 0xff50,
        "End" => 0xff57,
        "PageUp" => 0xff55,
        "PageDown" => 0xff56,
        "ArrowLeft" => 0xff51,
        "ArrowUp" => 0xff52,
        "ArrowRight" => 0xff53,
        "ArrowDown" => 0xff54,
        "ShiftLeft" => 0xffe1,
        "ShiftRight" => 0xffe2,
        "ControlLeft" => 0xffe3,
        "ControlRight" => 0xffe4,
        "CapsLock" => 0xffe5,
        "AltLeft" => 0xffe9,
        "AltRight" => 0xffea,
        "MetaLeft" => 0xffeb,
        "MetaRight" => 0xffec,
        "Minus" => 0x2d,
        "Equal" => 0x3d,
        "BracketLeft" => 0x5b,
        "BracketRight" => 0x5d,
        "Backslash" => 0x5c,
        "Semicolon" => 0x3b,
        "Quote" => 0x27,
        "Comma" => 0x2c,
        "Period" => 0x2e,
        "Slash" => 0x2f,
        "Backquote" => 0x60,
        _ => return None,
    })
}

/// Every key code with its keysyms (unshifted first).
fn keyboard(conn: &RustConnection) -> Result<Vec<(u8, Vec<u32>)>, DesktopError> {
    let setup = conn.setup();
    let (min, max) = (setup.min_keycode, setup.max_keycode);
    let reply = conn
        .get_keyboard_mapping(min, max - min + 1)
        .map_err(err)?
        .reply()
        .map_err(err)?;
    let per = usize::from(reply.keysyms_per_keycode.max(1));
    Ok(reply
        .keysyms
        .chunks(per)
        .zip(min..=max)
        .map(|(syms, code)| (code, syms.to_vec()))
        .collect())
}

/// keysym → the first key code that produces it unshifted (or shifted, failing that).
fn keymap(conn: &RustConnection) -> Result<HashMap<u32, u8>, DesktopError> {
    let keys = keyboard(conn)?;
    let mut map = HashMap::new();
    for column in 0..2 {
        for (code, syms) in &keys {
            if let Some(&sym) = syms.get(column).filter(|s| **s != 0) {
                map.entry(sym).or_insert(*code);
            }
        }
    }
    Ok(map)
}

/// Injection into an X11 display with `XTest`.
pub struct X11Desktop {
    conn: RustConnection,
    root: xproto::Window,
    size: (u16, u16),
    keys: HashMap<u32, u8>,
}

impl std::fmt::Debug for X11Desktop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("X11Desktop")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl X11Desktop {
    /// Connects to `display` (or `$DISPLAY`) and checks that `XTest` is there.
    ///
    /// # Errors
    /// No display, or no `XTest` extension.
    pub fn connect(display: Option<&str>) -> Result<X11Desktop, DesktopError> {
        let (conn, screen) = connect(display)?;
        if conn
            .extension_information(xtest::X11_EXTENSION_NAME)
            .map_err(err)?
            .is_none()
        {
            return Err(DesktopError(
                "the display has no XTEST extension: input cannot be injected".into(),
            ));
        }
        let s = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| DesktopError("the display has no such screen".into()))?;
        let (root, size) = (s.root, (s.width_in_pixels, s.height_in_pixels));
        let keys = keymap(&conn)?;
        Ok(X11Desktop {
            conn,
            root,
            size,
            keys,
        })
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), DesktopError> {
        self.conn
            .xtest_fake_input(kind, detail, 0, self.root, x, y, 0)
            .map_err(err)?;
        // A round trip, so the event is in the server's queue before we go on (and a
        // revocation that follows cannot overtake it).
        self.conn.sync().map_err(err)
    }
}

impl Desktop for X11Desktop {
    fn size(&self) -> (u16, u16) {
        self.size
    }
    fn pointer(&mut self) -> Result<(i16, i16), DesktopError> {
        let r = self
            .conn
            .query_pointer(self.root)
            .map_err(err)?
            .reply()
            .map_err(err)?;
        Ok((r.root_x, r.root_y))
    }
    fn move_to(&mut self, x: i16, y: i16) -> Result<(), DesktopError> {
        self.fake(xproto::MOTION_NOTIFY_EVENT, 0, x, y)
    }
    fn button(&mut self, button: u8, down: bool) -> Result<(), DesktopError> {
        let kind = if down {
            xproto::BUTTON_PRESS_EVENT
        } else {
            xproto::BUTTON_RELEASE_EVENT
        };
        self.fake(kind, button, 0, 0)
    }
    fn keycode(&self, code: &str) -> Option<u8> {
        keysym_for_code(code).and_then(|sym| self.keys.get(&sym).copied())
    }
    fn key(&mut self, keycode: u8, down: bool) -> Result<(), DesktopError> {
        let kind = if down {
            xproto::KEY_PRESS_EVENT
        } else {
            xproto::KEY_RELEASE_EVENT
        };
        self.fake(kind, keycode, 0, 0)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Modifier {
    Control,
    Alt,
    Shift,
}

/// What the watcher and the notice report to the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalEvent {
    /// Ctrl+Alt+Shift.
    Revoked,
    /// The notice's end button.
    EndClicked,
    /// The display connection of the watcher or the notice failed: without them the
    /// session must not go on.
    DisplayLost,
}

/// Starts the Ctrl+Alt+Shift watcher on its own connection and thread. When the three are
/// down together it fires `signal` at once (the controller then injects nothing) and calls
/// `notify` with [`LocalEvent::Revoked`] (the session task tells the page). If its display
/// connection fails it fires `signal` and reports [`LocalEvent::DisplayLost`]. Returns when
/// the watcher is listening.
///
/// # Errors
/// No display, or no `XInput` 2.
pub fn spawn_revoke_watcher(
    display: Option<&str>,
    signal: Arc<RevokeSignal>,
    notify: Box<dyn Fn(LocalEvent) + Send>,
) -> Result<JoinHandle<()>, DesktopError> {
    let (conn, screen) = connect(display)?;
    if conn
        .extension_information(xinput::X11_EXTENSION_NAME)
        .map_err(err)?
        .is_none()
    {
        return Err(DesktopError(
            "the display has no XInputExtension: Ctrl+Alt+Shift cannot be watched".into(),
        ));
    }
    let version = conn
        .xinput_xi_query_version(2, 0)
        .map_err(err)?
        .reply()
        .map_err(err)?;
    if version.major_version < 2 {
        return Err(DesktopError("the display has no XInput 2".into()));
    }
    let root = conn
        .setup()
        .roots
        .get(screen)
        .ok_or_else(|| DesktopError("the display has no such screen".into()))?
        .root;
    let mut classes: HashMap<u32, Modifier> = HashMap::new();
    for (keycode, syms) in keyboard(&conn)? {
        let class = syms.iter().find_map(|sym| match sym {
            0xffe3 | 0xffe4 => Some(Modifier::Control),
            0xffe7..=0xffea => Some(Modifier::Alt),
            0xffe1 | 0xffe2 => Some(Modifier::Shift),
            _ => None,
        });
        if let Some(class) = class {
            classes.insert(u32::from(keycode), class);
        }
    }
    // Raw events come from every device (the real keyboards and XTest alike), whichever
    // window has the focus, and are never consumed by a grab.
    conn.xinput_xi_select_events(
        root,
        &[xinput::EventMask {
            deviceid: 0, // XIAllDevices
            mask: vec![xinput::XIEventMask::RAW_KEY_PRESS | xinput::XIEventMask::RAW_KEY_RELEASE],
        }],
    )
    .map_err(err)?
    .check()
    .map_err(err)?;
    let handle = std::thread::Builder::new()
        .name("helper-revoke-watch".into())
        .spawn(move || {
            // Down keys per modifier class, by key code (left and right count alike).
            let mut down: HashMap<u32, Modifier> = HashMap::new();
            let mut fired = false;
            while let Ok(event) = conn.wait_for_event() {
                match event {
                    Event::XinputRawKeyPress(e) => {
                        if let Some(class) = classes.get(&e.detail) {
                            down.insert(e.detail, *class);
                        }
                    }
                    Event::XinputRawKeyRelease(e) => {
                        down.remove(&e.detail);
                    }
                    _ => continue,
                }
                let all = [Modifier::Control, Modifier::Alt, Modifier::Shift]
                    .iter()
                    .all(|m| down.values().any(|d| d == m));
                if all && !fired {
                    fired = true;
                    signal.fire();
                    notify(LocalEvent::Revoked);
                } else if down.is_empty() {
                    fired = false;
                }
            }
            // The connection failed: no more watching, so no more control.
            signal.fire();
            notify(LocalEvent::DisplayLost);
        })
        .map_err(err)?;
    Ok(handle)
}

/// The notice's texts.
pub const NOTICE_KO: &str = "원격 지원 중";
/// The notice's English line.
pub const NOTICE_EN: &str = "Remote support in progress";
const WIDTH: u16 = 372;
const HEIGHT: u16 = 64;
const MARGIN: i16 = 16;
const BORDER: i16 = 2;
const BUTTON: Rectangle = Rectangle {
    x: 276,
    y: 14,
    width: 84,
    height: 36,
};

/// The notice window: bottom-right, above other windows, red, "원격 지원 중 / Remote support
/// in progress", with an end button. Only the button takes clicks (the SHAPE input region);
/// the rest of the window lets clicks through to what is below.
#[derive(Debug)]
pub struct Notice {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Fonts {
    hangul: Option<xproto::Font>,
    latin: xproto::Font,
}

fn open_font(conn: &RustConnection, name: &str) -> Option<xproto::Font> {
    let id = conn.generate_id().ok()?;
    conn.open_font(id, name.as_bytes()).ok()?.check().ok()?;
    Some(id)
}

fn ucs2(text: &str) -> Vec<xproto::Char2b> {
    text.encode_utf16()
        .map(|u| {
            let [byte1, byte2] = u.to_be_bytes();
            xproto::Char2b { byte1, byte2 }
        })
        .collect()
}

fn alloc(conn: &RustConnection, colormap: u32, rgb: (u16, u16, u16), fallback: u32) -> u32 {
    conn.alloc_color(colormap, rgb.0, rgb.1, rgb.2)
        .ok()
        .and_then(|c| c.reply().ok())
        .map_or(fallback, |r| r.pixel)
}

impl Notice {
    /// Shows the notice on `display`; `notify` gets [`LocalEvent::EndClicked`] when the
    /// customer clicks the button, [`LocalEvent::DisplayLost`] if the window's connection
    /// fails.
    ///
    /// # Errors
    /// No display, or the window could not be made.
    pub fn show(
        display: Option<&str>,
        notify: Box<dyn Fn(LocalEvent) + Send>,
    ) -> Result<Notice, DesktopError> {
        let (conn, screen) = connect(display)?;
        let s = conn
            .setup()
            .roots
            .get(screen)
            .ok_or_else(|| DesktopError("the display has no such screen".into()))?
            .clone();
        let red = alloc(
            &conn,
            s.default_colormap,
            (0xb000, 0x0000, 0x2000),
            s.black_pixel,
        );
        let window = conn.generate_id().map_err(err)?;
        // The outer edge (with the border) MARGIN pixels from the screen's corner.
        let outer = |screen: u16, size: u16| {
            i16::try_from(screen).unwrap_or(i16::MAX) - size.cast_signed() - 2 * BORDER - MARGIN
        };
        let (x, y) = (
            outer(s.width_in_pixels, WIDTH),
            outer(s.height_in_pixels, HEIGHT),
        );
        conn.create_window(
            x11rb::COPY_DEPTH_FROM_PARENT,
            window,
            s.root,
            x.max(0),
            y.max(0),
            WIDTH,
            HEIGHT,
            BORDER.cast_unsigned(),
            WindowClass::INPUT_OUTPUT,
            0,
            &CreateWindowAux::new()
                .background_pixel(red)
                .border_pixel(s.white_pixel)
                // Not managed by a window manager: it cannot be moved, iconified or put
                // behind other windows through the window manager.
                .override_redirect(1)
                .event_mask(
                    EventMask::EXPOSURE | EventMask::BUTTON_PRESS | EventMask::VISIBILITY_CHANGE,
                ),
        )
        .map_err(err)?
        .check()
        .map_err(err)?;
        let title = "haetae: 원격 지원 중 / Remote support in progress";
        conn.change_property8(
            xproto::PropMode::REPLACE,
            window,
            xproto::AtomEnum::WM_NAME,
            xproto::AtomEnum::STRING,
            title.as_bytes(),
        )
        .map_err(err)?;
        if conn
            .extension_information(shape::X11_EXTENSION_NAME)
            .map_err(err)?
            .is_some()
        {
            conn.shape_rectangles(
                shape::SO::SET,
                shape::SK::INPUT,
                ClipOrdering::UNSORTED,
                window,
                0,
                0,
                &[BUTTON],
            )
            .map_err(err)?;
        }
        let fonts = Fonts {
            hangul: open_font(
                &conn,
                "-misc-fixed-medium-r-normal-ko-18-*-*-*-*-*-iso10646-1",
            ),
            latin: open_font(
                &conn,
                "-misc-fixed-medium-r-normal--15-*-*-*-*-*-iso10646-1",
            )
            .or_else(|| open_font(&conn, "fixed"))
            .ok_or_else(|| DesktopError("no core X font could be opened".into()))?,
        };
        let gc = conn.generate_id().map_err(err)?;
        conn.create_gc(
            gc,
            window,
            &CreateGCAux::new().foreground(s.white_pixel).background(red),
        )
        .map_err(err)?;
        conn.map_window(window).map_err(err)?;
        conn.flush().map_err(err)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let colors = (red, s.white_pixel, s.black_pixel);
        let thread = std::thread::Builder::new()
            .name("helper-notice".into())
            .spawn(move || {
                let mut last_raise = Instant::now();
                while !stopped.load(Ordering::SeqCst) {
                    let event = match conn.poll_for_event() {
                        Ok(Some(e)) => Some(e),
                        Ok(None) => None,
                        Err(_) => {
                            notify(LocalEvent::DisplayLost);
                            return;
                        }
                    };
                    match event {
                        Some(Event::Expose(e)) if e.count == 0 => {
                            let _ = draw(&conn, window, gc, &fonts, colors);
                        }
                        Some(Event::ButtonPress(e)) => {
                            let inside = e.event_x >= BUTTON.x
                                && e.event_y >= BUTTON.y
                                && e.event_x < BUTTON.x + BUTTON.width.cast_signed()
                                && e.event_y < BUTTON.y + BUTTON.height.cast_signed();
                            if inside {
                                notify(LocalEvent::EndClicked);
                            }
                        }
                        Some(Event::VisibilityNotify(_)) => {
                            let _ = raise(&conn, window);
                        }
                        Some(_) => {}
                        None => {
                            if last_raise.elapsed() > Duration::from_millis(500) {
                                let _ = raise(&conn, window);
                                last_raise = Instant::now();
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
                let _ = conn.destroy_window(window);
                let _ = conn.flush();
            })
            .map_err(err)?;
        Ok(Notice {
            stop,
            thread: Some(thread),
        })
    }

    /// Removes the window.
    pub fn close(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn raise(conn: &RustConnection, window: xproto::Window) -> Result<(), DesktopError> {
    conn.configure_window(
        window,
        &ConfigureWindowAux::new().stack_mode(StackMode::ABOVE),
    )
    .map_err(err)?;
    conn.flush().map_err(err)
}

fn draw(
    conn: &RustConnection,
    window: xproto::Window,
    gc: xproto::Gcontext,
    fonts: &Fonts,
    (red, white, black): (u32, u32, u32),
) -> Result<(), DesktopError> {
    let text_gc = |fg, bg, font| ChangeGCAux::new().foreground(fg).background(bg).font(font);
    let mut y = 40;
    if let Some(hangul) = fonts.hangul {
        conn.change_gc(gc, &text_gc(white, red, hangul))
            .map_err(err)?;
        conn.image_text16(window, gc, 12, 26, &ucs2(NOTICE_KO))
            .map_err(err)?;
        y = 50;
    }
    conn.change_gc(gc, &text_gc(white, red, fonts.latin))
        .map_err(err)?;
    conn.image_text8(window, gc, 12, y, NOTICE_EN.as_bytes())
        .map_err(err)?;
    conn.change_gc(gc, &ChangeGCAux::new().foreground(white))
        .map_err(err)?;
    conn.poly_fill_rectangle(window, gc, &[BUTTON])
        .map_err(err)?;
    let mut x = BUTTON.x + 10;
    if let Some(hangul) = fonts.hangul {
        conn.change_gc(gc, &text_gc(black, white, hangul))
            .map_err(err)?;
        conn.image_text16(window, gc, x, BUTTON.y + 25, &ucs2("종료"))
            .map_err(err)?;
        x += 40;
    }
    conn.change_gc(gc, &text_gc(black, white, fonts.latin))
        .map_err(err)?;
    conn.image_text8(window, gc, x, BUTTON.y + 23, b"End")
        .map_err(err)?;
    conn.flush().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyboard_codes_map_to_us_keysyms() {
        assert_eq!(keysym_for_code("KeyA"), Some(0x61));
        assert_eq!(keysym_for_code("KeyZ"), Some(0x7a));
        assert_eq!(keysym_for_code("Digit7"), Some(0x37));
        assert_eq!(keysym_for_code("F1"), Some(0xffbe));
        assert_eq!(keysym_for_code("F12"), Some(0xffc9));
        assert_eq!(keysym_for_code("Enter"), Some(0xff0d));
        assert_eq!(keysym_for_code("ShiftLeft"), Some(0xffe1));
        for bad in [
            "Keya",
            "KeyAB",
            "Digit",
            "F0",
            "F13",
            "Fx",
            "",
            "Unidentified",
        ] {
            assert_eq!(keysym_for_code(bad), None, "{bad}");
        }
    }
}
