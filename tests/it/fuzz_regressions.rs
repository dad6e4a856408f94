//! What the fuzz targets (fuzz/, docs/reliability.md) found, kept: every
//! minimized input in tests/data/fuzz/<target>/ is replayed through the
//! target's code path, with hand-made hostile inputs per target (a data
//! chunk claiming 4 GB, zero channels, an LM with absurd counts, absurd
//! rates); each must end in a clean error or a bounded decode, not a panic.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;

use hark::audio::resample::ToModelRate;
use hark::audio::stdin::{RawFormat, RawSource, RawSpec};
use hark::audio::{wav, SampleSource};
use hark::backend::Backend;
use hark::decode::lm::{CharLm, BUNDLED_LM};
use hark::frontend::Fbank;
use hark::model::{read_info, read_metadata, Model, ModelInfo, BUNDLED_MODEL};

/// The committed inputs of one fuzz target, with their names.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fuzz")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
        .into_iter()
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read fuzz input");
            (p.display().to_string(), bytes)
        })
        .collect()
}

/// Read a source to its end in odd read sizes; the samples it gave, or
/// its error. Never more samples than `budget` (no endless source).
fn drain(src: &mut dyn SampleSource, budget: usize) -> hark::error::Result<usize> {
    let mut out = vec![0f32; 4096];
    let mut total = 0;
    for n in [1usize, 7, 160, 4096, 3].into_iter().cycle() {
        let got = src.read(&mut out[..n])?;
        if got == 0 {
            return Ok(total);
        }
        assert!(got <= n);
        assert!(out[..got].iter().all(|x| x.is_finite()));
        total += got;
        assert!(
            total <= budget,
            "{total} samples from a {budget}-byte input"
        );
    }
    unreachable!()
}

// --- wav ------------------------------------------------------------------

/// A canonical WAV header (one `fmt ` chunk of 16 bytes) and `data`.
fn wav_bytes(tag: u16, channels: u16, rate: u32, bits: u16, data_len: u32, data: &[u8]) -> Vec<u8> {
    let block = channels.wrapping_mul(bits / 8);
    let mut v = b"RIFF".to_vec();
    v.extend(36u32.wrapping_add(data.len() as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(tag.to_le_bytes());
    v.extend(channels.to_le_bytes());
    v.extend(rate.to_le_bytes());
    v.extend(rate.wrapping_mul(block as u32).to_le_bytes());
    v.extend(block.to_le_bytes());
    v.extend(bits.to_le_bytes());
    v.extend(b"data");
    v.extend(data_len.to_le_bytes());
    v.extend(data);
    v
}

/// The `wav` fuzz target's path: `wav::from_bytes`, then decode to the end.
fn wav_replay(bytes: &[u8]) -> hark::error::Result<usize> {
    let mut src = wav::from_bytes(bytes.to_vec(), "fuzz.wav")?;
    drain(src.as_mut(), bytes.len())
}

#[test]
fn wav_fuzz_inputs_decode_or_fail_cleanly() {
    for (name, bytes) in corpus("wav") {
        if let Err(e) = wav_replay(&bytes) {
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
        }
    }
}

#[test]
fn wav_data_chunk_claiming_4_gb_decodes_what_is_there() {
    let samples = [0x10u8, 0x00, 0x20, 0x00, 0x30, 0x00];
    for tag in [1, 3, 6, 7] {
        let bits = if tag == 3 {
            32
        } else if tag == 1 {
            16
        } else {
            8
        };
        let got = wav_replay(&wav_bytes(tag, 1, 16000, bits, u32::MAX, &samples));
        let got = got.unwrap_or_else(|e| panic!("tag {tag}: {e}"));
        assert!(got <= samples.len(), "tag {tag}: {got}");
    }
}

#[test]
fn wav_headers_with_impossible_formats_are_input_errors() {
    let data = [0u8; 64];
    for (what, bytes) in [
        ("zero channels", wav_bytes(1, 0, 16000, 16, 64, &data)),
        (
            "65535 channels",
            wav_bytes(1, u16::MAX, 16000, 16, 64, &data),
        ),
        ("0 Hz", wav_bytes(1, 1, 0, 16, 64, &data)),
        ("0-bit samples", wav_bytes(1, 1, 16000, 0, 64, &data)),
        ("ADPCM", wav_bytes(2, 1, 16000, 4, 64, &data)),
        ("header only", b"RIFF\x24\x00\x00\x00WAVE".to_vec()),
        ("not RIFF", b"this is not a wav file".to_vec()),
    ] {
        let e = wav_replay(&bytes).expect_err(what);
        assert_eq!(e.exit_code(), 2, "{what}: {e}");
    }
    assert!(wav::from_bytes(Vec::new(), "empty.wav").is_err());
}

// --- stdin_pcm --------------------------------------------------------------

/// A pipe that gives at most 3 bytes per read.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(3);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// The `stdin_pcm` target's path: `detect` (WAV or raw as `spec` says), read to the end.
fn stdin_replay(bytes: &[u8], spec: RawSpec) -> hark::error::Result<usize> {
    let mut src = RawSource::detect(Trickle(bytes), "stdin", spec)?;
    drain(&mut src, bytes.len())
}

#[test]
fn stdin_fuzz_inputs_decode_or_fail_cleanly() {
    for (name, bytes) in corpus("stdin_pcm") {
        // the target's first four bytes choose format, channels and rate
        let Some((ctl, body)) = bytes.split_first_chunk::<4>() else {
            continue;
        };
        let spec = RawSpec {
            format: RawFormat::ALL[(ctl[0] & 7) as usize],
            channels: ctl[1] as usize + if ctl[0] & 0x80 != 0 { 250 } else { 0 },
            rate: [16_000, 8_000, 44_100, 48_000, 1, 4_000, 768_000, u32::MAX]
                [(ctl[2] & 7) as usize],
        };
        if let Err(e) = stdin_replay(body, spec) {
            assert!(matches!(e.exit_code(), 1 | 2), "{name}: {e}");
        }
    }
}

#[test]
fn stdin_every_format_and_channel_count_reads_raw_pcm() {
    let body: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    for format in RawFormat::ALL {
        for channels in [1, 2, 3, 7, 256] {
            let spec = RawSpec {
                rate: 16000,
                channels,
                format,
            };
            let got = stdin_replay(&body, spec).expect("raw pcm");
            assert_eq!(
                got,
                body.len() / (channels * format.bytes()),
                "{format:?} x{channels}"
            );
        }
    }
}

#[test]
fn stdin_hostile_headers_and_specs_are_refused() {
    let data = [0u8; 64];
    let spec = RawSpec {
        rate: 16000,
        channels: 1,
        format: RawFormat::S16Le,
    };
    let mut huge_fmt = b"RIFF\x00\x00\x00\x00WAVEfmt \xff\xff\xff\xff".to_vec();
    huge_fmt.extend([0u8; 32]);
    let mut huge_skip = b"RIFF\x00\x00\x00\x00WAVELIST\xfe\xff\xff\xff".to_vec();
    huge_skip.extend([0u8; 32]);
    for (what, bytes) in [
        ("zero channels", wav_bytes(1, 0, 16000, 16, 64, &data)),
        ("300 channels", wav_bytes(1, 300, 16000, 16, 64, &data)),
        ("0 Hz", wav_bytes(1, 1, 0, 16, 64, &data)),
        ("`fmt ` of 4 GB", huge_fmt),
        ("4 GB of other chunks", huge_skip),
        ("FLAC", b"fLaC\x00\x00\x00\x22".to_vec()),
    ] {
        let e = stdin_replay(&bytes, spec).expect_err(what);
        assert_eq!(e.exit_code(), 2, "{what}: {e}");
    }
    // a data chunk that claims 4 GB is a pipe's placeholder: read to the end
    let got = stdin_replay(&wav_bytes(1, 1, 16000, 16, u32::MAX, &data), spec);
    assert_eq!(got.expect("4 GB data chunk"), 32);
    for (channels, rate) in [(0, 16000), (257, 16000), (1, 0)] {
        let bad = RawSpec {
            rate,
            channels,
            format: RawFormat::F64Le,
        };
        assert!(stdin_replay(&data, bad).is_err(), "{channels} x {rate} Hz");
        assert!(RawSource::new(&data[..], rate, channels, RawFormat::U8).is_err());
    }
}

// --- model ------------------------------------------------------------------

fn bundled_meta() -> HashMap<String, String> {
    read_metadata(BUNDLED_MODEL).expect("bundled model").1
}

/// The `model` target's metadata path: validate, then build and feed the
/// filterbank and the resampler the runtime would build from it.
fn metadata_replay(meta: &HashMap<String, String>) -> hark::error::Result<ModelInfo> {
    let info = ModelInfo::from_metadata(meta)?;
    let audio: Vec<f32> = (0..2000)
        .map(|i| ((i * 37 % 200) as f32 - 100.0) / 128.0)
        .collect();
    if let Some(cfg) = info.fbank() {
        let mut fbank = Fbank::new(cfg);
        for chunk in audio.chunks(7).chain(audio.chunks(401)) {
            fbank.accept(chunk, |frame| assert_eq!(frame.len(), cfg.num_bins));
        }
    }
    let mut rs = ToModelRate::new(16_000, info.sample_rate_hz())?;
    rs.process(&audio, |_| Ok(()))?;
    rs.finish(|_| Ok(()))?;
    Ok(info)
}

/// The `model` target's ONNX path: `read_info`, then tract's load.
fn onnx_replay(bytes: &[u8]) -> hark::error::Result<()> {
    read_info(bytes, "fuzz.onnx")?;
    Model::load_bytes(bytes, "fuzz.onnx", Backend::Cpu).map(|_| ())
}

#[test]
fn model_fuzz_inputs_load_or_fail_cleanly() {
    for (name, bytes) in corpus("model") {
        let Some((&mode, rest)) = bytes.split_first() else {
            continue;
        };
        let result = if mode & 1 == 0 {
            let mut meta = if mode & 2 == 0 {
                bundled_meta()
            } else {
                HashMap::new()
            };
            for line in String::from_utf8_lossy(rest).lines() {
                match line.split_once('=') {
                    Some((k, v)) => meta.insert(k.to_string(), v.to_string()),
                    None => meta.remove(line),
                };
            }
            metadata_replay(&meta).map(|_| ())
        } else {
            onnx_replay(rest)
        };
        if let Err(e) = result {
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
        }
    }
}

#[test]
fn model_metadata_with_absurd_sizes_is_a_model_error() {
    let huge = u64::MAX.to_string();
    for (key, value) in [
        ("hark.fbank.frame_shift_samples", huge.as_str()),
        ("hark.fbank.frame_length_samples", huge.as_str()),
        ("hark.fbank.num_bins", huge.as_str()),
        ("hark.fbank.fft_size", "9223372036854775808"),
        ("hark.chunk_frames", huge.as_str()),
        ("hark.subsampling", "0"),
        ("hark.sample_rate_hz", "4294967295"),
        ("hark.sample_rate_hz", "1"),
        ("hark.fbank.low_freq_hz", "NaN"),
        ("hark.fbank.high_freq_hz", "inf"),
        ("hark.blank_id", "29"),
        ("hark.tokens", "[]"),
        (
            "hark.states",
            r#"[{"input":"a","output":"b","shape":[4294967296,4294967296],"init":0}]"#,
        ),
    ] {
        let mut meta = bundled_meta();
        meta.insert(key.into(), value.into());
        let e = metadata_replay(&meta).expect_err(key);
        assert_eq!(e.exit_code(), 2, "{key}={value}: {e}");
    }
    metadata_replay(&bundled_meta()).expect("the bundled model's metadata");
}

#[test]
fn model_corrupt_onnx_bytes_are_model_errors() {
    let mut flipped = BUNDLED_MODEL[..4096].to_vec();
    flipped[100] ^= 0xff;
    for bytes in [
        &BUNDLED_MODEL[..4096],
        &BUNDLED_MODEL[BUNDLED_MODEL.len() - 4096..],
        &flipped[..],
        b"\x0a\xff\xff\xff\xff\x0f".as_slice(),
        b"",
    ] {
        let e = onnx_replay(bytes).expect_err("corrupt model");
        assert!(matches!(e, hark::error::HarkError::Model(_)), "{e}");
    }
}

// --- lm -----------------------------------------------------------------------

/// The `lm` target's path: parse, then query every symbol after a few contexts.
fn lm_replay(bytes: &[u8]) -> hark::error::Result<()> {
    let lm = CharLm::parse(bytes, "fuzz.bin")?;
    for ctx in [vec![], vec![lm.bos()], vec![lm.bos(), 0, 0], vec![0; 8]] {
        for sym in 0..=lm.eos() {
            lm.logp(&ctx, sym);
        }
    }
    Ok(())
}

/// An LM header: magic, version, order, symbols "a".."z" and the end
/// symbol, tuned settings; the tables follow.
fn lm_header(order: u32, n_sym: u32) -> Vec<u8> {
    let mut v = b"HARKCLM1".to_vec();
    for x in [1, order, n_sym] {
        v.extend(x.to_le_bytes());
    }
    // the names of at most 30 symbols (more is refused before they are read)
    for i in 0..n_sym.min(30) {
        v.push(1);
        v.push(b'a' + (i % 26) as u8);
    }
    v.extend(0.5f32.to_le_bytes());
    v.extend(1.0f32.to_le_bytes());
    v.extend(8u32.to_le_bytes());
    v.extend(10.0f32.to_le_bytes());
    v
}

#[test]
fn lm_fuzz_inputs_parse_or_fail_cleanly() {
    for (name, bytes) in corpus("lm") {
        if let Err(e) = lm_replay(&bytes) {
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
        }
    }
}

#[test]
fn lm_with_absurd_counts_is_a_config_error() {
    let mut absurd_tables = lm_header(1, 3);
    absurd_tables.extend(u32::MAX.to_le_bytes());
    absurd_tables.extend(u32::MAX.to_le_bytes());
    let mut huge_entries = lm_header(1, 3);
    huge_entries.extend(0u32.to_le_bytes());
    huge_entries.extend(0xffff_fff0u32.to_le_bytes());
    huge_entries.extend(0u32.to_le_bytes());
    let mut bad_starts = lm_header(1, 3);
    bad_starts.extend(1u32.to_le_bytes());
    bad_starts.extend(1u32.to_le_bytes());
    bad_starts.extend(0u32.to_le_bytes()); // key
    bad_starts.extend(0f32.to_le_bytes()); // backoff
    bad_starts.extend(7u32.to_le_bytes()); // starts: 7, 1
    bad_starts.extend(1u32.to_le_bytes());
    bad_starts.push(0);
    bad_starts.extend(0f32.to_le_bytes());
    for (what, bytes) in [
        ("u32::MAX contexts and entries", absurd_tables),
        ("4 G entries", huge_entries),
        ("starts out of range", bad_starts),
        ("order 0", lm_header(0, 3)),
        ("order 4 G", lm_header(u32::MAX, 3)),
        ("4 G symbols", lm_header(3, u32::MAX)),
        ("1 symbol", lm_header(3, 1)),
        (
            "half the bundled LM",
            BUNDLED_LM[..BUNDLED_LM.len() / 2].to_vec(),
        ),
    ] {
        let e = lm_replay(&bytes).expect_err(what);
        assert_eq!(e.exit_code(), 2, "{what}: {e}");
    }
}

// --- resample -------------------------------------------------------------------

/// The `resample` target's path: convert `n` samples in odd chunks, finish;
/// the output samples it gave.
fn resample_replay(rate_in: u32, rate_out: u32, n: usize) -> hark::error::Result<u64> {
    let mut rs = ToModelRate::new(rate_in, rate_out)?;
    let samples: Vec<f32> = (0..n).map(|i| ((i % 17) as f32 - 8.0) / 10.0).collect();
    let mut out = 0u64;
    let mut sink = |b: &[f32]| {
        assert!(b.iter().all(|x| x.is_finite()));
        out += b.len() as u64;
        Ok(())
    };
    for chunk in samples.chunks(13) {
        rs.process(chunk, &mut sink)?;
    }
    rs.finish(&mut sink)?;
    Ok(out)
}

#[test]
fn resample_fuzz_inputs_convert_or_fail_cleanly() {
    for (name, bytes) in corpus("resample") {
        let Some((head, _)) = bytes.split_first_chunk::<8>() else {
            continue;
        };
        let rate_in = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) % 1_000_000 + 1;
        let w = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let rate_out = match w & 3 {
            0 | 1 => 16_000,
            2 => [8_000, 22_050, 44_100, 48_000][(w >> 2 & 3) as usize],
            _ => (w >> 2) % 1_000_000 + 1,
        };
        if let Err(e) = resample_replay(rate_in, rate_out, 5_000) {
            assert_eq!(e.exit_code(), 2, "{name}: {e}");
        }
    }
}

#[test]
fn resample_odd_rates_convert_every_sample_or_are_refused() {
    for (rate_in, rate_out) in [
        (4_001, 16_000),
        (44_099, 16_000),
        (767_999, 16_000),
        (16_000, 48_000),
    ] {
        let n = 3_001;
        let got = resample_replay(rate_in, rate_out, n).expect("supported rate");
        assert_eq!(
            got,
            n as u64 * rate_out as u64 / rate_in as u64,
            "{rate_in} -> {rate_out}"
        );
    }
    for (rate_in, rate_out) in [
        (1, 16_000),
        (3_999, 16_000),
        (1_000_000, 16_000),
        (16_000, 0),
        (16_000, u32::MAX),
    ] {
        let e = resample_replay(rate_in, rate_out, 100).expect_err("refused rate");
        assert_eq!(e.exit_code(), 2, "{rate_in} -> {rate_out}: {e}");
    }
}
