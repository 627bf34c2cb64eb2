"""Dataset versions: a content hash of the inputs, the rules and the feature config."""

import shutil

import pytest

from tests.conftest import FEB, JAN
from training.features import FeatureConfig
from training.pipeline import dataset_version

pytestmark = pytest.mark.unit


def test_same_content_same_version_whatever_the_path(tmp_path):
    copy = tmp_path / JAN.name
    shutil.copy(JAN, copy)
    assert dataset_version([JAN, FEB], FeatureConfig()) == dataset_version(
        [FEB, copy], FeatureConfig())


def test_content_rules_and_features_change_the_version(tmp_path, monkeypatch):
    base = dataset_version([JAN], FeatureConfig())
    edited = tmp_path / JAN.name
    data = bytearray(JAN.read_bytes())
    data[len(data) // 2] ^= 0xFF
    edited.write_bytes(bytes(data))
    assert dataset_version([edited], FeatureConfig()) != base
    assert dataset_version([JAN], FeatureConfig(window_days=14)) != base
    monkeypatch.setattr("training.pipeline.RULES_VERSION", "999")
    assert dataset_version([JAN], FeatureConfig()) != base
