//! systemd notifications against a fake NOTIFY_SOCKET (a Unix datagram
//! socket this test listens on): READY=1 once the model is loaded and the
//! device open, WATCHDOG=1 at half of WATCHDOG_USEC while recognizing,
//! STOPPING=1 on SIGTERM, then exit 0.

use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::listen::{alsa_config, s16le};
use crate::util::{hark, speechlike, stderr};

/// The next notification, if one arrives within `timeout`.
fn next_message(sock: &UnixDatagram, timeout: Duration) -> Option<String> {
    let mut buf = [0u8; 4096];
    let _ = sock.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

fn messages_until(sock: &UnixDatagram, deadline: Instant, out: &mut Vec<String>) {
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match next_message(sock, left) {
            Some(m) => out.push(m),
            None => break,
        }
    }
}

#[test]
fn listen_notifies_ready_feeds_the_watchdog_and_reports_stopping() {
    let dir = tempfile::tempdir().expect("tmp");
    let raw = dir.path().join("speech.raw");
    std::fs::write(&raw, s16le(&speechlike(3.0, 16000, 7))).expect("write raw");
    let conf = alsa_config(dir.path(), &raw);
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");

    let child = hark()
        // --finals ctc: this watches the recognizer loop's keep-alives at a
        // 200 ms watchdog. The Whisper finals pass holds the loop for as
        // long as it reads an utterance (measured on a 2-core machine: 2
        // keep-alives in these 3 s with it, 5 or more without), which the
        // unit's WatchdogSec=10 allows for but 200 ms does not.
        .args([
            "listen", "--device", "harktest", "--format", "jsonl", "--finals", "ctc",
        ])
        .env("ALSA_CONFIG_PATH", &conf)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "200000")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");

    // Start-up (model load, device open) can take seconds on a loaded
    // machine: wait up to a minute for the first message, then watch three
    // seconds of listening.
    let mut before: Vec<String> = next_message(&sock, Duration::from_secs(60))
        .into_iter()
        .collect();
    messages_until(&sock, Instant::now() + Duration::from_secs(3), &mut before);
    crate::util::sigterm(child.id());
    let mut after = Vec::new();
    messages_until(&sock, Instant::now() + Duration::from_secs(2), &mut after);
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let first = before.first().map(String::as_str).unwrap_or("");
    assert!(
        first.lines().any(|l| l == "READY=1") && first.contains("STATUS=listening"),
        "first notification should be readiness: {before:?}"
    );
    // sd-notify ends every state with a newline
    let pings = before
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    // 3 s at one keep-alive per 100 ms; allow for a slow machine
    assert!(
        pings >= 5,
        "{pings} watchdog keep-alives in 3 s: {before:?}"
    );
    assert!(
        after.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1 after SIGTERM: {after:?}"
    );
}

#[test]
fn without_notify_socket_listen_runs_as_before() {
    // the other listen tests run without NOTIFY_SOCKET; this checks that a
    // socket path nobody listens on is a warning, not a failure
    let dir = tempfile::tempdir().expect("tmp");
    let raw = dir.path().join("speech.raw");
    std::fs::write(&raw, s16le(&speechlike(1.0, 16000, 8))).expect("write raw");
    let conf = alsa_config(dir.path(), &raw);
    let child = hark()
        .args(["listen", "--device", "harktest"])
        .env("ALSA_CONFIG_PATH", &conf)
        .env("NOTIFY_SOCKET", dir.path().join("nobody.sock"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(1500));
    crate::util::sigterm(child.id());
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("systemd notification failed"),
        "{}",
        stderr(&o)
    );
}
