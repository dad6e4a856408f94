"""The converted Whisper student (train/experiments/student.py): its causal conv front end
reproduces the pretrained encoder's exactly; its ONNX export run chunk by
chunk equals the whole-utterance PyTorch forward, with float32 and float16
weight storage; its state keeps its size however long the stream."""

import pathlib
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import whisper_encoder as WE  # noqa: E402
from evaluate import Recognizer, pad_to_chunks  # noqa: E402
import student  # noqa: E402
from export import export, load_checkpoint  # noqa: E402
from student import StudentConfig, WhisperStudent, distill_loss  # noqa: E402
from test_export import REQUIRED_KEYS, metadata, speechlike_feats  # noqa: E402


def small_student(seed=0, **kw):
    torch.manual_seed(seed)
    m = WhisperStudent(StudentConfig(width=64, layers=2, window=5, **kw))
    with torch.no_grad():
        for p in m.parameters():  # random but not tiny, so every path matters
            p.uniform_(-0.3, 0.3)
    return m.eval()


def speechlike_wave(seconds, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    return (0.1 * rng.standard_normal(n) * np.sin(np.linspace(0, 30, n)) ** 2).astype(np.float32)


def test_causal_front_end_reproduces_whisper_convolutions():
    teacher = WE.load_bundled_encoder()
    student = WhisperStudent(StudentConfig())
    student.init_from_teacher(teacher)
    mel = WE.log_mel(speechlike_wave(2.0))  # [80, F]
    f = mel.shape[1]
    with torch.no_grad():
        ref = torch.nn.functional.gelu(teacher.conv2(torch.nn.functional.gelu(teacher.conv1(mel[None]))))
        # the student's frame i is Whisper's frame i + 1; its first state
        # frames are Whisper's left zero padding and frame 0
        a = mel[None, :, 1 : 1 + 2 * ((f - 1) // 2)]
        st1 = torch.stack([torch.zeros(80), mel[:, 0]], dim=1)[None]
        out, _, _ = student.front(a, st1, torch.zeros(1, 384, 1))
    n = out.shape[2] - 1  # the teacher's last frame sees its right padding
    assert torch.max(torch.abs(out[..., :n] - ref[..., :n])) < 1e-4


# (feature frames per step, downsample, WSM summary chunk in context frames):
# with chunk 4 at ds=2 a chunk is 16 feature frames, and a step of 32 holds two
# and kernel: the depthwise conv before the local branch (0: none)
# and head: the CTC head's hidden units (0: linear)
@pytest.mark.parametrize("chunk,ds,wsm_chunk,kernel,head",
                         [(8, 2, 0, 0, 0), (32, 2, 0, 0, 0), (16, 1, 0, 0, 0), (16, 2, 4, 0, 0), (32, 2, 4, 0, 0),
                          (8, 2, 0, 5, 0), (16, 1, 0, 3, 0), (32, 2, 4, 5, 0), (16, 2, 0, 5, 32)])
def test_streaming_onnx_equals_whole_utterance_torch(tmp_path, chunk, ds, wsm_chunk, kernel, head):
    model = small_student(downsample=ds, chunk=wsm_chunk, conv_kernel=kernel, head_hidden=head)
    path = tmp_path / "s.onnx"
    export(model, path, chunk_frames=chunk, name="test-student")
    feats = speechlike_feats(203)
    streamed = Recognizer(path).log_probs(feats)
    with torch.no_grad():
        whole = model(torch.from_numpy(pad_to_chunks(feats, chunk))[None])[0][0].numpy()
    assert streamed.shape == whole.shape == (pad_to_chunks(feats, chunk).shape[0] // (2 * ds), 29)
    assert np.max(np.abs(streamed - whole)) < 1e-3
    meta = metadata(path)
    assert not [k for k in REQUIRED_KEYS if k not in meta]
    assert meta["hark.subsampling"] == str(2 * ds)


def test_chunked_summaries_see_their_chunk_and_nothing_after_it():
    model = small_student(downsample=2, chunk=4)
    x = torch.from_numpy(speechlike_feats(64))[None]
    y = x.clone()
    y[:, 40:] += 1.0  # changes feature frames 40.. = output frames 10.. (chunk 2 starts at 8)
    with torch.no_grad():
        a, b = model(x)[0][0], model(y)[0][0]
    changed = (a - b).abs().amax(1) > 1e-6
    assert not changed[:8].any()  # chunks 0 and 1 do not see chunk 2
    assert changed[8:10].all()  # frames 8, 9 see the change at 10 in their chunk
    causal = small_student(downsample=2)
    with torch.no_grad():
        a, b = causal(x)[0][0], causal(y)[0][0]
    assert not ((a - b).abs().amax(1) > 1e-6)[:10].any()


def test_fp16_storage_halves_the_file_and_keeps_the_output(tmp_path):
    model = WhisperStudent(StudentConfig(width=128, layers=2, window=5)).eval()
    export(model, tmp_path / "f32.onnx", chunk_frames=32, name="f32")
    export(model, tmp_path / "f16.onnx", chunk_frames=32, name="f16", fp16=True)
    s32, s16 = (tmp_path / "f32.onnx").stat().st_size, (tmp_path / "f16.onnx").stat().st_size
    assert s16 < 0.6 * s32
    feats = speechlike_feats(150)
    a = Recognizer(tmp_path / "f32.onnx").log_probs(feats)
    b = Recognizer(tmp_path / "f16.onnx").log_probs(feats)
    assert np.max(np.abs(a - b)) < 0.05
    assert (a.argmax(1) == b.argmax(1)).mean() > 0.95


def test_a_checkpoint_is_exported_by_student_py_export_not_export_py(tmp_path):
    model = small_student(downsample=2)
    ckpt = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "config": asdict(model.cfg), "training": "a test"}, ckpt)
    with pytest.raises(SystemExit, match="student.py export"):
        load_checkpoint(ckpt)  # the pipeline's export.py does not import the experiment
    out = tmp_path / "s.onnx"
    student.main(["export", "--ckpt", str(ckpt), "--out", str(out), "--chunk-frames", "16", "--name", "t"])
    meta = metadata(out)
    assert meta["hark.model_name"] == "t" and meta["hark.training"] == "a test"
    feats = speechlike_feats(64)
    with torch.no_grad():
        whole = model(torch.from_numpy(pad_to_chunks(feats, 16))[None])[0][0].numpy()
    assert np.max(np.abs(Recognizer(out).log_probs(feats) - whole)) < 1e-3


@pytest.mark.parametrize("kernel", [0, 5])
def test_state_keeps_its_size_over_ten_minutes(kernel):
    model = small_student(conv_kernel=kernel)
    chunk = 32
    state = model.initial_state(1)
    shapes = [tuple(s.shape) for s in state]
    base = torch.from_numpy(speechlike_feats(chunk * 4))
    steps = 10 * 60 * 100 // chunk
    with torch.no_grad():
        for i in range(steps):
            j = (i % 4) * chunk
            out, *state = model(base[None, j : j + chunk], *state)
    assert [tuple(s.shape) for s in state] == shapes
    assert all(torch.isfinite(s).all() for s in state) and torch.isfinite(out).all()


def test_distillation_loss_is_zero_for_the_teacher_itself():
    t = [torch.randn(2, 20, 8) for _ in range(2)]
    pooled = [x.reshape(2, 10, 2, 8).mean(2) for x in t]
    shifted = [torch.nn.functional.pad(p, (0, 0, 1, 0))[:, :10] for p in pooled]
    lens = torch.tensor([10, 7])
    assert float(distill_loss(shifted, t, lens, ds=2)) < 1e-10
    assert float(distill_loss([torch.zeros_like(s) for s in shifted], t, lens, ds=2)) > 0.5


def test_conv_branch_starts_as_the_identity():
    """A converted layer with the depthwise conv computes what it computed without it."""
    teacher = WE.load_bundled_encoder()
    plain, conv = WhisperStudent(StudentConfig()), WhisperStudent(StudentConfig(conv_kernel=5))
    plain.init_from_teacher(teacher)
    missing, unexpected = conv.load_state_dict(plain.state_dict(), strict=False)  # the adapter and head too
    assert not unexpected and missing and all(".dwconv." in k for k in missing)
    feats = torch.from_numpy(speechlike_feats(96))[None]
    with torch.no_grad():
        a, b = plain(feats)[0], conv(feats)[0]
    assert torch.max(torch.abs(a - b)) < 1e-5


@pytest.mark.parametrize("kernel", [1, -2])
def test_a_one_frame_conv_is_refused(kernel):
    with pytest.raises(ValueError):
        WhisperStudent(StudentConfig(width=64, layers=1, conv_kernel=kernel))


def test_head_only_ctc_reaches_only_the_head_and_final_norm():
    model = small_student(head_hidden=16)
    x = torch.from_numpy(speechlike_feats(64))[None]

    def reached(head_only):
        model.zero_grad(set_to_none=True)
        lp = model(x, head_only=head_only)[0]
        lp.sum().backward()
        return lp.detach(), {n.split(".")[0] for n, p in model.named_parameters()
                             if p.grad is not None and p.grad.abs().sum() > 0}

    head_lp, head_reached = reached(True)
    lp, all_reached = reached(False)
    assert torch.allclose(head_lp, lp)  # the same values (eval mode: no dropout)
    assert head_reached == {"head", "norm"}
    assert "mixers" in all_reached  # without head_only the loss reaches the layers
