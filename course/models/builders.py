"""Six classic image-classifier architectures written as ONNX graphs, with seeded random weights.

Every builder returns an opset-17 ``onnx.ModelProto`` with one input ``"input"`` (float32
``[batch, 3, image_size, image_size]``) and one output ``"logits"`` (``[batch, num_classes]``).
``batch`` is an int (default 1) or a name such as ``"N"`` for a symbolic batch. Nothing is
downloaded: the structure follows the published architectures, the weights are random (He
initialisation, BatchNormalization near identity) so activations keep a sane scale with depth.
Defaults give the ImageNet-sized networks (224x224, 1000 classes); small ``image_size`` /
``num_classes`` / ``width`` give quick variants for tests.

Only ops from the engine's op set are used (Conv, BatchNormalization, Relu, Clip, MaxPool,
AveragePool, GlobalAveragePool, LRN, Concat, Split, Reshape, Transpose, Add, Flatten, Dropout,
Gemm).
"""
from __future__ import annotations

import numpy as np
import onnx

from course.models._net import Net


def _finish(net: Net, y: str, batch, image_size: int, num_classes: int) -> onnx.ModelProto:
    return net.model("input", y, [batch, 3, image_size, image_size], [batch, num_classes])


def _ch(c: float, width: float, divisor: int = 8) -> int:
    """Scale a channel count by ``width``, rounded to a multiple of ``divisor`` (at least one)."""
    return max(divisor, int(c * width + divisor / 2) // divisor * divisor)


# ---- ResNet-18 -------------------------------------------------------------------------------
def _basic_block(net: Net, x: str, c_in: int, c_out: int, stride: int) -> str:
    y = net.conv_bn(x, c_in, c_out, 3, stride)
    # A smaller gamma on the last BN of the branch keeps the variance of x + f(x) from doubling
    # at every block (the "zero-init residual" idea, softened so the branch still matters).
    y = net.conv_bn(y, c_out, c_out, 3, act=None, gamma=0.5)
    if stride != 1 or c_in != c_out:
        x = net.conv_bn(x, c_in, c_out, 1, stride, act=None)
    return net.relu(net.op("Add", [x, y]))


def resnet(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
           seed: int = 0) -> onnx.ModelProto:
    """ResNet-18: 7x7/2 stem, MaxPool, four stages of two basic blocks, GlobalAveragePool, Gemm."""
    net = Net("resnet18", seed)
    c = _ch(64, width)
    x = net.maxpool(net.conv_bn("input", 3, c, 7, 2), 3, 2, pad=1)
    for stage, mult in enumerate((1, 2, 4, 8)):
        c_out = _ch(64 * mult, width)
        for i in range(2):
            x = _basic_block(net, x, c, c_out, 2 if (stage > 0 and i == 0) else 1)
            c = c_out
    return _finish(net, net.head(x, c, num_classes), batch, image_size, num_classes)


# ---- Inception v1 (GoogLeNet) ----------------------------------------------------------------
def _conv_relu(net: Net, x: str, c_in: int, c_out: int, k: int, stride: int = 1) -> str:
    return net.relu(net.conv(x, c_in, c_out, k, stride, bias=True))


def _inception(net: Net, x: str, c_in: int, c1: int, c3r: int, c3: int, c5r: int, c5: int,
               cp: int) -> tuple[str, int]:
    """Four parallel branches (1x1 | 1x1->3x3 | 1x1->5x5 | 3x3 MaxPool->1x1) joined by Concat."""
    b1 = _conv_relu(net, x, c_in, c1, 1)
    b3 = _conv_relu(net, _conv_relu(net, x, c_in, c3r, 1), c3r, c3, 3)
    b5 = _conv_relu(net, _conv_relu(net, x, c_in, c5r, 1), c5r, c5, 5)
    bp = _conv_relu(net, net.maxpool(x, 3, 1, pad=1), c_in, cp, 1)
    return net.op("Concat", [b1, b3, b5, bp], axis=1), c1 + c3 + c5 + cp


def inception(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
              seed: int = 0) -> onnx.ModelProto:
    """GoogLeNet-like: conv stem with LRN, inception modules 3a-3b, 4a-4c, 5a-5b, GAP, Gemm."""
    net = Net("inception_v1", seed)
    lrn = dict(size=5, alpha=1e-4, beta=0.75, bias=1.0)
    x = net.maxpool(_conv_relu(net, "input", 3, _ch(64, width), 7, 2), 3, 2, pad=1)
    x = net.op("LRN", [x], **lrn)
    x = _conv_relu(net, x, _ch(64, width), _ch(64, width), 1)
    x = _conv_relu(net, x, _ch(64, width), _ch(192, width), 3)
    x = net.maxpool(net.op("LRN", [x], **lrn), 3, 2, pad=1)
    c = _ch(192, width)
    modules = {  # name: (1x1, 3x3 reduce, 3x3, 5x5 reduce, 5x5, pool proj), as in the paper
        "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
        "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
        "4c": (128, 128, 256, 24, 64, 64),
        "5a": (256, 160, 320, 32, 128, 128), "5b": (384, 192, 384, 48, 128, 128),
    }
    for name, cfg in modules.items():
        if name in ("4a", "5a"):
            x = net.maxpool(x, 3, 2, pad=1)
        x, c = _inception(net, x, c, *(_ch(v, width) for v in cfg))
    return _finish(net, net.head(x, c, num_classes, dropout=True), batch, image_size, num_classes)


# ---- DenseNet --------------------------------------------------------------------------------
def _dense_layer(net: Net, x: str, c_in: int, growth: int) -> str:
    """Pre-activation bottleneck BN-ReLU-1x1 (4*growth) -> BN-ReLU-3x3 (growth)."""
    y = net.conv(net.relu(net.bn(x, c_in)), c_in, 4 * growth, 1)
    return net.conv(net.relu(net.bn(y, 4 * growth)), 4 * growth, growth, 3)


def densenet(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
             seed: int = 0, blocks: tuple[int, ...] = (6, 12, 16, 8)) -> onnx.ModelProto:
    """DenseNet-BC-like: each layer's output is Concat-ed to its input; transitions halve the
    channels (1x1 conv) and the resolution (2x2 AveragePool). Default depth sits between
    DenseNet-121's blocks (6, 12, 24, 16) and a toy, to keep the graph moderate."""
    net = Net("densenet", seed)
    growth = _ch(32, width)
    c = 2 * growth
    x = net.maxpool(net.conv_bn("input", 3, c, 7, 2), 3, 2, pad=1)
    for b, n_layers in enumerate(blocks):
        for _ in range(n_layers):
            x = net.op("Concat", [x, _dense_layer(net, x, c, growth)], axis=1)
            c += growth
        if b < len(blocks) - 1:
            y = net.conv(net.relu(net.bn(x, c)), c, c // 2, 1)
            x, c = net.avgpool(y, 2, 2), c // 2
    x = net.relu(net.bn(x, c))
    return _finish(net, net.head(x, c, num_classes), batch, image_size, num_classes)


# ---- MobileNetV2 -----------------------------------------------------------------------------
def _inverted_residual(net: Net, x: str, c_in: int, c_out: int, stride: int, t: int) -> str:
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear bottleneck; + x when shapes
    match."""
    # He gain 2 where a conv reads a rectified input, 1 where it reads a linear one: BN here uses
    # fixed running stats, so only the init keeps E[x^2] level from block to block.
    hidden = c_in * t
    y = net.conv_bn(x, c_in, hidden, 1, act="relu6", gain=1.0) if t != 1 else x
    y = net.conv_bn(y, hidden, hidden, 3, stride, group=hidden, act="relu6")
    residual = stride == 1 and c_in == c_out
    y = net.conv_bn(y, hidden, c_out, 1, act=None, gamma=0.5 if residual else 1.0)
    if residual:
        return net.op("Add", [x, y])
    return y


def mobilenetv2(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
                seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2: inverted residual blocks with depthwise convs (group = channels), ReLU6 as
    Clip(0, 6) with min/max inputs, linear bottlenecks, a 1280-channel 1x1 conv, Dropout, Gemm."""
    net = Net("mobilenetv2", seed)
    c = _ch(32, width)
    x = net.conv_bn("input", 3, c, 3, 2, act="relu6")
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]  # (expansion t, channels, repeats, first stride)
    for t, ch, n, s in settings:
        for i in range(n):
            x = _inverted_residual(net, x, c, _ch(ch, width), s if i == 0 else 1, t)
            c = _ch(ch, width)
    last = _ch(1280, max(1.0, width))
    x = net.conv_bn(x, c, last, 1, act="relu6", gain=1.0)
    return _finish(net, net.head(x, last, num_classes, dropout=True), batch, image_size,
                   num_classes)


# ---- SqueezeNet 1.1 --------------------------------------------------------------------------
def _fire(net: Net, x: str, c_in: int, squeeze: int, expand: int) -> tuple[str, int]:
    """Squeeze 1x1 -> parallel expand 1x1 and 3x3, Concat-ed."""
    s = _conv_relu(net, x, c_in, squeeze, 1)
    e1 = _conv_relu(net, s, squeeze, expand, 1)
    e3 = _conv_relu(net, s, squeeze, expand, 3)
    return net.op("Concat", [e1, e3], axis=1), 2 * expand


def squeezenet(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
               seed: int = 0) -> onnx.ModelProto:
    """SqueezeNet 1.1: fire modules, MaxPool with ceil_mode, Dropout, a 1x1 conv classifier,
    ReLU and GlobalAveragePool (no Gemm)."""
    net = Net("squeezenet1_1", seed)
    c = _ch(64, width)
    x = net.maxpool(_conv_relu(net, "input", 3, c, 3, 2), 3, 2, ceil=True)
    plan = [(16, 64), (16, 64), "pool", (32, 128), (32, 128), "pool",
            (48, 192), (48, 192), (64, 256), (64, 256)]
    for step in plan:
        if step == "pool":
            x = net.maxpool(x, 3, 2, ceil=True)
        else:
            x, c = _fire(net, x, c, _ch(step[0], width), _ch(step[1], width))
    x = net.op("Dropout", [x, net.const(0.5, np.float32)])
    x = _conv_relu(net, x, c, num_classes, 1)
    y = net.op("Flatten", [net.op("GlobalAveragePool", [x])], axis=1)
    return _finish(net, y, batch, image_size, num_classes)


# ---- ShuffleNet v2 ---------------------------------------------------------------------------
def _shuffle(net: Net, x: str, c: int, hw: int, groups: int = 2) -> str:
    """Channel shuffle: [N, C, H, W] -> [N, g, C/g, H, W] -> swap axes 1, 2 -> [N, C, H, W].
    A 0 in a Reshape shape copies that input dim, so the batch may stay symbolic."""
    y = net.op("Reshape", [x, net.const([0, groups, c // groups, hw, hw])])
    y = net.op("Transpose", [y], perm=[0, 2, 1, 3, 4])
    return net.op("Reshape", [y, net.const([0, c, hw, hw])])


def _shuffle_branch(net: Net, x: str, c_in: int, c_out: int, stride: int) -> str:
    y = net.conv_bn(x, c_in, c_out, 1)
    y = net.conv_bn(y, c_out, c_out, 3, stride, group=c_out, act=None)
    return net.conv_bn(y, c_out, c_out, 1, gain=1.0)  # reads the linear depthwise output


def _shuffle_unit(net: Net, x: str, c_in: int, c_out: int, stride: int, hw: int) -> str:
    half = c_out // 2
    if stride == 1:  # split channels: half passes through, half goes through the branch
        left, right = net.op("Split", [x, net.const([half, half])], n_out=2, axis=1)
        right = _shuffle_branch(net, right, half, half, 1)
    else:  # downsampling unit: both halves see the whole input
        left = net.conv_bn(x, c_in, c_in, 3, 2, group=c_in, act=None)
        left = net.conv_bn(left, c_in, half, 1, gain=1.0)
        right = _shuffle_branch(net, x, c_in, half, 2)
    return _shuffle(net, net.op("Concat", [left, right], axis=1), c_out, hw)


def shufflenet(batch=1, image_size: int = 224, num_classes: int = 1000, width: float = 1.0,
               seed: int = 0) -> onnx.ModelProto:
    """ShuffleNet v2 (1.0x): channel split, depthwise convs, Concat and channel shuffle
    (Reshape -> Transpose -> Reshape), stages of 4/8/4 units, a 1024-channel 1x1 conv, Gemm."""
    net = Net("shufflenet_v2", seed)
    hw = (image_size - 1) // 2 + 1  # 3x3/2 conv, pad 1
    hw = (hw - 1) // 2 + 1  # 3x3/2 MaxPool, pad 1
    c = 24
    x = net.maxpool(net.conv_bn("input", 3, c, 3, 2), 3, 2, pad=1)
    for ch, repeats in ((116, 4), (232, 8), (464, 4)):
        c_out = 2 * _ch(ch * width / 2, 1.0, divisor=2)
        for i in range(repeats):
            stride = 2 if i == 0 else 1
            if stride == 2:
                hw = (hw - 1) // 2 + 1
            x = _shuffle_unit(net, x, c, c_out, stride, hw)
            c = c_out
    last = _ch(1024, max(1.0, width))
    x = net.conv_bn(x, c, last, 1)
    return _finish(net, net.head(x, last, num_classes), batch, image_size, num_classes)


MODELS = {
    "resnet": resnet,
    "inception": inception,
    "densenet": densenet,
    "mobilenetv2": mobilenetv2,
    "squeezenet": squeezenet,
    "shufflenet": shufflenet,
}
MODEL_NAMES = tuple(MODELS)


def build_model(name: str, **kwargs) -> onnx.ModelProto:
    """``build_model("resnet", batch="N")``: the builder registered under ``name``."""
    try:
        builder = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
    return builder(**kwargs)
