"""Metrics of members, ensemble mean and twin on one split."""

import numpy as np
import pytest

from train.metrics import accuracy, invariance_error, split_metrics


def _members():
    # Two members, three points, two outputs; the mean is exactly `twin`.
    twin = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    offset = np.array([[0.2, -0.2], [0.1, 0.0], [0.0, 0.3]])
    return np.stack([twin + offset, twin - offset]), twin


def test_classification_metrics_both_sides():
    members, twin = _members()
    targets = np.eye(2)[[0, 1, 1]]
    values = split_metrics("test", members, twin, targets, np.array([0, 1, 1]))

    assert values["test/accuracy/twin"] == pytest.approx(2 / 3)
    assert values["test/accuracy/finite_mean"] == pytest.approx(2 / 3)
    assert values["test/loss/twin"] == pytest.approx(0.5 * 2 / 6)
    assert values["test/twin_distance/rms"] == pytest.approx(0.0)
    assert values["test/accuracy/members_min"] <= values["test/accuracy/members_max"]


def test_regression_reports_mae():
    members, twin = _members()
    values = split_metrics("test", members, twin, np.zeros((3, 2)), None)

    assert "test/accuracy/twin" not in values
    assert values["test/mae/twin"] == pytest.approx(0.5)


def test_unlabelled_split_has_distance_only():
    members, twin = _members()
    values = split_metrics("off_manifold", members, twin + 0.1, None, None)

    assert set(values) == {
        "off_manifold/twin_distance/rms",
        "off_manifold/twin_distance/relative",
    }
    assert values["off_manifold/twin_distance/rms"] == pytest.approx(0.1)


def test_accuracy_counts_argmax():
    outputs = np.array([[0.1, 0.9], [0.8, 0.2]])

    assert accuracy(outputs, np.array([1, 1])) == pytest.approx(0.5)


def test_invariance_error_relative_max():
    mean = np.ones((4, 2))

    assert invariance_error(mean, [mean, mean]) == 0.0
    assert invariance_error(mean, [mean, 1.5 * mean]) == pytest.approx(0.5)
