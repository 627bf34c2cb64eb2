"""The bulk histogram update the predictor uses matches prometheus-client's own observe."""

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from service.metrics import observe_many

pytestmark = pytest.mark.unit

BUCKETS = (120, 300, 600, 900, 1200, 1800)


def _histogram(registry, name: str):
    # distinct names: in a process where prometheus-client runs in multiprocess mode (BentoML
    # sets PROMETHEUS_MULTIPROC_DIR), values with the same name and labels share one file
    return Histogram(name, "test", ["track"], buckets=BUCKETS, registry=registry)


@pytest.mark.parametrize("values", [
    [5.0, 120.0, 120.5, 899.9, 900.0, 5000.0, 1800.0, 30.0],  # on and between bounds, +Inf
    list(np.random.default_rng(3).gamma(2.0, 400.0, 500)),
    [1.0, 2.0],  # below the bulk threshold: plain observe
])
def test_observe_many_equals_observe_one_by_one(values):
    one, many = CollectorRegistry(), CollectorRegistry()
    tag = f"{len(values)}_{int(sum(values))}"
    child = _histogram(one, f"one_{tag}").labels("stable")
    for v in values:
        child.observe(v)
    observe_many(_histogram(many, f"many_{tag}").labels("stable"), np.array(values))
    for le in [*map(float, BUCKETS), float("inf")]:
        labels = {"track": "stable", "le": str(le) if le != float("inf") else "+Inf"}
        assert many.get_sample_value(f"many_{tag}_bucket", labels) == one.get_sample_value(
            f"one_{tag}_bucket", labels), le
    for name in ("count", "sum"):
        assert many.get_sample_value(f"many_{tag}_{name}", {"track": "stable"}) == \
            pytest.approx(one.get_sample_value(f"one_{tag}_{name}", {"track": "stable"}))


def test_observe_many_skips_nan_instead_of_poisoning_the_sum():
    registry = CollectorRegistry()
    observe_many(_histogram(registry, "nan_case").labels("x"),
                 np.array([100.0, np.nan, 200.0, 300.0, 50.0]))
    assert registry.get_sample_value("nan_case_count", {"track": "x"}) == 4
    assert registry.get_sample_value("nan_case_sum", {"track": "x"}) == 650.0
