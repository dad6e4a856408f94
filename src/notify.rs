//! systemd service notifications (`Type=notify`): readiness once the model
//! is loaded and the device open, watchdog keep-alives from the recognizer
//! loop, and stopping. Each is a no-op outside systemd (no NOTIFY_SOCKET).
//! A failed notification is logged, never fatal: the recognizer goes on.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        log::warn!("systemd notification failed: {e}");
    }
}

/// READY=1 with a status line for `systemctl status`.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// STOPPING=1: the stop signal was seen, the last utterance is flushing.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Keep-alives at half the watchdog period systemd asked for
/// (WATCHDOG_USEC), sent from the thread whose progress they vouch for.
pub struct Watchdog {
    every: Option<Duration>,
    last: Option<Instant>,
}

impl Watchdog {
    pub fn from_env() -> Self {
        Watchdog {
            every: sd_notify::watchdog_enabled().map(|d| d / 2),
            last: None,
        }
    }

    /// Call often (every loop turn); sends WATCHDOG=1 when one is due.
    pub fn feed(&mut self) {
        let Some(every) = self.every else { return };
        if self.last.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        send(&[NotifyState::Watchdog]);
        self.last = Some(Instant::now());
    }
}
