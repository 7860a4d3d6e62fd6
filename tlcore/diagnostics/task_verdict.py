"""The diagnose verdict for NER and ASR: the shared verdict (:func:`mismatch_verdict`) plus the task's own
signals, and a recommendation in the task's strategies.

Thresholds (rules of thumb, like those in :mod:`tlcore.diagnostics.verdict`, meant to be read, not obeyed):

* Entity-type shift: total variation none < 0.1, mild < 0.3, strong ≥ 0.3 (as class label shift).
* Unseen entities (share of target mentions never seen in the source): none < 0.3, mild < 0.7, strong ≥ 0.7.
  In-domain benchmarks sit around a third to a half (Augenstein et al. 2017); above 0.7 the source teaches
  almost no target names.
* Transcript OOV rate (share of target running words never in the source transcripts): none < 0.1, mild
  < 0.3, strong ≥ 0.3.

Like label shift and property drift in the shared verdict, these raise the overall severity to "mild" at most:
the embeddings decide whether the backbone sees two domains.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Optional

from tlcore.diagnostics.label_shift import LabelShiftResult
from tlcore.diagnostics.task_shift import TranscriptVocabulary, UnseenEntities
from tlcore.diagnostics.verdict import FEW_LABELS, MANY_LABELS, TV_MILD, TV_STRONG, Verdict

UNSEEN_MILD, UNSEEN_STRONG = 0.3, 0.7
OOV_MILD, OOV_STRONG = 0.1, 0.3


def _level(value: float, mild: float, strong: float) -> str:
    return "strong" if value >= strong else "mild" if value >= mild else "none"


def recommend_ner(severity: str, n_labels: Optional[int]) -> str:
    if not n_labels:
        return ("No tagged target sentences: the source-trained tagger is what you can use; tagging even a few dozen "
                "target sentences helps NER transfer most.")
    if severity == "none":
        return ("The target sentences look like the source to this backbone: a linear probe on word features "
                "(frozen backbone, new tagging head) should do; fine-tune more only if it underfits.")
    if severity == "mild":
        if n_labels < FEW_LABELS:
            return ("Start with a linear probe on the target; with so few tagged sentences, partial fine-tuning (top "
                    "blocks) or LoRA is the most to try.")
        return "Partial fine-tuning (top blocks) or LoRA should beat a linear probe; compare both."
    if n_labels < FEW_LABELS:
        return ("Strong shift with few tagged sentences: train on the source first, then fine-tune on the target (give "
                "both --source and --target) with LoRA or partial fine-tuning; tagging more target sentences helps most.")
    if n_labels < MANY_LABELS:
        return "Strong shift: partial fine-tuning or LoRA from the source-trained tagger; go to full fine-tuning if F1 lags."
    return "Strong shift with plenty of tagged sentences: full fine-tuning (or LoRA) on the target."


def recommend_asr(severity: str, n_clips: Optional[int]) -> str:
    n = n_clips or 0
    if severity == "none":
        return ("The target speech looks like the source to this encoder: check the pretrained Whisper's zero-shot WER "
                "(rank) first; if it needs adapting, decoder-only fine-tuning (strategy decoder) is the cheap try.")
    if severity == "mild":
        return ("Mild mismatch: decoder-only fine-tuning (frozen encoder) or LoRA; compare their WER on "
                "held-out speakers.")
    if n < FEW_LABELS:
        return ("Strong acoustic mismatch with few transcribed clips: the encoder must adapt too, so try LoRA (adapters "
                "in encoder and decoder attention) with a low learning rate; full fine-tuning risks overfitting and "
                "forgetting; transcribing more target speech helps most. Give --source to check forgetting.")
    return ("Strong acoustic mismatch: LoRA or full fine-tuning so the encoder adapts; give --source to check "
            "forgetting of the source accent.")


def task_verdict(verdict: Verdict, recommend: Optional[Callable[[str, Optional[int]], str]], *, n_target_labels: Optional[int],
                 entity_shift: Optional[LabelShiftResult] = None, unseen: Optional[UnseenEntities] = None,
                 vocabulary: Optional[TranscriptVocabulary] = None) -> Verdict:
    """``verdict`` (from :func:`mismatch_verdict`) with the task's signals appended, the severity raised to at
    least "mild" by any of them, their findings added to the summary, and the recommendation rewritten in the
    task's strategies by ``recommend(severity, n_target_labels)`` (``recommend_ner``: linear probe / partial / full /
    LoRA; ``recommend_asr``: decoder / full / LoRA; None keeps the shared one). Deterministic."""
    signals, parts, advice = list(verdict.signals), [], []
    if entity_shift is not None:
        tv = entity_shift.total_variation
        level = _level(tv, TV_MILD, TV_STRONG)
        signals.append({"name": "entity_shift", "value": tv, "severity": level,
                        "meaning": f"entity-type proportions differ by {tv:.0%} of probability mass (total variation; "
                                   f"chi-square p = {entity_shift.chi2_p_value:.3g})"})
        if level != "none":
            parts.append(f"Entity types occur in other proportions (total variation {tv:.2f}).")
            advice.append("Entity types occur in other proportions: report per-type F1, not only the micro average.")
    if unseen is not None:
        rate = unseen.mention_rate
        level = _level(rate, UNSEEN_MILD, UNSEEN_STRONG)
        signals.append({"name": "unseen_entities", "value": rate, "severity": level,
                        "meaning": f"{rate:.0%} of the target's {unseen.mentions_b} entity mentions never occur as "
                                   "entities in the source"})
        if level != "none":
            parts.append(f"{rate:.0%} of target entity mentions are unseen in the source.")
            advice.append("Most target entities are new names: the tagger must generalise from context rather than "
                          "memorise names, so make sure the tagged target sentences cover many different entities.")
    if vocabulary is not None:
        rate = vocabulary.oov_rate
        level = _level(rate, OOV_MILD, OOV_STRONG)
        signals.append({"name": "oov_words", "value": rate, "severity": level,
                        "meaning": f"{rate:.0%} of the target's transcript words never occur in the source transcripts"})
        if level != "none":
            parts.append(f"{rate:.0%} of target transcript words are out of the source vocabulary.")
            advice.append("Many target words are new to the source transcripts: the decoder's language side must adapt "
                          "too (decoder or full strategy); look at names and numbers in the changed transcripts.")
    extra = [s["severity"] for s in signals[len(verdict.signals):]]
    severity = verdict.severity
    if any(level != "none" for level in extra) and severity == "none":
        severity = "mild"
    summary = verdict.summary
    if severity != verdict.severity:
        summary = summary.replace("No meaningful mismatch between source and target features",
                                  "Mild mismatch between source and target features", 1)
    recommendation = recommend(severity, n_target_labels) if recommend else verdict.recommendation
    drifting = verdict.drifting_properties
    if drifting:
        recommendation += (f" Check the drifting properties ({', '.join(drifting[:5])}): normalise them or cover them "
                           "with augmentation.")
    return replace(verdict, severity=severity, summary=" ".join([summary] + parts), signals=signals,
                   recommendation=" ".join([recommendation] + advice))
