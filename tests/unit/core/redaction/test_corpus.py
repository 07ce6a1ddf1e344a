"""Recall per entity family and false positives on hard negatives, over the generated corpus."""

from __future__ import annotations

from collections import Counter

from llm_gateway.core.redaction import Entity, Redactor, Replacer
from tests.unit.core.redaction.corpus import negatives, positives

REDACTOR = Redactor(Replacer("placeholder"))


def test_recall_is_at_least_99_percent_for_every_family() -> None:
    seen: Counter[Entity] = Counter()
    caught: Counter[Entity] = Counter()
    missed: dict[Entity, list[str]] = {}
    for entity, value, text in positives():
        found: Counter[Entity] = Counter()
        redacted = REDACTOR.redact(text, found)
        seen[entity] += 1
        if value not in redacted and found[entity]:
            caught[entity] += 1
        else:
            missed.setdefault(entity, []).append(text)
    recall = {entity.value: caught[entity] / seen[entity] for entity in seen}
    examples = {entity.value: texts[:5] for entity, texts in missed.items()}
    assert all(value >= 0.99 for value in recall.values()), (recall, examples)


def test_false_positives_on_hard_negatives_stay_under_1_percent() -> None:
    texts = list(negatives())
    changed = [text for text in texts if REDACTOR.redact(text) != text]
    assert len(changed) / len(texts) <= 0.01, changed
