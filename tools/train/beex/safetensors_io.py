"""safetensors, written and read directly: an 8-byte little-endian header length N, N bytes
of JSON header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
then the raw little-endian tensor bytes (offsets relative to the end of the header)."""
import json
import struct

import numpy as np
import torch

_DTYPES = {torch.float32: ("F32", np.float32), torch.int64: ("I64", np.int64),
           torch.int32: ("I32", np.int32), torch.float64: ("F64", np.float64),
           torch.int8: ("I8", np.int8), torch.uint8: ("U8", np.uint8), torch.float16: ("F16", np.float16)}
_BY_NAME = {v[0]: (k, v[1]) for k, v in _DTYPES.items()}


def save(tensors, path, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise ValueError(f"tensor {name}: unsupported dtype {t.dtype}")
        tag, np_dtype = _DTYPES[t.dtype]
        data = t.numpy().astype(np.dtype(np_dtype).newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)  # pad so the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load(path):
    """(tensors, metadata). Validates the header against the file size."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors header")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    base = 8 + n
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in _BY_NAME:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        tdtype, np_dtype = _BY_NAME[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= begin <= end and base + end <= len(blob)) or end - begin != count * np.dtype(np_dtype).itemsize:
            raise ValueError(f"{path}: tensor {name} has bad offsets {begin}..{end} for shape {shape}")
        arr = np.frombuffer(blob, dtype=np.dtype(np_dtype).newbyteorder("<"), count=count, offset=base + begin)
        tensors[name] = torch.from_numpy(arr.astype(np_dtype).reshape(shape).copy())
    return tensors, metadata
