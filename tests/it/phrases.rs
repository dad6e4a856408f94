//! Voice commands (`--phrases`): the phrase automaton, number slots, the
//! constrained search's rejection, bad phrase files, streaming = batch,
//! and the three commands end to end.

use std::sync::Arc;

use hark::decode::command::CommandSearch;
use hark::decode::phrases::{number_value, Phrases, Slot};
use hark::finals::grammar::TokenGrammar;
use hark::recognizer::Recognizer;
use hark::stream::{CommandDecoding, Event, EventKind, StreamConfig};
use rand::{Rng, SeedableRng};

use crate::util::{data, model, run, stderr, stdout};

/// A token table like the bundled model's: blank, space, apostrophe, a-z.
fn tokens() -> Vec<String> {
    let mut t = vec!["<blk>".to_string(), " ".into(), "'".into()];
    t.extend(('a'..='z').map(|c| c.to_string()));
    t
}

fn compile(text: &str) -> Phrases {
    Phrases::compile("test.phrases", text, &tokens(), 0).expect("phrases compile")
}

fn compile_err(text: &str) -> String {
    match Phrases::compile("test.phrases", text, &tokens(), 0) {
        Ok(_) => panic!("{text:?} compiled"),
        Err(e) => e.to_string(),
    }
}

fn ids(text: &str) -> Vec<usize> {
    let t = tokens();
    text.chars()
        .map(|c| {
            t.iter()
                .position(|s| s.chars().eq(std::iter::once(c)))
                .expect("spellable")
        })
        .collect()
}

fn accepts(p: &Phrases, text: &str) -> bool {
    p.walk(ids(text)).is_some_and(|s| p.accepting(s))
}

const HOME: &str = "[please] turn (on|off) the (kitchen|living room) lights\n\
                    set a timer for {number} (minutes|seconds)\n";

#[test]
fn the_automaton_accepts_exactly_the_phrases() {
    let p = compile(HOME);
    for yes in [
        "turn on the kitchen lights",
        "please turn off the living room lights",
        "set a timer for twenty five minutes",
        "set a timer for one hundred and five seconds",
        // spaces before, after and repeated are the same text
        " turn on the kitchen lights ",
        "turn  on the kitchen lights",
    ] {
        assert!(accepts(&p, yes), "{yes:?} should be accepted");
    }
    for no in [
        "turn on the lights",
        "turn on the kitchen",
        "please please turn on the kitchen lights",
        "turnon the kitchen lights",
        "turn on the kitchen lights please",
        "set a timer for minutes",
        "set a timer for twenty ten minutes",
        "",
    ] {
        assert!(!accepts(&p, no), "{no:?} should not be accepted");
    }
    // a prefix of a phrase is a live state, not an accepting one
    let s = p.walk(ids("turn on the kit")).expect("a prefix");
    assert!(!p.accepting(s));
    assert!(p.walk(ids("turn on the kix")).is_none());
}

#[test]
fn a_text_matches_its_phrase_and_slots() {
    let p = compile(HOME);
    let m = p
        .matches("please turn off the living room lights")
        .expect("match");
    assert_eq!(m.index, 0);
    assert_eq!(
        m.phrase,
        "[please] turn (on|off) the (kitchen|living room) lights"
    );
    assert!(m.slots.is_empty());
    let m = p
        .matches("set a timer for twenty five minutes")
        .expect("match");
    assert_eq!(m.index, 1);
    assert_eq!(
        m.slots,
        vec![Slot {
            name: "number".into(),
            value: 25
        }]
    );
    assert!(p.matches("set a timer for minutes").is_none());
    // named and repeated slots
    let p = compile("from {number:start} to {number}\n{number} and {number}\n");
    let m = p.matches("from ten to twenty one").expect("match");
    let slots: Vec<(&str, u32)> = m.slots.iter().map(|s| (s.name.as_str(), s.value)).collect();
    assert_eq!(slots, [("start", 10), ("number", 21)]);
    let m = p.matches("three hundred and two and one").expect("match");
    let slots: Vec<(&str, u32)> = m.slots.iter().map(|s| (s.name.as_str(), s.value)).collect();
    assert_eq!(slots, [("number", 302), ("number_2", 1)]);
}

/// English number words for 0..=999, written independently of hark's.
fn spell(n: u32) -> String {
    let units = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    let tens = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let below = |n: u32| -> String {
        match n {
            0..=19 => units[n as usize].to_string(),
            _ if n.is_multiple_of(10) => tens[(n / 10) as usize].to_string(),
            _ => format!("{} {}", tens[(n / 10) as usize], units[(n % 10) as usize]),
        }
    };
    match n {
        0..=99 => below(n),
        _ if n.is_multiple_of(100) => format!("{} hundred", units[(n / 100) as usize]),
        _ => format!("{} hundred {}", units[(n / 100) as usize], below(n % 100)),
    }
}

#[test]
fn number_slots_cover_zero_to_nine_hundred_ninety_nine() {
    let p = compile("{number}\n");
    for n in 0..1000 {
        let text = spell(n);
        let words: Vec<&str> = text.split(' ').collect();
        assert_eq!(number_value(&words), Some(n), "{text}");
        assert!(accepts(&p, &text), "{text:?}");
        let m = p.matches(&text).expect("match");
        assert_eq!(m.slots[0].value, n, "{text}");
        if n > 100 && !n.is_multiple_of(100) {
            let with_and = text.replacen("hundred", "hundred and", 1);
            assert!(accepts(&p, &with_and), "{with_and:?}");
            assert_eq!(p.matches(&with_and).expect("match").slots[0].value, n);
        }
    }
    for bad in [
        "twenty ten",
        "hundred",
        "ten hundred",
        "one hundred and",
        "five twenty",
        "zero one",
        "nineteen five",
    ] {
        let words: Vec<&str> = bad.split(' ').collect();
        assert_eq!(number_value(&words), None, "{bad}");
        assert!(!accepts(&p, bad), "{bad:?}");
    }
}

#[test]
fn bad_phrase_files_name_line_and_column() {
    let cases = [
        ("", "no phrases"),
        ("# only a comment\n\n", "no phrases"),
        (
            "turn on\nset 5 timers\n",
            "test.phrases:2:5: unexpected character '5'",
        ),
        (
            "turn (on|off the lights",
            "test.phrases:1:6: `(` is not closed",
        ),
        ("turn on] the lights", "test.phrases:1:8: `]` without `[`"),
        ("turn on the lights)", "test.phrases:1:19: `)` without `(`"),
        ("a | b", "test.phrases:1:3: `|` outside a choice"),
        ("turn (on|) it", "test.phrases:1:10: empty alternative"),
        ("turn [] it", "test.phrases:1:7: empty optional part"),
        ("set {colour}", "test.phrases:1:6: unknown slot `{colour}`"),
        ("set {number", "test.phrases:1:5: `{` is not closed"),
        (
            "ok\nturn on the café lights",
            "test.phrases:2:16: unexpected character 'é'",
        ),
        (
            "turn (on|off)ward",
            "test.phrases:1:14: expected a space before 'w'",
        ),
    ];
    for (text, want) in cases {
        let e = compile_err(text);
        assert!(
            e.contains(want),
            "{text:?}: {e:?} does not contain {want:?}"
        );
        assert!(!e.contains('\n'), "one line: {e:?}");
    }
    // a letter the model has no token for
    let mut t = tokens();
    t.retain(|s| s != "q");
    let e = Phrases::compile("test.phrases", "the quick fox", &t, 0)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("test.phrases:1:5: the model cannot spell 'q'"),
        "{e}"
    );
    let mut t = tokens();
    t.retain(|s| s != "v");
    let e = Phrases::compile("test.phrases", "wait {number}", &t, 0)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("{number} needs the letter 'v'"), "{e}");
}

/// Log-probability rows (vocab of `tokens()`) in which the model clearly
/// says `text`: each character for two frames, a blank between
/// characters, silence around.
fn saying(text: &str) -> Vec<f32> {
    let vocab = tokens().len();
    let mut frames: Vec<usize> = vec![0; 5];
    for id in ids(text) {
        frames.extend([id, id, 0]);
    }
    frames.extend([0; 5]);
    let sure = 0.9f32;
    let rest = (1.0 - sure) / (vocab - 1) as f32;
    frames
        .iter()
        .flat_map(|&best| (0..vocab).map(move |i| if i == best { sure.ln() } else { rest.ln() }))
        .collect()
}

fn search(p: &Arc<Phrases>, rows: &[f32]) -> (String, hark::decode::command::Verdict) {
    let t = tokens();
    let mut s = CommandSearch::new(
        p.clone(),
        16,
        hark::config::PHRASE_TOKEN_BONUS,
        t.len(),
        0,
        1000,
    );
    s.accept(rows, t.len(), 0);
    let v = s.finalize();
    let toks = hark::decode::tokens::Tokens::new(t, 0);
    let mut text = String::new();
    toks.render(s.best().iter().map(|t| t.id), &mut text);
    (text, v)
}

#[test]
fn in_grammar_speech_is_confident_and_other_speech_is_rejected() {
    let p = Arc::new(compile(HOME));
    let (text, v) = search(&p, &saying("turn on the kitchen lights"));
    assert_eq!(text, "turn on the kitchen lights");
    assert!(v.complete && v.confidence > 0.9, "{v:?}");
    // a near miss is decoded as the nearest phrase, with lower confidence
    let (text, near) = search(&p, &saying("turn on the kitchen light"));
    assert_eq!(text, "turn on the kitchen lights");
    assert!(near.confidence < v.confidence, "{near:?} vs {v:?}");
    // speech the phrases do not cover scores far below the free path
    let (_, other) = search(&p, &saying("what is the weather like today"));
    assert!(other.confidence < 0.2, "{other:?}");
    // silence decodes to no phrase at all
    let silence: Vec<f32> = saying("")
        .iter()
        .cycle()
        .take(tokens().len() * 50)
        .copied()
        .collect();
    let (text, none) = search(&p, &silence);
    assert!(
        text.is_empty() || none.confidence < 0.05,
        "{text:?} {none:?}"
    );
}

fn commands_config(text: &str, reject: f64) -> StreamConfig {
    let m = model();
    let phrases = Phrases::compile("home", text, &m.info.tokens, m.info.blank_id).expect("compile");
    StreamConfig {
        commands: Some(CommandDecoding {
            phrases: Arc::new(phrases),
            beam: 16,
            token_bonus: hark::config::PHRASE_TOKEN_BONUS,
            reject,
            decoder: None,
            decoder_beam: hark::config::DECODER_PHRASE_BEAM,
        }),
        ..crate::util::config(&m, true, false)
    }
}

/// `commands_config` with the finals decoder reading the commands (what
/// `--phrases` does by default).
fn decoder_config(text: &str, reject: f64) -> StreamConfig {
    let mut cfg = commands_config(text, reject);
    let m = model();
    let f = crate::finals::finals_model();
    if let Some(c) = &mut cfg.commands {
        c.decoder = Some(Arc::new(TokenGrammar::new(
            c.phrases.clone(),
            &m.info.tokens,
            m.info.blank_id,
            &f,
        )));
    }
    cfg.finals = Some(f);
    cfg
}

fn events(cfg: StreamConfig, samples: &[f32], pieces: Option<u64>) -> Vec<Event> {
    let mut rec = Recognizer::new(model(), 16000, cfg).expect("recognizer");
    let mut out = Vec::new();
    match pieces {
        None => out.extend(rec.push(samples).expect("push")),
        Some(seed) => {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut pos = 0;
            while pos < samples.len() {
                let n = rng.random_range(1..4000).min(samples.len() - pos);
                out.extend(rec.push(&samples[pos..pos + n]).expect("push"));
                pos += n;
            }
        }
    }
    out.extend(rec.finish().expect("finish"));
    out
}

/// The final events of the committed e2e recording `name` under `cfg`.
fn finals_of(cfg: &StreamConfig, name: &str) -> Vec<Event> {
    let audio = crate::util::wav_samples(&format!("e2e/{name}"));
    events(cfg.clone(), &audio, None)
        .into_iter()
        .filter(|e| e.kind == EventKind::Final)
        .collect()
}

fn home_text() -> String {
    std::fs::read_to_string(data("phrases/home.txt")).expect("home phrases")
}

#[test]
fn commands_streaming_equals_batch() {
    let audio = crate::util::speech_with_pauses();
    let cfg = commands_config(&home_text(), 0.0);
    let strip = |evs: Vec<Event>| {
        evs.into_iter()
            .map(|e| {
                (
                    e.kind,
                    e.text,
                    (e.start_s * 1000.0).round() as i64,
                    (e.end_s * 1000.0).round() as i64,
                    e.command,
                )
            })
            .collect::<Vec<_>>()
    };
    let whole = strip(events(cfg.clone(), &audio, None));
    let finals = whole.iter().filter(|e| e.0 == EventKind::Final).count();
    assert!(
        finals >= 4
            && whole
                .iter()
                .all(|e| e.0 != EventKind::Final || e.4.is_some()),
        "every final is a command verdict: {whole:?}"
    );
    for seed in 0..3 {
        assert_eq!(
            strip(events(cfg.clone(), &audio, Some(seed))),
            whole,
            "seed {seed}"
        );
    }
}

#[test]
fn the_decoder_reads_home_commands_and_rejects_other_speech() {
    let cfg = decoder_config(&home_text(), hark::config::DEFAULT_DECODER_REJECT);
    let run = |name: &str| finals_of(&cfg, name);
    for (name, text, slots) in [
        (
            "e2e-1-flite-rms.wav",
            "please turn on the kitchen lights",
            vec![],
        ),
        (
            "e2e-3-festival-ked-diphone.wav",
            "set a timer for ten minutes",
            vec![10],
        ),
        (
            "e2e-6-festival-ked-diphone.wav",
            "call my sister tomorrow morning",
            vec![],
        ),
    ] {
        let f = run(name);
        assert_eq!(f.len(), 1, "{name}: {f:?}");
        assert_eq!(f[0].pass, hark::stream::Pass::Whisper, "{f:?}");
        let c = f[0].command.as_ref().expect("verdict");
        assert_eq!(c.best, text, "{f:?}");
        assert!(c.phrase.is_some(), "{f:?}");
        assert_eq!(c.slots.iter().map(|s| s.value).collect::<Vec<_>>(), slots);
        assert!(c.accepted && f[0].text == text, "{f:?}");
        // what the decoder heard without the phrases
        assert!(!c.heard.is_empty(), "{f:?}");
    }
    for f in run("e2e-4-flite-rms.wav") {
        let c = f.command.as_ref().expect("verdict");
        assert!(!c.accepted && f.text.is_empty(), "{f:?}");
        assert!(c.heard.to_lowercase().contains("fox"), "{f:?}");
    }
    // silence and noise: no command
    let quiet = vec![0.0f32; 16000 * 3];
    assert!(events(cfg.clone(), &quiet, None)
        .iter()
        .all(|e| e.command.as_ref().is_none_or(|c| !c.accepted)));
}

#[test]
fn decoder_commands_streaming_equals_batch() {
    let audio = crate::util::wav_samples("e2e/e2e-1-flite-rms.wav");
    let cfg = decoder_config(&home_text(), 0.0);
    let strip = |evs: Vec<Event>| {
        evs.into_iter()
            .filter(|e| e.kind == EventKind::Final)
            .map(|e| (e.text, e.command))
            .collect::<Vec<_>>()
    };
    let whole = strip(events(cfg.clone(), &audio, None));
    assert_eq!(whole.len(), 1, "{whole:?}");
    assert_eq!(strip(events(cfg.clone(), &audio, Some(1))), whole);
}

#[test]
fn home_commands_are_recognized_and_other_speech_rejected() {
    // the committed e2e recordings: four say home phrases, one does not
    let cfg = commands_config(&home_text(), hark::config::DEFAULT_REJECT);
    let run = |name: &str| finals_of(&cfg, name);
    let one = |name: &str| {
        let f = run(name);
        let accepted: Vec<&Event> = f
            .iter()
            .filter(|e| e.command.as_ref().is_some_and(|c| c.accepted))
            .collect();
        assert_eq!(accepted.len(), 1, "{name}: {f:?}");
        accepted[0].clone()
    };
    let e = one("e2e-1-flite-rms.wav");
    assert_eq!(e.text, "please turn on the kitchen lights");
    let c = e.command.expect("command");
    assert_eq!(
        c.phrase.as_deref(),
        Some("[please] turn (on|off) the (kitchen|bedroom|living room|garage) lights")
    );
    // The timer clip's confidence sits at the default threshold (0.253
    // with hark-wsm-v12, 0.242 with v20, 0.237 with v21), so whether it is
    // accepted depends on the model, not on the search: the test checks that the
    // search finds the right phrase and slot, accepted or not.
    let f = run("e2e-3-festival-ked-diphone.wav");
    assert_eq!(f.len(), 1, "{f:?}");
    let c = f[0].command.as_ref().expect("verdict");
    assert_eq!(c.best, "set a timer for ten minutes", "{f:?}");
    assert_eq!(
        c.phrase.as_deref(),
        Some("set a timer for {number} (minutes|seconds)")
    );
    assert_eq!(
        c.slots,
        vec![Slot {
            name: "number".into(),
            value: 10
        }]
    );
    assert!(c.confidence > 0.1, "{f:?}");
    assert_eq!(
        one("e2e-6-festival-ked-diphone.wav").text,
        "call my sister tomorrow morning"
    );
    // "the quick brown fox jumps over the lazy dog" is no home command
    for f in run("e2e-4-flite-rms.wav") {
        let c = f.command.as_ref().expect("verdict");
        assert!(!c.accepted && f.text.is_empty(), "{f:?}");
    }
}

fn write_phrases(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("phrases.txt");
    std::fs::write(&p, text).expect("write phrases");
    p.to_str().expect("utf8").to_string()
}

#[test]
fn transcribe_prints_command_events() {
    let wav = data("e2e/e2e-1-flite-rms.wav");
    let home = data("phrases/home.txt");
    let o = run(&[
        "transcribe",
        "--phrases",
        home.to_str().expect("utf8"),
        "--format",
        "jsonl",
        wav.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let cmd: Vec<&serde_json::Value> = lines.iter().filter(|v| v["type"] == "command").collect();
    assert_eq!(cmd.len(), 1, "{lines:?}");
    assert_eq!(cmd[0]["text"], "please turn on the kitchen lights");
    assert_eq!(
        cmd[0]["phrase"],
        "[please] turn (on|off) the (kitchen|bedroom|living room|garage) lights"
    );
    assert!(cmd[0]["slots"].as_object().is_some_and(|m| m.is_empty()));
    let conf = cmd[0]["confidence"].as_f64().expect("confidence");
    assert!((0.0..=1.0).contains(&conf));
    // text format: the matched text; a rejected utterance prints nothing
    let fox = data("e2e/e2e-4-flite-rms.wav");
    let o = run(&[
        "transcribe",
        "--phrases",
        home.to_str().expect("utf8"),
        wav.to_str().expect("utf8"),
        fox.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "please turn on the kitchen lights\n");
    // --reject 0 accepts whatever complete phrase is closest; it rejects only
    // when the constrained search reached no complete phrase (confidence 0)
    let o = run(&[
        "transcribe",
        "--phrases",
        home.to_str().expect("utf8"),
        "--reject",
        "0",
        "--format",
        "jsonl",
        fox.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let ev: serde_json::Value = serde_json::from_str(stdout(&o).trim()).expect("one jsonl event");
    assert!(
        ev["type"] == "command" || ev["confidence"].as_f64() == Some(0.0),
        "{ev}"
    );
}

#[test]
fn rejected_events_say_why_in_jsonl() {
    let fox = data("e2e/e2e-4-flite-rms.wav");
    let home = data("phrases/home.txt");
    let o = run(&[
        "transcribe",
        "--phrases",
        home.to_str().expect("utf8"),
        "--reject",
        "1",
        "--format",
        "jsonl",
        fox.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert!(
        !v.is_empty() && v.iter().all(|e| e["type"] == "rejected"),
        "{v:?}"
    );
    for e in &v {
        assert_eq!(e["text"], "");
        assert!(e["confidence"].as_f64().is_some_and(|c| c < 1.0), "{e}");
        assert!(e["heard"].is_string(), "{e}");
        assert!(e.get("phrase").is_none() && e.get("slots").is_none(), "{e}");
    }
}

#[test]
fn bad_phrase_files_exit_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let wav = data("e2e/e2e-1-flite-rms.wav");
    let wav = wav.to_str().expect("utf8");
    for (text, want) in [
        ("", "no phrases"),
        ("turn on light 2\n", ":1:15: unexpected character '2'"),
        ("turn (on|off the light\n", ":1:6: `(` is not closed"),
    ] {
        let p = write_phrases(dir.path(), text);
        for cmd in ["transcribe", "bench"] {
            let o = run(&[cmd, "--phrases", &p, wav]);
            assert_eq!(o.status.code(), Some(2), "{cmd} {text:?}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(&format!("{p}{want}")) || e.contains(want), "{e}");
            assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        }
    }
    let o = run(&["transcribe", "--phrases", "/nonexistent/phrases.txt", wav]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/phrases.txt"),
        "{}",
        stderr(&o)
    );
    let p = write_phrases(dir.path(), "ok\n");
    let o = run(&["transcribe", "--phrases", &p, "--reject", "1.5", wav]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--reject"), "{}", stderr(&o));
    // --reject needs --phrases; --phrases and --lm do not mix
    assert_eq!(
        run(&["transcribe", "--reject", "0.5", wav]).status.code(),
        Some(2)
    );
    assert_eq!(
        run(&["transcribe", "--phrases", &p, "--lm", "x.bin", wav])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn bench_and_listen_take_phrases() {
    let home = data("phrases/home.txt");
    // the clip whose command is accepted with a wide margin (confidence
    // 0.76 with hark-wsm-v21; the timer clip sits at the threshold)
    let wav = data("e2e/e2e-1-flite-rms.wav");
    let o = run(&[
        "bench",
        "--phrases",
        home.to_str().expect("utf8"),
        "--format",
        "json",
        wav.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(
        v["files"][0]["transcript"],
        "please turn on the kitchen lights"
    );
    // listen parses and validates the flags (no capture device is needed
    // for --help; a bad phrase file fails before the device is opened)
    let o = run(&[
        "listen",
        "--phrases",
        home.to_str().expect("utf8"),
        "--help",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let dir = tempfile::tempdir().expect("tmp");
    let p = write_phrases(dir.path(), "[oops\n");
    let o = run(&["listen", "--device", "null", "--phrases", &p]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(":1:1: `[` is not closed"),
        "{}",
        stderr(&o)
    );
}
