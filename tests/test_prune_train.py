"""course.prune.train: masked fine-tuning, the distillation loss, network slimming's penalty."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from course import prune as P
from course.models import digits_model_path, load_digits_split, train_digits
from course.quant import qat


def _num_grad(f, z, eps=1e-6):
    out = np.zeros_like(z)
    for i in np.ndindex(z.shape):
        d = np.zeros_like(z); d[i] = eps
        out[i] = (f(z + d) - f(z - d)) / (2 * eps)
    return out


@pytest.mark.parametrize("T,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (3.0, 0.0)])
def test_distillation_gradient_and_t_squared(T, alpha):
    g = np.random.default_rng(int(T * 10))
    s, t, y = g.normal(size=(4, 6)), g.normal(size=(4, 6)), np.array([0, 5, 2, 2])
    loss, grad = P.distillation_loss(s, t, y, T, alpha)
    np.testing.assert_allclose(grad, _num_grad(lambda z: P.distillation_loss(z, t, y, T, alpha)[0], s), atol=1e-6)
    pt = P.train.softmax(t / T)
    kl = float((pt * (np.log(pt) - P.train.log_softmax(s / T))).sum() / 4)
    ce = float(-P.train.log_softmax(s)[np.arange(4), y].mean())
    assert loss == pytest.approx(alpha * T * T * kl + (1 - alpha) * ce, rel=1e-10)
    assert P.distillation_loss(t, t, y, T, 1.0)[0] == pytest.approx(0.0, abs=1e-12)


def test_distillation_is_stable_for_large_logits():
    loss, grad = P.distillation_loss(np.array([[1000.0, -1000.0]]), np.array([[-800.0, 900.0]]), np.array([0]))
    assert np.isfinite(loss) and np.isfinite(grad).all()


def test_finetune_keeps_the_mask_and_recovers():
    split = load_digits_split()
    layers = qat.load_onnx_weights(train_digits.build_network(0), onnx.load(str(digits_model_path())))
    masks = P.layer_masks(layers, lambda w: P.magnitude_mask(w, 0.7))
    P.apply_masks(layers, masks)
    before = P.accuracy(layers, split.x_test, split.y_test)
    P.finetune(layers, split.x_train[:600], split.y_train[:600], lambda ls: train_digits.Adam(ls, 1e-3),
               train_digits.softmax_xent, masks=masks, epochs=1, lr=1e-3)
    for i, m in masks.items():
        assert (layers[i].params["W"][~m] == 0).all()
    assert P.accuracy(layers, split.x_test, split.y_test) >= before


def test_slimming_penalty_pushes_gammas_down():
    bn = train_digits.BatchNorm(3)
    bn.params["scale"] = np.array([0.5, -0.2, 0.0])
    bn.grads = {"scale": np.zeros(3), "bias": np.zeros(3)}
    P.l1_gamma_penalty([bn, train_digits.Relu()], 0.1)
    np.testing.assert_allclose(bn.grads["scale"], [0.1, -0.1, 0.0])
