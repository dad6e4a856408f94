//! The systemd unit (`systemd/hark.service`), its GPU drop-in
//! (`systemd/hark-gpu.conf`) and its settings file (`systemd/hark.env`):
//! `systemd-analyze verify` accepts the unit with and without the drop-in,
//! its `systemd-analyze security` exposure stays in the OK band or better, the
//! service contract (notify, watchdog, restart policy, audio access) is
//! there, and the settings file is plain KEY=VALUE lines.
//!
//! These tests need `systemd-analyze` (Debian package `systemd`, installed by
//! scripts/test.sh); without it they fail and say so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::repo;

const INSTALLED_BINARY: &str = "/usr/local/bin/hark";

fn unit_text() -> String {
    std::fs::read_to_string(repo().join("systemd/hark.service")).expect("read systemd/hark.service")
}

fn env_text() -> String {
    std::fs::read_to_string(repo().join("systemd/hark.env")).expect("read systemd/hark.env")
}

/// `systemd-analyze ARGS`, failing the test with an install hint when the
/// tool is missing.
fn systemd_analyze(args: &[&str]) -> Output {
    match Command::new("systemd-analyze")
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_LOG_COLOR", "0")
        .output()
    {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze not found: install systemd \
             (`sudo apt-get install systemd`, as scripts/test.sh does) to check the unit"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// The unit copied into a fresh directory as `hark.service`, with its
/// ExecStart binary pointed at the binary under test (verify checks that
/// the binary exists and is executable); with `gpu`, the GPU drop-in goes
/// beside it as `hark.service.d/gpu.conf`, where systemd-analyze reads
/// drop-ins of a unit given by path.
fn unit_for_test(dir: &Path, gpu: bool) -> PathBuf {
    let text = unit_text();
    let prefix = format!("ExecStart={INSTALLED_BINARY} ");
    let exec_lines = text.lines().filter(|l| l.starts_with("ExecStart=")).count();
    assert_eq!(exec_lines, 1, "the unit should have one ExecStart= line");
    assert!(
        text.lines().any(|l| l.starts_with(&prefix)),
        "ExecStart= should run {INSTALLED_BINARY}"
    );
    let bin = env!("CARGO_BIN_EXE_hark");
    assert!(
        !bin.contains(['"', '%', '\\']),
        "test binary path {bin} cannot be written into a unit file"
    );
    // Quoted: systemd takes a double-quoted first word as the path, spaces
    // and all.
    let rewritten: String = text
        .lines()
        .map(|l| match l.strip_prefix(&prefix) {
            Some(args) => format!("ExecStart=\"{bin}\" {args}\n"),
            None => format!("{l}\n"),
        })
        .collect();
    let path = dir.join("hark.service");
    std::fs::write(&path, rewritten).expect("write unit copy");
    if gpu {
        let dropins = dir.join("hark.service.d");
        std::fs::create_dir(&dropins).expect("drop-in dir");
        std::fs::copy(
            repo().join("systemd/hark-gpu.conf"),
            dropins.join("gpu.conf"),
        )
        .expect("copy systemd/hark-gpu.conf");
    }
    path
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    verify_without_warnings(false);
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_with_the_gpu_drop_in() {
    verify_without_warnings(true);
}

fn verify_without_warnings(gpu: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let unit = unit_for_test(dir.path(), gpu);
    let o = systemd_analyze(&["verify", unit.to_str().expect("utf8 path")]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "systemd-analyze verify failed ({}):\n{out}{err}",
        o.status
    );
    // Unknown keys, bad values and misplaced settings are warnings with
    // exit status 0; each names the unit. Other lines (about the host's
    // own units) are not ours to judge.
    let ours: Vec<&str> = out
        .lines()
        .chain(err.lines())
        .filter(|l| l.contains("hark.service") || l.contains("gpu.conf"))
        .collect();
    assert!(
        ours.is_empty(),
        "systemd-analyze verify warns about the unit:\n{}",
        ours.join("\n")
    );
}

/// Exposure bands of `systemd-analyze security`, from systemd's
/// src/analyze/analyze-security.c (`badness_table`): the exposure is shown
/// with one decimal, and a band holds every score from its lower bound up to
/// the next band's. OK is 1.0 to 4.9; MEDIUM starts at 5.0.
const BANDS: [(u32, &str); 7] = [
    (100, "DANGEROUS"),
    (90, "UNSAFE"),
    (75, "EXPOSED"),
    (50, "MEDIUM"),
    (10, "OK"),
    (1, "SAFE"),
    (0, "PERFECT"),
];

/// Highest score (in tenths) still in the OK band.
const OK_MAX_TENTHS: u32 = 49;

fn band_of(tenths: u32) -> &'static str {
    BANDS
        .iter()
        .find(|(low, _)| tenths >= *low)
        .map(|(_, name)| *name)
        .expect("PERFECT covers 0")
}

/// (score in tenths, band word) from the "Overall exposure level" line.
fn parse_overall(out: &str) -> (u32, String) {
    let line = out
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no 'Overall exposure level' line in:\n{out}"));
    let rest = line.rsplit_once(": ").expect("': ' before the score").1;
    let mut words = rest.split_whitespace();
    let score = words.next().expect("score");
    let band = words.next().expect("band word").to_string();
    let (whole, tenth) = score.split_once('.').expect("score with one decimal");
    let tenths = whole.parse::<u32>().expect("score") * 10 + tenth.parse::<u32>().expect("score");
    (tenths, band)
}

#[test]
fn security_exposure_parser_and_bands() {
    let (t, b) = parse_overall("\n→ Overall exposure level for hark.service: 0.6 SAFE 😀\n");
    assert_eq!((t, b.as_str()), (6, "SAFE"));
    let (t, b) = parse_overall("→ Overall exposure level for x.service: 9.6 UNSAFE 😨");
    assert_eq!((t, b.as_str()), (96, "UNSAFE"));
    assert_eq!(band_of(0), "PERFECT");
    assert_eq!(band_of(9), "SAFE");
    assert_eq!(band_of(10), "OK");
    assert_eq!(band_of(OK_MAX_TENTHS), "OK");
    assert_eq!(band_of(OK_MAX_TENTHS + 1), "MEDIUM");
}

#[test]
fn security_exposure_is_ok_or_better() {
    exposure_is_ok_or_better(false);
}

#[test]
fn security_exposure_with_the_gpu_drop_in_is_ok_or_better() {
    exposure_is_ok_or_better(true);
}

fn exposure_is_ok_or_better(gpu: bool) {
    let dir = tempfile::tempdir().expect("tmp");
    let unit = unit_for_test(dir.path(), gpu);
    let o = systemd_analyze(&[
        "security",
        "--offline=true",
        "--no-pager",
        unit.to_str().expect("utf8 path"),
    ]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "systemd-analyze security failed ({}):\n{out}{err}",
        o.status
    );
    if gpu {
        // The drop-in was read: the device ACL includes the GPU groups.
        let acl = out
            .lines()
            .find(|l| l.contains("DeviceAllow="))
            .unwrap_or_else(|| panic!("no DeviceAllow= line in:\n{out}"));
        assert!(
            acl.contains("char-nvidia*") && acl.contains("char-alsa"),
            "GPU drop-in not applied: {acl}"
        );
    }
    let (tenths, band) = parse_overall(&out);
    let failing: Vec<&str> = out.lines().filter(|l| l.starts_with('✗')).collect();
    assert!(
        ["OK", "SAFE", "PERFECT"].contains(&band.as_str()) && tenths <= OK_MAX_TENTHS,
        "exposure {}.{} {band} is worse than OK; settings that count:\n{}",
        tenths / 10,
        tenths % 10,
        failing.join("\n")
    );
    assert_eq!(
        band,
        band_of(tenths),
        "band word does not match systemd's table for the score"
    );
}

/// `[Service]` settings of the unit (last assignment wins, as in systemd for
/// single-valued settings).
fn service_settings() -> BTreeMap<String, String> {
    let mut section = String::new();
    let mut map = BTreeMap::new();
    for line in unit_text().lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_string();
            continue;
        }
        if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("KEY=VALUE in [Service]");
            map.insert(k.to_string(), v.to_string());
        }
    }
    map
}

#[test]
fn unit_keeps_the_service_contract() {
    let s = service_settings();
    let want = [
        // READY=1 after model load and device open; WATCHDOG=1 from the
        // recognizer loop, sent by the main process only.
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "10"),
        // exit 2 is bad configuration: restarting would only repeat it.
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "2"),
        ("DynamicUser", "yes"),
        ("SupplementaryGroups", "audio"),
        ("DevicePolicy", "closed"),
        ("DeviceAllow", "char-alsa rw"),
        ("MemoryDenyWriteExecute", "yes"),
        ("EnvironmentFile", "-/etc/default/hark"),
        (
            "ExecStart",
            "/usr/local/bin/hark listen --device ${HARK_DEVICE} $HARK_ARGS",
        ),
    ];
    for (k, v) in want {
        assert_eq!(s.get(k).map(String::as_str), Some(v), "[Service] {k}=");
    }
    // PrivateDevices= would hide /dev/snd; ProcSubset=pid would hide
    // /proc/cpuinfo, which tract reads to choose its ARM kernels.
    assert!(!s.contains_key("PrivateDevices"));
    assert!(!s.contains_key("ProcSubset"));
}

/// The settings file as KEY=VALUE pairs (comments and blank lines skipped).
fn env_pairs() -> Vec<(String, String)> {
    env_text()
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            !t.is_empty() && !t.starts_with('#') && !t.starts_with(';')
        })
        .map(|(i, l)| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("hark.env line {}: not KEY=VALUE: {l:?}", i + 1));
            let key_ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            assert!(key_ok, "hark.env line {}: bad key {k:?}", i + 1);
            // systemd would take quotes and a trailing backslash specially;
            // keep values literal.
            assert!(
                !v.contains(['"', '\'', '\\', '$']) && !v.starts_with(' '),
                "hark.env line {}: value must be literal: {l:?}",
                i + 1
            );
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn env_file_is_key_value_lines() {
    let pairs = env_pairs();
    let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["HARK_DEVICE", "HARK_ARGS"], "settings in hark.env");
    let device = &pairs[0].1;
    assert!(
        !device.is_empty() && !device.contains(char::is_whitespace),
        "HARK_DEVICE={device:?}"
    );
    // Every variable the unit's ExecStart= uses is set by the file.
    let exec = &service_settings()["ExecStart"];
    for k in &keys {
        assert!(exec.contains(k), "ExecStart= does not use {k}");
    }
}

#[test]
fn env_file_example_args_are_accepted_by_listen() {
    // The commented examples in hark.env are real `hark listen` options:
    // clap rejects an unknown option or a bad value before acting on --help.
    let env = env_text();
    let example = env
        .lines()
        .find_map(|l| l.strip_prefix("#HARK_ARGS="))
        .expect("a commented #HARK_ARGS= example");
    let mut args = vec!["listen", "--device", "default"];
    args.extend(example.split_whitespace());
    args.push("--help");
    let o = crate::util::run(&args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "hark {}: {}",
        args.join(" "),
        crate::util::stderr(&o)
    );
}
