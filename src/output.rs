//! Transcript writers: plain text, JSON lines and TSV, on any `Write`
//! (stdout in the binary). A closed pipe surfaces as `Closed` so `main` can
//! end quietly. Called on the recognizer thread.

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::error::HarkError;
use crate::stream::{Event, EventKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Jsonl,
    Tsv,
}

#[derive(Debug)]
pub enum OutputError {
    /// The reader went away (EPIPE): not an error for a command-line tool.
    Closed,
    Other(std::io::Error),
}

impl From<OutputError> for HarkError {
    fn from(e: OutputError) -> Self {
        match e {
            OutputError::Closed => HarkError::OutputClosed,
            OutputError::Other(e) => HarkError::Runtime(format!("writing output: {e}")),
        }
    }
}

fn io(e: std::io::Error) -> OutputError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        OutputError::Closed
    } else {
        OutputError::Other(e)
    }
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    phrase: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    slots: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f64>,
    /// Rejected: the best complete phrase, if any, and what the model heard.
    #[serde(skip_serializing_if = "Option::is_none")]
    best: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    heard: Option<&'a str>,
    start: f64,
    end: f64,
    latency_ms: f64,
    /// Which pass wrote the text (finals, commands and rejections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gap_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a str>,
}

pub struct Output<W: Write> {
    w: W,
    format: Format,
    /// Finals of the current file, for TSV.
    tsv_text: String,
    stderr_tty: bool,
    /// A text-mode partial is on the terminal's last line.
    partial_shown: bool,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl<W: Write> Output<W> {
    pub fn new(w: W, format: Format) -> Self {
        Output {
            w,
            format,
            tsv_text: String::new(),
            stderr_tty: std::io::stderr().is_terminal(),
            partial_shown: false,
        }
    }

    fn clear_partial(&mut self) {
        if self.partial_shown {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.partial_shown = false;
        }
    }

    /// Push what is buffered to the writer (e.g. before a message on stderr).
    pub fn flush(&mut self) -> Result<(), OutputError> {
        self.w.flush().map_err(io)
    }

    pub fn into_inner(self) -> W {
        self.w
    }

    /// Write one event; `file` names the input for multi-file runs.
    pub fn event(&mut self, ev: &Event, file: Option<&str>) -> Result<(), OutputError> {
        match self.format {
            Format::Text => match ev.kind {
                // a rejected command prints nothing
                EventKind::Final if ev.command.as_ref().is_some_and(|c| !c.accepted) => {
                    return Ok(());
                }
                EventKind::Final => {
                    self.clear_partial();
                    if ev.gap_ms > 0.0 {
                        writeln!(self.w, "[gap {:.0} ms] {}", ev.gap_ms, ev.text).map_err(io)?;
                    } else {
                        writeln!(self.w, "{}", ev.text).map_err(io)?;
                    }
                }
                EventKind::Partial => {
                    // Partials go to stderr, not into the transcript: one
                    // line rewritten in place on a terminal, lines otherwise.
                    // A failing stderr must not stop the transcript.
                    let mut e = std::io::stderr().lock();
                    let _ = if self.stderr_tty {
                        self.partial_shown = true;
                        write!(e, "\r\x1b[2K… {}", ev.text)
                    } else {
                        writeln!(e, "… {}", ev.text)
                    };
                    return Ok(());
                }
            },
            Format::Jsonl => {
                let cmd = ev.command.as_ref();
                let rejected = cmd.filter(|c| !c.accepted);
                let j = JsonEvent {
                    kind: match (ev.kind, cmd) {
                        (EventKind::Partial, _) => "partial",
                        (EventKind::Final, None) => "final",
                        (EventKind::Final, Some(c)) if c.accepted => "command",
                        (EventKind::Final, Some(_)) => "rejected",
                    },
                    phrase: cmd.and_then(|c| c.accepted.then_some(c.phrase.as_deref()).flatten()),
                    text: &ev.text,
                    slots: cmd.filter(|c| c.accepted).map(|c| {
                        c.slots
                            .iter()
                            .map(|s| (s.name.clone(), serde_json::Value::from(s.value)))
                            .collect()
                    }),
                    confidence: cmd.map(|c| round3(c.confidence)),
                    best: rejected.map(|c| c.best.as_str()).filter(|b| !b.is_empty()),
                    heard: rejected.map(|c| c.heard.as_str()),
                    start: round3(ev.start_s),
                    end: round3(ev.end_s),
                    latency_ms: round3(ev.latency_ms),
                    pass: (ev.kind == EventKind::Final).then_some(ev.pass.name()),
                    gap_ms: (ev.gap_ms > 0.0).then_some(round3(ev.gap_ms)),
                    file,
                };
                let line = serde_json::to_string(&j).map_err(|e| OutputError::Other(e.into()))?;
                writeln!(self.w, "{line}").map_err(io)?;
            }
            Format::Tsv => {
                if ev.kind == EventKind::Final && !ev.text.is_empty() {
                    if !self.tsv_text.is_empty() {
                        self.tsv_text.push(' ');
                    }
                    self.tsv_text.push_str(&ev.text);
                }
                return Ok(());
            }
        }
        self.w.flush().map_err(io)
    }

    /// End of one input file (TSV prints its line here).
    pub fn end_file(&mut self, file: &str) -> Result<(), OutputError> {
        if self.format == Format::Tsv {
            writeln!(self.w, "{file}\t{}", self.tsv_text).map_err(io)?;
            self.tsv_text.clear();
            self.w.flush().map_err(io)?;
        } else if self.format == Format::Text {
            self.w.flush().map_err(io)?;
        }
        Ok(())
    }
}
