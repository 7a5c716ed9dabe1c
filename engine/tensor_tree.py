"""Checkpoints without pickle: a nested state (dicts, lists, tuples, numbers, strings, tensors)
as JSON for its shape and safetensors for its tensors.

A checkpoint holds model and optimizer state_dicts (int keys, tuples), strategy state (lists of
dicts of tensors, index tensors, counters) and plain lists and floats. ``torch.load(...,
weights_only=True)`` would read it too, but that is still an unpickler (a restricted one, with a
history of bypasses); safetensors is a JSON header plus raw bytes, so reading an untrusted
checkpoint cannot run code.

Layout: 8-byte little-endian length of the JSON, the JSON, then the safetensors bytes. In the
JSON a list is a list, and every object is a tag: ``{"tensor": name}``, ``{"tuple": [...]}`` or
``{"dict": [[key, value], ...]}`` (pairs, so int keys stay ints).
"""

from __future__ import annotations

import json
from typing import Any

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

_SCALARS = (str, int, float, type(None))  # bool is an int


def pack(tree: Any) -> bytes:
    """Bytes for ``tree``; ``TypeError`` naming the path of a value it cannot hold."""
    tensors: dict[str, torch.Tensor] = {}

    def enc(node: Any, path: str) -> Any:
        if isinstance(node, torch.Tensor):
            name = str(len(tensors))
            # A private contiguous copy: safetensors refuses views and shared storage.
            tensors[name] = node.detach().to("cpu", copy=True).contiguous()
            return {"tensor": name}
        if isinstance(node, _SCALARS):
            return node
        if isinstance(node, list):
            return [enc(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, tuple):
            return {"tuple": [enc(v, f"{path}[{i}]") for i, v in enumerate(node)]}
        if isinstance(node, dict):
            return {
                "dict": [[enc(k, f"{path}.key"), enc(v, f"{path}.{k}")] for k, v in node.items()]
            }
        raise TypeError(
            f"checkpoint value at {path.lstrip('.') or 'top'} is a {type(node).__name__}: "
            "checkpoints hold tensors, numbers, strings, lists, tuples and dicts"
        )

    shape = json.dumps(enc(tree, ""), separators=(",", ":")).encode()
    return len(shape).to_bytes(8, "little") + shape + save_tensors(tensors)


def unpack(blob: bytes) -> Any:
    """The tree ``pack`` made; ``ValueError`` for anything else."""
    n = int.from_bytes(blob[:8], "little")
    if len(blob) < 8 + n:
        raise ValueError("checkpoint shorter than its header says")
    try:
        shape = json.loads(blob[8 : 8 + n])
        tensors = load_tensors(bytes(blob[8 + n :]))
    except Exception as err:  # safetensors raises its own error type for bad bytes
        raise ValueError(f"unreadable checkpoint: {err}") from err

    def dec(node: Any) -> Any:
        if isinstance(node, _SCALARS):  # nan and inf round-trip through Python's JSON
            return node
        if isinstance(node, list):
            return [dec(v) for v in node]
        if isinstance(node, dict) and len(node) == 1:
            ((tag, body),) = node.items()
            if tag == "tensor" and body in tensors:
                return tensors[body]
            if tag == "tuple" and isinstance(body, list):
                return tuple(dec(v) for v in body)
            if tag == "dict" and isinstance(body, list):
                if not all(isinstance(p, list) and len(p) == 2 for p in body):
                    raise ValueError("malformed dict in checkpoint")
                try:
                    return {dec(k): dec(v) for k, v in body}
                except TypeError as err:  # an unhashable key
                    raise ValueError("malformed dict key in checkpoint") from err
        raise ValueError(f"unknown node in checkpoint: {str(node)[:80]}")

    return dec(shape)
