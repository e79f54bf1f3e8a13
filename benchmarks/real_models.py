"""Held-out real models: architectures people deploy, built with Keras applications and plain Keras
layers and converted by the TFLite converter the way model-zoo files are (batch 1; int8 with int8,
float or uint8 inputs and outputs; float32; int16x8; float16 and dynamic-range for LiteRT).

None of them is ever in a latency model's fit (those see only `nas.calibration.make_samples` and
`make_op_samples`); `benchmarks/any_tflite.py` prices them against callgrind's counts.
Untrained: the kernels do the same work whatever the weights (`settle` gives realistic statistics).
"""

from __future__ import annotations

import numpy as np

from nas.backend import keras

L = keras.layers


def _conv_bn(x, filters, kernel, stride=1, act="relu"):
    x = L.BatchNormalization()(L.Conv2D(filters, kernel, stride, "same", use_bias=False)(x))
    return L.Activation(act)(x) if act else x


def mobilenet_v1():
    return keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25, weights=None, classes=10)


def mobilenet_v2():
    return keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)


def mobilenet_v3_small():
    return keras.applications.MobileNetV3Small(input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10,
                                               include_preprocessing=True, dropout_rate=0.0)


def resnet_like():
    """ResNet-14-style classifier with its preprocessing in the graph (a constant MUL and ADD) and a padded pooling stem."""
    inputs = keras.Input((64, 64, 3))
    x = L.Rescaling(2.0, offset=-1.0)(inputs)
    x = _conv_bn(x, 16, 3)
    x = L.MaxPooling2D(3, 2)(L.ZeroPadding2D(1)(x))  # ResNet's stem: explicit padding before the pooling (PAD)
    for filters, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)):
        y = _conv_bn(x, filters, 3, stride)
        y = _conv_bn(y, filters, 3, 1, act=None)
        if stride != 1 or x.shape[-1] != filters:
            x = _conv_bn(x, filters, 1, stride, act=None)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="resnet_like")


def yamnet_like():
    """YAMNet's MobileNet v1 body at a quarter width on a 96x64 log-mel patch, sigmoid scores of 521 classes."""
    inputs = keras.Input((96, 64))
    x = L.Reshape((96, 64, 1))(inputs)
    x = _conv_bn(x, 8, 3, 2)
    for filters, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2)):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, stride, "same", use_bias=False)(x)))
        x = _conv_bn(x, filters, 1)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, L.Dense(521, activation="sigmoid")(x), name="yamnet_like")


def ssd_detector():
    """A MobileNetV2 0.35 backbone with SSD heads on two scales: boxes and class scores, reshaped and concatenated."""
    backbone = keras.applications.MobileNetV2(input_shape=(128, 128, 3), alpha=0.35, weights=None, include_top=False)
    features = [backbone.get_layer("block_13_expand_relu").output, backbone.output]
    anchors, classes = 3, 4
    boxes, scores = [], []
    for f in features:
        f = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same")(f)))
        boxes.append(L.Reshape((-1, 4))(L.Conv2D(anchors * 4, 1)(f)))
        scores.append(L.Reshape((-1, classes))(L.Conv2D(anchors * classes, 1)(f)))
    return keras.Model(backbone.input, [L.Concatenate(axis=1)(boxes), L.Softmax()(L.Concatenate(axis=1)(scores))],
                       name="ssd_detector")


def squeezenet():
    """SqueezeNet 1.1 at a quarter width: fire modules (squeeze 1x1, expand 1x1 and 3x3, concatenated), max pooling."""
    inputs = keras.Input((64, 64, 3))
    x = L.Conv2D(16, 3, 2, activation="relu")(inputs)
    x = L.MaxPooling2D(3, 2)(x)

    def fire(x, squeeze, expand):
        s = L.Conv2D(squeeze, 1, activation="relu")(x)
        return L.Concatenate()([L.Conv2D(expand, 1, activation="relu")(s),
                                L.Conv2D(expand, 3, padding="same", activation="relu")(s)])

    x = fire(fire(x, 4, 16), 4, 16)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 8, 32), 8, 32)
    x = L.MaxPooling2D(3, 2)(x)
    x = fire(fire(x, 12, 48), 16, 64)
    x = L.Conv2D(10, 1, activation="relu")(x)
    return keras.Model(inputs, L.Softmax()(L.GlobalAveragePooling2D()(x)), name="squeezenet")


def kws_cnn():
    """A keyword-spotting CNN on MFCC frames: conv, dilated conv, pooling, 3-D dense over time, tanh."""
    inputs = keras.Input((49, 10, 1))
    x = _conv_bn(inputs, 32, (5, 3))
    x = L.Conv2D(32, 3, padding="same", dilation_rate=2, activation="relu")(x)
    x = L.MaxPooling2D((2, 1))(x)
    x = L.Reshape((24, 10 * 32))(x)
    x = L.Dense(64, activation="tanh")(x)
    x = L.Flatten()(x)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="kws_cnn")


def tiny_unet():
    """A small segmentation net: strided convs down, transposed conv and nearest upsampling back up, skip concatenations."""
    inputs = keras.Input((64, 64, 1))
    e1 = _conv_bn(inputs, 8, 3)
    e2 = _conv_bn(e1, 16, 3, 2)
    e3 = _conv_bn(e2, 32, 3, 2)
    d2 = L.Conv2DTranspose(16, 3, 2, "same", activation="relu")(e3)
    d2 = _conv_bn(L.Concatenate()([d2, e2]), 16, 3)
    d1 = L.UpSampling2D(2)(d2)
    d1 = _conv_bn(L.Concatenate()([d1, e1]), 8, 3)
    x = L.LeakyReLU(0.1)(L.Conv2D(8, 3, padding="same")(d1))
    return keras.Model(inputs, L.Conv2D(1, 1, activation="sigmoid")(x), name="tiny_unet")


# ---------------------------------------------------------------- a second set, built 2026-12-02
# after the broadcast and speed changes, never looked at before they were fixed: scored once.


def _swish(x):
    return L.Multiply()([x, L.Activation("sigmoid")(x)])  # LOGISTIC and MUL: TFLite has no swish operator


def efficientnet_like():
    """EfficientNet-B0's MBConv blocks at small width on 96x96: swish, squeeze-excite, 5x5 depthwise, residual adds."""
    inputs = keras.Input((96, 96, 3))
    x = _swish(L.BatchNormalization()(L.Conv2D(16, 3, 2, "same", use_bias=False)(inputs)))
    for expand, filters, kernel, stride, repeats in ((1, 16, 3, 1, 1), (6, 24, 3, 2, 2), (6, 40, 5, 2, 2),
                                                     (6, 64, 3, 2, 2), (6, 80, 5, 1, 1)):
        for r in range(repeats):
            y = x
            if expand > 1:
                y = _swish(L.BatchNormalization()(L.Conv2D(x.shape[-1] * expand, 1, use_bias=False)(y)))
            y = _swish(L.BatchNormalization()(L.DepthwiseConv2D(kernel, stride if r == 0 else 1, "same", use_bias=False)(y)))
            s = L.GlobalAveragePooling2D(keepdims=True)(y)
            s = _swish(L.Conv2D(max(x.shape[-1] // 4, 4), 1)(s))
            y = L.Multiply()([y, L.Conv2D(y.shape[-1], 1, activation="sigmoid")(s)])
            y = L.BatchNormalization()(L.Conv2D(filters, 1, use_bias=False)(y))
            x = L.Add()([x, y]) if r > 0 and x.shape[-1] == filters else y
    x = _swish(L.BatchNormalization()(L.Conv2D(256, 1, use_bias=False)(x)))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="efficientnet_like")


def mobilenet_v3_large():
    return keras.applications.MobileNetV3Large(input_shape=(96, 96, 3), alpha=0.75, weights=None, classes=10,
                                               include_preprocessing=True, dropout_rate=0.0)


def densenet_like():
    """DenseNet-BC with growth 12 on 64x64: bottleneck layers concatenated onto their block's input, average-pooled transitions."""
    inputs = keras.Input((64, 64, 3))
    x = L.Conv2D(24, 3, 2, "same", use_bias=False)(inputs)
    for block in range(3):
        for _ in range(4):
            y = L.Conv2D(48, 1, use_bias=False)(L.ReLU()(L.BatchNormalization()(x)))
            y = L.Conv2D(12, 3, padding="same", use_bias=False)(L.ReLU()(L.BatchNormalization()(y)))
            x = L.Concatenate()([x, y])
        if block < 2:
            x = L.Conv2D(x.shape[-1] // 2, 1, use_bias=False)(L.ReLU()(L.BatchNormalization()(x)))
            x = L.AveragePooling2D(2, 2)(x)
    x = L.GlobalAveragePooling2D()(L.ReLU()(L.BatchNormalization()(x)))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="densenet_like")


def ds_cnn():
    """MLPerf Tiny's keyword-spotting DS-CNN: a 10x4 strided conv, four depthwise-separable blocks, average pooling."""
    inputs = keras.Input((49, 10, 1))
    x = _conv_bn(inputs, 64, (10, 4), 2)
    for _ in range(4):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
        x = _conv_bn(x, 64, 1)
    x = L.Flatten()(L.AveragePooling2D(x.shape[1:3])(x))
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="ds_cnn")


def fc_autoencoder():
    """MLPerf Tiny's anomaly-detection autoencoder: 640 log-mel values through dense layers of 128 and a bottleneck of 8."""
    inputs = keras.Input((640,))
    x = inputs
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
    return keras.Model(inputs, L.Dense(640)(x), name="fc_autoencoder")


def har_conv1d():
    """A human-activity-recognition net on 128 steps of 9 inertial channels: 1-D convolutions, pooling over time."""
    inputs = keras.Input((128, 9))
    x = L.Conv1D(32, 5, activation="relu")(inputs)
    x = L.Conv1D(64, 5, activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(64, 3, activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, L.Dense(6, activation="softmax")(x), name="har_conv1d")


def xception_like():
    """Xception's entry and middle flows at small width on 64x64: separable convolutions, strided 1x1 shortcuts, max pooling."""
    inputs = keras.Input((64, 64, 3))
    x = _conv_bn(inputs, 16, 3, 2)
    x = _conv_bn(x, 32, 3)
    for filters in (48, 96):
        shortcut = L.BatchNormalization()(L.Conv2D(filters, 1, 2, "same", use_bias=False)(x))
        y = L.BatchNormalization()(L.SeparableConv2D(filters, 3, padding="same", use_bias=False)(x))
        y = L.BatchNormalization()(L.SeparableConv2D(filters, 3, padding="same", use_bias=False)(L.ReLU()(y)))
        x = L.Add()([L.MaxPooling2D(3, 2, "same")(y), shortcut])
    for _ in range(2):
        y = x
        for _ in range(3):
            y = L.BatchNormalization()(L.SeparableConv2D(96, 3, padding="same", use_bias=False)(L.ReLU()(y)))
        x = L.Add()([x, y])
    x = L.GlobalAveragePooling2D()(L.ReLU()(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="xception_like")



# ---------------------------------------------------------------- a third set, written 2026-12-02 before the
# third pass's fit was final, counted while it was being made, and scored once after it (the second
# set guided that pass: it added operator samples for swish, pre-activation batch norm, MLPs and 1-D convolutions).


def resnet8():
    """MLPerf Tiny's image-classification ResNet-8 on 32x32 CIFAR images: three residual stacks of 16, 32 and 64 filters."""
    inputs = keras.Input((32, 32, 3))
    x = _conv_bn(inputs, 16, 3)
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = _conv_bn(x, filters, 3, stride)
        y = _conv_bn(y, filters, 3, act=None)
        if stride != 1:
            x = L.Conv2D(filters, 1, stride)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.Flatten()(L.AveragePooling2D(x.shape[1:3])(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="resnet8")


def ghostnet_like():
    """GhostNet's ghost bottlenecks on 96x96: half the channels from a 1x1 conv, half from a cheap depthwise
    conv of them, concatenated; hard-sigmoid squeeze-excite."""
    def ghost(x, filters, relu=True):
        primary = L.Conv2D(filters // 2, 1, use_bias=False)(x)
        primary = L.ReLU()(L.BatchNormalization()(primary)) if relu else L.BatchNormalization()(primary)
        cheap = L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(primary))
        return L.Concatenate()([primary, L.ReLU()(cheap) if relu else cheap])

    inputs = keras.Input((96, 96, 3))
    x = _conv_bn(inputs, 16, 3, 2)
    for expand, filters, stride, se in ((16, 16, 1, False), (48, 24, 2, False), (72, 24, 1, False), (72, 40, 2, True),
                                        (120, 40, 1, True), (240, 80, 2, False), (200, 80, 1, False)):
        y = ghost(x, expand)
        if stride == 2:
            y = L.BatchNormalization()(L.DepthwiseConv2D(3, 2, "same", use_bias=False)(y))
        if se:
            s = L.GlobalAveragePooling2D(keepdims=True)(y)
            s = L.Conv2D(expand // 4, 1, activation="relu")(s)
            y = L.Multiply()([y, L.Conv2D(expand, 1, activation="hard_sigmoid")(s)])
        y = ghost(y, filters, relu=False)
        if stride == 1 and x.shape[-1] == filters:
            x = L.Add()([x, y])
        else:
            x = L.Add()([_conv_bn(L.DepthwiseConv2D(3, stride, "same")(x), filters, 1, act=None), y])
    x = L.GlobalAveragePooling2D()(_conv_bn(x, 160, 1))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="ghostnet_like")


def shufflenet_v2_like():
    """ShuffleNet v2 units on 64x64: a channel split, a 1x1-depthwise-1x1 branch, concatenation and a channel
    shuffle (reshape, transpose, reshape)."""
    from nas.backend import tf

    def shuffle(x):
        h, w, c = (int(d) for d in x.shape[1:])
        x = L.Reshape((h, w, 2, c // 2))(x)
        x = L.Permute((1, 2, 4, 3))(x)
        return L.Reshape((h, w, c))(x)

    def branch(x, filters, stride):
        x = _conv_bn(x, filters, 1)
        x = L.BatchNormalization()(L.DepthwiseConv2D(3, stride, "same", use_bias=False)(x))
        return _conv_bn(x, filters, 1)

    inputs = keras.Input((64, 64, 3))
    x = L.MaxPooling2D(3, 2, "same")(_conv_bn(inputs, 24, 3, 2))
    for filters, repeats in ((48, 2), (96, 2)):
        half = filters // 2
        left = _conv_bn(L.BatchNormalization()(L.DepthwiseConv2D(3, 2, "same", use_bias=False)(x)), half, 1)
        x = shuffle(L.Concatenate()([left, branch(x, half, 2)]))
        for _ in range(repeats - 1):
            a, b = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(x)
            x = shuffle(L.Concatenate()([a, branch(b, half, 1)]))
    x = L.GlobalAveragePooling2D()(_conv_bn(x, 256, 1))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="shufflenet_v2_like")


def tcn_audio():
    """A temporal convolutional network on 98 frames of 40 MFCCs: causal 1-D convolutions dilated 1, 2, 4, 8 with
    residual adds, then global pooling over time."""
    inputs = keras.Input((98, 40))
    x = L.Conv1D(32, 1)(inputs)
    for dilation in (1, 2, 4, 8):
        y = L.Conv1D(32, 3, padding="causal", dilation_rate=dilation, activation="relu")(x)
        y = L.Conv1D(32, 3, padding="causal", dilation_rate=dilation, activation="relu")(y)
        x = L.Add()([x, y])
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="tcn_audio")


def conv_autoencoder():
    """An image anomaly detector on 32x32 grey images: strided convolutions down to 4x4, transposed convolutions back."""
    inputs = keras.Input((32, 32, 1))
    x = inputs
    for filters in (16, 32, 64):
        x = _conv_bn(x, filters, 3, 2)
    for filters in (32, 16, 8):
        x = L.ReLU()(L.BatchNormalization()(L.Conv2DTranspose(filters, 3, 2, "same", use_bias=False)(x)))
    return keras.Model(inputs, L.Conv2D(1, 3, padding="same", activation="sigmoid")(x), name="conv_autoencoder")


def lenet_tanh():
    """LeNet-5 on 28x28 images: 5x5 convolutions with tanh, average pooling, dense layers of 120 and 84."""
    inputs = keras.Input((28, 28, 1))
    x = L.AveragePooling2D(2)(L.Conv2D(6, 5, padding="same", activation="tanh")(inputs))
    x = L.AveragePooling2D(2)(L.Conv2D(16, 5, activation="tanh")(x))
    x = L.Dense(84, activation="tanh")(L.Dense(120, activation="tanh")(L.Flatten()(x)))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="lenet_tanh")


def mnasnet_like():
    """MnasNet-style inverted residuals on 128x128 with ReLU6, 3x3 to 7x7 depthwise kernels and expansions 3 and 6."""
    inputs = keras.Input((128, 128, 3))
    x = _conv_bn(inputs, 16, 3, 2, act="relu6")
    for expand, filters, kernel, stride in ((3, 16, 3, 2), (3, 16, 3, 1), (6, 24, 5, 2), (6, 24, 5, 1), (6, 40, 7, 2),
                                            (6, 48, 3, 1), (6, 64, 7, 2)):
        y = _conv_bn(x, x.shape[-1] * expand, 1, act="relu6")
        y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(kernel, stride, "same", use_bias=False)(y)))
        y = _conv_bn(y, filters, 1, act=None)
        x = L.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y
    x = L.GlobalAveragePooling2D()(_conv_bn(x, 256, 1, act="relu6"))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="mnasnet_like")


def preact_resnet():
    """ResNet v2 (pre-activation) on 32x32: batch norm and ReLU before each convolution, identity adds."""
    inputs = keras.Input((32, 32, 3))
    x = L.Conv2D(16, 3, padding="same")(inputs)
    for filters, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2)):
        pre = L.ReLU()(L.BatchNormalization()(x))
        y = L.Conv2D(filters, 3, stride, "same", use_bias=False)(pre)
        y = L.Conv2D(filters, 3, padding="same")(L.ReLU()(L.BatchNormalization()(y)))
        shortcut = x if stride == 1 and x.shape[-1] == filters else L.Conv2D(filters, 1, stride)(pre)
        x = L.Add()([shortcut, y])
    x = L.GlobalAveragePooling2D()(L.ReLU()(L.BatchNormalization()(x)))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="preact_resnet")


def sensor_mlp():
    """An activity classifier on 561 hand-made inertial features: dense layers of 256, 128 and 64, ReLU, softmax."""
    inputs = keras.Input((561,))
    x = inputs
    for units in (256, 128, 64):
        x = L.Dense(units, activation="relu")(x)
    return keras.Model(inputs, L.Dense(6, activation="softmax")(x), name="sensor_mlp")


def csp_tiny():
    """A YOLO-tiny-style CSP backbone and head on 96x96: 3x3 convolutions with leaky ReLU, each stage's output split in
    two channel halves (SPLIT), one half convolved and concatenated back, max pooling between stages."""
    from nas.backend import tf

    inputs = keras.Input((96, 96, 3))
    x = _conv_bn(inputs, 16, 3, 2, act=None)
    x = L.LeakyReLU(0.1)(x)
    for filters in (32, 64, 96):
        x = L.LeakyReLU(0.1)(_conv_bn(x, filters, 3, act=None))
        _, half = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(x)
        y = L.LeakyReLU(0.1)(_conv_bn(half, filters // 2, 3, act=None))
        x = L.MaxPooling2D(2)(L.Concatenate()([x, y]))
    return keras.Model(inputs, L.Conv2D(3 * (5 + 2), 1)(x), name="csp_tiny")


def espcn_superres():
    """ESPCN super-resolution, 3x on 32x32 grey images: 5x5 and 3x3 convolutions with tanh, then a sub-pixel
    shuffle (DEPTH_TO_SPACE)."""
    from nas.backend import tf

    inputs = keras.Input((32, 32, 1))
    x = L.Conv2D(32, 5, padding="same", activation="tanh")(inputs)
    x = L.Conv2D(16, 3, padding="same", activation="tanh")(x)
    x = L.Conv2D(9, 3, padding="same")(x)
    return keras.Model(inputs, L.Lambda(lambda t: tf.nn.depth_to_space(t, 3))(x), name="espcn_superres")


def wavenet_gated():
    """A WaveNet-style classifier on 128 frames of 20 features: dilated causal 1-D convolutions with gated
    activations (tanh of one, sigmoid of another, multiplied), 1x1 residual and skip connections."""
    inputs = keras.Input((128, 20))
    x = L.Conv1D(24, 1)(inputs)
    skips = []
    for dilation in (1, 2, 4, 8, 16):
        f = L.Conv1D(24, 2, padding="causal", dilation_rate=dilation, activation="tanh")(x)
        g = L.Conv1D(24, 2, padding="causal", dilation_rate=dilation, activation="sigmoid")(x)
        z = L.Multiply()([f, g])
        skips.append(L.Conv1D(32, 1)(z))
        x = L.Add()([x, L.Conv1D(24, 1)(z)])
    x = L.GlobalMaxPooling1D()(L.ReLU()(L.Add()(skips)))
    return keras.Model(inputs, L.Dense(8, activation="softmax")(x), name="wavenet_gated")


def fcn_segmenter():
    """An FCN-style segmenter on 64x64: a strided encoder to 8x8, transposed convolutions back up with skip adds
    from the encoder, 4 classes per pixel."""
    inputs = keras.Input((64, 64, 3))
    e1 = _conv_bn(inputs, 16, 3, 2)
    e2 = _conv_bn(e1, 32, 3, 2)
    e3 = _conv_bn(e2, 64, 3, 2)
    d2 = L.Add()([e2, L.Conv2DTranspose(32, 4, 2, "same")(e3)])
    d1 = L.Add()([e1, L.Conv2DTranspose(16, 4, 2, "same")(L.ReLU()(d2))])
    return keras.Model(inputs, L.Conv2DTranspose(4, 2, 2, "same")(L.ReLU()(d1)), name="fcn_segmenter")


def se_resnet():
    """A SE-ResNet-10 on 48x48: residual blocks with squeeze-and-excitation (global pooling, two dense layers, a
    sigmoid scale multiplied into the block)."""
    inputs = keras.Input((48, 48, 3))
    x = _conv_bn(inputs, 24, 3, 2)
    for filters, stride in ((24, 1), (48, 2), (48, 1), (96, 2)):
        y = _conv_bn(_conv_bn(x, filters, 3, stride), filters, 3, act=None)
        s = L.GlobalAveragePooling2D()(y)
        s = L.Dense(filters, activation="sigmoid")(L.Dense(max(filters // 8, 4), activation="relu")(s))
        y = L.Multiply()([y, L.Reshape((1, 1, filters))(s)])
        shortcut = x if stride == 1 and x.shape[-1] == filters else _conv_bn(x, filters, 1, stride, act=None)
        x = L.ReLU()(L.Add()([shortcut, y]))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="se_resnet")


def pose_heatmaps():
    """A keypoint detector on 96x96: a depthwise-separable backbone to 12x12, nearest-neighbour upsampling twice with
    3x3 convolutions, 8 keypoint heatmaps at 48x48."""
    inputs = keras.Input((96, 96, 3))
    x = _conv_bn(inputs, 16, 3, 2)
    for filters in (32, 64, 96):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, 2 if filters > 32 else 1, "same", use_bias=False)(x)))
        x = _conv_bn(x, filters, 1)
    x = L.MaxPooling2D(2)(x)
    for filters in (48, 32):
        x = _conv_bn(L.UpSampling2D(2, interpolation="nearest")(x), filters, 3)
    return keras.Model(inputs, L.Conv2D(8, 1)(x), name="pose_heatmaps")


def vibration_autoencoder():
    """A 1-D convolutional autoencoder on 256 samples of 3-axis vibration: strided 1-D convolutions down, a dense
    bottleneck, 1-D transposed convolutions back up."""
    inputs = keras.Input((256, 3))
    x = L.Conv1D(16, 7, 2, "same", activation="relu")(inputs)
    x = L.Conv1D(32, 5, 2, "same", activation="relu")(x)
    x = L.Conv1D(32, 5, 2, "same", activation="relu")(x)
    x = L.Reshape((32, 32))(L.Dense(32 * 32, activation="relu")(L.Dense(32, activation="relu")(L.Flatten()(x))))
    x = L.Conv1DTranspose(32, 5, 2, "same", activation="relu")(x)
    x = L.Conv1DTranspose(16, 5, 2, "same", activation="relu")(x)
    return keras.Model(inputs, L.Conv1DTranspose(3, 7, 2, "same")(x), name="vibration_autoencoder")


def mixnet_like():
    """MixNet-style blocks on 64x64: the expanded channels split in three groups, each a depthwise convolution of its
    own kernel size (3, 5, 7), concatenated, projected, with residual adds."""
    from nas.backend import tf

    inputs = keras.Input((64, 64, 3))
    x = _conv_bn(inputs, 24, 3, 2)
    for filters, stride in ((24, 1), (40, 2), (40, 1), (64, 2)):
        y = _conv_bn(x, 72, 1)
        groups = L.Lambda(lambda t: tf.split(t, 3, axis=-1))(y)
        mixed = [L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(k, stride, "same", use_bias=False)(g)))
                 for g, k in zip(groups, (3, 5, 7))]
        y = _conv_bn(L.Concatenate()(mixed), filters, 1, act=None)
        x = L.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="mixnet_like")


def attention_cnn():
    """A convolutional stem on 32x32 and one self-attention block over its 64 positions (queries, keys
    and values from dense layers, BATCH_MATMUL, softmax), then a classifier: a tiny vision transformer's block."""
    from nas.backend import tf

    inputs = keras.Input((32, 32, 3))
    x = _conv_bn(_conv_bn(inputs, 16, 3, 2), 32, 3, 2)
    tokens = L.Reshape((64, 32))(x)
    q, k, v = (L.Dense(32)(tokens) for _ in range(3))
    scores = L.Softmax()(L.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True) / 5.66)([q, k]))
    y = L.Add()([tokens, L.Dense(32)(L.Lambda(lambda t: tf.matmul(t[0], t[1]))([scores, v]))])
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(y)), name="attention_cnn")


def deeplab_tiny():
    """A DeepLab-style segmenter on 64x64: a strided backbone to 16x16, an atrous pyramid (3x3 convolutions dilated
    2, 4 and 6, a 1x1, concatenated), bilinear upsampling back to 64x64, 3 classes."""
    inputs = keras.Input((64, 64, 3))
    x = _conv_bn(_conv_bn(inputs, 16, 3, 2), 32, 3, 2)
    branches = [_conv_bn(x, 16, 1)] + [L.ReLU()(L.Conv2D(16, 3, padding="same", dilation_rate=d)(x)) for d in (2, 4, 6)]
    x = _conv_bn(L.Concatenate()(branches), 32, 1)
    x = L.UpSampling2D(4, interpolation="bilinear")(L.Conv2D(3, 1)(x))
    return keras.Model(inputs, x, name="deeplab_tiny")


def hourglass_tiny():
    """A one-stack hourglass on 64x64: max pooling down to 8x8, nearest-neighbour upsampling back with residual adds
    from each scale, 6 heatmaps."""
    inputs = keras.Input((64, 64, 3))
    x = _conv_bn(inputs, 24, 3, 2)
    skips = []
    for _ in range(2):
        skips.append(_conv_bn(x, 24, 3))
        x = _conv_bn(L.MaxPooling2D(2)(x), 24, 3)
    for skip in reversed(skips):
        x = L.Add()([skip, L.UpSampling2D(2, interpolation="nearest")(x)])
        x = _conv_bn(x, 24, 3)
    return keras.Model(inputs, L.Conv2D(6, 1)(x), name="hourglass_tiny")


def ecg_resnet1d():
    """A 1-D ResNet on 1,000 samples of single-lead ECG: strided 1-D convolutions of width 15 and 7, max pooling,
    residual adds with 1x1 projections, global average pooling, 5 rhythm classes."""
    inputs = keras.Input((1000, 1))
    x = L.MaxPooling1D(2)(L.ReLU()(L.BatchNormalization()(L.Conv1D(16, 15, 2, "same")(inputs))))
    for filters in (16, 32, 48):
        y = L.ReLU()(L.BatchNormalization()(L.Conv1D(filters, 7, 2, "same")(x)))
        y = L.BatchNormalization()(L.Conv1D(filters, 7, padding="same")(y))
        x = L.ReLU()(L.Add()([L.Conv1D(filters, 1, 2)(x), y]))
    return keras.Model(inputs, L.Dense(5, activation="softmax")(L.GlobalAveragePooling1D()(x)), name="ecg_resnet1d")


def micronet_kws():
    """A MicroNet-style keyword spotter on a 49x10 spectrogram: a 10x4 stem, depthwise-separable blocks with
    non-square strides, average pooling over the remaining map, 12 keywords."""
    inputs = keras.Input((49, 10, 1))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(32, (10, 4), (2, 1), "same")(inputs)))
    for filters, stride in ((48, 1), (48, (2, 1)), (64, 1), (64, 1)):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, stride, "same")(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 1)(x)))
    x = L.Flatten()(L.AveragePooling2D((int(x.shape[1]), int(x.shape[2])))(x))
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="micronet_kws")


def inception_tiny():
    """Inception modules on 48x48: 1x1, 3x3 and double-3x3 branches and a pooled 1x1, concatenated, twice, with a
    strided reduction between."""
    inputs = keras.Input((48, 48, 3))
    x = _conv_bn(inputs, 24, 3, 2)
    for width in (8, 16):
        a = _conv_bn(x, width, 1)
        b = _conv_bn(_conv_bn(x, width, 1), width * 2, 3)
        c = _conv_bn(_conv_bn(_conv_bn(x, width // 2, 1), width, 3), width, 3)
        d = _conv_bn(L.MaxPooling2D(3, 1, "same")(x), width, 1)
        x = L.Concatenate()([a, b, c, d])
        if width == 8:
            x = _conv_bn(x, 48, 3, 2)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="inception_tiny")


def vgg_tiny():
    """A VGG-style classifier on 32x32 (the study's VGG16, scaled down): pairs of 3x3 convolutions with max pooling,
    a flattened dense head of 64."""
    inputs = keras.Input((32, 32, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = L.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = L.MaxPooling2D(2)(L.Conv2D(filters, 3, padding="same", activation="relu")(x))
    x = L.Dense(64, activation="relu")(L.Flatten()(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="vgg_tiny")


def prelu_cnn():
    """A small face-detector-style CNN on 48x48 with PReLU activations (learned negative slopes, as MTCNN's), max
    pooling and a dense head of 2 scores and 4 box offsets."""
    inputs = keras.Input((48, 48, 3))
    x = inputs
    for filters in (16, 32, 48):
        x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(filters, 3)(x))
        x = L.MaxPooling2D(2)(x)
    x = L.PReLU()(L.Dense(64)(L.Flatten()(x)))
    return keras.Model(inputs, L.Concatenate()([L.Dense(2, activation="softmax")(x), L.Dense(4)(x)]), name="prelu_cnn")



def _transformer_block(x, heads, key_dim, hidden):
    """Pre-norm transformer encoder block: layer norm, multi-head self-attention, residual add,
    layer norm, a two-layer MLP (ReLU), residual add."""
    y = L.LayerNormalization(epsilon=1e-6)(x)
    x = L.Add()([x, L.MultiHeadAttention(heads, key_dim)(y, y)])
    y = L.LayerNormalization(epsilon=1e-6)(x)
    y = L.Dense(int(x.shape[-1]))(L.Dense(hidden, activation="relu")(y))
    return L.Add()([x, y])


def vit_tiny():
    """A tiny vision transformer on 32x32: 4x4 patches embedded by a strided convolution (64 tokens of
    32), two pre-norm encoder blocks of 2 heads, global average pooling over tokens, 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = L.Reshape((64, 32))(L.Conv2D(32, 4, 4)(inputs))
    for _ in range(2):
        x = _transformer_block(x, 2, 16, 64)
    x = L.LayerNormalization(epsilon=1e-6)(x)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(x)), name="vit_tiny")


def enet_tiny():
    """An ENet-style segmenter on 64x64: the initial block (a strided convolution concatenated with
    a max pool), bottlenecks with PReLU, one dilated, a transposed-convolution decoder step, bilinear
    upsampling to the input, 4 classes."""
    inputs = keras.Input((64, 64, 3))
    x = L.Concatenate()([L.Conv2D(13, 3, 2, "same")(inputs), L.MaxPooling2D(2)(inputs)])
    x = L.PReLU(shared_axes=[1, 2])(L.BatchNormalization()(x))
    for dilation, stride in ((1, 2), (1, 1), (2, 1)):
        y = L.PReLU(shared_axes=[1, 2])(L.Conv2D(8, 1, stride)(x))
        y = L.PReLU(shared_axes=[1, 2])(L.Conv2D(8, 3, padding="same", dilation_rate=dilation)(y))
        y = L.Conv2D(32, 1)(y)
        skip = L.Conv2D(32, 1, stride)(x) if stride > 1 or x.shape[-1] != 32 else x
        x = L.PReLU(shared_axes=[1, 2])(L.Add()([skip, y]))
    x = L.ReLU()(L.Conv2DTranspose(16, 3, 2, "same")(x))
    return keras.Model(inputs, L.UpSampling2D(2, interpolation="bilinear")(L.Conv2D(4, 1)(x)), name="enet_tiny")


def conformer_kws():
    """A Conformer-style keyword spotter on 98 frames of 40 log-mel features: a strided 1-D convolution
    subsampling to 49 frames, one block of feed-forward, self-attention (4 heads), a depthwise 1-D
    convolution module with a gated linear unit, each with layer norm and a residual, 12 keywords."""
    inputs = keras.Input((98, 40))
    x = L.Conv1D(48, 3, 2, "same", activation="relu")(inputs)
    y = L.Dense(48)(L.Dense(96, activation="relu")(L.LayerNormalization()(x)))
    x = L.Add()([x, y])
    y = L.LayerNormalization()(x)
    x = L.Add()([x, L.MultiHeadAttention(4, 12)(y, y)])
    y = L.Conv1D(96, 1)(L.LayerNormalization()(x))
    y = L.Multiply()([y[..., :48], L.Activation("sigmoid")(y[..., 48:])])
    y = L.Conv1D(48, 1)(L.ReLU()(L.BatchNormalization()(L.DepthwiseConv1D(7, padding="same")(y))))
    x = L.LayerNormalization()(L.Add()([x, y]))
    return keras.Model(inputs, L.Dense(12, activation="softmax")(L.GlobalAveragePooling1D()(x)), name="conformer_kws")


def lraspp_segmenter():
    """MobileNetV3's LR-ASPP head on a small inverted-residual backbone at 96x96: a 1x1 branch gated
    by a sigmoid of the globally pooled features, bilinear upsampling by 2, a low-level skip, 2 classes,
    bilinear upsampling to the input."""
    inputs = keras.Input((96, 96, 3))
    x = _conv_bn(inputs, 16, 3, 2, act="hard_swish" if hasattr(keras.activations, "hard_swish") else "relu")
    low = x = _inverted(x, 16, 24, 2)
    for filters in (32, 48):
        x = _inverted(x, 3 * int(x.shape[-1]), filters, 2)
    branch = _conv_bn(x, 32, 1)
    gate = L.Conv2D(32, 1, activation="sigmoid")(L.GlobalAveragePooling2D(keepdims=True)(x))
    x = L.UpSampling2D(2, interpolation="bilinear")(L.Multiply()([branch, gate]))
    x = L.Conv2D(2, 1)(x)
    x = L.UpSampling2D(2, interpolation="bilinear")(x)
    x = L.Add()([x, L.Conv2D(2, 1)(low)])
    return keras.Model(inputs, L.UpSampling2D(4, interpolation="bilinear")(x), name="lraspp_segmenter")


def _inverted(x, expanded, filters, stride):
    y = _conv_bn(x, expanded, 1, act="relu")
    y = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, stride, "same", use_bias=False)(y)))
    y = _conv_bn(y, filters, 1, act=None)
    return L.Add()([x, y]) if stride == 1 and x.shape[-1] == filters else y


def mlp_mixer_tiny():
    """An MLP-Mixer on 32x32: 8x8 patches (16 tokens of 48), two mixer layers (a token-mixing MLP
    across the transposed tokens, a channel-mixing MLP), layer norm before each, 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = L.Reshape((16, 48))(L.Conv2D(48, 8, 8)(inputs))
    for _ in range(2):
        y = L.Permute((2, 1))(L.LayerNormalization()(x))
        y = L.Permute((2, 1))(L.Dense(16)(L.Dense(32, activation="relu")(y)))
        x = L.Add()([x, y])
        y = L.Dense(48)(L.Dense(96, activation="relu")(L.LayerNormalization()(x)))
        x = L.Add()([x, y])
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling1D()(x)), name="mlp_mixer_tiny")


def mtcnn_pnet():
    """MTCNN's proposal network on 48x48: 3x3 convolutions with PReLU, a max pool, fully convolutional
    face-score (softmax over 2) and box heads."""
    inputs = keras.Input((48, 48, 3))
    x = L.MaxPooling2D(2)(L.PReLU(shared_axes=[1, 2])(L.Conv2D(10, 3)(inputs)))
    x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(16, 3)(x))
    x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(32, 3)(x))
    return keras.Model(inputs, [L.Conv2D(2, 1, activation="softmax")(x), L.Conv2D(4, 1)(x)], name="mtcnn_pnet")


def resnet18_narrow():
    """ResNet-18's layout (four stages of two basic blocks, a 7x7 stride-2 stem and a max pool) at a
    quarter of its width on 64x64 inputs, 10 classes: built only of operators the calibration holds."""
    inputs = keras.Input((64, 64, 3))
    x = L.MaxPooling2D(3, 2, "same")(_conv_bn(inputs, 16, 7, 2))
    for i, filters in enumerate((16, 32, 64, 128)):
        for j in range(2):
            stride = 2 if i > 0 and j == 0 else 1
            y = _conv_bn(_conv_bn(x, filters, 3, stride), filters, 3, act=None)
            skip = _conv_bn(x, filters, 1, stride, act=None) if stride > 1 else x
            x = L.ReLU()(L.Add()([skip, y]))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="resnet18_narrow")



def mobilevit_like():
    """A MobileViT-style net on 64x64: inverted residual blocks to 16x16, then a MobileViT block (a 3x3
    and a 1x1 convolution, the map unfolded by 2x2 patch positions into 256 tokens, one transformer
    layer over all of them, folded back, fused with the input), 10 classes."""
    inputs = keras.Input((64, 64, 3))
    x = _conv_bn(inputs, 16, 3, 2)
    x = _inverted(_inverted(x, 32, 24, 2), 48, 24, 1)
    local = L.Conv2D(32, 1)(_conv_bn(x, 24, 3))
    h = w = int(local.shape[1])
    y = L.Reshape((h // 2, 2, w // 2, 2, 32))(local)
    y = L.Reshape((4, (h // 2) * (w // 2), 32))(L.Permute((2, 4, 1, 3, 5))(y))
    y = L.Reshape((4 * (h // 2) * (w // 2), 32))(y)
    z = L.LayerNormalization(epsilon=1e-6)(y)
    y = L.Add()([y, L.MultiHeadAttention(2, 16)(z, z)])
    y = L.Add()([y, L.Dense(32)(L.Dense(64, activation="relu")(L.LayerNormalization(epsilon=1e-6)(y)))])
    y = L.Reshape((2, 2, h // 2, w // 2, 32))(y)
    y = L.Reshape((h, w, 32))(L.Permute((3, 1, 4, 2, 5))(y))
    x = _conv_bn(L.Concatenate()([x, L.Conv2D(24, 1)(y)]), 32, 3)
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="mobilevit_like")


class _PositionEmbedding(L.Layer):
    """A learned embedding per position, added to the tokens (a constant ADD once converted)."""

    def build(self, input_shape):
        self.table = self.add_weight(name="positions", shape=(1, *input_shape[1:]), initializer="random_normal")

    def call(self, x):
        return x + self.table


def sensor_transformer():
    """A transformer over a window of 128 IMU samples (6 axes): a strided 1-D convolution embedding to
    32 tokens of 32, a learned position embedding added, two post-norm encoder layers of 4 heads, a
    class read from the mean token, 6 activities."""
    inputs = keras.Input((128, 6))
    x = _PositionEmbedding()(L.Conv1D(32, 4, 4)(inputs))
    for _ in range(2):
        x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(4, 8)(x, x)]))
        x = L.LayerNormalization()(L.Add()([x, L.Dense(32)(L.Dense(64, activation="relu")(x))]))
    outputs = L.Dense(6, activation="softmax")(L.GlobalAveragePooling1D()(x))
    return keras.Model(inputs, outputs, name="sensor_transformer")


def unet_bilinear():
    """A U-Net on 64x64 with bilinear upsampling instead of transposed convolutions (a common
    segmentation deployment): three scales, skip concatenations, PReLU in the decoder, 3 classes."""
    inputs = keras.Input((64, 64, 3))
    skips, x = [], inputs
    for filters in (8, 16, 32):
        x = _conv_bn(x, filters, 3)
        skips.append(x)
        x = L.MaxPooling2D(2)(x)
    x = _conv_bn(x, 48, 3)
    for filters, skip in zip((32, 16, 8), reversed(skips)):
        x = L.Concatenate()([L.UpSampling2D(2, interpolation="bilinear")(x), skip])
        x = L.PReLU(shared_axes=[1, 2])(L.Conv2D(filters, 3, padding="same")(x))
    return keras.Model(inputs, L.Conv2D(3, 1, activation="softmax")(x), name="unet_bilinear")


def yolo_two_scale():
    """A YOLO-style detector on 96x96: a strided backbone with leaky ReLU, heads at 6x6 and 12x12
    (the coarse features upsampled by nearest neighbour and concatenated), each head's boxes reshaped
    to (cells x 3 anchors, 8) and the two concatenated, objectness and classes through a sigmoid."""
    inputs = keras.Input((96, 96, 3))
    x = inputs
    feats = []
    for filters in (16, 24, 32, 48, 64):
        x = L.LeakyReLU(0.1)(L.BatchNormalization()(L.Conv2D(filters, 3, 2, "same", use_bias=False)(x)))
        feats.append(x)
    coarse = L.Conv2D(24, 1)(x)
    fine = L.Concatenate()([L.UpSampling2D(2)(coarse), feats[-2]])
    fine = L.LeakyReLU(0.1)(L.Conv2D(32, 3, padding="same")(fine))
    heads = [L.Reshape((-1, 8))(L.Conv2D(24, 1)(t)) for t in (x, fine)]
    return keras.Model(inputs, L.Activation("sigmoid")(L.Concatenate(axis=1)(heads)), name="yolo_two_scale")


def convmixer_tiny():
    """A ConvMixer on 32x32: 4x4 patch embedding, four mixer layers (a 7x7 depthwise convolution with a
    residual add, a 1x1 pointwise convolution, each ReLU and batch norm), 10 classes: built only of
    operators the calibration holds."""
    inputs = keras.Input((32, 32, 3))
    x = L.BatchNormalization()(L.ReLU()(L.Conv2D(48, 4, 4)(inputs)))
    for _ in range(4):
        y = L.BatchNormalization()(L.ReLU()(L.DepthwiseConv2D(7, padding="same")(x)))
        x = L.BatchNormalization()(L.ReLU()(L.Conv2D(48, 1)(L.Add()([x, y]))))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="convmixer_tiny")



class _ClassToken(L.Layer):
    """A learned class token prepended to the tokens (a CONCATENATION with a constant once converted)."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]), initializer="random_normal")

    def call(self, x):
        import tensorflow as tf

        return tf.concat([tf.broadcast_to(self.token, [tf.shape(x)[0], 1, x.shape[-1]]), x], axis=1)


def _gelu_block(x, heads, key_dim, hidden, pre_norm=True):
    """A transformer encoder layer with a GELU MLP, pre-norm (ViT, DeiT) or post-norm (KWT)."""
    width = int(x.shape[-1])
    if pre_norm:
        y = L.LayerNormalization(epsilon=1e-6)(x)
        x = L.Add()([x, L.MultiHeadAttention(heads, key_dim)(y, y)])
        y = L.Dense(width)(L.Dense(hidden, activation="gelu")(L.LayerNormalization(epsilon=1e-6)(x)))
        return L.Add()([x, y])
    x = L.LayerNormalization()(L.Add()([x, L.MultiHeadAttention(heads, key_dim)(x, x)]))
    return L.LayerNormalization()(L.Add()([x, L.Dense(width)(L.Dense(hidden, activation="gelu")(x))]))


def deit_tiny():
    """A DeiT-style vision transformer on 32x32: 4x4 patches (64 tokens of 48), a class token and a
    learned position embedding, two pre-norm blocks of 3 heads with GELU MLPs, the class token read
    out through a layer norm, 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = _PositionEmbedding()(_ClassToken()(L.Reshape((64, 48))(L.Conv2D(48, 4, 4)(inputs))))
    for _ in range(2):
        x = _gelu_block(x, 3, 16, 96)
    x = L.LayerNormalization(epsilon=1e-6)(x[:, 0])
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="deit_tiny")


def kwt_audio():
    """A Keyword Transformer (KWT) on 49 frames of 40 MFCCs: each frame a token projected to 48, a
    position embedding, two post-norm layers of 4 heads with GELU MLPs, mean of the tokens, 12 keywords."""
    inputs = keras.Input((49, 40))
    x = _PositionEmbedding()(L.Dense(48)(inputs))
    for _ in range(2):
        x = _gelu_block(x, 4, 12, 96, pre_norm=False)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(L.GlobalAveragePooling1D()(x)), name="kwt_audio")


def convnext_tiny():
    """A ConvNeXt-style net on 32x32: a 2x2 patchify stem, blocks of a 7x7 depthwise convolution, a
    layer norm over the channels of the 4-D map, a 4x inverted MLP with GELU as 1x1 convolutions and a
    residual add, a layer-normed 2x2 downsampling between two stages, 10 classes."""
    inputs = keras.Input((32, 32, 3))
    x = L.LayerNormalization(epsilon=1e-6)(L.Conv2D(24, 2, 2)(inputs))
    for stage, width in enumerate((24, 48)):
        if stage:
            x = L.Conv2D(width, 2, 2)(L.LayerNormalization(epsilon=1e-6)(x))
        for _ in range(2):
            y = L.LayerNormalization(epsilon=1e-6)(L.DepthwiseConv2D(7, padding="same")(x))
            y = L.Conv2D(width, 1)(L.Conv2D(4 * width, 1, activation="gelu")(y))
            x = L.Add()([x, y])
    x = L.LayerNormalization(epsilon=1e-6)(L.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(x), name="convnext_tiny")


def botnet_like():
    """A BoTNet-style hybrid on 64x64: a strided convolutional backbone to 8x8x64, one bottleneck whose
    3x3 convolution is replaced by 4-head self-attention over the 64 positions, batch norm and ReLU
    around it, a residual add, 10 classes."""
    inputs = keras.Input((64, 64, 3))
    x = inputs
    for filters, stride in ((16, 2), (32, 2), (48, 2), (64, 1)):
        x = _conv_bn(x, filters, 3, stride)
    y = L.Reshape((64, 32))(_conv_bn(x, 32, 1))
    y = L.Reshape((8, 8, 32))(L.MultiHeadAttention(4, 8)(y, y))
    y = _conv_bn(L.ReLU()(L.BatchNormalization()(y)), 64, 1, act=None)
    x = L.ReLU()(L.Add()([x, y]))
    return keras.Model(inputs, L.Dense(10, activation="softmax")(L.GlobalAveragePooling2D()(x)), name="botnet_like")


def lstm_kws():
    """A keyword spotter of one LSTM layer (64 units) over 49 frames of 10 MFCCs, unrolled as TFLite
    Micro deployments convert it, its last state to 12 keywords."""
    inputs = keras.Input((49, 10))
    x = L.LSTM(64, unroll=True)(inputs)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="lstm_kws")



def gru_kws():
    """A keyword spotter of one GRU layer (48 units, reset after, Keras' default) over 49 frames of
    10 MFCCs, unrolled, its last state to 12 keywords."""
    inputs = keras.Input((49, 10))
    x = L.GRU(48, unroll=True)(inputs)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="gru_kws")


def crnn_audio():
    """A convolutional recurrent audio net: two strided 3x3 convolutions over 49x40 log-mel frames,
    the 13 frames left read as a sequence by an unrolled LSTM (32 units), 12 keywords."""
    inputs = keras.Input((49, 40, 1))
    x = _conv_bn(inputs, 16, 3, 2)
    x = _conv_bn(x, 32, 3, 2)
    x = L.Reshape((int(x.shape[1]), int(x.shape[2]) * int(x.shape[3])))(x)
    x = L.LSTM(32, unroll=True)(x)
    return keras.Model(inputs, L.Dense(12, activation="softmax")(x), name="crnn_audio")


def stacked_lstm_har():
    """Human-activity recognition from 32 steps of a 6-axis IMU: two stacked unrolled LSTMs (24
    units each, the first returning its sequence), 6 activities."""
    inputs = keras.Input((32, 6))
    x = L.LSTM(24, return_sequences=True, unroll=True)(inputs)
    x = L.LSTM(24, unroll=True)(x)
    return keras.Model(inputs, L.Dense(6, activation="softmax")(x), name="stacked_lstm_har")


def simple_rnn_sensor():
    """An Elman network (SimpleRNN, 32 units, tanh) over 40 steps of 3 sensor channels, unrolled, and a
    dense head of 4 classes: the smallest recurrent model people deploy on a microcontroller."""
    inputs = keras.Input((40, 3))
    x = L.SimpleRNN(32, unroll=True)(inputs)
    return keras.Model(inputs, L.Dense(4, activation="softmax")(L.Dense(16, activation="relu")(x)),
                       name="simple_rnn_sensor")


def bigru_tagger():
    """A bidirectional GRU (16 units a direction, unrolled) over 25 frames of 13 features, tagging
    every frame with one of 5 labels (a time-distributed dense layer)."""
    inputs = keras.Input((25, 13))
    x = L.Bidirectional(L.GRU(16, return_sequences=True, unroll=True))(inputs)
    return keras.Model(inputs, L.Dense(5, activation="softmax")(x), name="bigru_tagger")


#: name -> builder; all held out of every latency-model fit.
REAL_MODELS = {f.__name__: f for f in (mobilenet_v1, mobilenet_v2, mobilenet_v3_small, resnet_like, yamnet_like,
                                       ssd_detector, squeezenet, kws_cnn, tiny_unet)}
#: the second held-out set: built and scored once, after the changes it scores were made.
FRESH_MODELS = {f.__name__: f for f in (efficientnet_like, mobilenet_v3_large, densenet_like, ds_cnn, fc_autoencoder,
                                        har_conv1d, xception_like)}
#: the third held-out set: counted while the third pass was made, scored once after its fit was final.
THIRD_MODELS = {f.__name__: f for f in (resnet8, ghostnet_like, shufflenet_v2_like, tcn_audio, conv_autoencoder, lenet_tanh,
                                        mnasnet_like, preact_resnet, sensor_mlp)}
#: the fourth held-out set: counted before the fourth pass's fit was final, scored once after.
FOURTH_MODELS = {f.__name__: f for f in (csp_tiny, espcn_superres, wavenet_gated, fcn_segmenter, se_resnet, pose_heatmaps,
                                         vibration_autoencoder, mixnet_like)}
#: the fifth held-out set: counted before the fifth pass's fit was final, scored once after.
FIFTH_MODELS = {f.__name__: f for f in (attention_cnn, deeplab_tiny, hourglass_tiny, ecg_resnet1d, micronet_kws,
                                        inception_tiny, vgg_tiny, prelu_cnn)}
#: the sixth held-out set: counted before the sixth pass's fit was final, scored once after.
SIXTH_MODELS = {f.__name__: f for f in (vit_tiny, enet_tiny, conformer_kws, lraspp_segmenter, mlp_mixer_tiny,
                                        mtcnn_pnet, resnet18_narrow)}
#: the seventh held-out set: counted before the arena's extension to every operator was final, scored once after.
SEVENTH_MODELS = {f.__name__: f for f in (mobilevit_like, sensor_transformer, unet_bilinear, yolo_two_scale,
                                          convmixer_tiny)}
#: the eighth held-out set: counted before the eighth pass's fit was final, scored once after.
EIGHTH_MODELS = {f.__name__: f for f in (deit_tiny, kwt_audio, convnext_tiny, botnet_like, lstm_kws)}
#: the ninth held-out set (recurrent networks, unrolled as deployed): counted before the ninth pass's fit was
#: final, scored once after.
NINTH_MODELS = {f.__name__: f for f in (gru_kws, crnn_audio, stacked_lstm_har, simple_rnn_sensor, bigru_tagger)}
#: the conversions each is deployed in: (mode, int8 input/output type)
CONVERSIONS = (("int8", "float32"), ("int8", "uint8"), ("int8", "int8"), ("float32", "int8"), ("int16x8", "int8"),
               ("float16", "int8"), ("dynamic_int8", "int8"))


def build_real_models(seed: int = 0, models: dict | None = None):
    """(name, mode, io, tflite bytes or None, reason) for every model (of `models`, default
    REAL_MODELS) and conversion."""
    from nas.calibration import settle
    from nas.candidate import convert
    from nas.errors import CandidateFailed

    out = []
    for i, (name, builder) in enumerate((models or REAL_MODELS).items()):
        rng = np.random.default_rng(seed + i)
        model = builder()
        x = rng.uniform(0, 1, (16, *tuple(int(d) for d in model.input_shape[1:]))).astype(np.float32)
        settle(model, x, rng)
        for mode, io in CONVERSIONS:
            try:
                out.append((name, mode, io, convert(model, mode, x, io_type=io, batch_size=1), ""))
            except CandidateFailed as exc:
                out.append((name, mode, io, None, exc.reason))
    return out
