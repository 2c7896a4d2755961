"""Words that compare a number with Retrain and its noise, or with a stated rival, returned with the
numbers they rest on. A chapter glues the words; its test re-derives them from the glued numbers
(``tests/test_book_sentences.py``), so a sentence cannot say what its numbers do not.

The noise of a comparison is what the same measurement moves by without any change of method: the
spread of Retrain over seeds (two standard deviations) and, on a small forget set, the points one
image is worth; whichever is larger (:func:`noise`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .methods import METHOD_NAMES


def noise(reference_values=(), forget_size: int | None = None) -> float:
    """The points within which two values count as level: twice Retrain's standard deviation over
    seeds (``reference_values``), at least one forget image's worth (``100 / forget_size``)."""
    values = np.asarray(list(reference_values), dtype=float)
    spread = 2 * float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return max(spread, 100 / forget_size if forget_size else 0.0)


def side(value: float, reference: float, band: float) -> str:
    """``"level"`` when ``value`` is within ``band`` of ``reference``, else ``"above"`` or ``"below"``."""
    if abs(value - reference) <= band:
        return "level"
    return "above" if value > reference else "below"


@dataclass(frozen=True)
class Comparison:
    """One number against a reference, with the band within which they count as level."""

    value: float
    reference: float
    band: float
    reference_name: str = "Retrain's"

    @property
    def side(self) -> str:
        return side(self.value, self.reference, self.band)

    @property
    def words(self) -> str:
        """``"level with Retrain's (within its noise, 2.5 points)"``, ``"12.0 points above Retrain's"``."""
        if self.side == "level":
            return f"level with {self.reference_name} (within its noise, {self.band:.1f} points)"
        return f"{abs(self.value - self.reference):.1f} points {self.side} {self.reference_name}"


def against(value: float, reference: float, band: float, reference_name: str = "Retrain's") -> Comparison:
    """``value`` compared with ``reference`` (Retrain's, by default) within ``band`` (:func:`noise`)."""
    return Comparison(float(value), float(reference), float(band), reference_name)


def closest(values: dict[str, float], reference: float, band: float) -> list[str]:
    """The methods of ``values`` closest to ``reference``: every one whose distance to it is within
    ``band`` of the smallest distance (the noise cannot order them), in the order of ``values``."""
    distance = {m: abs(v - reference) for m, v in values.items()}
    best = min(distance.values())
    return [m for m, d in distance.items() if d <= best + band]


def name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def injection_verdict(fa_with: float, fa_without: float, retrain: float, band: float) -> str:
    """Chapter 4's verdict on NatMU's injected remaining image (the paper's Fig. 3): does the variant
    without it end further from Retrain's forget accuracy than NatMU does? Each variant is compared
    with Retrain and its noise, not with the other."""
    with_, without = against(fa_with, retrain, band), against(fa_without, retrain, band)
    if without.side == "level":
        return (f"Without the injected image NatMU's forget accuracy already ends {without.words}, so on "
                f"this request the injection is not what keeps the fine-tuning from over-forgetting "
                f"(with it, FA ends {with_.words}); the paper's Fig. 3 does not reproduce here.")
    if with_.side == "level" or abs(fa_with - retrain) + band < abs(fa_without - retrain):
        return (f"Without the injected image the forget accuracy ends {without.words}, with it "
                f"{with_.words}: the injection keeps the fine-tuning nearer Retrain, as the paper's "
                f"Fig. 3 shows.")
    return (f"Without the injected image the forget accuracy ends {without.words}, with it {with_.words}: "
            f"neither is nearer Retrain beyond its noise, so the paper's Fig. 3 does not reproduce here.")
