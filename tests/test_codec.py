"""Tests of labcore.codec: the Codec base (prepare), the registry, CoordinateRegression."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from labcore import codec as cd


@pytest.fixture
def reg():
    return cd.CoordinateRegression(input_size=(48, 64))


# ----------------------------------------------------------------------------- registry


def test_registry_has_regression_and_builds_it():
    assert cd.CODECS["regression"] is cd.CoordinateRegression
    assert cd.CoordinateRegression.name == "regression"
    c = cd.build_codec("regression", input_size=(32, 16))
    assert isinstance(c, cd.CoordinateRegression) and c.input_size == (32, 16)
    assert "CoordinateRegression(input_size=(32, 16))" == repr(c)


def test_build_unknown_lists_known_names():
    with pytest.raises(ValueError, match="regression") as info:
        cd.build_codec("no-such-codec")
    assert "no-such-codec" in str(info.value)


def test_register_duplicate_and_non_codec():
    class Dummy(cd.Codec):
        def encode(self, keypoints, visible=None, **extra):
            kp, vis = self.prepare(keypoints, visible)
            return {"weights": vis}

        def decode(self, *outputs):
            return outputs[0], torch.ones(outputs[0].shape[:2])

    name = "_test_dummy_codec"
    try:
        assert cd.register_codec(name)(Dummy) is Dummy and Dummy.name == name
        with pytest.raises(ValueError, match=name):
            cd.register_codec(name)(Dummy)
        with pytest.raises(ValueError, match="already registered"):
            cd.register_codec("regression")(Dummy)
        assert cd.CODECS["regression"] is cd.CoordinateRegression  # untouched
    finally:
        cd.CODECS.pop(name, None)
    with pytest.raises(TypeError, match="Codec subclass"):
        cd.register_codec("_test_not_a_codec")(dict)
    with pytest.raises(TypeError, match="name"):
        cd.register_codec("")
    assert "_test_not_a_codec" not in cd.CODECS


def test_codec_is_abstract():
    with pytest.raises(TypeError):
        cd.Codec()


# ----------------------------------------------------------------------------- prepare


def test_prepare_accepts_numpy_and_defaults(reg):
    kp = np.arange(12, dtype=np.float64).reshape(2, 3, 2)
    t, vis = reg.prepare(kp)
    assert t.dtype == torch.float32 and t.shape == (2, 3, 2)
    assert vis.dtype == torch.float32 and vis.tolist() == [[1.0] * 3] * 2
    _, vis = reg.prepare(torch.zeros(2, 3, 2), np.array([[True, False, True]] * 2))
    assert vis.tolist() == [[1.0, 0.0, 1.0]] * 2
    t3, _ = reg.prepare(torch.zeros(1, 4, 3), dim=3)
    assert t3.shape == (1, 4, 3)
    # keypoints outside the image are fine here (codecs weight them 0)
    reg.prepare(np.array([[[-100.0, 1e4]]]))


def test_prepare_errors(reg):
    with pytest.raises(ValueError, match=r"keypoints.*single instance.*keypoints\[None\]"):
        reg.prepare(np.zeros((17, 2)))
    with pytest.raises(ValueError, match="keypoints"):
        reg.prepare(np.zeros((1, 17, 2, 1)))
    with pytest.raises(ValueError, match="keypoints.*NaN"):
        reg.prepare(np.array([[[np.nan, 1.0]]]))
    with pytest.raises(ValueError, match="keypoints.*inf"):
        reg.prepare(np.array([[[np.inf, 1.0]]]))
    with pytest.raises(ValueError, match="keypoints.*non-empty"):
        reg.prepare(np.zeros((0, 17, 2)))
    with pytest.raises(ValueError, match="keypoints"):
        reg.prepare(np.zeros((2, 17, 3)))  # wrong dim
    with pytest.raises(ValueError, match="visible"):
        reg.prepare(np.zeros((2, 17, 2)), np.ones((2, 16)))
    with pytest.raises(ValueError, match="visible"):
        reg.prepare(np.zeros((2, 17, 2)), np.ones(17))
    with pytest.raises(ValueError, match=r"visible.*\{0, 1\}"):
        reg.prepare(np.zeros((1, 2, 2)), np.array([[2.0, 1.0]]))
    with pytest.raises(ValueError, match="visible.*NaN"):
        reg.prepare(np.zeros((1, 2, 2)), np.array([[np.nan, 1.0]]))
    with pytest.raises(TypeError, match="keypoints"):
        reg.prepare("not keypoints")


# ----------------------------------------------------------------------------- CoordinateRegression


def test_regression_encode_by_hand(reg):
    kp = np.array([[[0.0, 0.0], [47.0, 63.0], [24.0, 64.0], [-0.5, 3.0], [12.0, 16.0]]], np.float32)
    vis = np.array([[1, 1, 1, 1, 0]], np.float32)
    out = reg.encode(kp, vis)
    assert set(out) == {"keypoint_labels", "weights"}
    np.testing.assert_allclose(out["keypoint_labels"][0, 1].numpy(), [47 / 48, 63 / 64])
    # mmpose RegressionLabel: valid = visible and 0 <= kp <= [W-1, H-1]
    assert out["weights"].tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0]]


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float32, (3, 5, 2), elements=st.floats(-50, 150, width=32)))
def test_regression_round_trip(kp):
    c = cd.build_codec("regression", input_size=(48, 64))
    out = c.encode(kp)
    dec, scores = c.decode(out["keypoint_labels"])
    np.testing.assert_allclose(dec.numpy(), kp, rtol=1e-6, atol=1e-4)
    assert scores.shape == (3, 5) and bool((scores == 1).all())
    inside = ((kp >= 0) & (kp <= [47, 63])).all(-1)
    np.testing.assert_array_equal(out["weights"].numpy(), inside.astype(np.float32))


def test_regression_decode_keeps_device_and_dtype_and_errors(reg):
    labels = torch.rand(2, 3, 2, dtype=torch.float64)
    kp, scores = reg.decode(labels)
    assert kp.dtype == torch.float64 and kp.device == labels.device
    torch.testing.assert_close(kp, labels * torch.tensor([48.0, 64.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="labels"):
        reg.decode(torch.rand(3, 2))
    with pytest.raises(ValueError, match="labels.*NaN"):
        reg.decode(torch.full((1, 3, 2), float("nan")))
    with pytest.raises(TypeError, match="one output"):
        reg.decode(labels, labels)
    with pytest.raises(TypeError, match="depth"):
        reg.encode(np.zeros((1, 2, 2)), depth=np.zeros((1, 2)))
    with pytest.raises(TypeError, match="input_size"):
        cd.CoordinateRegression(input_size=(48, 64, 3))
    with pytest.raises(ValueError, match="input_size"):
        cd.CoordinateRegression(input_size=(0, 64))


def test_regression_gradient_flows_through_decode(reg):
    labels = torch.rand(1, 2, 2, requires_grad=True)
    kp, _ = reg.decode(labels)
    kp.sum().backward()
    assert labels.grad.tolist() == [[[48.0, 64.0], [48.0, 64.0]]]
