"""The backtest's month windows and its verdict, on small frames built here."""

import pandas as pd
import pytest

from training.backtest import Variant, summary, training_months

pytestmark = pytest.mark.unit

PRESENT = ["2021-01", "2021-02", "2021-03", "2022-01", "2022-02", "2023-01", "2023-02"]


def test_windows_take_the_newest_months_present_before_the_evaluation_month():
    assert training_months(PRESENT, "2022-01", None) == ["2021-01", "2021-02", "2021-03"]
    # a gap in the data: the window counts months present, not calendar months
    assert training_months(PRESENT, "2022-01", 2) == ["2021-02", "2021-03"]
    assert training_months(PRESENT, "2023-02", 1) == ["2023-01"]
    assert training_months(PRESENT, "2021-01", None) == []


def test_variant_names_say_the_policy():
    assert Variant(None, 120.0).name == "all months, half-life 120 d"
    assert Variant(3, None).name == "last 3 mo, no decay"


def test_a_month_counts_as_won_only_when_both_measures_beat_the_plain_model():
    rows = pd.DataFrame([
        # won: better with and without distance
        {"eval_month": "2023-01", "variant": "v", "target": "fare", "ours": 1.0,
         "plain": 1.2, "ours_no_distance": 2.0, "plain_no_distance": 2.5},
        # lost: better with distance only
        {"eval_month": "2023-02", "variant": "v", "target": "fare", "ours": 1.0,
         "plain": 1.2, "ours_no_distance": 2.6, "plain_no_distance": 2.5},
    ])
    got = summary(rows).iloc[0]
    assert (got["months"], got["months_won"]) == (2, 1)
    assert got["ours"] == pytest.approx(1.0) and got["plain_no_distance"] == pytest.approx(2.5)
