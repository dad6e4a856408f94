"""Real-speech import, pseudo-label decisions and the training mix: the game
archive readers on files built to their documented layout, the split and
band-limit draws, a source converted end to end through sox, the teacher
keep rules and packing, and mix.py's choice of clips."""

import json
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import mix  # noqa: E402
import pseudolabel as pl  # noqa: E402
import realdata as rd  # noqa: E402


def queen_1c(path, entries):
    """A queen.1c resource file holding these (name, bytes) entries, laid
    out as DATA-SOURCES.md documents the game's."""
    head = b"QTBL" + b"CEM10\0" + b"\0\0" + b"\1" + struct.pack(">H", len(entries))
    body_at = len(head) + 21 * len(entries)
    table, body = b"", b""
    for name, blob in entries:
        table += name.ljust(12, b"\0") + b"\1" + struct.pack(">II", body_at + len(body), len(blob))
        body += blob
    path.write_bytes(head + table + body)
    return path


def test_queen_table_is_read_as_documented(tmp_path):
    path = queen_1c(tmp_path / "queen.1c", [(b"00001J1.SB", b"ID3mp3-one"), (b"ANDY.DOG", b"text")])
    data, entries = rd.queen_entries(path)
    assert [e[0] for e in entries] == ["00001J1.SB", "ANDY.DOG"]
    name, off, size = entries[0]
    assert data[off:off + size] == b"ID3mp3-one"


def test_queen_refuses_another_file(tmp_path):
    (tmp_path / "x").write_bytes(b"RIFF....")
    with pytest.raises(SystemExit, match="QTBL"):
        rd.queen_entries(tmp_path / "x")


def test_queen_without_mp3_in_sox_says_what_to_install(tmp_path, monkeypatch):
    path = queen_1c(tmp_path / "queen.1c", [(b"00001J1.SB", b"ID3mp3-one")])
    monkeypatch.setattr(rd, "sox_formats", lambda: {"wav", "flac"})
    with pytest.raises(SystemExit, match="libsox-fmt-mp3"):
        rd.queen(path, tmp_path)


def test_sox_formats_lists_wav():
    assert "wav" in rd.sox_formats()


def _sky_files(tmp_path, clips):
    """sky.dnr/sky.dsk with the given (file number, pcm bytes, offset in 16-byte units?) entries."""
    dsk, dnr = b"", struct.pack("<I", len(clips))
    for num, pcm, units in clips:
        while units and len(dsk) % 16:
            dsk += b"\0"
        off = len(dsk)
        blob = b"H" * 22 + pcm
        dsk += blob
        o = (off >> 4) | (1 << 23) if units else off
        dnr += struct.pack("<H", num) + o.to_bytes(3, "little") + len(blob).to_bytes(3, "little")
    (tmp_path / "sky.dnr").write_bytes(dnr)
    (tmp_path / "sky.dsk").write_bytes(dsk)


def test_sky_speech_entries_only_and_both_offset_kinds(tmp_path):
    tone = (128 + 60 * np.sin(np.arange(11025) / 5)).astype(np.uint8).tobytes()
    _sky_files(tmp_path, [(50001, tone, False), (60000, tone, False), (50002, tone, True), (50003, b"\x80" * 100, False)])
    clips = rd.sky(tmp_path, tmp_path)
    assert [c["id"] for c in clips] == ["50001", "50002"]  # not a non-speech file, not a 100-sample blip
    for c in clips:
        assert pathlib.Path(c["src"]).read_bytes() == tone  # the 22-byte header is cut


def test_wakeword_keeps_per_phrase_training_clips_and_every_test_clip(tmp_path):
    for phrase in ("hey a", "b"):
        (tmp_path / "audio" / phrase).mkdir(parents=True)
        for i in range(40):
            (tmp_path / "audio" / phrase / f"{i}.wav").write_bytes(b"")
    every = rd.wakeword(tmp_path, per_phrase=1000)
    test = [c for c in every if c["split"] == "test"]
    for cap in (5, 12):
        clips = rd.wakeword(tmp_path, per_phrase=cap)
        assert [c for c in clips if c["split"] == "test"] == test
        for text in ("hey a", "b"):
            assert sum(c["split"] == "train" and c["text"] == text for c in clips) == cap


def test_band_draw_is_stable_and_only_for_wideband_training_clips():
    bands = [rd.band_for(f"clip{i}", "train", False, 1234) for i in range(1000)]
    assert bands == [rd.band_for(f"clip{i}", "train", False, 1234) for i in range(1000)]
    limited = [b for b in bands if b.startswith("limited:")]
    assert 0.25 < len(limited) / len(bands) < 0.35
    assert all(4000 <= int(b.split(":")[1]) <= 5500 for b in limited)
    assert rd.band_for("clip1", "test", False, 1234) == "wide"
    assert rd.band_for("clip1", "train", True, 1234) == "narrow"


def test_a_source_is_converted_to_16k_mono_with_its_manifest(tmp_path):
    rec = tmp_path / "src" / "recordings"
    rec.mkdir(parents=True)
    t = np.arange(8000) / 8000
    for name in ("3_theo_0", "7_jackson_1"):
        sf.write(rec / f"{name}.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000, subtype="PCM_16")
    out = tmp_path / "real"
    rd.write_source(out, "fsdd", rd.fsdd(tmp_path / "src"), jobs=1, seed=1)
    rows = [json.loads(x) for x in (out / "fsdd" / "manifest.jsonl").read_text().splitlines()]
    assert [(r["text"], r["split"], r["speaker"], r["band"]) for r in rows] == [
        ("three", "test", "fsdd-theo", "narrow"), ("seven", "train", "fsdd-jackson", "narrow")]
    for r in rows:
        wave, sr = sf.read(out / r["path"])
        assert sr == 16000 and wave.ndim == 1 and abs(r["seconds"] - 1.0) < 0.01
        assert r["licence"] == "CC BY-SA 4.0"


def test_band_limit_removes_what_is_above_the_cutoff(tmp_path):
    t = np.arange(16000) / 16000
    wave = (0.2 * np.sin(2 * np.pi * 1000 * t) + 0.2 * np.sin(2 * np.pi * 7000 * t)).astype(np.float32)
    sf.write(tmp_path / "in.wav", wave, 16000)
    rd.convert((tmp_path / "in.wav", [], tmp_path / "out.wav", "limited:4500"))
    out, _ = sf.read(tmp_path / "out.wav")
    spec = np.abs(np.fft.rfft(out))
    assert spec[7000] < 0.01 * spec[1000]


def test_teacher_keep_rules():
    human = {"label": "human", "text": "jack has got some lemon", "teacher": "jack has got some lemons"}
    assert pl.decide(human, 0.25, 0.6)[0] and human["agreement"] == 0.8
    assert not pl.decide({**human, "teacher": "drunken draws a horse"}, 0.25, 0.6)[0]
    slots = {"label": "slots", "slots": {"size": "twelve ounce", "drink": "iced coffee"}, "text": None,
             "teacher": "can i get a twelve ounce iced coffee please"}
    assert pl.decide(slots, 0.25, 0.6)[0] and slots["text"] == slots["teacher"]
    missing = {**slots, "text": None, "teacher": "can i get a twelve ounce coffee"}
    assert not pl.decide(missing, 0.25, 0.6)[0] and missing["text"] is None
    none = {"label": "none", "text": None, "teacher": "where am i", "teacher_prob": 0.8}
    assert pl.decide(none, 0.25, 0.6)[0] and none["text"] == "where am i"
    assert not pl.decide({**none, "text": None, "teacher_prob": 0.3}, 0.25, 0.6)[0]
    assert not pl.decide({**none, "text": None, "teacher": ""}, 0.25, 0.6)[0]


def test_packing_keeps_order_and_the_window_length():
    items = [{"seconds": s} for s in (5, 5, 5, 12, 30, 2)]
    windows = pl.pack(items, 24.0, 1.0)
    assert [len(w) for w in windows] == [3, 1, 1, 1]  # 5+1+5+1+5 = 17; +1+12 > 24; 30 alone; 2
    assert [it for w in windows for it in w] == items


def test_mix_takes_kept_real_clips_and_synthetic(tmp_path):
    synth, real = tmp_path / "corpus", tmp_path / "real"
    for split in ("train", "dev"):
        (synth / split).mkdir(parents=True)
        (synth / split / "manifest.jsonl").write_text(
            json.dumps({"path": f"{split}/a.wav", "text": "hello", "engine": "flite", "duration": 1.0}) + "\n")
    (real / "s2i").mkdir(parents=True)
    rows = [{"path": "s2i/wav/1.wav", "text": "a coffee", "split": "train", "source": "s2i", "keep": True,
             "seconds": 2.0, "licence": "Apache-2.0"},
            {"path": "s2i/wav/2.wav", "text": None, "split": "train", "source": "s2i", "keep": False, "seconds": 2.0},
            {"path": "s2i/wav/3.wav", "text": "no", "split": "train", "source": "s2i", "keep": False, "seconds": 2.0},
            {"path": "s2i/wav/4.wav", "text": "held", "split": "test", "source": "s2i", "seconds": 2.0}]
    (real / "s2i" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "mix"
    subprocess.run([sys.executable, str(HERE / "mix.py"), "--synthetic", str(synth), "--real", str(real),
                    "--out", str(out)], check=True, capture_output=True)
    train = [json.loads(x) for x in (out / "train" / "manifest.jsonl").read_text().splitlines()]
    assert [r["text"] for r in train] == ["hello", "a coffee"]
    assert all((out / r["path"]).resolve().parent.parent.name in ("corpus", "s2i", "real") for r in train)
    assert (out / train[1]["path"]).resolve() == (real / "s2i/wav/1.wav").resolve()
    assert json.loads((out / "mix.json").read_text())["train"]["s2i"]["clips"] == 1
    assert mix.usable(rows[0]) and not mix.usable(rows[2])
