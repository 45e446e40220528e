"""Train the digits CNN in plain numpy and export it to ONNX with onnx.helper.

Run once to (re)make the shipped asset (about a minute on one core, fully seeded)::

    python -m course.models.train_digits            # writes digits_cnn.onnx + digits_cnn.json

Network (NCHW, input [N, 1, 8, 8] in [0, 1]):
    Conv 3x3 1->16 pad 1 -> BatchNormalization -> Relu
    Conv 3x3 16->32 pad 1 -> BatchNormalization -> Relu -> MaxPool 2x2   (32 x 4 x 4)
    Flatten -> Gemm 512->64 -> Relu -> Gemm 64->10 -> logits
The convs have no bias (BN follows), so lesson 08 can fold BN into them and lesson 11 can prune
channels by |BN scale|. Training: softmax cross-entropy, Adam, mini-batches, BN batch statistics
with running averages that the exported (inference-mode) BatchNormalization uses.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from course.models.digits import (MODEL_FILE, NOTE_FILE, SPLIT_SEED, TEST_FRACTION,
                                  load_digits_split)
from course.training import cosine_epochs

BN_EPS = 1e-5
BN_MOMENTUM = 0.1  # running = (1 - m) * running + m * batch, as PyTorch does


# ---- layers: forward(x, train) keeps what backward(dy) needs; grads land in self.grads ---------
class Conv3x3:
    """3x3 convolution, stride 1, pad 1, no bias, as im2col + one matrix product."""

    def __init__(self, rng, c_in: int, c_out: int):
        self.params = {"W": rng.normal(0, np.sqrt(2.0 / (9 * c_in)), (c_out, c_in, 3, 3))}

    @staticmethod
    def _cols(x):  # [B, C, H, W] -> [B, H, W, C*9], column order (c, kh, kw) like W's
        b, c, h, w = x.shape
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        cols = np.stack([xp[:, :, i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=2)
        return cols.transpose(0, 3, 4, 1, 2).reshape(b, h, w, c * 9)

    def forward(self, x, train):
        self.x_shape, self.cols = x.shape, self._cols(x)
        w = self.params["W"].reshape(len(self.params["W"]), -1)
        return (self.cols @ w.T).transpose(0, 3, 1, 2)

    def backward(self, dy):
        b, c, h, w = self.x_shape
        w_mat = self.params["W"].reshape(len(self.params["W"]), -1)
        dy = dy.transpose(0, 2, 3, 1)  # [B, H, W, C_out]
        dw = np.einsum("bhwo,bhwk->ok", dy, self.cols)
        self.grads = {"W": dw.reshape(self.params["W"].shape)}
        dcols = (dy @ w_mat).reshape(b, h, w, c, 3, 3)
        dxp = np.zeros((b, c, h + 2, w + 2))
        for i in range(3):
            for j in range(3):
                dxp[:, :, i:i + h, j:j + w] += dcols[..., i, j].transpose(0, 3, 1, 2)
        return dxp[:, :, 1:-1, 1:-1]


class BatchNorm:
    """Per-channel BN over (batch, H, W); batch stats in training, running stats otherwise."""

    def __init__(self, c: int):
        self.params = {"scale": np.ones(c), "bias": np.zeros(c)}
        self.mean, self.var = np.zeros(c), np.ones(c)

    def forward(self, x, train):
        if train:
            mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
            n = x.size / x.shape[1]
            self.mean = (1 - BN_MOMENTUM) * self.mean + BN_MOMENTUM * mu
            self.var = (1 - BN_MOMENTUM) * self.var + BN_MOMENTUM * var * n / (n - 1)
        else:
            mu, var = self.mean, self.var
        self.inv = 1.0 / np.sqrt(var + BN_EPS)[None, :, None, None]
        self.xhat = (x - mu[None, :, None, None]) * self.inv
        scale, bias = self.params["scale"], self.params["bias"]
        return self.xhat * scale[None, :, None, None] + bias[None, :, None, None]

    def backward(self, dy):
        self.grads = {"scale": (dy * self.xhat).sum(axis=(0, 2, 3)),
                      "bias": dy.sum(axis=(0, 2, 3))}
        dxhat = dy * self.params["scale"][None, :, None, None]
        m_dxhat = dxhat.mean(axis=(0, 2, 3), keepdims=True)
        m_dxhat_xhat = (dxhat * self.xhat).mean(axis=(0, 2, 3), keepdims=True)
        return self.inv * (dxhat - m_dxhat - self.xhat * m_dxhat_xhat)


class Relu:
    params: dict = {}

    def forward(self, x, train):
        self.mask = x > 0
        return x * self.mask

    def backward(self, dy):
        return dy * self.mask


class MaxPool2:
    """2x2 max pooling, stride 2; the gradient goes to the first maximum of each window."""
    params: dict = {}

    def forward(self, x, train):
        b, c, h, w = x.shape
        win = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        win = win.reshape(b, c, h // 2, w // 2, 4)
        self.shape, self.arg = x.shape, win.argmax(axis=-1)
        return win.max(axis=-1)

    def backward(self, dy):
        b, c, h, w = self.shape
        dwin = np.zeros((b, c, h // 2, w // 2, 4))
        np.put_along_axis(dwin, self.arg[..., None], dy[..., None], axis=-1)
        dx = dwin.reshape(b, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
        return dx.reshape(self.shape)


class Flatten:
    params: dict = {}

    def forward(self, x, train):
        self.shape = x.shape
        return x.reshape(len(x), -1)

    def backward(self, dy):
        return dy.reshape(self.shape)


class Dense:
    """y = x W^T + b (ONNX Gemm with transB=1)."""

    def __init__(self, rng, n_in: int, n_out: int, gain: float = 2.0):
        self.params = {"W": rng.normal(0, np.sqrt(gain / n_in), (n_out, n_in)),
                       "B": np.zeros(n_out)}

    def forward(self, x, train):
        self.x = x
        return x @ self.params["W"].T + self.params["B"]

    def backward(self, dy):
        self.grads = {"W": dy.T @ self.x, "B": dy.sum(axis=0)}
        return dy @ self.params["W"]


WIDTHS = (16, 32, 64)  # conv1 channels, conv2 channels, hidden units of fc1


def build_network(seed: int, widths: tuple[int, int, int] = WIDTHS):
    """The layers of the network above; ``widths`` makes narrower or wider variants (the shipped
    model is the default; lesson 10's QAT comparison also trains a quarter-width one)."""
    c1, c2, hidden = widths
    rng = np.random.default_rng(seed)
    return [Conv3x3(rng, 1, c1), BatchNorm(c1), Relu(),
            Conv3x3(rng, c1, c2), BatchNorm(c2), Relu(), MaxPool2(),
            Flatten(), Dense(rng, c2 * 16, hidden), Relu(), Dense(rng, hidden, 10, gain=1.0)]


def forward(layers, x, train: bool = False) -> np.ndarray:
    for layer in layers:
        x = layer.forward(x, train)
    return x


# ---- training --------------------------------------------------------------------------------
def softmax_xent(logits, y):
    """Mean cross-entropy and its gradient w.r.t. the logits (max-subtracted, so stable)."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
    p[np.arange(len(y)), y] -= 1.0
    return loss, p / len(y)


class Adam:
    def __init__(self, layers, lr: float, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4):
        self.layers, self.lr, self.b1, self.b2, self.eps = layers, lr, b1, b2, eps
        self.wd = weight_decay  # L2 on weights only (not on biases or BN parameters)
        self.m = [{k: np.zeros_like(p) for k, p in layer.params.items()} for layer in layers]
        self.v = [{k: np.zeros_like(p) for k, p in layer.params.items()} for layer in layers]
        self.t = 0

    def step(self):
        self.t += 1
        for layer, m, v in zip(self.layers, self.m, self.v):
            for k, p in layer.params.items():
                g = layer.grads[k] + (self.wd * p if k == "W" else 0.0)
                m[k] = self.b1 * m[k] + (1 - self.b1) * g
                v[k] = self.b2 * v[k] + (1 - self.b2) * g * g
                m_hat, v_hat = m[k] / (1 - self.b1 ** self.t), v[k] / (1 - self.b2 ** self.t)
                p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def train(epochs: int = 30, batch_size: int = 32, lr: float = 2e-3, seed: int = 0, log=print,
          widths: tuple[int, int, int] = WIDTHS):
    """Train on the fixed split; returns (layers, test accuracy of the numpy forward pass)."""
    split = load_digits_split()
    x, y = split.x_train.astype(np.float64), split.y_train
    layers = build_network(seed, widths)
    opt = Adam(layers, lr)
    for epoch, batches in cosine_epochs(opt, len(x), epochs, batch_size, lr, np.random.default_rng(seed + 1)):
        total = 0.0
        for idx in batches:
            loss, grad = softmax_xent(forward(layers, x[idx], train=True), y[idx])
            for layer in reversed(layers):
                grad = layer.backward(grad)
            opt.step()
            total += loss * len(idx)
        acc = accuracy(layers, split.x_test, split.y_test)
        log(f"epoch {epoch + 1:2d}  loss {total / len(x):.4f}  test accuracy {acc:.4f}")
    return layers, accuracy(layers, split.x_test, split.y_test)


def accuracy(layers, x, y) -> float:
    return float((forward(layers, x.astype(np.float64)).argmax(axis=1) == y).mean())


# ---- export ----------------------------------------------------------------------------------
def _bn_node(name: str, x: str, y: str, bn: BatchNorm, add) -> onnx.NodeProto:
    ins = [add(f"{name}.scale", bn.params["scale"]), add(f"{name}.bias", bn.params["bias"]),
           add(f"{name}.mean", bn.mean), add(f"{name}.var", bn.var)]
    return helper.make_node("BatchNormalization", [x, *ins], [y], name, epsilon=BN_EPS)


def to_onnx(layers) -> onnx.ModelProto:
    """Write the trained layers as an opset-17 graph with a symbolic batch "N"."""
    conv1, bn1, _, conv2, bn2, _, _, _, fc1, _, fc2 = layers
    inits: list[onnx.TensorProto] = []

    def add(name: str, array) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    node = helper.make_node
    nodes = [
        node("Conv", ["input", add("conv1.W", conv1.params["W"])], ["c1"], "conv1", **conv),
        _bn_node("bn1", "c1", "b1", bn1, add),
        node("Relu", ["b1"], ["r1"], "relu1"),
        node("Conv", ["r1", add("conv2.W", conv2.params["W"])], ["c2"], "conv2", **conv),
        _bn_node("bn2", "c2", "b2", bn2, add),
        node("Relu", ["b2"], ["r2"], "relu2"),
        node("MaxPool", ["r2"], ["p2"], "pool2", kernel_shape=[2, 2], strides=[2, 2]),
        node("Flatten", ["p2"], ["flat"], "flatten", axis=1),
        node("Gemm", ["flat", add("fc1.W", fc1.params["W"]), add("fc1.B", fc1.params["B"])],
             ["h1"], "fc1", transB=1),
        node("Relu", ["h1"], ["r3"], "relu3"),
        node("Gemm", ["r3", add("fc2.W", fc2.params["W"]), add("fc2.B", fc2.params["B"])],
             ["logits"], "fc2", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "digits_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="inference-engines-course/train_digits")
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def onnxruntime_accuracy(model: onnx.ModelProto) -> float:
    import onnxruntime as ort

    split = load_digits_split()
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = sess.run(None, {"input": split.x_test})[0]
    return float((logits.argmax(axis=1) == split.y_test).mean())


def _note(args, acc: float, ort_acc: float) -> dict:
    split = load_digits_split()
    return {
        "model": MODEL_FILE.name,
        "dataset": "sklearn.datasets.load_digits (1797 images, 8x8, 10 classes)",
        "preprocessing": "pixels / 16 -> float32 [N, 1, 8, 8]",
        "split": {"function": "sklearn.model_selection.train_test_split",
                  "test_size": TEST_FRACTION, "random_state": SPLIT_SEED, "stratify": "labels",
                  "n_train": int(len(split.y_train)), "n_test": int(len(split.y_test))},
        "training": {"framework": "numpy (course/models/train_digits.py)",
                     "epochs": args.epochs, "batch_size": 32, "seed": args.seed,
                     "optimizer": "Adam, lr 2e-3 cosine decay, weight decay 1e-4"},
        "test_accuracy_numpy_float64": acc,
        "test_accuracy_onnxruntime": ort_acc,
        "test_errors_onnxruntime": int(round((1 - ort_acc) * len(split.y_test))),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    layers, acc = train(args.epochs, seed=args.seed)
    model = to_onnx(layers)
    ort_acc = onnxruntime_accuracy(model)
    onnx.save(model, MODEL_FILE)
    NOTE_FILE.write_text(json.dumps(_note(args, acc, ort_acc), indent=2) + "\n")
    print(f"wrote {MODEL_FILE} ({MODEL_FILE.stat().st_size} bytes); "
          f"onnxruntime test accuracy {ort_acc:.4f}")


if __name__ == "__main__":
    main()
