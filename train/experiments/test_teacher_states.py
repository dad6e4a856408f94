"""teacher_states.py writes Whisper tiny.en's pooled encoder states for a
corpus (resumably), and train.py --distill trains on them beside CTC, resumes with its
mapping, and refuses a states file made for another corpus."""

import json
import pathlib
import sys

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import teacher_states as TS  # noqa: E402
import whisper_encoder as WE  # noqa: E402
from test_train import _tiny_corpus  # noqa: E402

SPEECH = pathlib.Path("/usr/share/sounds/alsa/Front_Center.wav")


@pytest.fixture(scope="module")
def encoder():
    return WE.load_bundled_encoder()


@pytest.mark.skipif(not SPEECH.exists(), reason="alsa-utils' sounds are not installed")
def test_states_are_the_encoder_output_averaged_in_runs(encoder):
    import soundfile as sf

    wave = sf.read(SPEECH, dtype="float32")[0]
    with torch.no_grad():
        full = encoder(WE.log_mel(wave, padding=WE.HOP)[None])[0].numpy()
    got = TS.pooled_states(encoder, wave, 4)
    assert got.shape == (-(-len(full) // 4), full.shape[1])
    for j in range(len(got)):
        np.testing.assert_allclose(got[j], full[4 * j : 4 * j + 4].mean(0), atol=1e-5)
    assert len(full) % 4, "the last run should be a short one here, to check its mean"


def test_distillation_trains_resumes_and_checks_the_clip_count(tmp_path, monkeypatch, capsys):
    import train as T

    corpus, run = _tiny_corpus(tmp_path / "corpus"), tmp_path / "run"
    states = tmp_path / "states.npz"
    TS.main(["--corpus", str(corpus), "--out", str(states), "--threads", "1", "--save-every", "4"])
    z = np.load(states)
    assert len(z["offsets"]) == 7 and z["states"].shape[1] == 384 and z["states"].dtype == np.float16
    assert not (tmp_path / "states.npz.part.npz").exists()
    # each clip's frames: 80 ms of audio each, as the model's blocks see them
    seconds = np.array([(8000 + 1600 * i) / 16000 for i in range(6)])
    assert np.all(np.abs(np.diff(z["offsets"]) - seconds / 0.08) <= 1)
    # a run stopped after 4 clips continues from its part file and writes the same states
    again = tmp_path / "again.npz"
    np.savez(tmp_path / "again.npz.part.npz", states=z["states"][: z["offsets"][4]], offsets=z["offsets"][:5])
    TS.main(["--corpus", str(corpus), "--out", str(again), "--threads", "1"])
    assert "resuming after 4 clips" in capsys.readouterr().out
    z2 = np.load(again)
    assert np.array_equal(z2["offsets"], z["offsets"]) and np.array_equal(z2["states"], z["states"])

    args = ["train.py", "--corpus", str(corpus), "--run", str(run), "--d-model", "32", "--layers", "3",
            "--warmup", "1", "--eval-every", "2", "--threads", "1", "--tempo", "0.1", "--distill", str(states)]
    monkeypatch.setattr(sys, "argv", args + ["--steps", "2"])
    T.main()
    ck = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert ck["distill_proj"]["weight"].shape == (384, 32)
    monkeypatch.setattr(sys, "argv", args + ["--steps", "4"])
    T.main()
    log = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    assert any(x["msg"] == "resumed at step 2" for x in log)
    setup = [x for x in log if x["msg"] == "distill"]
    assert setup and setup[-1]["layer"] == 2 and setup[-1]["dims"] == 384
    ck2 = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    assert ck2["step"] == 4 and not torch.equal(ck2["distill_proj"]["weight"], ck["distill_proj"]["weight"])

    short = tmp_path / "short.npz"
    np.savez(short, states=z["states"], offsets=z["offsets"][:-1], mean=z["mean"], std=z["std"], pool=z["pool"])
    monkeypatch.setattr(sys, "argv", args[:-1] + [str(short), "--steps", "6", "--run", str(tmp_path / "run2")])
    with pytest.raises(SystemExit, match="states for 5 clips, the training split has 6"):
        T.main()
    # 80 ms states do not fit a model whose blocks run at 40 ms, nor a block it lacks
    monkeypatch.setattr(sys, "argv", args + ["--steps", "6", "--run", str(tmp_path / "run3"), "--downsample", "1"])
    with pytest.raises(SystemExit, match="states of 80 ms, the model's blocks run at 40 ms"):
        T.main()
    monkeypatch.setattr(sys, "argv", args + ["--steps", "6", "--run", str(tmp_path / "run4"), "--distill-layer", "4"])
    with pytest.raises(SystemExit, match="the model has blocks 1 to 3"):
        T.main()


def test_distill_loss_pairs_each_frame_with_the_teacher_one_step_earlier():
    import train as T

    pred = torch.zeros(1, 5, 2)
    goal = np.arange(8, dtype=np.float32).reshape(4, 2)  # 4 teacher frames
    pred[0, 1:5] = torch.from_numpy(goal)  # frame j holds teacher frame j - 1
    assert T.distill_loss(pred, [goal], 1, "cpu").item() == 0.0
    assert T.distill_loss(pred, [goal], 0, "cpu").item() > 0.0
