"""Packs a float32 safetensors file small enough to travel to a lent GPU machine, and unpacks it there.

    python3 infra/f16_planes.py pack   model.safetensors  model.planes
    python3 infra/f16_planes.py unpack model.planes       model.safetensors

`pack` rounds every F32 tensor to float16 and writes the low bytes of all of them, then the high bytes (two
planes compress far better than interleaved bytes: xz takes the MiniLM encoder from 91 to 39 MB); tensors of
other types are kept as they are. `unpack` restores a float32 safetensors file with the same header. Needs
numpy. Training on the rounded encoder carries over (models/enrichment/COMPARISON.md).
"""
import json
import struct
import sys

import numpy as np


def tensors(header):
    return sorted((v["data_offsets"], v["dtype"]) for k, v in header.items() if k != "__metadata__")


def pack(src, dst):
    raw = open(src, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = raw[8 : 8 + n], raw[8 + n :]
    layout = tensors(json.loads(header))
    other = b"".join(data[a:b] for (a, b), t in layout if t != "F32")
    f32 = np.concatenate([np.frombuffer(data[a:b], dtype="<f4") for (a, b), t in layout if t == "F32"])
    halves = f32.astype("<f2").view(np.uint8).reshape(-1, 2)
    with open(dst, "wb") as out:
        out.write(struct.pack("<QQ", n, len(other)))
        out.write(header)
        out.write(other)
        out.write(halves[:, 0].tobytes())
        out.write(halves[:, 1].tobytes())


def unpack(src, dst):
    raw = open(src, "rb").read()
    n, m = struct.unpack("<QQ", raw[:16])
    header, other = raw[16 : 16 + n], raw[16 + n : 16 + n + m]
    planes = np.frombuffer(raw[16 + n + m :], dtype=np.uint8)
    half = len(planes) // 2
    halves = np.empty((half, 2), dtype=np.uint8)
    halves[:, 0], halves[:, 1] = planes[:half], planes[half:]
    f32 = halves.reshape(-1).view("<f2").astype("<f4").tobytes()
    layout = tensors(json.loads(header))
    data = bytearray(layout[-1][0][1])
    i = j = 0
    for (a, b), t in layout:
        if t == "F32":
            data[a:b] = f32[j : j + b - a]
            j += b - a
        else:
            data[a:b] = other[i : i + b - a]
            i += b - a
    with open(dst, "wb") as out:
        out.write(struct.pack("<Q", n))
        out.write(header)
        out.write(data)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        sys.exit("usage: f16_planes.py pack|unpack SRC DST")
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2], sys.argv[3])
