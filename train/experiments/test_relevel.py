"""train/experiments/relevel.py: a corpus split copied at another level."""

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

import relevel


def test_relevel_scales_and_clips():
    w = np.array([0.5, -0.25, 0.0], dtype=np.float32)
    assert np.allclose(relevel.relevel(w, -20.0), w / 10, atol=1e-6)
    assert np.allclose(relevel.relevel(w, 20.0), [1.0, -1.0, 0.0])


def test_copy_keeps_the_manifest_and_scales_every_clip(tmp_path):
    src = tmp_path / "c"
    (src / "dev" / "wav").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        sf.write(src / "dev" / "wav" / f"{i}.wav", 0.1 * rng.standard_normal(1600), 16000, subtype="PCM_16")
        rows.append({"id": str(i), "path": f"dev/wav/{i}.wav", "text": f"clip {i}"})
    (src / "dev" / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "quiet"
    subprocess.run([sys.executable, relevel.__file__, "--corpus", str(src), "--gain-db", "-20", "--out", str(out)],
                   check=True, capture_output=True)
    copied = [json.loads(x) for x in (out / "dev" / "manifest.jsonl").read_text().splitlines()]
    assert [c["text"] for c in copied] == ["clip 0", "clip 1"]
    for r, c in zip(rows, copied):
        a, _ = sf.read(src / r["path"])
        b, sr = sf.read(out / c["path"])
        assert sr == 16000 and len(a) == len(b)
        assert abs(20 * np.log10(np.sqrt((b**2).mean()) / np.sqrt((a**2).mean())) + 20) < 0.1


def test_levels_of_a_half_silent_tone():
    t = np.arange(16000) / 16000
    wave = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wave[8000:] = 0.0
    active, peak = relevel.levels(wave)
    assert abs(peak - 20 * np.log10(0.5)) < 0.01
    assert abs(active - 10 * np.log10(0.125)) < 0.1  # the loudest half: the tone, mean power 0.5**2 / 2
