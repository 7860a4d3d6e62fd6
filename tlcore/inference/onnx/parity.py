"""Does the export reproduce the PyTorch model? Both pipelines end to end (the run's backbone preprocessing and
model; the exported preprocessing and onnxruntime) on the run's eval items, compared logit by logit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tlcore.inference.onnx.layout import BATCH_SIZE, ExportError
from tlcore.inference.onnx.runtime import OnnxGraph
from tlcore.tasks import TaskSpec
from tlcore.tasks.ner.data import encode

#: At most this many eval items are compared (the first ones, in the report's order).
PARITY_CAP = 256
#: Parity passes when max |ONNX − PyTorch| ≤ REL_TOLERANCE × max(1, largest |PyTorch logit|).
REL_TOLERANCE = 1e-3


def compare_logits(reference: np.ndarray, candidate: np.ndarray, *, rel_tolerance: float = REL_TOLERANCE) -> dict:
    """Parity of ``candidate`` (ONNX) with ``reference`` (PyTorch) logits, both ``(n, k)`` (one row per item; NER:
    per real token). Passes when ``max |candidate − reference| ≤ rel_tolerance · max(1, max |reference|)`` and the
    argmax differs only where the reference's top two logits are within twice that tolerance (a near tie)."""
    if reference.shape != candidate.shape:
        return {"compared": int(len(reference)), "passed": False,
                "error": f"shape mismatch: PyTorch {list(reference.shape)}, ONNX {list(candidate.shape)}"}
    n = len(reference)
    diff = float(np.abs(reference - candidate).max()) if n else 0.0
    scale = float(np.abs(reference).max()) if n else 0.0
    tolerance = rel_tolerance * max(1.0, scale)
    disagree = reference.argmax(-1) != candidate.argmax(-1) if n else np.zeros(0, bool)
    if reference.shape[-1] >= 2 and n:
        top2 = np.sort(reference, axis=-1)[:, -2:]
        margin = top2[:, 1] - top2[:, 0]
    else:
        margin = np.full(n, np.inf)
    beyond_ties = int((disagree & (margin > 2 * tolerance)).sum())
    finite = bool(np.isfinite(candidate).all())
    return {"compared": int(n), "max_abs_diff": diff, "logit_scale": scale, "rel_tolerance": rel_tolerance,
            "tolerance": tolerance, "argmax_agreement": float(1.0 - disagree.mean()) if n else 1.0,
            "argmax_disagreements": int(disagree.sum()), "argmax_disagreements_beyond_near_ties": beyond_ties,
            "passed": bool(finite and n > 0 and diff <= tolerance and beyond_ties == 0)}


def parity_items(run, cap: int) -> tuple[list, dict]:
    """The items parity is checked on: the report's eval items (first ``cap``); image / audio files that are gone
    are skipped, and when none is left, seeded synthetic inputs stand in (the record says which)."""
    preds = run.report.get("eval_predictions") or {}
    if run.spec.token_level:
        items = [list(s) for s in preds.get("tokens") or [] if s]
        source = "the run's eval sentences (report.json eval_predictions.tokens)"
        if not items:
            items, source = [["synthetic", "sentence", str(i)] for i in range(4)], "4 synthetic sentences (the report holds no eval sentences)"
        return items[:cap], {"inputs": source, "items": min(len(items), cap), "items_available": len(items), "cap": cap}
    items = list(preds.get("items") or [])
    available = len(items)
    if run.modality != "text":
        items = [x for x in items if Path(str(x)).is_file()]
    source = "the run's eval items (report.json eval_predictions.items)"
    if len(items) < available:
        source += f"; {available - len(items)} eval file(s) no longer on disk were skipped"
    if not items:
        kind = {"image": "random-noise images", "audio": "random-noise clips"}.get(run.modality, "texts")
        items, source = _synthetic(run.modality), f"synthetic inputs: 8 seeded {kind} (the run's eval items are not available)"
    return items[:cap], {"inputs": source, "items": min(len(items), cap), "items_available": available, "cap": cap}


def _synthetic(modality: str) -> list:
    rng = np.random.default_rng(0)
    if modality == "image":
        return [Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)) for _ in range(8)]
    if modality == "audio":
        return [((0.1 * rng.standard_normal(16000)).astype(np.float32), 16000) for _ in range(8)]
    return [f"synthetic example text number {i}" for i in range(8)]


@torch.no_grad()
def check_parity(model, graph: OnnxGraph, task: TaskSpec, items: list, rel_tolerance: float) -> dict:
    """Both pipelines end to end on ``items``: PyTorch (the run's backbone preprocessing + model) and ONNX (the
    exported preprocessing + onnxruntime), in batches of :data:`BATCH_SIZE`."""
    ref, got = [], []
    if task.token_level:
        enc_ref = encode(model.tokenizer, items, model.max_length)
        enc_got = encode(graph.tokenizer, items, graph.max_length)   # type: ignore[attr-defined]
        if enc_ref.input_ids != enc_got.input_ids:
            raise ExportError("the exported tokenizer splits the eval sentences differently from the run's; the export "
                              "is not usable")
        for start in range(0, len(enc_ref), BATCH_SIZE):
            idx = list(range(start, min(start + BATCH_SIZE, len(enc_ref))))
            batch, _ = model.collate(enc_ref, idx)
            real = batch["attention_mask"].numpy().astype(bool)
            ref.append(model(**batch).float().numpy()[real])
            got.append(graph.logits(graph.collate(enc_got, idx)[0])[real])   # type: ignore[attr-defined]
    else:
        for start in range(0, len(items), BATCH_SIZE):
            chunk = items[start:start + BATCH_SIZE]
            ref.append(model(**model.backbone.preprocess(chunk)).float().numpy())
            got.append(graph.logits(graph.preprocess(chunk)))   # type: ignore[attr-defined]
    k = len(graph.labels)
    result = compare_logits(np.concatenate(ref) if ref else np.zeros((0, k)), np.concatenate(got) if got else np.zeros((0, k)),
                            rel_tolerance=rel_tolerance)
    return {"unit": "tokens" if task.token_level else "items", **result}


def parity_summary(record: dict) -> str:
    """One line for people: how many items were compared and how close the logits are."""
    return parity_line(record.get("parity") or {})


def parity_line(p: dict) -> str:
    if "error" in p:
        return p["error"]
    if p.get("unit") == "tokens":
        unit = f"tokens of {p.get('items', '?')} sentences"
    else:
        unit = "items"
    capped = f" (first {p['items']} of {p['items_available']})" if p.get("items_available", 0) > p.get("items", 0) else ""
    return (f"{p.get('compared', 0)} {unit}{capped}: max |Δ logit| {p.get('max_abs_diff', float('nan')):.2e} "
            f"(tolerance {p.get('tolerance', float('nan')):.1e}), argmax agreement {100 * p.get('argmax_agreement', 0):.1f}%")
