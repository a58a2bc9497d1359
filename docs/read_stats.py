#!/usr/bin/python3
"""Reads a critdim stats file (GGUF, docs/formats.md) with NumPy alone.

    from read_stats import read_stats
    meta, arrays = read_stats("math.stats")
    mean = arrays["sum"] / arrays["count"][:, None]

Run as a script, it prints the metadata and the arrays' shapes as JSON.
"""
import json
import struct
import sys

import numpy as np

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_DTYPES = {0: np.float32, 26: np.int32, 27: np.int64, 28: np.float64}


def _value(buf, pos, vtype):
    if vtype == 8:  # string
        (n,) = struct.unpack_from("<Q", buf, pos)
        return buf[pos + 8 : pos + 8 + n].decode("utf-8"), pos + 8 + n
    if vtype == 9:  # array
        etype, n = struct.unpack_from("<IQ", buf, pos)
        pos += 12
        items = []
        for _ in range(n):
            v, pos = _value(buf, pos, etype)
            items.append(v)
        return items, pos
    fmt = _SCALARS[vtype]
    return struct.unpack_from(fmt, buf, pos)[0], pos + struct.calcsize(fmt)


def read_stats(path):
    with open(path, "rb") as f:
        buf = f.read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<IIQQ", buf, 0)
    if magic != 0x46554747 or version not in (2, 3):
        raise ValueError(f"{path}: not a GGUF v2/v3 file")
    pos = 24
    meta = {}
    for _ in range(n_kv):
        key, pos = _value(buf, pos, 8)
        (vtype,) = struct.unpack_from("<I", buf, pos)
        meta[key], pos = _value(buf, pos + 4, vtype)
    if meta.get("general.architecture") != "critdim.stats":
        raise ValueError(f"{path}: not a critdim stats file")
    infos = []
    for _ in range(n_tensors):
        name, pos = _value(buf, pos, 8)
        (n_dims,) = struct.unpack_from("<I", buf, pos)
        dims = struct.unpack_from(f"<{n_dims}Q", buf, pos + 4)
        ttype, offset = struct.unpack_from("<IQ", buf, pos + 4 + 8 * n_dims)
        pos += 4 + 8 * n_dims + 12
        infos.append((name, dims, ttype, offset))
    align = meta.get("general.alignment", 32)
    data_start = (pos + align - 1) // align * align
    arrays = {}
    for name, dims, ttype, offset in infos:
        dtype = _DTYPES[ttype]
        count = int(np.prod(dims))
        a = np.frombuffer(buf, dtype=dtype, count=count, offset=data_start + offset)
        arrays[name] = a.reshape(tuple(reversed(dims)))  # GGUF lists the innermost dimension first
    return meta, arrays


if __name__ == "__main__":
    meta, arrays = read_stats(sys.argv[1])
    print(json.dumps({"meta": meta, "shapes": {k: list(v.shape) for k, v in arrays.items()}}))
