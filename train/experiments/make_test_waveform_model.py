"""Write the small waveform-input model and reference outputs the Rust tests
run (tests/it/waveform.rs):

    .venv/bin/python train/experiments/make_test_waveform_model.py

A tiny randomly initialised wav2vec2 (built with transformers, nothing
downloaded) converted by train/experiments/ssl_convert.py (top layer -> WSM, the lower
layers windowed causal attention, downsampler 2) and exported with input kind
`waveform`; then 0.5 s of a speech-like signal and the log-probabilities
onnxruntime gives for it chunk by chunk from the initial state, as the
contract says (ssl_convert.onnx_log_probs). Untrained: its text is noise; the
Rust side checks that it computes the same numbers and streams the same way.
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
import ssl_convert as S  # noqa: E402

OUT = HERE.parent.parent / "tests" / "data" / "waveform"
# A conv stack of kernel/stride (10,8,4)/(5,4,4): 80 samples per conv frame,
# 160 per output frame with the downsampler; chunks of 8 output frames.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16, 16, 16), conv_kernel=(10, 8, 4), conv_stride=(5, 4, 4),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, feat_extract_norm="layer")
CHUNK_SAMPLES = 1280


def speechlike(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    tone = np.sin(2 * np.pi * (150 + 50 * np.sin(3 * t)) * t) + 0.3 * rng.standard_normal(n)
    return (0.2 * tone * np.sin(np.linspace(0, 9, n)) ** 2).astype(np.float32)


def main():
    import transformers

    torch.manual_seed(0)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        hf = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(**TINY)).eval()
        hf.save_pretrained(td)
        student, _, _ = S.build_student(pathlib.Path(td), replace_layers=1, downsample=2, attn_window=6,
                                        wsm_window=5)
    model = OUT / "tiny-wav2vec2-wsm.onnx"
    S.export(student, model, CHUNK_SAMPLES, name="tiny-wav2vec2-wsm-test",
             training="untrained: random tiny wav2vec2 (train/experiments/make_test_waveform_model.py), for tests only")
    # 0.5 s: not a whole number of chunks, so the zero-padded last chunk is covered.
    wave = np.round(speechlike(8000), 5).astype(np.float32)
    lp = S.onnx_log_probs(model, wave)
    ref = {"wave": [float(x) for x in wave], "log_probs": np.round(lp, 5).tolist()}
    (OUT / "reference.json").write_text(json.dumps(ref) + "\n")
    print(f"wrote {model} ({model.stat().st_size} bytes) and {OUT / 'reference.json'}: "
          f"{len(wave)} samples -> {lp.shape[0]} x {lp.shape[1]} log-probs")


if __name__ == "__main__":
    main()
