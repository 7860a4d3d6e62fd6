"""Entity-level NER metrics against hand-computed values (seqeval 1.2.2's default mode gives the same numbers)."""

import pytest

from tlcore.tasks.ner.metrics import entity_scores, extract_spans, ner_metrics

# gold:  s1 PER(0,2) LOC(3,4) | s2 ORG(0,3)            | s3 PER(1,2) PER(3,4)   -> 5 gold entities
# pred:  s1 PER(0,2) LOC(3,4) | s2 ORG(0,2) (too short) | s3 PER(1,2)            -> 4 predicted, 3 correct
GOLD = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "I-ORG", "O"], ["O", "B-PER", "O", "B-PER"]]
PRED = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "O"], ["O", "B-PER", "O", "O"]]


def test_micro_precision_recall_f1_hand_case():
    m = ner_metrics(GOLD, PRED)
    assert m["entities"] == {"gold": 5, "predicted": 4, "correct": 3}
    assert m["entity_precision"] == pytest.approx(3 / 4)
    assert m["entity_recall"] == pytest.approx(3 / 5)
    assert m["entity_f1"] == pytest.approx(2 * 3 / (4 + 5))          # 2/3
    # 12 tokens, 2 differ (s2 word 2 I-ORG vs O, s3 word 3 B-PER vs O).
    assert m["token_accuracy"] == pytest.approx(10 / 12)


def test_per_type_scores_and_macro_f1_hand_case():
    m = ner_metrics(GOLD, PRED)
    per = m["per_type"]
    assert per["PER"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert per["LOC"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1})
    assert per["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)     # 0.6


def test_macro_f1_counts_a_type_that_is_only_predicted():
    # Gold: PER and LOC, both found. The prediction adds a spurious MISC entity in a sentence without entities.
    gold = [["B-PER", "O", "B-LOC"], ["O", "O"]]
    pred = [["B-PER", "O", "B-LOC"], ["B-MISC", "I-MISC"]]
    m = ner_metrics(gold, pred)
    assert m["per_type"]["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Union of types {LOC, MISC, PER}: (1 + 0 + 1) / 3, as seqeval's classification_report macro avg
    # (averaging over the gold types only would give 1.0 and hide the spurious type).
    assert m["macro_f1"] == pytest.approx(2 / 3)
    # Micro: 2 correct of 3 predicted, 2 gold -> P 2/3, R 1, F1 2·2/(3+2) = 0.8.
    assert (m["entity_precision"], m["entity_recall"], m["entity_f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    # Without the spurious entity the macro-F1 is 1.
    assert ner_metrics(gold, gold)["macro_f1"] == 1.0


def test_macro_f1_with_only_spurious_or_no_entities():
    assert ner_metrics([["O", "O"]], [["B-PER", "O"]])["macro_f1"] == 0.0
    none = ner_metrics([["O", "O"]], [["O", "O"]])
    assert none["macro_f1"] == 0.0 and none["entity_f1"] == 0.0 and none["per_type"] == {}


@pytest.mark.parametrize("tags, spans", [
    (["I-PER", "I-PER", "O"], [("PER", 0, 2)]),                             # I- at the start opens an entity
    (["B-PER", "O", "I-PER"], [("PER", 0, 1), ("PER", 2, 3)]),              # I- after O opens a new one
    (["I-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),                   # I- of another type: new entity
    (["B-MISC", "I-MISC", "I-PER", "B-ORG", "I-ORG"], [("MISC", 0, 2), ("PER", 2, 3), ("ORG", 3, 5)]),
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),                   # B- always opens one
    (["B-PER", "I-PER", "I-PER"], [("PER", 0, 3)]),                         # entity running to the end
])
def test_extract_spans_matches_seqeval_default_mode(tags, spans):
    # Expected values are seqeval 1.2.2 get_entities(tags) with the end made exclusive.
    assert extract_spans(tags) == spans


def test_i_tag_without_b_is_scored_as_an_entity():
    # seqeval's default mode (and conlleval) read "O I-PER" as a PER entity, so it matches a gold "O B-PER".
    s = entity_scores([["O", "B-PER"]], [["O", "I-PER"]])
    assert (s["n_correct"], s["n_predicted"], s["n_gold"], s["f1"]) == (1, 1, 1, 1.0)
