//! The rules for injecting the agent's input: only with a policy the Control Center signed
//! for this session that grants `control` to a `direct` agent, only while the customer's
//! consent is active, never after Ctrl+Alt+Shift until a new consent, and never while the
//! customer is using the mouse.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use haetae_remote::policy::{self, Grade, PolicyGrant};
use haetae_remote::protocol::{AppMessage, EndReason, InputEvent, MouseButton, SessionId};

/// How long remote input pauses after the customer moved the pointer.
pub const DEFAULT_LOCAL_PAUSE: Duration = Duration::from_millis(1000);
/// Wheel steps injected for one event at most (a wheel event carries an i16).
pub const MAX_WHEEL_STEPS: u16 = 20;
/// How far (pixels) the pointer may be from where the helper put it before that counts as
/// the customer moving it.
const LOCAL_MOVE_TOLERANCE: i32 = 1;

/// What the helper needs from the desktop. The X11 implementation is [`crate::x11::X11Desktop`].
pub trait Desktop {
    /// The screen's size in pixels.
    fn size(&self) -> (u16, u16);
    /// Where the pointer is now.
    ///
    /// # Errors
    /// The display connection failed.
    fn pointer(&mut self) -> Result<(i16, i16), DesktopError>;
    /// Moves the pointer to absolute screen coordinates.
    ///
    /// # Errors
    /// The display connection failed.
    fn move_to(&mut self, x: i16, y: i16) -> Result<(), DesktopError>;
    /// Presses or releases a pointer button (X numbering: 1 left, 2 middle, 3 right, 4-7
    /// wheel).
    ///
    /// # Errors
    /// The display connection failed.
    fn button(&mut self, button: u8, down: bool) -> Result<(), DesktopError>;
    /// The key code for a `KeyboardEvent.code`, if this keyboard has it.
    fn keycode(&self, code: &str) -> Option<u8>;
    /// Presses or releases a key.
    ///
    /// # Errors
    /// The display connection failed.
    fn key(&mut self, keycode: u8, down: bool) -> Result<(), DesktopError>;
}

/// The display refused or went away.
#[derive(Debug, thiserror::Error)]
#[error("display: {0}")]
pub struct DesktopError(pub String);

/// Counts of the revoke hotkey, shared between the watcher thread and the controller: the
/// watcher bumps it the moment it sees Ctrl+Alt+Shift, and the controller injects nothing
/// while it differs from the count it has acted on, even before the session task runs.
#[derive(Debug, Default)]
pub struct RevokeSignal {
    count: AtomicU64,
}

impl RevokeSignal {
    /// A new signal, shared.
    #[must_use]
    pub fn new() -> Arc<RevokeSignal> {
        Arc::new(RevokeSignal::default())
    }
    /// The hotkey was pressed.
    pub fn fire(&self) {
        self.count.fetch_add(1, Ordering::SeqCst);
    }
    /// How often it was pressed.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// What the session does after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to send.
    Quiet,
    /// Send this to the page.
    Reply(AppMessage),
    /// End the session.
    End(EndReason),
}

/// Counters, for the page's status and the tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Input events injected.
    pub injected: u64,
    /// Input events dropped: no consent, revoked, paused, or a key this keyboard lacks.
    pub dropped: u64,
    /// Pauses started because the customer moved the pointer.
    pub local_pauses: u64,
}

/// The controller of one paired session.
pub struct Controller<D: Desktop> {
    desktop: D,
    center_key: [u8; 32],
    session: SessionId,
    grant: Option<PolicyGrant>,
    requested: bool,
    consent: bool,
    revoke: Arc<RevokeSignal>,
    revokes_seen: u64,
    awaiting_ack: Option<u64>,
    paused_until: Option<Instant>,
    local_pause: Duration,
    last_injected: Option<(i16, i16)>,
    held_keys: Vec<u8>,
    held_buttons: Vec<u8>,
    stats: Stats,
}

impl<D: Desktop> std::fmt::Debug for Controller<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("consent", &self.consent)
            .field("grade", &self.grant.as_ref().map(|g| g.grade))
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn error(code: u16, text: &str) -> Outcome {
    Outcome::Reply(AppMessage::Error {
        code,
        message: text.into(),
    })
}

/// Maps a coordinate in 1/65535 units onto `0..size`.
#[must_use]
pub fn scale(unit: u16, size: u16) -> i16 {
    let max = u32::from(size.saturating_sub(1));
    let px = (u32::from(unit) * max + 32_767) / 65_535;
    i16::try_from(px).unwrap_or(i16::MAX)
}

impl<D: Desktop> Controller<D> {
    /// A controller for relay session `session`, trusting policies signed by `center_key`.
    pub fn new(
        desktop: D,
        center_key: [u8; 32],
        session: SessionId,
        revoke: Arc<RevokeSignal>,
    ) -> Self {
        let revokes_seen = revoke.count();
        Controller {
            desktop,
            center_key,
            session,
            grant: None,
            requested: false,
            consent: false,
            revoke,
            revokes_seen,
            awaiting_ack: None,
            paused_until: None,
            local_pause: DEFAULT_LOCAL_PAUSE,
            last_injected: None,
            held_keys: Vec::new(),
            held_buttons: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Sets how long input pauses after local pointer movement.
    pub fn set_local_pause(&mut self, pause: Duration) {
        self.local_pause = pause;
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether input would be injected now (policy, consent, no pending revoke).
    #[must_use]
    pub fn control_active(&self) -> bool {
        self.consent && self.revoke.count() == self.revokes_seen && self.direct_control()
    }

    fn direct_control(&self) -> bool {
        self.grant
            .as_ref()
            .is_some_and(|g| g.grade == Grade::Direct && g.features.control)
    }

    /// Whether the hotkey fired since the controller last acted on it.
    #[must_use]
    pub fn revoke_pending(&self) -> bool {
        self.revoke.count() != self.revokes_seen
    }

    /// Acts on the hotkey: consent ends, everything held is released. Call it, send
    /// `ControlRevoke` to the page, then [`Controller::revoke_sent`] with that frame's
    /// sequence number. Returns whether control was active (so the page must be told).
    pub fn revoke_locally(&mut self) -> bool {
        self.revokes_seen = self.revoke.count();
        let was = self.consent;
        self.end_consent();
        was
    }

    /// The `ControlRevoke` went out as frame `seq`: a new consent counts only after the page
    /// acknowledged it (so a grant that crossed the revocation on the wire is not taken).
    pub fn revoke_sent(&mut self, seq: u64) {
        self.awaiting_ack = Some(seq);
    }

    fn end_consent(&mut self) {
        self.consent = false;
        self.requested = false;
        self.release_all();
    }

    /// Releases every key and button the helper holds down.
    pub fn release_all(&mut self) {
        for key in std::mem::take(&mut self.held_keys) {
            let _ = self.desktop.key(key, false);
        }
        for button in std::mem::take(&mut self.held_buttons) {
            let _ = self.desktop.button(button, false);
        }
        self.last_injected = None;
    }

    /// Handles one message from the page at time `now_unix`.
    pub fn handle(&mut self, msg: AppMessage, now_unix: u64) -> Outcome {
        match msg {
            AppMessage::Policy { payload, signature } => {
                if self.grant.is_some() {
                    return Outcome::End(EndReason::Protocol);
                }
                match policy::verify(
                    &self.center_key,
                    &payload,
                    &signature,
                    self.session,
                    now_unix,
                ) {
                    Ok(grant) => {
                        self.grant = Some(grant);
                        Outcome::Quiet
                    }
                    Err(_) => Outcome::End(EndReason::Protocol),
                }
            }
            AppMessage::ControlRequest => {
                if !self.direct_control() {
                    return error(403, "the signed session policy does not allow control");
                }
                self.requested = true;
                Outcome::Quiet
            }
            AppMessage::ControlGrant => {
                if !self.direct_control() {
                    return error(403, "the signed session policy does not allow control");
                }
                if !self.requested || self.awaiting_ack.is_some() || self.revoke_pending() {
                    return error(409, "consent needs a new request after the revocation");
                }
                self.consent = true;
                self.requested = false;
                Outcome::Quiet
            }
            AppMessage::ControlRevoke => {
                self.end_consent();
                Outcome::Quiet
            }
            AppMessage::Ack { seq } => {
                if self.awaiting_ack.is_some_and(|s| seq >= s) {
                    self.awaiting_ack = None;
                }
                Outcome::Quiet
            }
            AppMessage::Input(event) => self.input(&event),
            AppMessage::Bye { reason } => {
                self.end_consent();
                Outcome::End(reason)
            }
            // The overlay (laser pointer, drawings) is not built: these are ignored.
            AppMessage::Pointer { .. } | AppMessage::Drawing { .. } | AppMessage::DrawingClear => {
                Outcome::Quiet
            }
            _ => error(400, "the helper does not handle this message"),
        }
    }

    fn input(&mut self, event: &InputEvent) -> Outcome {
        if !self.direct_control() {
            self.stats.dropped += 1;
            return error(403, "the signed session policy does not allow control");
        }
        if !self.control_active() {
            self.stats.dropped += 1;
            return Outcome::Quiet;
        }
        if let Some(until) = self.paused_until {
            if Instant::now() < until {
                self.stats.dropped += 1;
                return Outcome::Quiet;
            }
            self.paused_until = None;
        }
        match self.inject(event) {
            Ok(true) => {
                self.stats.injected += 1;
                Outcome::Quiet
            }
            Ok(false) => {
                self.stats.dropped += 1;
                Outcome::Quiet
            }
            Err(_) => Outcome::End(EndReason::Shutdown),
        }
    }

    /// Local input wins: if the pointer is not where the helper last put it, the customer
    /// moved it; pause.
    fn customer_moved(&mut self) -> Result<bool, DesktopError> {
        let now = self.desktop.pointer()?;
        if let Some(last) = self.last_injected {
            let dx = (i32::from(now.0) - i32::from(last.0)).abs();
            let dy = (i32::from(now.1) - i32::from(last.1)).abs();
            if dx > LOCAL_MOVE_TOLERANCE || dy > LOCAL_MOVE_TOLERANCE {
                self.stats.local_pauses += 1;
                self.paused_until = Some(Instant::now() + self.local_pause);
                self.release_all();
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn move_to(&mut self, x: u16, y: u16) -> Result<(), DesktopError> {
        let (w, h) = self.desktop.size();
        let at = (scale(x, w), scale(y, h));
        self.desktop.move_to(at.0, at.1)?;
        self.last_injected = Some(at);
        Ok(())
    }

    fn inject(&mut self, event: &InputEvent) -> Result<bool, DesktopError> {
        if self.customer_moved()? {
            return Ok(false);
        }
        // Checked again right before the display call: the hotkey may have fired meanwhile.
        if self.revoke_pending() {
            return Ok(false);
        }
        match event {
            InputEvent::PointerMove { x, y } => self.move_to(*x, *y)?,
            InputEvent::Button { button, down, x, y } => {
                let b = match button {
                    MouseButton::Left => 1,
                    MouseButton::Middle => 2,
                    MouseButton::Right => 3,
                };
                self.move_to(*x, *y)?;
                if *down == self.held_buttons.contains(&b) {
                    return Ok(false);
                }
                self.desktop.button(b, *down)?;
                if *down {
                    self.held_buttons.push(b);
                } else {
                    self.held_buttons.retain(|h| *h != b);
                }
            }
            InputEvent::Wheel { dx, dy } => {
                for (steps, neg, pos) in [(*dy, 4u8, 5u8), (*dx, 6, 7)] {
                    let button = if steps < 0 { neg } else { pos };
                    for _ in 0..steps.unsigned_abs().min(MAX_WHEEL_STEPS) {
                        if self.revoke_pending() {
                            return Ok(false);
                        }
                        self.desktop.button(button, true)?;
                        self.desktop.button(button, false)?;
                    }
                }
            }
            InputEvent::Key { code, down, .. } => {
                let Some(keycode) = self.desktop.keycode(code) else {
                    return Ok(false);
                };
                if !*down && !self.held_keys.contains(&keycode) {
                    return Ok(false);
                }
                self.desktop.key(keycode, *down)?;
                if *down {
                    if !self.held_keys.contains(&keycode) {
                        self.held_keys.push(keycode);
                    }
                } else {
                    self.held_keys.retain(|k| *k != keycode);
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use haetae_crypto::pk::Ed25519KeyPair;
    use haetae_remote::policy::{DEFAULT_MAX_FILE, Features};

    /// Records what would reach the display (the real one is tested under Xvfb).
    #[derive(Default)]
    struct Recorder {
        pointer: (i16, i16),
        calls: Vec<String>,
    }

    impl Desktop for &mut Recorder {
        fn size(&self) -> (u16, u16) {
            (1280, 720)
        }
        fn pointer(&mut self) -> Result<(i16, i16), DesktopError> {
            Ok(self.pointer)
        }
        fn move_to(&mut self, x: i16, y: i16) -> Result<(), DesktopError> {
            self.pointer = (x, y);
            self.calls.push(format!("move {x} {y}"));
            Ok(())
        }
        fn button(&mut self, button: u8, down: bool) -> Result<(), DesktopError> {
            self.calls.push(format!("button {button} {down}"));
            Ok(())
        }
        fn keycode(&self, code: &str) -> Option<u8> {
            (code == "KeyA").then_some(38)
        }
        fn key(&mut self, keycode: u8, down: bool) -> Result<(), DesktopError> {
            self.calls.push(format!("key {keycode} {down}"));
            Ok(())
        }
    }

    const SID: SessionId = SessionId([9; 16]);

    fn signed(key: &Ed25519KeyPair, grade: Grade, sid: SessionId) -> AppMessage {
        let grant = PolicyGrant {
            sid,
            agent: "kim.agent".into(),
            grade,
            features: Features::of(grade),
            max_file: if grade == Grade::Direct {
                DEFAULT_MAX_FILE
            } else {
                0
            },
            issued: 1_000,
            expires: 2_000,
        };
        let s = grant.sign(key).unwrap();
        AppMessage::Policy {
            payload: s.payload,
            signature: s.signature,
        }
    }

    fn mv(x: u16, y: u16) -> AppMessage {
        AppMessage::Input(InputEvent::PointerMove { x, y })
    }

    #[test]
    fn coordinates_map_onto_the_screen() {
        assert_eq!(scale(0, 1280), 0);
        assert_eq!(scale(65_535, 1280), 1279);
        assert_eq!(scale(32_768, 1280), 640);
        assert_eq!(scale(65_535, 0), 0);
    }

    #[test]
    fn input_needs_a_direct_policy_a_request_and_consent() {
        let key = Ed25519KeyPair::generate().unwrap();
        let mut rec = Recorder::default();
        let revoke = RevokeSignal::new();
        let mut c = Controller::new(&mut rec, key.public_key(), SID, revoke.clone());
        // No policy: refused.
        assert!(matches!(c.handle(mv(1, 1), 1_500), Outcome::Reply(_)));
        assert_eq!(
            c.handle(signed(&key, Grade::Direct, SID), 1_500),
            Outcome::Quiet
        );
        // Policy but no consent: dropped silently.
        assert_eq!(c.handle(mv(1, 1), 1_500), Outcome::Quiet);
        // Grant without a request: refused.
        assert!(matches!(
            c.handle(AppMessage::ControlGrant, 1_500),
            Outcome::Reply(AppMessage::Error { code: 409, .. })
        ));
        c.handle(AppMessage::ControlRequest, 1_500);
        assert_eq!(c.handle(AppMessage::ControlGrant, 1_500), Outcome::Quiet);
        assert_eq!(c.handle(mv(65_535, 0), 1_500), Outcome::Quiet);
        let key_a = AppMessage::Input(InputEvent::Key {
            code: "KeyA".into(),
            down: true,
            modifiers: 0,
        });
        c.handle(key_a, 1_500);
        assert_eq!(c.stats().injected, 2);
        assert_eq!(c.stats().dropped, 2);
        // The hotkey: nothing more, the held key is released, and a grant needs the ack.
        revoke.fire();
        assert!(!c.control_active());
        assert_eq!(c.handle(mv(2, 2), 1_500), Outcome::Quiet);
        assert!(c.revoke_locally());
        c.revoke_sent(7);
        c.handle(AppMessage::ControlRequest, 1_500);
        assert!(matches!(
            c.handle(AppMessage::ControlGrant, 1_500),
            Outcome::Reply(AppMessage::Error { code: 409, .. })
        ));
        c.handle(AppMessage::Ack { seq: 7 }, 1_500);
        c.handle(AppMessage::ControlRequest, 1_500);
        assert_eq!(c.handle(AppMessage::ControlGrant, 1_500), Outcome::Quiet);
        assert_eq!(c.handle(mv(0, 0), 1_500), Outcome::Quiet);
        assert_eq!(c.stats().injected, 3);
        drop(c);
        assert_eq!(
            rec.calls,
            ["move 1279 0", "key 38 true", "key 38 false", "move 0 0"]
        );
    }

    #[test]
    fn an_indirect_or_foreign_or_forged_policy_never_injects() {
        let key = Ed25519KeyPair::generate().unwrap();
        let other = Ed25519KeyPair::generate().unwrap();
        let mut rec = Recorder::default();
        let mut c = Controller::new(&mut rec, key.public_key(), SID, RevokeSignal::new());
        c.handle(signed(&key, Grade::Indirect, SID), 1_500);
        c.handle(AppMessage::ControlRequest, 1_500);
        c.handle(AppMessage::ControlGrant, 1_500);
        assert!(matches!(c.handle(mv(1, 1), 1_500), Outcome::Reply(_)));
        // A second policy ends the session.
        assert_eq!(
            c.handle(signed(&key, Grade::Direct, SID), 1_500),
            Outcome::End(EndReason::Protocol)
        );
        drop(c);
        assert!(rec.calls.is_empty());
        for (policy, now) in [
            (signed(&other, Grade::Direct, SID), 1_500),
            (signed(&key, Grade::Direct, SessionId([1; 16])), 1_500),
            (signed(&key, Grade::Direct, SID), 9_000),
        ] {
            let mut rec = Recorder::default();
            let mut c = Controller::new(&mut rec, key.public_key(), SID, RevokeSignal::new());
            assert_eq!(c.handle(policy, now), Outcome::End(EndReason::Protocol));
        }
    }

    #[test]
    fn local_pointer_movement_pauses_remote_input() {
        let key = Ed25519KeyPair::generate().unwrap();
        let mut rec = Recorder::default();
        let mut c = Controller::new(&mut rec, key.public_key(), SID, RevokeSignal::new());
        c.set_local_pause(Duration::from_millis(200));
        c.handle(signed(&key, Grade::Direct, SID), 1_500);
        c.handle(AppMessage::ControlRequest, 1_500);
        c.handle(AppMessage::ControlGrant, 1_500);
        c.handle(mv(0, 0), 1_500);
        c.desktop.pointer = (500, 500); // the customer moved the mouse
        c.handle(mv(100, 100), 1_500);
        c.handle(mv(100, 100), 1_500);
        assert_eq!(c.stats().local_pauses, 1);
        assert_eq!(c.stats().injected, 1);
        std::thread::sleep(Duration::from_millis(250));
        c.handle(mv(0, 0), 1_500);
        assert_eq!(c.stats().injected, 2);
    }
}
