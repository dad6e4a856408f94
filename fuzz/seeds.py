#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora to fuzz/corpus/<target>/ (not
committed: scripts/fuzz.sh runs this when a corpus is missing). Small valid
and nearly valid inputs of each format, so libFuzzer starts past the magic
bytes: WAV headers of every encoding hark reads, the bundled model's
metadata, two tiny contract ONNX models (written here as raw protobuf, no
onnx package needed), a tiny character LM and prefixes of the bundled one."""
import json
import math
import pathlib
import struct
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"


def write(target, name, data):
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(bytes(data))


# --- WAV -------------------------------------------------------------------
def wav(tag, channels, rate, bits, data, extensible=False, extra=b"", data_len=None):
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 0xFFFE if extensible else tag, channels, rate,
                      rate * block, block, bits)
    if extensible:
        fmt += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", tag) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra
    chunks += b"data" + struct.pack("<I", len(data) if data_len is None else data_len) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


tone = [int(8000 * math.sin(i / 5)) for i in range(64)]
s16 = struct.pack(f"<{len(tone)}h", *tone)
wavs = {
    "s16-mono": wav(1, 1, 16000, 16, s16),
    "s16-stereo-44k": wav(1, 2, 44100, 16, s16),
    "u8": wav(1, 1, 8000, 8, bytes((t >> 8) + 128 for t in tone)),
    "s24": wav(1, 1, 48000, 24, b"".join(struct.pack("<i", t << 8)[:3] for t in tone)),
    "s32": wav(1, 1, 16000, 32, struct.pack(f"<{len(tone)}i", *(t << 16 for t in tone))),
    "f32": wav(3, 1, 16000, 32, struct.pack(f"<{len(tone)}f", *(t / 32768 for t in tone))),
    "f64": wav(3, 1, 16000, 64, struct.pack(f"<{len(tone)}d", *(t / 32768 for t in tone))),
    "alaw": wav(6, 1, 8000, 8, bytes(range(64))),
    "mulaw": wav(7, 1, 8000, 8, bytes(range(64))),
    "extensible-s16": wav(1, 2, 16000, 16, s16, extensible=True),
    "list-chunk": wav(1, 1, 16000, 16, s16, extra=b"LIST\x04\x00\x00\x00INFO"),
    "pipe-length": wav(1, 1, 16000, 16, s16, data_len=0xFFFFFFFF),
    "truncated": wav(1, 1, 16000, 16, s16)[:70],
}
for name, data in wavs.items():
    write("wav", name, data)
    # stdin_pcm: format/channels/rate/read-split bytes, then the stream
    write("stdin_pcm", "wav-" + name, b"\x01\x01\x00\x08" + data)
for i, ctl in enumerate([b"\x01\x01\x00\x00", b"\x0c\x02\x02\x09", b"\x06\x01\x01\x10",
                         b"\x0f\x08\x03\x21", b"\x0d\x01\x00\x18"]):
    write("stdin_pcm", f"raw-{i}", ctl + s16)
write("stdin_pcm", "flac", b"\x01\x01\x00\x00fLaC\x00\x00\x00\x22" + bytes(40))

# --- resampler: u32 input rate, u32 output-rate selector, sample bytes ---
for i, (rin, sel) in enumerate([(44099, 0), (7999, 2), (999_999, 0), (3, 0),
                                (16000, 3 | (48000 - 1) << 2), (22050, 2 | 1 << 2),
                                (768000, 0), (4000, 3 | (1 - 1) << 2)]):
    write("resample", f"rates-{i}", struct.pack("<II", rin - 1, sel) + s16[:40])

# --- model: contract metadata and tiny ONNX files --------------------------
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, value):
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def read_fields(b):
    i = 0
    while i < len(b):
        key, i = read_varint(b, i)
        f, t = key >> 3, key & 7
        if t == 0:
            v, i = read_varint(b, i)
        elif t == 2:
            n, i = read_varint(b, i)
            v, i = b[i:i + n], i + n
        elif t == 1:
            v, i = b[i:i + 8], i + 8
        else:
            v, i = b[i:i + 4], i + 4
        yield f, v


def read_varint(b, i):
    r = s = 0
    while True:
        x = b[i]
        i += 1
        r |= (x & 0x7F) << s
        s += 7
        if x < 0x80:
            return r, i


model = (ROOT / "models" / "hark-wsm-v4.onnx").read_bytes()
meta = {}
for f, v in read_fields(model):
    if f == 14:
        kv = dict(read_fields(v))
        meta[kv[1].decode()] = kv.get(2, b"").decode()


def value_info(name, dims):
    shape = b"".join(field(1, field(1, d)) for d in dims)
    tensor_type = field(1, 1) + field(2, shape)
    return field(1, name) + field(2, field(1, tensor_type))


def onnx(meta, inputs, outputs, nodes, inits):
    graph = b"".join(field(1, n) for n in nodes) + field(2, "g")
    graph += b"".join(field(5, t) for t in inits)
    graph += b"".join(field(11, value_info(*i)) for i in inputs)
    graph += b"".join(field(12, value_info(*o)) for o in outputs)
    m = field(1, 8) + field(8, field(1, "") + field(2, 13)) + field(7, graph)
    m += b"".join(field(14, field(1, k) + field(2, v)) for k, v in meta.items())
    return m


def node(op, ins, outs):
    return b"".join(field(1, i) for i in ins) + b"".join(field(2, o) for o in outs) + field(4, op)


def int64_tensor(name, values):
    return (b"".join(field(1, len(values)) for _ in [0]) + field(2, 7)
            + field(8, name) + field(9, struct.pack(f"<{len(values)}q", *values)))


common = {k: v for k, v in meta.items() if not k.startswith("hark.fbank.")}
wave_meta = dict(common, **{
    "hark.input_kind": "waveform", "hark.chunk_samples": "4",
    "hark.samples_per_output_frame": "4", "hark.states": "[]",
    "hark.tokens": json.dumps(["<blk>", " ", "a", "b"]), "hark.blank_id": "0"})
wave = onnx(wave_meta, [("audio", [1, 4])], [("log_probs", [1, 1, 4])],
            [node("Reshape", ["audio", "shape"], ["log_probs"])],
            [int64_tensor("shape", [1, 1, 4])])
fbank_meta = dict(meta, **{
    "hark.chunk_frames": "4", "hark.chunk_shift_frames": "4", "hark.subsampling": "4",
    "hark.fbank.num_bins": "2", "hark.tokens": json.dumps(["<blk>", " ", "a", "b", "c", "d", "e", "f"]),
    "hark.states": json.dumps([{"input": "s", "output": "s_out", "shape": [1, 3], "init": 0.0}])})
fb = onnx(fbank_meta, [("feats", [1, 4, 2]), ("s", [1, 3])],
          [("log_probs", [1, 1, 8]), ("s_out", [1, 3])],
          [node("Reshape", ["feats", "shape"], ["log_probs"]), node("Identity", ["s"], ["s_out"])],
          [int64_tensor("shape", [1, 1, 8])])
write("model", "onnx-waveform", b"\x01" + wave)
write("model", "onnx-fbank-state", b"\x01" + fb)
write("model", "onnx-bundled-head", b"\x01" + model[:4096])
write("model", "onnx-bundled-tail", b"\x01" + model[-4096:])
write("model", "meta-bundled", b"\x00")
write("model", "meta-bundled-full", b"\x02" + "\n".join(f"{k}={v}" for k, v in meta.items()).encode())
write("model", "meta-waveform", b"\x00" + "\n".join(f"{k}={v}" for k, v in wave_meta.items()).encode()
      + b"\nhark.fbank.num_bins")
write("model", "meta-fbank-odd", b"\x00hark.fbank.frame_length_samples=25\nhark.fbank.frame_shift_samples=10\n"
      b"hark.fbank.fft_size=32\nhark.fbank.num_bins=3\nhark.sample_rate_hz=8000\nhark.fbank.high_freq_hz=4000")

# --- character LM --------------------------------------------------------
def lm(symbols, tables, tuning=(0.5, 1.0, 8, 10.0)):
    out = bytearray(b"HARKCLM1") + struct.pack("<III", 1, len(tables), len(symbols))
    for s in symbols:
        out += struct.pack("<B", len(s.encode())) + s.encode()
    out += struct.pack("<ffIf", *tuning)
    for rows in tables:  # rows: [(key, backoff, [(sym, logp)])] sorted by key
        starts = [0]
        for r in rows:
            starts.append(starts[-1] + len(r[2]))
        out += struct.pack("<II", len(rows), starts[-1])
        out += b"".join(struct.pack("<I", r[0]) for r in rows)
        out += b"".join(struct.pack("<f", r[1]) for r in rows)
        out += b"".join(struct.pack("<I", s) for s in starts)
        out += bytes(s for r in rows for s, _ in r[2])
        out += b"".join(struct.pack("<f", lp) for r in rows for _, lp in r[2])
    return out


sym = ["a", "b", " ", "</s>"]
uni = [(0, 0.0, [(0, math.log(0.4)), (1, math.log(0.3)), (2, math.log(0.2)), (3, math.log(0.1))])]
bi = [(1, -0.5, [(1, -0.3)]), (2, -0.4, [(0, -0.7), (2, -1.0)]), (5, -0.2, [(0, -0.1)])]
tri = [(1 * 32 + 2, -0.3, [(2, -0.2)])]
write("lm", "order1", lm(sym, [uni]))
write("lm", "order2", lm(sym, [uni, bi]))
write("lm", "order3", lm(sym, [uni, bi, tri]))
bundled_lm = (ROOT / "models" / "hark-charlm7.bin").read_bytes()
write("lm", "bundled-head", bundled_lm[:2048])
