//! WAV file source: 8/16/24/32-bit integer and 32-bit float PCM, any rate,
//! any channel count (mixed down to mono). Reads block by block with one
//! interleaved buffer; a file cut short is decoded up to the cut, with a
//! warning, so nothing that is there is lost. `open` also takes the WAV
//! encodings hound does not read (A-law, mu-law, 64-bit float) through the
//! streaming WAV reader of `stdin.rs`, and names any other one it refuses.

use std::fs::File;
use std::io::{BufReader, Cursor, Read};
use std::path::Path;

use hound::{SampleFormat, WavReader};

use super::stdin::RawSource;
use super::{mix_down, SampleSource};
use crate::error::{HarkError, Result};

/// Open a WAV file as a sample source: `WavSource` for what hound reads,
/// the streaming reader for A-law, mu-law and 64-bit float. An empty file,
/// a file without samples and an unsupported encoding are named as such.
pub fn open(path: &Path) -> Result<Box<dyn SampleSource>> {
    let name = path.display().to_string();
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0) {
        return Err(HarkError::Input(format!("{name}: empty file (0 bytes)")));
    }
    let reopen = || {
        File::open(path)
            .map(BufReader::new)
            .map_err(|io| HarkError::Input(format!("{name}: {io}")))
    };
    open_with(WavReader::open(path), reopen, &name)
}

/// `open` over a WAV file's bytes in memory, decoded the same way; `name`
/// is used in messages. For tests and the fuzz targets (fuzz/), which must
/// drive the file reader without a file.
pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<Box<dyn SampleSource>> {
    if bytes.is_empty() {
        return Err(HarkError::Input(format!("{name}: empty file (0 bytes)")));
    }
    let bytes: std::sync::Arc<[u8]> = bytes.into();
    let reopen = || Ok(Cursor::new(bytes.clone()));
    open_with(WavReader::new(Cursor::new(bytes.clone())), reopen, name)
}

/// The shared part of `open` and `from_bytes`: `first` is hound's reader
/// of the input, `reopen` gives the input again from its start.
fn open_with<R, S>(
    first: hound::Result<WavReader<R>>,
    reopen: impl FnOnce() -> Result<S>,
    name: &str,
) -> Result<Box<dyn SampleSource>>
where
    R: Read + 'static,
    S: Read + 'static,
{
    match first {
        Ok(reader) => {
            let w = WavSource::from_reader(reader, name.to_string())?;
            if w.declared_samples() == 0 {
                log::warn!("{}: no audio: the WAV has no samples", w.name);
            }
            Ok(Box::new(w))
        }
        // hound reads PCM and 32-bit float only; the streaming reader
        // takes A-law, mu-law and 64-bit float, and names what it refuses
        Err(e @ (hound::Error::Unsupported | hound::Error::FormatError(_))) => {
            match RawSource::wav(reopen()?, name) {
                Ok(Some(raw)) => Ok(Box::new(raw)),
                // a RIFF/WAVE file: its message names the encoding or the
                // chunk at fault, where hound's says "ill-formed"
                Err(refused) => Err(refused),
                Ok(None) => Err(hound_error(name, e)),
            }
        }
        Err(e) => Err(hound_error(name, e)),
    }
}

/// hound's reader of a WAV file (or of any byte stream: `from_bytes`).
pub struct WavSource<R: Read = BufReader<File>> {
    reader: WavReader<R>,
    name: String,
    channels: usize,
    rate: u32,
    format: SampleFormat,
    bits: u16,
    interleaved: Vec<f32>,
    read_samples: u64,
    truncated: bool,
}

fn hound_error(name: &str, e: hound::Error) -> HarkError {
    match e {
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::NotFound => {
            HarkError::Input(format!("{name}: no such file"))
        }
        hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            HarkError::Input(format!("{name}: not a WAV file (too short for a header)"))
        }
        hound::Error::IoError(io) => HarkError::Input(format!("{name}: {io}")),
        other => HarkError::Input(format!("{name}: not a readable WAV file: {other}")),
    }
}

impl WavSource {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let reader = WavReader::open(path).map_err(|e| hound_error(&name, e))?;
        Self::from_reader(reader, name)
    }
}

impl<R: Read> WavSource<R> {
    fn from_reader(reader: WavReader<R>, name: String) -> Result<Self> {
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(HarkError::Input(format!(
                "{name}: WAV header declares 0 channels or 0 Hz"
            )));
        }
        if spec.channels as usize > super::MAX_CHANNELS {
            return Err(HarkError::Input(format!(
                "{name}: {} channels (at most {} are supported)",
                spec.channels,
                super::MAX_CHANNELS
            )));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (SampleFormat::Int, 8 | 16 | 24 | 32) | (SampleFormat::Float, 32) => {}
            (f, b) => {
                return Err(HarkError::Input(format!(
                    "{name}: unsupported WAV sample format {f:?} {b}-bit"
                )))
            }
        }
        Ok(WavSource {
            name,
            channels: spec.channels as usize,
            rate: spec.sample_rate,
            format: spec.sample_format,
            bits: spec.bits_per_sample,
            interleaved: Vec::with_capacity(4096 * spec.channels as usize),
            read_samples: 0,
            truncated: false,
            reader,
        })
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// True when the file ended before its header said it would.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// Samples (all channels) the header promises.
    pub fn declared_samples(&self) -> u64 {
        self.reader.len() as u64
    }
}

impl<R: Read> SampleSource for WavSource<R> {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) -> Result<usize> {
        if self.truncated {
            return Ok(0);
        }
        let want = (out.len() * self.channels).min(self.interleaved.capacity());
        let want = want - want % self.channels;
        self.interleaved.clear();
        let scale = 1.0 / (1u64 << (self.bits - 1)) as f32;
        let mut err = None;
        match self.format {
            SampleFormat::Float => {
                for s in self.reader.samples::<f32>().take(want) {
                    match s {
                        // clipped to full scale, as in stdin.rs: huge
                        // finite values summed to infinity (fuzzing)
                        Ok(v) => self.interleaved.push(if v.is_finite() {
                            v.clamp(-1.0, 1.0)
                        } else {
                            0.0
                        }),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
            }
            SampleFormat::Int => {
                for s in self.reader.samples::<i32>().take(want) {
                    match s {
                        Ok(v) => self.interleaved.push(v as f32 * scale),
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        self.read_samples += self.interleaved.len() as u64;
        if let Some(e) = err {
            // The header was valid, so a failing sample read means the data
            // ends early: keep what was read.
            self.truncated = true;
            log::warn!(
                "{}: truncated WAV ({e}): {} of {} samples present; transcribing what is there",
                self.name,
                self.read_samples,
                self.declared_samples()
            );
        }
        // drop a trailing partial frame (only possible in a truncated file)
        let whole = self.interleaved.len() - self.interleaved.len() % self.channels;
        Ok(mix_down(&self.interleaved[..whole], self.channels, out))
    }
}
