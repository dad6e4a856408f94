"""Reader for CTranslate2 `model.bin` files (binary versions 5 and 6).

Layout, all integers little-endian:
  u32 binary_version
  str spec_name                      (str = u16 length incl. NUL, bytes, NUL)
  u32 spec_revision
  u32 num_variables, then per variable:
      str name, u8 rank, u32 dim[rank], u8 dtype_id, u32 num_bytes, raw bytes
  u32 num_aliases, then per alias: str alias, str target_name
dtype ids follow CTranslate2's DataType enum:
  0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16.

`read_model` returns the file as stored; `load_variables` returns float32 arrays
with quantized weights (`X/weight` + `X/weight_scale`) dequantized.

CLI: `python train/ct2.py PATH [--raw]` lists variables with shapes and dtypes.
"""

from __future__ import annotations

import dataclasses
import pathlib
import struct
import sys

import numpy as np

SUPPORTED_BINARY_VERSIONS = (5, 6)

# bfloat16 has no numpy dtype: it is read as uint16 and widened to float32.
_DTYPES = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),
}
_DTYPE_NAMES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}


@dataclasses.dataclass
class Ct2Model:
    binary_version: int
    spec_name: str
    spec_revision: int
    variables: dict[str, np.ndarray]  # as stored (bfloat16 as uint16 bits)
    dtypes: dict[str, str]  # CTranslate2 dtype name per variable
    aliases: dict[str, str]  # alias -> target variable name


class _Reader:
    def __init__(self, data: bytes):
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated model.bin: need {n} bytes at offset {self.pos}")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def u8(self) -> int:
        return self.unpack("<B")[0]

    def u16(self) -> int:
        return self.unpack("<H")[0]

    def u32(self) -> int:
        return self.unpack("<I")[0]

    def string(self) -> str:
        n = self.u16()
        raw = bytes(self.take(n))
        if n == 0 or raw[-1] != 0:
            raise ValueError(f"malformed string at offset {self.pos - n}")
        return raw[:-1].decode("utf-8")


def read_model(path: str | pathlib.Path) -> Ct2Model:
    """Parse a CTranslate2 model.bin (or a model directory) exactly as stored."""
    path = pathlib.Path(path)
    if path.is_dir():
        path = path / "model.bin"
    r = _Reader(path.read_bytes())
    version = r.u32()
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ValueError(f"unsupported CTranslate2 binary version {version} in {path}")
    spec_name = r.string()
    spec_revision = r.u32()
    variables: dict[str, np.ndarray] = {}
    dtypes: dict[str, str] = {}
    for _ in range(r.u32()):
        name = r.string()
        rank = r.u8()
        shape = tuple(r.unpack(f"<{rank}I")) if rank else ()
        type_id = r.u8()
        if type_id not in _DTYPES:
            raise ValueError(f"{name}: unknown dtype id {type_id}")
        dtype = _DTYPES[type_id]
        num_bytes = r.u32()
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if num_bytes != expected:
            raise ValueError(f"{name}: {num_bytes} bytes for shape {shape} {_DTYPE_NAMES[type_id]}")
        if name in variables:
            raise ValueError(f"duplicate variable {name}")
        variables[name] = np.frombuffer(r.take(num_bytes), dtype=dtype).reshape(shape).copy()
        dtypes[name] = _DTYPE_NAMES[type_id]
    aliases: dict[str, str] = {}
    for _ in range(r.u32()):
        alias = r.string()
        aliases[alias] = r.string()
    if r.pos != len(r.data):
        raise ValueError(f"{len(r.data) - r.pos} trailing bytes after the aliases in {path}")
    for alias, target in aliases.items():
        if target not in variables:
            raise ValueError(f"alias {alias} -> missing variable {target}")
    return Ct2Model(version, spec_name, spec_revision, variables, dtypes, aliases)


def _to_float32(value: np.ndarray, dtype_name: str) -> np.ndarray:
    if dtype_name == "bfloat16":
        return (value.astype(np.uint32) << 16).view(np.float32)
    return value.astype(np.float32)


def load_variables(path: str | pathlib.Path, with_aliases: bool = True) -> dict[str, np.ndarray]:
    """name -> numpy array; float types widened to float32, quantized weights dequantized.

    CTranslate2 quantizes as q = round(w * scale) with one scale per output row
    (int8) or one scalar (int16), so w = q / scale. The `*_scale` entries are
    consumed. Non-float scalars (e.g. `num_heads`) keep their integer type.
    """
    model = read_model(path)
    out: dict[str, np.ndarray] = {}
    consumed: set[str] = set()
    for name, value in model.variables.items():
        if name in consumed or name.endswith("_scale") and name[: -len("_scale")] in model.variables:
            continue
        scale_name = name + "_scale"
        if scale_name in model.variables:
            if name + "_zero" in model.variables:
                raise NotImplementedError(f"{name}: zero-point (AWQ) quantization is not supported")
            scale = _to_float32(model.variables[scale_name], model.dtypes[scale_name])
            q = value.astype(np.float32)
            if scale.ndim == 1 and q.ndim >= 1 and scale.shape[0] == q.shape[0]:
                scale = scale.reshape((-1,) + (1,) * (q.ndim - 1))
            elif scale.size != 1:
                raise ValueError(f"{name}: scale shape {scale.shape} does not fit weight {q.shape}")
            out[name] = q / scale
            consumed.add(scale_name)
        elif model.dtypes[name] in ("float32", "float16", "bfloat16"):
            out[name] = _to_float32(value, model.dtypes[name])
        else:
            out[name] = value
    if with_aliases:
        for alias, target in model.aliases.items():
            out[alias] = out[target]
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python train/ct2.py PATH [--raw]", file=sys.stderr)
        return 2
    model = read_model(argv[0])
    print(f"binary version {model.binary_version}, spec {model.spec_name} rev {model.spec_revision}")
    total = 0
    for name, value in model.variables.items():
        total += value.size
        shape = "x".join(map(str, value.shape)) or "scalar"
        extra = f" = {value.item()}" if value.size == 1 and value.ndim == 0 else ""
        print(f"{name}\t{shape}\t{model.dtypes[name]}{extra}")
    for alias, target in model.aliases.items():
        print(f"{alias}\t-> {target}")
    print(f"{len(model.variables)} variables, {len(model.aliases)} aliases, {total} values")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
