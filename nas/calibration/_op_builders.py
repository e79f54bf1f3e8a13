"""The builders of the generated calibration models (`_op_samples`): each returns a Keras model made
around one operator, or a short pattern of them as real models use it, with its shapes drawn from
`rng`. `OP_BUILDERS` names them by operator; its order fixes the draws (`_op_samples._SHARED_GENERATOR`)."""

from __future__ import annotations

from typing import Callable

from ._builder_parts import _L, _image
from ._seq_builders import _attention, _elementwise_chain, _layer_norm, _recurrent, _scores_softmax, _squared_difference

__all__ = ["OP_BUILDERS"]


def _unary(layer_factory):
    def build(rng):
        keras, L = _L()
        inputs = keras.Input(_image(rng))
        return keras.Model(inputs, layer_factory(L, rng)(inputs))
    return build


def _lambda(fn):
    def make(L, rng):
        return L.Lambda(fn)
    return make


def _hard_swish(x):
    from ..backend import tf

    return x * tf.nn.relu6(x + 3.0) * (1.0 / 6.0)


def _binary(op: str, broadcast: bool = False):
    def build(rng):
        keras, L = _L()
        shape = _image(rng)
        a = keras.Input(shape)
        b = keras.Input((1, 1, shape[2]) if broadcast else shape)
        if op == "add":
            out = L.Add()([a, b]) if not broadcast else L.Lambda(lambda t: t[0] + t[1])([a, b])
        elif op == "sub":
            out = L.Lambda(lambda t: t[0] - t[1])([a, b])
        elif op in ("maximum", "minimum"):
            from ..backend import tf

            out = L.Lambda(lambda t: getattr(tf, op)(t[0], t[1]))([a, b])
        else:
            out = L.Multiply()([a, b]) if not broadcast else L.Lambda(lambda t: t[0] * t[1])([a, b])
        return keras.Model([a, b], out)
    return build


def _squeeze_excite(rng):
    """MEAN -> FULLY_CONNECTED / CONV -> LOGISTIC or HARD_SWISH -> broadcast MUL (MobileNetV3's pattern)."""
    keras, L = _L()
    shape = _image(rng, channels=(8, 16, 32, 64))
    inputs = keras.Input(shape)
    s = L.GlobalAveragePooling2D(keepdims=True)(inputs)
    s = L.Conv2D(max(shape[2] // 4, 2), 1, activation="relu")(s)
    s = L.Conv2D(shape[2], 1, activation="sigmoid" if rng.random() < 0.5 else "hard_sigmoid")(s)
    return keras.Model(inputs, L.Multiply()([inputs, s]))


def _concat(rng):
    keras, L = _L()
    h, w, c = _image(rng)
    count = int(rng.integers(2, 5))
    if rng.random() < 0.8:  # channels, as fire modules and detector heads concatenate
        inputs = [keras.Input((h, w, int(rng.choice([1, 3, 8, 16, 32])))) for _ in range(count)]
        return keras.Model(inputs, L.Concatenate(axis=-1)(inputs))
    inputs = [keras.Input((h, int(rng.integers(2, 20)), c)) for _ in range(count)]
    return keras.Model(inputs, L.Concatenate(axis=2)(inputs))


def _pad(rng):
    keras, L = _L()
    inputs = keras.Input(_image(rng))
    pads = tuple(tuple(int(p) for p in rng.integers(0, 3, 2)) for _ in range(2))
    if pads == ((0, 0), (0, 0)):
        pads = ((1, 1), (1, 1))
    return keras.Model(inputs, L.ZeroPadding2D(pads)(inputs))


def _padv2(rng):
    keras, L = _L()
    from ..backend import tf

    inputs = keras.Input(_image(rng))
    p = int(rng.integers(1, 3))
    value = float(rng.uniform(0.1, 0.9))
    out = L.Lambda(lambda x: tf.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], constant_values=value))(inputs)
    return keras.Model(inputs, out)


def _pool(kind: str):
    def build(rng):
        keras, L = _L()
        inputs = keras.Input(_image(rng, min_size=6))
        size = int(rng.choice([2, 3]))
        stride = int(rng.choice([1, 2]))
        layer = L.MaxPooling2D if kind == "max" else L.AveragePooling2D
        return keras.Model(inputs, layer(size, stride, str(rng.choice(["same", "valid"])))(inputs))
    return build


def _mean(rng):
    keras, L = _L()
    from ..backend import tf

    inputs = keras.Input(_image(rng))
    if rng.random() < 0.6:
        return keras.Model(inputs, L.GlobalAveragePooling2D(keepdims=bool(rng.random() < 0.5))(inputs))
    return keras.Model(inputs, L.Lambda(lambda x: tf.reduce_mean(x, axis=2))(inputs))


def _reshape(rng):
    keras, L = _L()
    h, w, c = _image(rng)
    inputs = keras.Input((h, w, c))
    x = L.Conv2D(int(rng.choice([4, 8, 16])), 1)(inputs)  # a kernel before it, so the reshape is not an input alias
    return keras.Model(inputs, L.Reshape((-1, int(x.shape[-1])))(x) if rng.random() < 0.5 else L.Flatten()(x))


def _squeeze(rng):
    keras, L = _L()
    from ..backend import tf

    w, c = int(rng.integers(4, 64)), int(rng.choice([4, 8, 16, 32]))
    inputs = keras.Input((1, w, c))
    x = L.Conv2D(c, 1)(inputs)
    return keras.Model(inputs, L.Lambda(lambda t: tf.squeeze(t, axis=1))(x))


def _strided_slice(rng):
    keras, L = _L()
    h, w, c = _image(rng, min_size=6)
    inputs = keras.Input((h, w, c))
    a, b = int(rng.integers(0, h // 2)), int(rng.integers(h // 2 + 1, h + 1))
    step = int(rng.choice([1, 2]))
    return keras.Model(inputs, L.Lambda(lambda x: x[:, a:b, ::step, : max(c // 2, 1)])(inputs))


def _transpose(rng):
    keras, L = _L()
    inputs = keras.Input(_image(rng))
    return keras.Model(inputs, L.Permute((2, 1, 3) if rng.random() < 0.5 else (3, 1, 2))(inputs))


def _softmax(rng):
    keras, L = _L()
    if rng.random() < 0.5:
        inputs = keras.Input((int(rng.choice([2, 10, 100, 1000])),))
    else:  # per-anchor class scores of a detector head, per-frame scores of an audio model
        inputs = keras.Input((int(rng.integers(2, 200)), int(rng.choice([2, 4, 21, 91]))))
    return keras.Model(inputs, L.Softmax()(inputs))


def _fc3d(rng):
    keras, L = _L()
    inputs = keras.Input((int(rng.integers(2, 50)), int(rng.choice([8, 16, 40, 64, 128]))))
    act = str(rng.choice(["linear", "relu"]))
    return keras.Model(inputs, L.Dense(int(rng.choice([4, 16, 32, 64, 128])), activation=act)(inputs))


def _transpose_conv(rng):
    keras, L = _L()
    inputs = keras.Input(_image(rng, max_size=20, channels=(1, 4, 8, 16, 32)))
    layer = L.Conv2DTranspose(int(rng.choice([4, 8, 16, 32])), int(rng.choice([2, 3, 4])), int(rng.choice([1, 2])),
                              str(rng.choice(["same", "valid"])))
    return keras.Model(inputs, layer(inputs))


def _resize(rng):
    keras, L = _L()
    inputs = keras.Input(_image(rng, max_size=24))
    return keras.Model(inputs, L.UpSampling2D(int(rng.choice([2, 3])), interpolation="nearest")(inputs))


_ACTIVATIONS = ("linear", "relu", "relu6", "tanh", "sigmoid")


def _conv(depthwise: bool):
    def build(rng):
        keras, L = _L()
        inputs = keras.Input(_image(rng, min_size=6, max_size=32, channels=(1, 3, 8, 16, 32)))
        k = int(rng.choice([1, 3, 5])) if not depthwise else int(rng.choice([3, 5]))
        dilation = int(rng.choice([1, 1, 2])) if k > 1 else 1
        stride = 1 if dilation > 1 else int(rng.choice([1, 2]))
        padding = str(rng.choice(["same", "valid"]))
        if (k - 1) * dilation + 1 > min(inputs.shape[1], inputs.shape[2]):
            padding = "same"
        act = str(rng.choice(_ACTIVATIONS))
        activation = (lambda x: keras.activations.relu(x, max_value=6.0)) if act == "relu6" else act
        if depthwise:
            layer = L.DepthwiseConv2D(k, stride, padding, depth_multiplier=int(rng.choice([1, 1, 2])),
                                      dilation_rate=dilation, activation=activation)
        else:
            layer = L.Conv2D(int(rng.choice([4, 8, 16, 32, 64])), k, stride, padding, dilation_rate=dilation,
                             activation=activation)
        return keras.Model(inputs, layer(inputs))
    return build


def _detector_head(rng):
    """Box and class heads on two feature maps: CONV -> RESHAPE -> CONCATENATION -> LOGISTIC (SSD's tail)."""
    keras, L = _L()
    size = int(rng.choice([8, 12, 16]))
    inputs = keras.Input((size, size, int(rng.choice([8, 16]))))
    small = L.Conv2D(16, 3, 2, "same", activation="relu")(inputs)
    anchors, classes = int(rng.choice([2, 3])), int(rng.choice([2, 4]))
    boxes = [L.Reshape((-1, 4))(L.Conv2D(anchors * 4, 1)(f)) for f in (inputs, small)]
    scores = [L.Reshape((-1, classes))(L.Conv2D(anchors * classes, 1)(f)) for f in (inputs, small)]
    return keras.Model(inputs, [L.Concatenate(axis=1)(boxes), L.Activation("sigmoid")(L.Concatenate(axis=1)(scores))])


def _swish(L, x):
    return L.Multiply()([x, L.Activation("sigmoid")(x)])  # LOGISTIC and MUL: TFLite has no swish operator


def _swish_unary(rng):
    keras, L = _L()
    inputs = keras.Input(_image(rng))
    return keras.Model(inputs, _swish(L, L.Conv2D(int(rng.choice([4, 8, 16, 32])), 1)(inputs)))


def _mbconv(rng):
    """EfficientNet's MBConv: 1x1 expansion, depthwise, squeeze-excite, each with swish (LOGISTIC x MUL), 1x1 projection, residual ADD."""
    keras, L = _L()
    shape = _image(rng, min_size=6, max_size=32, channels=(8, 16, 24, 32))
    inputs = keras.Input(shape)
    stride = int(rng.choice([1, 2]))
    y = _swish(L, L.Conv2D(shape[2] * int(rng.choice([2, 4, 6])), 1)(inputs))
    y = _swish(L, L.DepthwiseConv2D(int(rng.choice([3, 5])), stride, "same")(y))
    s = _swish(L, L.Conv2D(max(shape[2] // 4, 2), 1)(L.GlobalAveragePooling2D(keepdims=True)(y)))
    y = L.Multiply()([y, L.Conv2D(int(y.shape[-1]), 1, activation="sigmoid")(s)])
    y = L.Conv2D(shape[2], 1)(y)
    return keras.Model(inputs, L.Add()([inputs, y]) if stride == 1 else y)


def _preactivation(rng):
    """DenseNet's and ResNet v2's BATCH_NORM -> RELU -> CONV on a concatenation: the batch norm
    follows no convolution, so the converter keeps it as a per-channel MUL and ADD."""
    keras, L = _L()
    shape = _image(rng, min_size=6, max_size=32, channels=(8, 16, 24, 32, 48))
    inputs = keras.Input(shape)
    x = L.Concatenate()([inputs, L.Conv2D(int(rng.choice([8, 12, 16])), 3, padding="same")(inputs)])
    y = L.ReLU()(L.BatchNormalization()(x))
    return keras.Model(inputs, L.Conv2D(int(rng.choice([12, 24, 48])), int(rng.choice([1, 3])), padding="same")(y))


def _mlp(rng):
    """Dense layers on a flat vector, batch norm and ReLU between (anomaly-detection and sensor MLPs)."""
    keras, L = _L()
    inputs = keras.Input((int(rng.choice([16, 64, 128, 256, 640, 1024])),))
    x = inputs
    for _ in range(int(rng.integers(2, 7))):
        x = L.Dense(int(rng.choice([8, 16, 32, 64, 128, 256])))(x)
        if rng.random() < 0.5:
            x = L.BatchNormalization()(x)
        x = L.ReLU()(x)
    return keras.Model(inputs, L.Dense(int(rng.choice([8, 64, 640])))(x))


def _decoder(rng):
    """An autoencoder's or a segmentation net's decoder: one or two stride-2 transposed
    convolutions of 8 to 64 channels, each with batch norm and ReLU."""
    keras, L = _L()
    inputs = keras.Input(_image(rng, min_size=2, max_size=12, channels=(16, 32, 64)))
    x = inputs
    for _ in range(int(rng.integers(1, 3))):
        x = L.Conv2DTranspose(int(rng.choice([8, 16, 24, 32, 48, 64])), int(rng.choice([2, 3, 4])), 2,
                              str(rng.choice(["same", "valid"])), use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    return keras.Model(inputs, x)


def _upsample(rng):
    """A learned 2x upsampling (a U-Net's or an FPN's): one transposed convolution, stride 2, with bias."""
    keras, L = _L()
    inputs = keras.Input(_image(rng, min_size=3, max_size=16, channels=(8, 16, 32, 48, 64)))
    layer = L.Conv2DTranspose(int(rng.choice([8, 12, 16, 32, 64])), int(rng.choice([2, 3, 4])), 2, "same")
    return keras.Model(inputs, layer(inputs))


def _split(rng):
    """A channel split (ShuffleNet v2's units, CSP and GhostNet blocks): SPLIT into 2 or 4 equal
    parts after a 1x1 convolution (so the split reads a kernel's output, as in those models), each
    part a branch of its own."""
    keras, L = _L()
    from ..backend import tf

    parts = int(rng.choice([2, 2, 4]))
    h, w, _ = _image(rng, min_size=4, max_size=32)
    inputs = keras.Input((h, w, int(rng.choice([3, 8, 16]))))
    x = L.Conv2D(int(rng.choice([8, 16, 32, 48, 64])), 1)(inputs)
    pieces = L.Lambda(lambda t: tf.split(t, parts, axis=-1))(x)
    return keras.Model(inputs, [L.ReLU()(p) for p in pieces])


def _channel_shuffle(rng):
    """ShuffleNet's channel shuffle after a 1x1 convolution: RESHAPE to (H, W, groups, C/groups),
    TRANSPOSE the last two axes, RESHAPE back."""
    keras, L = _L()
    groups = int(rng.choice([2, 4]))
    h, w, _ = _image(rng, min_size=4, max_size=32)
    inputs = keras.Input((h, w, int(rng.choice([3, 8, 16]))))
    c = int(rng.choice([8, 16, 32, 48, 64]))
    x = L.Conv2D(c, 1)(inputs)
    x = L.Permute((1, 2, 4, 3))(L.Reshape((h, w, groups, c // groups))(x))
    return keras.Model(inputs, L.Reshape((h, w, c))(x))


def _gated_dilated(rng):
    """WaveNet's gated unit: two dilated causal 1-D convolutions of the same input (tanh and
    sigmoid), multiplied. With the input shared, the converter keeps each dilation as
    SPACE_TO_BATCH_ND -> CONV_2D -> BATCH_TO_SPACE_ND instead of a dilated CONV_2D."""
    keras, L = _L()
    inputs = keras.Input((int(rng.choice([32, 64, 128, 200])), int(rng.choice([8, 16, 24, 32]))))
    k, dilation, filters = int(rng.choice([2, 3])), int(rng.choice([2, 4, 8])), int(rng.choice([8, 16, 24, 32]))
    f = L.Conv1D(filters, k, padding="causal", dilation_rate=dilation, activation="tanh")(inputs)
    g = L.Conv1D(filters, k, padding="causal", dilation_rate=dilation, activation="sigmoid")(inputs)
    return keras.Model(inputs, L.Multiply()([f, g]))


def _global_max(rng):
    """Global max pooling over time or over an image (REDUCE_MAX), as audio and text classifiers end."""
    keras, L = _L()
    if rng.random() < 0.5:
        inputs = keras.Input((int(rng.integers(16, 201)), int(rng.choice([8, 16, 32, 64]))))
        return keras.Model(inputs, L.GlobalMaxPooling1D()(inputs))
    inputs = keras.Input(_image(rng, max_size=24, channels=(8, 16, 32, 64)))
    return keras.Model(inputs, L.GlobalMaxPooling2D()(inputs))


def _conv1d(rng):
    """1-D convolutions over time (EXPAND_DIMS / RESHAPE around a CONV_2D of height 1), pooling over time."""
    keras, L = _L()
    inputs = keras.Input((int(rng.integers(16, 257)), int(rng.choice([1, 3, 6, 9, 16, 32]))))
    x = L.Conv1D(int(rng.choice([8, 16, 32, 64])), int(rng.choice([3, 5, 9])), int(rng.choice([1, 2])),
                 str(rng.choice(["same", "valid"])), activation="relu")(inputs)
    if rng.random() < 0.5:
        x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(int(rng.choice([16, 32, 64])), int(rng.choice([3, 5])), padding="same", activation="relu")(x)
    return keras.Model(inputs, L.GlobalAveragePooling1D()(x) if rng.random() < 0.5 else x)



def _prelu(rng):
    """PReLU after a convolution or a dense layer (MTCNN's and ENet's activation): learned slopes per
    channel (shared over the image, a broadcast) or per element."""
    keras, L = _L()
    if rng.random() < 0.25:
        inputs = keras.Input((int(rng.choice([16, 32, 64, 128])),))
        return keras.Model(inputs, L.PReLU()(L.Dense(int(rng.choice([16, 32, 64, 128])))(inputs)))
    inputs = keras.Input(_image(rng, min_size=4, max_size=32, channels=(3, 8, 16, 32)))
    x = L.Conv2D(int(rng.choice([8, 16, 32, 48])), int(rng.choice([1, 3])), padding="same")(inputs)
    return keras.Model(inputs, L.PReLU(shared_axes=[1, 2] if rng.random() < 0.7 else None)(x))


def _resize_bilinear(rng):
    """Bilinear upsampling (a segmenter's or a super-resolution net's): Keras' UpSampling2D by 2 or 4,
    or a resize to an arbitrary size, after a 1x1 convolution."""
    keras, L = _L()
    from ..backend import tf

    h, w, c = _image(rng, min_size=2, max_size=24, channels=(1, 3, 8, 16, 32))
    inputs = keras.Input((h, w, c))
    x = L.Conv2D(int(rng.choice([3, 8, 16, 32])), 1)(inputs) if rng.random() < 0.5 else inputs
    if rng.random() < 0.6:
        return keras.Model(inputs, L.UpSampling2D(int(rng.choice([2, 4])), interpolation="bilinear")(x))
    size = (int(rng.integers(h + 1, 3 * h + 2)), int(rng.integers(w + 1, 3 * w + 2)))
    return keras.Model(inputs, L.Lambda(lambda t: tf.image.resize(t, size, "bilinear"))(x))


#: operator (as TFLite names it) -> builder of a model around it.
OP_BUILDERS: dict[str, Callable] = {
    "RELU": _unary(lambda L, rng: L.ReLU()), "RELU6": _unary(lambda L, rng: L.ReLU(6.0)),
    "LEAKY_RELU": _unary(lambda L, rng: L.LeakyReLU(float(rng.choice([0.1, 0.2])))),
    "LOGISTIC": _unary(lambda L, rng: L.Activation("sigmoid")), "TANH": _unary(lambda L, rng: L.Activation("tanh")),
    "HARD_SWISH": _unary(_lambda(_hard_swish)),
    "ADD": _binary("add"), "ADD/broadcast": _binary("add", True), "SUB": _binary("sub"),
    "MAXIMUM": _binary("maximum"), "MINIMUM": _binary("minimum"),
    "MUL": _binary("mul"), "MUL/broadcast": _binary("mul", True), "squeeze-excite": _squeeze_excite,
    "CONCATENATION": _concat, "PAD": _pad, "PADV2": _padv2, "MEAN": _mean,
    "AVERAGE_POOL_2D": _pool("avg"), "MAX_POOL_2D": _pool("max"), "RESHAPE": _reshape, "SQUEEZE": _squeeze,
    "STRIDED_SLICE": _strided_slice, "TRANSPOSE": _transpose, "SOFTMAX": _softmax, "FULLY_CONNECTED/3d": _fc3d,
    "TRANSPOSE_CONV": _transpose_conv, "RESIZE_NEAREST_NEIGHBOR": _resize, "CONV_2D": _conv(False),
    "DEPTHWISE_CONV_2D": _conv(True), "detector-head": _detector_head,
    # added 2026-12-02 (after the first two real sets): patterns of real models the single operators
    # left loose; appended, so the draws above stay what they were
    "swish": _swish_unary, "mbconv": _mbconv, "preactivation": _preactivation, "FULLY_CONNECTED/mlp": _mlp,
    "conv1d": _conv1d,
    # added 2026-12-02, after the third real set; each draws from a generator of its own (`_SHARED_GENERATOR`)
    "TRANSPOSE_CONV/decoder": _decoder, "TRANSPOSE_CONV/upsample": _upsample, "SPLIT": _split,
    "channel-shuffle": _channel_shuffle,
    # added 2026-12-02, after the fourth real set
    "SPACE_TO_BATCH_ND/gated": _gated_dilated, "REDUCE_MAX": _global_max,
    # added 2026-12-03, after the fifth real set (its attention CNN and PReLU CNN were priced by stand-ins);
    # SUB/broadcast after the sixth (a vision transformer's layer norms)
    "BATCH_MATMUL/attention": _attention, "PRELU": _prelu, "RESIZE_BILINEAR": _resize_bilinear,
    "layer-norm": _layer_norm, "SUB/broadcast": _binary("sub", True),
    # added 2026-12-03, after the seventh real set: attention's softmax over rows as long as the sequence
    # (its cost had been read off short classifier rows), and GELU (transformers' and ConvNeXt's MLPs)
    "SOFTMAX/scores": _scores_softmax, "GELU": _unary(lambda L, rng: L.Activation("gelu")),
    # added 2026-12-03, after the eighth real set: an unrolled LSTM's hundreds of tiny operators, on
    # LiteRT 11-42% over (the per-inference overhead had gone into every single operator's cost)
    "recurrent": _recurrent, "elementwise-chain": _elementwise_chain,
    # and layer norms with the small epsilon transformers use, whose MEAN reduces the innermost axis alone
    "layer-norm/eps": lambda rng: _layer_norm(rng, (1e-5, 1e-6)), "SQUARED_DIFFERENCE/broadcast": _squared_difference,
}
