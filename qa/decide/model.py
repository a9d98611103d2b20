"""The learned answer decision: P(a candidate span is a correct answer), and three states.

Two small logistic regressions, fitted by ``python -m tools.decision.fit`` on public
questions only (never the seeds or their evaluation set) and stored as plain numbers in
``qa/decide/model/answer-decision.json`` (its card, ``CARD.md``, says on what). Running them
needs numpy only.

1. The *ranker* orders one question's candidates (:data:`qa.decide.features.FEATURES`):
   fitted on answerable questions only, it learns which span of a pool is the answer
   (the one the question's predicate and constraints name), not whether there is one.
2. The *judge* gives P(correct) from the same features plus the ranker's score and its
   margin over the best different span: fitted on the ranker's best candidate of every
   question — answerable ones, the sets' own unanswerables, answerable questions asked with
   their paragraph removed from the collection — answerable questions weighing two thirds (about
   their share in the public sets that have unanswerables); then a Platt calibration on held-out
   questions.

States, from the best candidate's probability ``p``:
``answer`` when ``p ≥ answer_threshold`` (chosen so that ≥ 90% of held-out answers are
right), ``probable`` (「可能是…」) when ``p ≥ probable_threshold``, else ``not_found``.
A user's ``min_confidence`` replaces the answer threshold.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.decide.features import FEATURES, candidate_features
from qa.errors import ModelError

DECISION_FILE = Path(__file__).parent / "model" / "answer-decision.json"
STATES = ("answer", "probable", "not_found")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


JUDGE_EXTRA = ("rank_score", "rank_margin")


@dataclass
class Linear:
    """A standardised linear score: ``((x − mean) / scale) · coef + intercept``."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        return ((np.asarray(rows, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "coef": self.coef.tolist(),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> "Linear":
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("mean", "scale", "coef")), float(d["intercept"]))


def rank_margins(scores: np.ndarray, texts: list[str]) -> np.ndarray:
    """Each candidate's ranker score minus the best score of a candidate with other text
    (the lead of the best span; negative for the others)."""
    out = np.empty(len(scores))
    for i, t in enumerate(texts):
        others = [scores[j] for j in range(len(scores)) if texts[j] != t]
        out[i] = scores[i] - max(others) if others else 10.0
    return np.clip(out, -10.0, 10.0)


@dataclass
class AnswerDecision:
    features: tuple[str, ...]
    ranker: Linear
    judge: Linear
    calibration: tuple[float, float] = (1.0, 0.0)     # p = sigmoid(a * z + b), z the judge's logit
    answer_threshold: float = 0.5
    probable_threshold: float = 0.3
    meta: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path = DECISION_FILE) -> "AnswerDecision":
        path = Path(path)
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            model = cls(features=tuple(d["features"]), ranker=Linear.from_dict(d["ranker"]),
                        judge=Linear.from_dict(d["judge"]), calibration=tuple(d.get("calibration", (1.0, 0.0))),
                        answer_threshold=float(d["answer_threshold"]),
                        probable_threshold=float(d["probable_threshold"]),
                        meta={k: v for k, v in d.items() if k not in ("ranker", "judge")})
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"unreadable answer-decision model {path}: {exc}") from exc
        if model.features != FEATURES:
            missing = sorted(set(FEATURES) ^ set(model.features))
            raise ModelError(f"answer-decision model {path} was fitted on other features ({', '.join(missing)}); "
                             "refit it: python -m tools.decision.fit")
        return model

    def to_dict(self) -> dict:
        return {**self.meta, "features": list(self.features), "ranker": self.ranker.to_dict(),
                "judge": self.judge.to_dict(), "calibration": list(self.calibration),
                "answer_threshold": self.answer_threshold, "probable_threshold": self.probable_threshold}

    def judge_rows(self, rows: np.ndarray, texts: list[str]) -> np.ndarray:
        """The judge's input for one question's pool: the features, the ranker's score and margin."""
        scores = self.ranker(rows)
        return np.column_stack([rows, scores, rank_margins(scores, texts)])

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return _sigmoid(a * np.asarray(logits) + b)

    def pool_probabilities(self, rows: np.ndarray, texts: list[str]) -> np.ndarray:
        """P(correct) of each candidate of one question's pool, from its feature rows."""
        if len(rows) == 0:
            return np.zeros(0)
        return self.calibrate(self.judge(self.judge_rows(rows, texts)))

    def probabilities(self, question, candidates, index) -> np.ndarray:
        """P(correct) of each candidate (the pool of one question)."""
        return self.pool_probabilities(candidate_features(question, candidates, index), [c.text for c in candidates])

    def state(self, p: float, min_confidence: float | None = None) -> str:
        answer_at = self.answer_threshold if min_confidence is None else min_confidence
        if p >= answer_at:
            return "answer"
        if p >= min(self.probable_threshold, answer_at):
            return "probable"
        return "not_found"
