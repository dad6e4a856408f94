"""Store a contract model's matrix weights as int8: smaller and lighter in
memory, but slower in tract on x86-64 (results/HISTORY.md, "int8 weights").

    python train/experiments/quantize.py models/hark-wsm-v21.onnx /tmp/hark-wsm-v21-int8.onnx

Every MatMul with a constant weight becomes onnxruntime's dynamic
quantization (DynamicQuantizeLinear on the activations, MatMulInteger with
int8 weights, one scale per tensor), which tract runs; the other large
float weights (convolutions, embeddings) keep float16 storage as
`export.py --fp16` writes them. The contract metadata is carried over, so
`hark --model` takes the result as it is. The input may be stored as float32
or float16.
"""

import argparse
import pathlib
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # train/experiments/, then the pipeline in train/
from export import store_fp16  # noqa: E402


def unfold_fp16(proto):
    """Undo `store_fp16`: each float16 weight followed by a Cast to float32
    becomes a float32 weight under the Cast's output name (the quantizer only
    sees weights that are initializers of the node that reads them)."""
    graph = proto.graph
    inits = {i.name: i for i in graph.initializer}
    kept = []
    for node in graph.node:
        src = inits.get(node.input[0]) if node.op_type == "Cast" and node.input else None
        if src is not None and src.data_type == onnx.TensorProto.FLOAT16:
            w = numpy_helper.to_array(src).astype(np.float32)
            graph.initializer.append(numpy_helper.from_array(w, node.output[0]))
            graph.initializer.remove(src)
            del inits[src.name]
        else:
            kept.append(node)
    del graph.node[:]
    graph.node.extend(kept)
    return proto


def quantize_int8(src, dst) -> dict:
    """Write `src` with int8 MatMul weights to `dst`; returns what changed."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = unfold_fp16(onnx.load(str(src)))
    with tempfile.TemporaryDirectory() as tmp:
        f32 = pathlib.Path(tmp) / "f32.onnx"
        q8 = pathlib.Path(tmp) / "q8.onnx"
        onnx.save(proto, str(f32))
        quantize_dynamic(str(f32), str(q8), op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8)
        out = onnx.load(str(q8))
    out = store_fp16(out)
    onnx.checker.check_model(out)
    pathlib.Path(dst).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(out, str(dst))
    return {
        "matmuls_quantized": sum(n.op_type == "MatMulInteger" for n in out.graph.node),
        "matmuls_left": sum(n.op_type == "MatMul" for n in out.graph.node),
        "bytes_in": pathlib.Path(src).stat().st_size,
        "bytes_out": pathlib.Path(dst).stat().st_size,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a contract model (ONNX)")
    ap.add_argument("dst", help="where to write the int8 version")
    a = ap.parse_args(argv)
    r = quantize_int8(a.src, a.dst)
    print(f"wrote {a.dst}: {r['bytes_out'] / 1e6:.1f} MB (was {r['bytes_in'] / 1e6:.1f} MB), "
          f"{r['matmuls_quantized']} MatMuls int8, {r['matmuls_left']} left in float")


if __name__ == "__main__":
    main()
