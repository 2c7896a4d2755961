"""Every interpretive sentence of chapters 1-5 and 7 against its numbers: each test re-derives a glued
sentence's premise from the glued values of the executed chapter (the book build's
``_build/jupyter_execute``) and fails where the words say what the numbers do not (a variant "keeping"
what lands on Retrain anyway, "near" Retrain beyond its noise, "closer" within it). Chapters 6 and 8 get
theirs with their rewrite. Needs `make book` first; skipped otherwise (failed with NATMU_REQUIRE_BOOK)."""

import ast
import json
import os
import re
from pathlib import Path

import pytest

from natmu_lite import words
from natmu_lite.tables import method_words

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = Path(os.environ.get("NATMU_BOOK_HTML") or ROOT / "_build" / "html").resolve().parent / "jupyter_execute"
HTML = EXECUTED.parent / "html"


def glued(chapter: str) -> dict:
    """The values a chapter glued, by name (strings, numbers), from its executed notebook."""
    path = next(iter(sorted((EXECUTED / "notebooks").glob(f"{chapter}_*.ipynb"))), None)
    if path is None:
        if os.environ.get("NATMU_REQUIRE_BOOK"):
            pytest.fail("NATMU_REQUIRE_BOOK is set but the executed chapters are missing: run `make book`")
        pytest.skip("the book is not built (run `make book`)")
    outputs = [out for cell in json.loads(path.read_text())["cells"] for out in cell.get("outputs", [])]
    store = path.with_suffix(".glue.json")  # where myst-nb keeps a page's glued values
    outputs += list(json.loads(store.read_text()).values()) if store.exists() else []
    values = {}
    for out in outputs:
        name = out.get("metadata", {}).get("scrapbook", {}).get("name")
        data = out.get("data", {})
        text = data.get("text/plain", data.get("application/papermill.record/text/plain"))
        if name and text is not None:
            text = "".join(text)
            try:
                values[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[name] = text  # a figure or a frame: its repr
    return values


def test_chapter1_says_what_retrains_accuracy_shows():
    g = glued("01")
    assert ("does not mean getting it wrong" in g["ch1_lesson"]) == (g["ch1_fa_retrain"] >= 50)
    less = g["ch1_entropy_retrain"] > g["ch1_entropy_original"]
    assert g["ch1_confidence"] == ("less" if less else "no less")
    assert g["ch1_forget_classes"] > 1 or "full" in g.get("ch1_scenario", ""), "a random forget set of one class"


def test_chapter2_compares_natmu_with_retrain_and_its_noise():
    g = glued("02")
    band, retrain = g["ch2_band"], g["retrain_fa"]
    final = {m: retrain + g[f"{m}_final_gap"] for m in ("amnesiac", "salun", "badteacher", "natmu")}
    assert g["ch2_natmu_end"] == words.against(final["natmu"], retrain, band).words
    closer = [m for m in ("amnesiac", "salun", "badteacher")
              if abs(g[f"{m}_final_gap"]) + band < abs(g["natmu_final_gap"])]
    assert (f"while {method_words(closer)}" in g["ch2_natmu_closest"]) if closer else \
        g["ch2_natmu_closest"].startswith("no relabelling method")
    # the landing page's caption: NatMU's end against Retrain, and who ends closest within the noise
    caption = g["ch2_landing_caption"]
    assert words.against(final["natmu"], retrain, band).words in caption
    closest = words.closest({m: final[m] for m in ("amnesiac", "badteacher", "salun", "natmu")}, retrain, band)
    assert f"{method_words(closest)} end" in caption
    if abs(final["natmu"] - retrain) > band:
        assert "level with" not in caption.split("NatMU ends")[1].split(";")[0]


def test_chapter3_puts_each_delta_on_the_right_side_of_retrain():
    g = glued("03")
    band, retrain = g["ch3_band"], g["retrain_fa_ch3"]
    for key in ("low", "high"):
        fa = g[f"fa_delta_{key}"]
        side = "level" if abs(fa - retrain) <= band else "above" if fa > retrain else "below"
        assert side in g[f"ch3_{key}_side"], (key, fa, retrain, g[f"ch3_{key}_side"])
    if "over-forgets" in g["ch3_verdict"]:
        assert g["fa_delta_high"] < retrain - band <= g["fa_delta_low"]
    if "does not mean more" in g["ch3_verdict"]:
        assert g["fa_delta_low"] <= g["fa_delta_high"] + band


def test_chapter4_judges_the_injection_against_retrain():
    """The paper's Fig. 3 says the injection keeps NatMU from over-forgetting: only where the variant
    without it ends beyond Retrain's noise, and NatMU nearer Retrain."""
    g = glued("04")
    band, retrain = g["ch4_band"], g["retrain_fa_ch4"]
    verdict = g["ch4_ci_verdict"]
    assert verdict == words.injection_verdict(g["fa_with"], g["fa_without"], retrain, band)
    without_level = abs(g["fa_without"] - retrain) <= band
    nearer = abs(g["fa_with"] - retrain) + band < abs(g["fa_without"] - retrain) or (
        abs(g["fa_with"] - retrain) <= band and not without_level)
    assert ("as the paper's Fig. 3 shows" in verdict) == (nearer and not without_level), verdict
    if without_level:
        assert "not what keeps" in verdict and "level with" in verdict
    learns = g["pfa_without"] > g["pfa_with"]
    assert g["ch4_pfa_words"].startswith("learns to call") == learns
    kls = {m: g[f"kl_{m}"] for m in ("amnesiac", "badteacher", "natmu")}
    assert (g["ch4_kl_rank"] == "the most natural of the three") == (min(kls, key=kls.get) == "natmu")


def test_chapter5_compares_the_shift_with_its_control():
    g = glued("05")
    lo, hi = g["ch5_vs_control_lo"], g["ch5_vs_control_hi"]
    expected = "more than" if lo > 0 else "less than" if hi < 0 else "no more, within the hybrids' noise, than"
    assert g["ch5_vs_control"] == expected
    low, high = sorted([g["ch5_share_original"], g["ch5_share_natmu"]])
    where = g["ch5_retrain_where"]
    r = g["ch5_share_retrain"]
    assert where == ("between the Original's and NatMU's" if low <= r <= high else
                     "above both" if r > high else "below both")
    assert 0 <= g["ch5_rows_up"] <= g["ch5_rows"]


def test_chapter7_weighs_natmus_exposure_against_the_attacks_noise():
    g = glued("07")
    assert (g["ch7_rank_ulira"] == 1) == g["ch7_verdict"].startswith("NatMU is also the most private")
    if g["ch7_rank_ulira"] > 1:
        rest = g["ch7_verdict_rest"]
        if abs(g["ch7_natmu_gap"]) < g["ch7_natmu_noise"]:
            assert "as exposed as the original models" in rest
        else:
            assert ("more exposed" if g["ch7_natmu_gap"] > 0 else "less exposed") in rest
        assert not re.search(r"are [+-]\d", rest), "a signed number where words belong"


def test_landing_page_caption_is_chapter2s_computed_one():
    g = glued("02")
    page = HTML / "book" / "intro.html"
    if not page.exists():
        pytest.skip("the book is not built (run `make book`)")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.read_text()))
    assert g["ch2_landing_caption"].split(". ")[-1].rstrip(".") in text.replace("’", "'")
    assert "levels off near" not in text
