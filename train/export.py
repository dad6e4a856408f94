"""Export a trained checkpoint to one ONNX file that follows the hark model
contract (docs/model-contract.md): fixed chunk shape, explicit state tensors,
every runtime fact in metadata_props.

    python train/export.py --ckpt train/runs/wsm/best.pt --out models/hark-wsm-v21.onnx

With several --ckpt files (checkpoints of one run, or of runs that continue
one another: same architecture), their weights are averaged, parameter by
parameter, before export.
"""

import argparse
import inspect
import io
import json
import pathlib
import sys

import onnx
import torch

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import fbank as FB  # noqa: E402
from evalsets import SHIPPED_MODEL  # noqa: E402
from model import BLANK_ID, HarkModel, ModelConfig, count_params, macs_per_second  # noqa: E402

CONTRACT_VERSION = 1
OPSET = 13  # LayerNorm/GELU decompose into basic ops every engine has
# The TorchScript exporter: torch 2's default is the dynamo one (whose graphs
# differ); torch 1.13 (Debian 12's python3-torch) has only this one and no
# `dynamo` argument.
TORCHSCRIPT_EXPORTER = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


class _Step(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, feats, *state):
        return self.model(feats, *state)


def model_macs(model) -> int:
    own = getattr(model, "macs_per_second", None)
    return own() if callable(own) else macs_per_second(model.cfg)


def contract_metadata(model, name: str, training: str, input_meta: dict) -> dict:
    """Every contract key (docs/model-contract.md) for `model`: the keys all
    input kinds share, plus `input_meta`, the input kind's own keys."""
    states = [
        {"input": n, "output": n + "_out", "shape": [1, *shape], "init": init}
        for n, shape, init in model.state_specs()
    ]
    return {
        "hark.contract_version": str(CONTRACT_VERSION),
        "hark.model_name": name,
        "hark.arch": model.cfg.arch,
        "hark.num_params": str(count_params(model)),
        "hark.macs_per_second": str(model_macs(model)),
        **input_meta,
        "hark.token_kind": "char",
        "hark.tokens": json.dumps(model.cfg.vocab),
        "hark.blank_id": str(BLANK_ID),
        "hark.states": json.dumps(states),
        "hark.reset_on_endpoint": "true",
        "hark.training": training,
    }


def fbank_metadata(model: HarkModel, chunk_frames: int) -> dict:
    """The keys of an fbank model that steps over `chunk_frames` frames."""
    return {
        **FB.FBANK_METADATA,
        "hark.chunk_frames": str(chunk_frames),
        "hark.chunk_shift_frames": str(chunk_frames),
        "hark.left_context_frames": "0",
        "hark.subsampling": str(model.cfg.subsampling),
    }


def store_fp16(proto, min_elements: int = 1024):
    """Store large float weights as float16, each followed by a Cast back to
    float32: half the file, the same float32 arithmetic at run time (the
    engine folds the casts at load)."""
    from onnx import helper, numpy_helper

    graph = proto.graph
    casts = []
    for init in graph.initializer:
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        w = numpy_helper.to_array(init)
        if w.size < min_elements:
            continue
        name = init.name
        init.CopyFrom(numpy_helper.from_array(w.astype("float16"), name + "_f16"))
        casts.append(helper.make_node("Cast", [name + "_f16"], [name], to=onnx.TensorProto.FLOAT))
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return proto


def export(model, out_path, chunk_frames: int = 32, name: str = "hark-wsm", training: str = "",
           fp16: bool = False):
    cfg = model.cfg
    if cfg.arch not in ("wsm", "wsm-whisper"):
        raise SystemExit("only the WSM architectures have a streaming export in contract v1")
    if chunk_frames % cfg.chunk_multiple:
        raise SystemExit(f"chunk_frames must be a multiple of {cfg.chunk_multiple}")
    model = model.eval()
    feats = torch.full((1, chunk_frames, cfg.num_bins), FB.PAD_FRAME_VALUE)
    return write_step(model, "feats", feats, contract_metadata(model, name, training, fbank_metadata(model, chunk_frames)), out_path,
                      fp16)


def write_step(model, input_name: str, example, metadata: dict, out_path, fp16: bool = False):
    """Export one streaming step of `model` (input `input_name` like
    `example`, then its state; outputs log_probs and each state's `_out`)
    with the contract `metadata`, check it and save it (unless `out_path`
    is None)."""
    specs = model.state_specs()
    buf = io.BytesIO()
    torch.onnx.export(
        _Step(model).eval(),
        (example, *model.initial_state(1)),
        buf,
        input_names=[input_name] + [n for n, _, _ in specs],
        output_names=["log_probs"] + [n + "_out" for n, _, _ in specs],
        opset_version=OPSET,
        do_constant_folding=True,
        **TORCHSCRIPT_EXPORTER,
    )
    proto = onnx.load_from_string(buf.getvalue())
    for k, v in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    if fp16:
        proto = store_fp16(proto)
    onnx.checker.check_model(proto)
    if out_path is not None:
        pathlib.Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        onnx.save(proto, str(out_path))
    return proto


def weights_from_onnx(model, onnx_path) -> int:
    """Load into `model` the weights of an ONNX file exported from the same
    architecture (as write_step writes it, float16 storage or not), e.g. to
    fine-tune a shipped model whose checkpoint is gone. The exporter names
    most initializers after their parameters, but stores each Linear weight
    transposed under an anonymous name, and folds tensors of equal value into
    one (reached through an Identity). So each tensor is found through the
    node that uses it: a copy of
    `model` whose tensors all differ is exported once, each of its
    initializers is matched to a tensor by name or value, and the file's
    node of the same name (the exporter names nodes after modules) gives the
    file's value. Returns the number of tensors loaded."""
    import copy

    from onnx import numpy_helper

    theirs = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in theirs.metadata_props}
    chunk = int(meta.get("hark.chunk_frames", 32))
    probe = copy.deepcopy(model).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for t in probe.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
    own = write_step(probe, "feats", torch.full((1, chunk, model.cfg.num_bins), FB.PAD_FRAME_VALUE), {}, None)
    params = {("model." + k): v for k, v in probe.state_dict().items()}
    uses = {}  # initializer name -> (node name, input index) of its first use
    for node in own.graph.node:
        for i, x in enumerate(node.input):
            uses.setdefault(x, (node.name, i))
    plan = []  # (tensor name, transposed, node name, input index)
    for init in own.graph.initializer:
        w = torch.from_numpy(numpy_helper.to_array(init).copy())
        if init.name in params:
            plan.append((init.name, False, *uses[init.name]))
            continue
        found = [k for k, v in params.items() if v.dim() == 2 and v.t().shape == w.shape and torch.equal(v.t(), w)]
        if len(found) != 1:
            raise ValueError(f"cannot tell which parameter the initializer {init.name} {list(w.shape)} is")
        plan.append((found[0], True, *uses[init.name]))
    missing = {k for k, v in params.items() if v.is_floating_point()} - {k for k, *_ in plan}
    if missing:
        raise ValueError(f"the export of this architecture does not carry {sorted(missing)}")

    inits = {i.name: i for i in theirs.graph.initializer}
    nodes = {n.name: n for n in theirs.graph.node}
    made_by = {out: n for n in theirs.graph.node for out in n.output}
    state, used = model.state_dict(), set()
    for name, transposed, node_name, index in plan:
        node = nodes.get(node_name)
        x = node.input[index] if node is not None and index < len(node.input) else None
        # float16 storage puts a Cast between a weight and its node; folded duplicates, an Identity
        while x not in inits and x in made_by and made_by[x].op_type in ("Cast", "Identity"):
            x = made_by[x].input[0]
        if x not in inits:
            raise ValueError(f"{onnx_path}: no weight where this architecture has {name} (node {node_name})")
        used.add(x)
        w = torch.from_numpy(numpy_helper.to_array(inits[x]).astype("float32"))
        w = w.t() if transposed else w
        key = name[len("model."):]
        if w.shape != state[key].shape:
            raise ValueError(f"{onnx_path}: {x} has shape {list(w.shape)}, {key} is {list(state[key].shape)}")
        state[key] = w.contiguous()
    if set(inits) - used:
        raise ValueError(f"{onnx_path}: weights this architecture does not have: {sorted(set(inits) - used)[:5]}")
    model.load_state_dict(state)
    return len(plan)


def load_checkpoint(path):
    """The HarkModel of a train.py checkpoint. The experiments' checkpoints
    (other architectures) are exported by their own scripts, which call
    export(): this module never imports an experiment (train/test_layout.py)."""
    return read_checkpoint(path)[0]


def read_checkpoint(path):
    """(the HarkModel of a train.py checkpoint, the line saying how it was
    trained), from one read of the file."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    if ck["config"].get("arch") == "wsm-whisper":
        raise SystemExit(f"{path} is a Whisper student checkpoint: export it with "
                         f"python train/experiments/student.py export --ckpt {path} --out OUT.onnx")
    # checkpoints from before the per-block conv have no conv_kernel: plain blocks
    cfg = ModelConfig(**{"conv_kernel": 0, **ck["config"]})
    model = HarkModel(cfg)
    model.load_state_dict(ck["model"])
    return model.eval(), ck.get("training", "")


def average_checkpoints(paths):
    """The HarkModel whose every floating-point weight is the mean of those
    of the checkpoints (which must share one architecture), and a line saying
    how it was made."""
    models, trainings = zip(*(read_checkpoint(p) for p in paths))
    cfgs = {json.dumps(vars(m.cfg), sort_keys=True) for m in models}
    if len(cfgs) != 1:
        raise SystemExit(f"cannot average checkpoints of different architectures: {', '.join(map(str, paths))}")
    states = [m.state_dict() for m in models]
    avg = {}
    for k, v in states[0].items():
        avg[k] = torch.stack([s[k] for s in states]).mean(0) if v.is_floating_point() else v
    models[0].load_state_dict(avg)
    training = f"the mean of the weights of {len(paths)} checkpoints: " + " | ".join(t for t in trainings if t)
    return models[0].eval(), training


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", nargs="+", help="training checkpoint (.pt), or several to average; omit with --random")
    ap.add_argument("--random", action="store_true", help="export untrained weights (for runtime tests)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--chunk-frames", type=int, default=32, help="feature frames (10 ms) per model step")
    ap.add_argument("--name", default=pathlib.Path(SHIPPED_MODEL).stem)
    ap.add_argument("--fp16", action="store_true", help="store weights as float16 (computed in float32)")
    a = ap.parse_args()
    if a.random:
        torch.manual_seed(a.seed)
        model = HarkModel(ModelConfig())
        training = f"untrained: random weights, seed {a.seed}"
    elif len(a.ckpt) > 1:
        model, training = average_checkpoints(a.ckpt)
    else:
        model, training = read_checkpoint(a.ckpt[0])
    export(model, a.out, a.chunk_frames, a.name, training, fp16=a.fp16)
    size = pathlib.Path(a.out).stat().st_size
    print(f"wrote {a.out}: {size / 1e6:.1f} MB, {count_params(model)} params, "
          f"{model_macs(model) / 1e6:.1f} MMAC/s, chunk {a.chunk_frames * 10} ms")


if __name__ == "__main__":
    main()
