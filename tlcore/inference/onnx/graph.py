"""Tracing a TransferLab model into ``model.onnx``: the dynamo exporter first, the TorchScript one only if dynamo
cannot trace the backbone; which input axes are dynamic; and the graph's signature as written."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

from tlcore.inference.onnx.layout import ExportError

log = logging.getLogger(__name__)

_AXIS_NAMES = {"text": {1: "sequence"}, "image": {2: "height", 3: "width"}, "audio": {1: "time", 2: "time"}}


class Positional(nn.Module):
    """torch.onnx.export passes tensors positionally; TransferLab models take them by name."""

    def __init__(self, model: nn.Module, names: Sequence[str]):
        super().__init__()
        self.model, self.names = model, list(names)

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(**dict(zip(self.names, tensors)))


@contextlib.contextmanager
def _quiet():
    """The exporters warn (TracerWarning, axis renames) and may print; library code does neither."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def dynamic_axes(backbone, modality: str) -> dict[str, dict[int, str]]:
    """Which input axes vary with the input: batch always; the others found by preprocessing a short and a long
    synthetic item (text: sequence; speech encoders that pad to the longest clip: time; fixed-size images: none)."""
    if modality == "text":
        short, long = ["a"], [" ".join(["word"] * 40)]
    elif modality == "image":
        short, long = [Image.new("RGB", (20, 20))], [Image.new("RGB", (96, 64))]
    else:
        short, long = [(np.zeros(8000, np.float32), 16000)], [(np.zeros(24000, np.float32), 16000)]
    a, b = backbone.preprocess(short), backbone.preprocess(long)
    axes: dict[str, dict[int, str]] = {}
    for name, tensor in b.items():
        axes[name] = {0: "batch"}
        for dim in range(1, tensor.dim()):
            if name in a and a[name].shape[dim] != tensor.shape[dim]:
                axes[name][dim] = _AXIS_NAMES.get(modality, {}).get(dim, f"{name}_dim{dim}")
    return axes


def trace_example(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """At least two rows: torch.export specialises axes of size 1, which would freeze the batch axis."""
    if next(iter(batch.values())).shape[0] >= 2:
        return batch
    return {k: torch.cat([v, v]) for k, v in batch.items()}


def export_graph(model: nn.Module, example: dict[str, torch.Tensor], axes: dict[str, dict[int, str]],
                  output_axes: dict[int, str], path: Path, what: str) -> str:
    """Write ``path``; return which exporter made it: the dynamo one, else (if it cannot trace) the TorchScript one."""
    names = list(example)
    wrapped = Positional(model, names).eval()
    # one self-contained .onnx file, unless the weights pass protobuf's 2 GB limit
    big = sum(p.numel() * p.element_size() for p in model.parameters()) > 1_800_000_000
    args = tuple(example[n] for n in names)
    try:
        with _quiet():
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"], dynamo=True,
                              dynamic_shapes=(tuple(axes[n] for n in names),), external_data=big)
        return "torch.onnx.export(dynamo=True)"
    except Exception as exc:   # the exporters raise many types; the TorchScript one gets its chance below
        dynamo_error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        log.info("dynamo ONNX export of %s failed (%s); trying the TorchScript exporter", what, dynamo_error)
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    try:
        with _quiet():
            torch.onnx.export(wrapped, args, str(path), input_names=names, output_names=["logits"], dynamo=False,
                              dynamic_axes={**axes, "logits": output_axes}, opset_version=17)
    except Exception as exc:
        raise ExportError(f"torch.onnx.export cannot export {what}: dynamo exporter — {dynamo_error}; TorchScript "
                          f"exporter — {type(exc).__name__}: {str(exc).strip()[:200]}") from None
    return f"torch.onnx.export(dynamo=False, TorchScript; the dynamo exporter failed: {dynamo_error})"


def graph_signature(path: Path) -> dict:
    """Names, dtypes and shapes (ints, or the names of dynamic axes) of the graph's inputs and outputs; its opset."""
    import onnx  # lazy: only an export reads a graph back
    from onnx.helper import tensor_dtype_to_np_dtype

    def describe(values) -> list[dict]:
        return [{"name": v.name, "dtype": str(tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type)),
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

    proto = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=None)
    return {"inputs": describe(proto.graph.input), "outputs": describe(proto.graph.output), "opset": opset}
