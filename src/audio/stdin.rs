//! Raw PCM and streamed WAV (stdin or any reader). Raw input is s16le or
//! f32le, interleaved, at a rate and channel count given by flags; input
//! that starts with a RIFF/WAVE header is read as WAV instead (the header's
//! format wins over the flags), which is what `sox ... -t wav - | hark
//! transcribe -` sends. The header is parsed as a stream (no seeking), so a
//! pipe's placeholder data length (0 or 0xFFFFFFFF) means "until the end".
//! One byte buffer, reused; a trailing partial sample at end of input is
//! dropped. A read interrupted by a stop signal (EINTR) ends the input, so
//! SIGTERM works on a stalled pipe. Input that is empty, or that looks like
//! another sample format than the one it is read as, gets one warning.

use std::io::Read;

use super::{mix_down, SampleSource};
use crate::error::{HarkError, Result};

/// Sample encodings this source decodes (flags give the first two; a WAV
/// header any of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFormat {
    U8,
    S16Le,
    S24Le,
    S32Le,
    F32Le,
    F64Le,
    /// G.711 A-law, 8 bits per sample.
    ALaw,
    /// G.711 mu-law, 8 bits per sample.
    MuLaw,
}

impl RawFormat {
    /// Every format (the fuzz target and its regression tests walk them).
    pub const ALL: [RawFormat; 8] = [
        RawFormat::U8,
        RawFormat::S16Le,
        RawFormat::S24Le,
        RawFormat::S32Le,
        RawFormat::F32Le,
        RawFormat::F64Le,
        RawFormat::ALaw,
        RawFormat::MuLaw,
    ];

    pub fn bytes(self) -> usize {
        match self {
            RawFormat::U8 | RawFormat::ALaw | RawFormat::MuLaw => 1,
            RawFormat::S16Le => 2,
            RawFormat::S24Le => 3,
            RawFormat::S32Le | RawFormat::F32Le => 4,
            RawFormat::F64Le => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            RawFormat::U8 => "8-bit unsigned PCM",
            RawFormat::S16Le => "16-bit PCM",
            RawFormat::S24Le => "24-bit PCM",
            RawFormat::S32Le => "32-bit PCM",
            RawFormat::F32Le => "32-bit float",
            RawFormat::F64Le => "64-bit float",
            RawFormat::ALaw => "A-law",
            RawFormat::MuLaw => "mu-law",
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        let v = match self {
            RawFormat::U8 => (b[0] as f32 - 128.0) / 128.0,
            RawFormat::S16Le => i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0,
            RawFormat::S24Le => {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
            }
            RawFormat::S32Le => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }
            RawFormat::F32Le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            RawFormat::F64Le => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
            RawFormat::ALaw => alaw(b[0]) as f32 / 32768.0,
            RawFormat::MuLaw => mulaw(b[0]) as f32 / 32768.0,
        };
        // Float input may hold anything: out-of-range values are clipped
        // to full scale (huge finite ones would sum to infinity in
        // `mix_down`, found by fuzzing), NaN and infinities are silence.
        if v.is_finite() {
            v.clamp(-1.0, 1.0)
        } else {
            0.0
        }
    }
}

/// G.711 A-law byte to a 16-bit linear sample.
fn alaw(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 7;
    let mantissa = (a & 0x0f) as i16;
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    if a & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

/// G.711 mu-law byte to a 16-bit linear sample.
fn mulaw(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 7;
    let mantissa = (u & 0x0f) as i16;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Samples (interleaved values) looked at to tell whether the input is in
/// the format it is read as: about a second of 16 kHz mono.
const FORMAT_CHECK_SAMPLES: u64 = 16_000;

/// Counts over the first samples that betray a wrong `--sample-format`.
#[derive(Default)]
struct FormatCheck {
    samples: u64,
    /// f32le: values no audio has (not finite, beyond +-2, or below 1e-20
    /// without being 0): 16-bit samples read as floats give these.
    odd_values: u64,
    /// s16le: 16-bit words by position parity whose magnitude is in the
    /// band a float's upper half falls in (floats read as 16-bit samples:
    /// every second word is such an exponent word).
    band: [u64; 2],
    done: bool,
}

impl FormatCheck {
    fn observe(&mut self, format: RawFormat, bytes: &[u8]) {
        if self.done {
            return;
        }
        for b in bytes.chunks_exact(format.bytes()) {
            match format {
                RawFormat::F32Le => {
                    let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                    let a = v.abs();
                    if !v.is_finite() || a > 2.0 || (a != 0.0 && a < 1e-20) {
                        self.odd_values += 1;
                    }
                }
                RawFormat::S16Le => {
                    let v = i16::from_le_bytes([b[0], b[1]]).unsigned_abs();
                    if (12_000..=20_500).contains(&v) {
                        self.band[(self.samples % 2) as usize] += 1;
                    }
                }
                _ => {}
            }
            self.samples += 1;
            if self.samples >= FORMAT_CHECK_SAMPLES {
                break;
            }
        }
    }

    /// The warning to give, once enough samples (or all there are) were seen.
    fn verdict(&mut self, format: RawFormat, at_end: bool) -> Option<String> {
        if self.done || (self.samples < FORMAT_CHECK_SAMPLES && !at_end) || self.samples < 256 {
            return None;
        }
        self.done = true;
        let n = self.samples as f64;
        match format {
            RawFormat::F32Le if self.odd_values as f64 > 0.1 * n => Some(format!(
                "the input does not look like f32le: {} of the first {} values are not finite, beyond +-2 or below 1e-20 (16-bit samples? then --sample-format s16le)",
                self.odd_values, self.samples
            )),
            RawFormat::S16Le => {
                let (even, odd) = (self.band[0] as f64, self.band[1] as f64);
                let (hi, lo) = if odd > even { (odd, even) } else { (even, odd) };
                (hi > 0.8 * n / 2.0 && lo < 0.5 * n / 2.0).then(|| {
                    "the input does not look like s16le: every second 16-bit word looks like the upper half of a 32-bit float (float samples? then --sample-format f32le)".to_string()
                })
            }
            _ => None,
        }
    }
}

pub struct RawSource<R: Read> {
    reader: R,
    /// What the input is called in messages ("stdin", a file name).
    name: String,
    rate: u32,
    channels: usize,
    format: RawFormat,
    bytes: Vec<u8>,
    have: usize,
    interleaved: Vec<f32>,
    eof: bool,
    /// WAV data bytes still to read, when the header gave a real length.
    remaining: Option<u64>,
    /// The header's data length, for the truncation warning.
    declared: Option<u64>,
    /// Audio bytes taken from the reader so far.
    consumed: u64,
    /// Raw input (flags) is checked for a wrong `--sample-format`; a WAV
    /// header says what it is.
    check: Option<FormatCheck>,
    ended: bool,
}

/// How raw input is to be read when it has no WAV header.
#[derive(Clone, Copy, Debug)]
pub struct RawSpec {
    pub rate: u32,
    pub channels: usize,
    pub format: RawFormat,
}

impl<R: Read> RawSource<R> {
    /// Headerless PCM as `spec` says.
    pub fn new(reader: R, rate: u32, channels: usize, format: RawFormat) -> Result<Self> {
        Self::build(
            reader,
            "stdin".into(),
            RawSpec {
                rate,
                channels,
                format,
            },
            Vec::new(),
            None,
            true,
        )
    }

    /// Input that may start with a WAV header: read as WAV when it does,
    /// as headerless PCM described by `spec` otherwise. Refuses, naming
    /// them, compressed formats it recognizes (FLAC, Ogg, MP3).
    pub fn detect(mut reader: R, name: &str, spec: RawSpec) -> Result<Self> {
        check_spec(&spec)?;
        let mut head = Vec::with_capacity(12);
        fill(&mut reader, &mut head, 12, name)?;
        if is_wav(&head) {
            return Self::wav_after_riff(reader, name);
        }
        if let Some(kind) = compressed(&head) {
            return Err(HarkError::Input(format!(
                "{name}: this is {kind}, not raw PCM or WAV; convert it first, e.g. `sox FILE -t wav - | hark transcribe -`"
            )));
        }
        Self::build(reader, name.into(), spec, head, None, true)
    }

    /// A WAV stream read without seeking (e.g. a format the file reader
    /// does not handle: A-law, mu-law, 64-bit float); `None` when `reader`
    /// does not start with a RIFF/WAVE header.
    pub fn wav(mut reader: R, name: &str) -> Result<Option<Self>> {
        let mut head = Vec::with_capacity(12);
        fill(&mut reader, &mut head, 12, name)?;
        if !is_wav(&head) {
            return Ok(None);
        }
        Self::wav_after_riff(reader, name).map(Some)
    }

    fn wav_after_riff(mut reader: R, name: &str) -> Result<Self> {
        let wav = read_wav_header(&mut reader, name)?;
        log::info!(
            "{name}: WAV header: {}, {} Hz, {} channel(s){}",
            wav.spec.format.name(),
            wav.spec.rate,
            wav.spec.channels,
            match wav.data_bytes {
                Some(b) => format!(", {b} bytes of audio"),
                None => ", length not given (read to the end)".into(),
            }
        );
        Self::build(
            reader,
            name.into(),
            wav.spec,
            Vec::new(),
            wav.data_bytes,
            false,
        )
    }

    fn build(
        reader: R,
        name: String,
        spec: RawSpec,
        head: Vec<u8>,
        data_bytes: Option<u64>,
        check: bool,
    ) -> Result<Self> {
        check_spec(&spec)?;
        let frame = spec.channels * spec.format.bytes();
        let mut bytes = vec![0; (frame * 4096).max(head.len())];
        bytes[..head.len()].copy_from_slice(&head);
        let consumed = head.len() as u64;
        Ok(RawSource {
            reader,
            name,
            rate: spec.rate,
            channels: spec.channels,
            format: spec.format,
            bytes,
            have: head.len(),
            interleaved: Vec::with_capacity(spec.channels * 4096),
            eof: false,
            remaining: data_bytes.map(|d| d.saturating_sub(consumed)),
            declared: data_bytes,
            consumed,
            check: check.then(FormatCheck::default),
            ended: false,
        })
    }

    /// Called once at the end of the input: the warnings that need all of it.
    fn at_end(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let Some(msg) = self
            .check
            .as_mut()
            .and_then(|c| c.verdict(self.format, true))
        {
            log::warn!("{}: {msg}", self.name);
        }
        if self.consumed == 0 {
            let what = match self.check {
                Some(_) => "the input is empty",
                None => "the WAV header is followed by no samples",
            };
            log::warn!("{}: no audio: {what}", self.name);
        } else if (self.consumed as usize) < self.channels * self.format.bytes() {
            log::warn!(
                "{}: no audio: {} byte(s), less than one sample frame",
                self.name,
                self.consumed
            );
        }
        if let (Some(declared), Some(left)) = (self.declared, self.remaining) {
            if left > 0 {
                log::warn!(
                    "{}: truncated WAV: {} of {declared} bytes of audio present; transcribing what is there",
                    self.name,
                    declared - left
                );
            }
        }
    }
}

fn check_spec(spec: &RawSpec) -> Result<()> {
    if spec.rate == 0 || spec.channels == 0 || spec.channels > super::MAX_CHANNELS {
        return Err(HarkError::Config(format!(
            "raw input needs --rate > 0 and --channels from 1 to {}",
            super::MAX_CHANNELS
        )));
    }
    Ok(())
}

/// Read until `buf` holds `want` bytes or the input ends.
fn fill(reader: &mut impl Read, buf: &mut Vec<u8>, want: usize, name: &str) -> Result<()> {
    let mut chunk = [0u8; 64];
    while buf.len() < want {
        let n = (want - buf.len()).min(chunk.len());
        match reader.read(&mut chunk[..n]) {
            Ok(0) => break,
            Ok(got) => buf.extend_from_slice(&chunk[..got]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => break,
            Err(e) => return Err(HarkError::Runtime(format!("reading {name}: {e}"))),
        }
    }
    Ok(())
}

fn is_wav(head: &[u8]) -> bool {
    head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// A compressed format that a byte stream starts with, by its magic bytes.
fn compressed(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(b"fLaC") {
        Some("FLAC")
    } else if head.starts_with(b"OggS") {
        Some("an Ogg stream (Vorbis or Opus)")
    } else if head.starts_with(b"ID3") {
        Some("MP3 (with an ID3 tag)")
    } else if head.starts_with(b"RIFF") {
        Some("a RIFF file that is not WAVE")
    } else {
        None
    }
}

struct WavHeader {
    spec: RawSpec,
    /// None when the header gives a pipe's placeholder length.
    data_bytes: Option<u64>,
}

/// Chunks before `data` that a streamed header may skip, in bytes.
const MAX_SKIPPED_CHUNK_BYTES: u64 = 1 << 20;

/// Parse the chunks after "RIFF....WAVE" up to the start of the `data`
/// chunk's samples (which the reader is then at).
fn read_wav_header(reader: &mut impl Read, name: &str) -> Result<WavHeader> {
    let bad = |what: String| HarkError::Input(format!("{name}: WAV header: {what}"));
    let mut spec: Option<RawSpec> = None;
    let mut skipped = 0u64;
    loop {
        let mut head = Vec::with_capacity(8);
        fill(reader, &mut head, 8, name)?;
        if head.len() < 8 {
            return Err(bad("ends before its `data` chunk".into()));
        }
        let id = [head[0], head[1], head[2], head[3]];
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        match &id {
            b"fmt " => {
                if !(16..=1024).contains(&size) {
                    return Err(bad(format!("a `fmt ` chunk of {size} bytes")));
                }
                let mut fmt = Vec::with_capacity(size as usize + 1);
                fill(reader, &mut fmt, (size + size % 2) as usize, name)?;
                if fmt.len() < size as usize {
                    return Err(bad("ends inside its `fmt ` chunk".into()));
                }
                spec = Some(parse_fmt(&fmt[..size as usize]).map_err(bad)?);
            }
            b"data" => {
                let spec = spec.ok_or_else(|| bad("`data` before `fmt `".into()))?;
                // a writer that cannot seek back (a pipe) leaves 0 or the
                // largest value it can; real lengths are whole frames
                let frame = (spec.channels * spec.format.bytes()) as u32;
                let placeholder = size == 0 || size >= 0x7fff_f000 || size % frame != 0;
                return Ok(WavHeader {
                    spec,
                    data_bytes: (!placeholder).then_some(size as u64),
                });
            }
            _ => {
                let len = size as u64 + size as u64 % 2;
                skipped += len;
                if skipped > MAX_SKIPPED_CHUNK_BYTES {
                    return Err(bad(format!(
                        "more than {MAX_SKIPPED_CHUNK_BYTES} bytes of other chunks before `data`"
                    )));
                }
                let copied = std::io::copy(&mut (&mut *reader).take(len), &mut std::io::sink())
                    .map_err(|e| HarkError::Runtime(format!("reading {name}: {e}")))?;
                if copied < len {
                    return Err(bad("ends before its `data` chunk".into()));
                }
            }
        }
    }
}

/// Common WAV format tags, for naming what is not supported.
fn format_tag_name(tag: u16) -> &'static str {
    match tag {
        0x0002 => "Microsoft ADPCM",
        0x0011 => "IMA ADPCM",
        0x0031 => "GSM 6.10",
        0x0050 => "MPEG",
        0x0055 => "MPEG layer 3 (MP3)",
        0x0161 => "WMA",
        _ => "unknown",
    }
}

/// The sample format a `fmt ` chunk declares.
fn parse_fmt(f: &[u8]) -> std::result::Result<RawSpec, String> {
    let u16_at = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
    let mut tag = u16_at(0);
    let channels = u16_at(2) as usize;
    let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
    let block_align = u16_at(12) as usize;
    let bits = u16_at(14);
    if tag == 0xfffe {
        if f.len() < 40 {
            return Err("WAVE_FORMAT_EXTENSIBLE without its sub-format".into());
        }
        tag = u16_at(24);
    }
    if channels == 0 || channels > super::MAX_CHANNELS || rate == 0 {
        return Err(format!(
            "{channels} channels at {rate} Hz (1 to {} channels, above 0 Hz)",
            super::MAX_CHANNELS
        ));
    }
    let container_bits = if block_align.is_multiple_of(channels) {
        (block_align / channels * 8) as u16
    } else {
        bits
    };
    let format = match (tag, container_bits) {
        (1, 8) => RawFormat::U8,
        (1, 16) => RawFormat::S16Le,
        (1, 24) => RawFormat::S24Le,
        (1, 32) => RawFormat::S32Le,
        (3, 32) => RawFormat::F32Le,
        (3, 64) => RawFormat::F64Le,
        (6, 8) => RawFormat::ALaw,
        (7, 8) => RawFormat::MuLaw,
        (1 | 3 | 6 | 7, b) => {
            return Err(format!(
                "{b}-bit samples of format tag {tag} are not supported"
            ))
        }
        (t, _) => {
            return Err(format!(
                "format tag {t:#06x} ({}) is not supported: hark reads PCM (8, 16, 24, 32-bit), float (32, 64-bit), A-law and mu-law; convert it, e.g. `sox FILE -b 16 -e signed out.wav`",
                format_tag_name(t)
            ))
        }
    };
    Ok(RawSpec {
        rate,
        channels,
        format,
    })
}

impl<R: Read> SampleSource for RawSource<R> {
    fn rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) -> Result<usize> {
        let frame = self.channels * self.format.bytes();
        while !self.eof && self.have < frame {
            let room = match self.remaining {
                Some(left) => (self.bytes.len() - self.have).min(left as usize),
                None => self.bytes.len() - self.have,
            };
            if room == 0 {
                self.eof = true;
                break;
            }
            match self
                .reader
                .read(&mut self.bytes[self.have..self.have + room])
            {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.have += n;
                    self.consumed += n as u64;
                    if let Some(left) = &mut self.remaining {
                        *left -= n as u64;
                    }
                }
                // only the stop signals are caught, and they interrupt reads
                // (main.rs): end the input here, keeping what was read
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.eof = true,
                Err(e) => return Err(HarkError::Runtime(format!("reading {}: {e}", self.name))),
            }
        }
        let frames = (self.have / frame).min(out.len());
        if frames == 0 {
            self.at_end();
            return Ok(0);
        }
        let used = frames * frame;
        let bytes = self.format.bytes();
        if let Some(check) = &mut self.check {
            check.observe(self.format, &self.bytes[..used]);
            if let Some(msg) = check.verdict(self.format, false) {
                log::warn!("{}: {msg}", self.name);
            }
        }
        let format = self.format;
        self.interleaved.clear();
        self.interleaved.extend(
            self.bytes[..used]
                .chunks_exact(bytes)
                .map(|b| format.decode(b)),
        );
        self.bytes.copy_within(used..self.have, 0);
        self.have -= used;
        Ok(mix_down(&self.interleaved, self.channels, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_decodes_to_the_reference_values() {
        // ITU-T G.711 reference points (as in sox and libsndfile)
        assert_eq!(mulaw(0xff), 0);
        assert_eq!(mulaw(0x7f), 0);
        assert_eq!(mulaw(0x80), 32124);
        assert_eq!(mulaw(0x00), -32124);
        assert_eq!(alaw(0xd5), 8);
        assert_eq!(alaw(0x55), -8);
        assert_eq!(alaw(0xaa), 32256);
        assert_eq!(alaw(0x2a), -32256);
    }
}
