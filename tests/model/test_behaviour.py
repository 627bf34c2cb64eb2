"""Behavioural tests of the trained models on real 2023-02 trips they never saw."""

import numpy as np
import pandas as pd
import pytest

from training.model import predict_frame

pytestmark = pytest.mark.model


def _predict(trained, frame):
    return predict_frame(trained["boosters"], trained["columns"], frame)


def test_beats_the_plain_lightgbm_on_the_unseen_month(trained):
    ev = trained["evaluation"]
    for target in ("duration", "fare"):
        ours = ev[target]["lightgbm+features"]["overall"]["mae"]
        plain = ev[target]["plain lightgbm (5 cols)"]["overall"]["mae"]
        ridge = ev[target]["sklearn ridge baseline"]["overall"]["mae"]
        assert ours < plain < ridge * 1.5, (target, ours, plain, ridge)


def test_beats_the_plain_lightgbm_without_distance_too(trained):
    """A request without a route distance: the zone and traffic features must carry it
    better than a plain model of zones and calendar alone."""
    ev = trained["evaluation"]
    for target in ("duration", "fare"):
        ours = ev[target]["lightgbm+features, no distance"]["overall"]["mae"]
        plain = ev[target]["plain lightgbm, no distance (4 cols)"]["overall"]["mae"]
        assert ours < plain, (target, ours, plain)


def test_answers_without_distance_are_worse_but_sane(trained):
    ev = trained["evaluation"]
    for target, bound in (("duration", 6.0), ("fare", 5.0)):
        with_d = ev[target]["lightgbm+features"]["overall"]["mae"]
        without = ev[target]["lightgbm+features, no distance"]["overall"]["mae"]
        assert with_d < without < bound


def test_longer_trips_take_longer_and_cost_more(trained):
    trips = trained["test"].sample(2000, random_state=3)
    short = trips.copy()
    long = trips.copy()
    long["trip_distance"] = short["trip_distance"] + 3.0
    p_short, p_long = _predict(trained, short), _predict(trained, long)
    for target in ("duration", "fare"):
        assert np.mean(p_long[target] > p_short[target]) > 0.95, target
        assert np.median(p_long[target] - p_short[target]) > 0


def test_rush_hour_is_slower_than_4am_in_manhattan(trained):
    test = trained["test"]
    manhattan = test[(test["pickup_borough"] == test["dropoff_borough"])
                     & test["pickup_zone_id"].isin([41, 42, 74, 75, 166, 236])]
    weekday_trips = manhattan.sample(min(1500, len(manhattan)), random_state=4)

    def at(hour):
        frame = weekday_trips.copy()
        frame["hour"], frame["weekday"], frame["minute_of_day"] = hour, 1, hour * 60
        frame["pickup_local"] = pd.Timestamp(f"2023-02-07 {hour:02d}:00")
        return _predict(trained, frame)["duration"]

    rush, night = at(8), at(4)
    assert np.median(rush - night) > 0
    assert rush.mean() > night.mean() * 1.1
