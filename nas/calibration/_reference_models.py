"""The MLPerf Tiny reference architectures, whose published microcontroller timings
(`latency_models/mlperf_tiny_cortex_m.csv`) calibrate the microcontroller board catalog.

Built after the public MLPerf Tiny training code (github.com/mlcommons/tiny, benchmark/training):
ResNet-8 (image classification), DS-CNN (keyword spotting), MobileNetV1 0.25x (visual wake
words) and the fully connected autoencoder (anomaly detection). Weights do not change the work
the kernels do, so these are built untrained (statistics settled by `settle` in `_sampling`).
"""

from __future__ import annotations

__all__ = ["REFERENCE_MODELS", "build_reference"]

#: reference model -> (builder name, input shape)
REFERENCE_MODELS = {
    "ResNet-8 (CIFAR-10)": ("resnet8", (32, 32, 3)),
    "DS-CNN (Speech Commands)": ("dscnn", (49, 10, 1)),
    "MobileNetV1 0.25x": ("mobilenet_v1_025", (96, 96, 3)),
    "FC autoencoder (ToyADMOS)": ("fc_autoencoder", (640,)),
}


def build_reference(name: str):
    from ..backend import keras

    L = keras.layers
    builder, shape = REFERENCE_MODELS[name]
    inputs = keras.Input(shape)

    def conv_bn(x, filters, kernel, stride=1, relu=True):
        x = L.Conv2D(filters, kernel, stride, "same")(x)
        x = L.BatchNormalization()(x)
        return L.ReLU()(x) if relu else x

    if builder == "resnet8":
        x = conv_bn(inputs, 16, 3)
        for filters, stride in ((16, 1), (32, 2), (64, 2)):
            y = conv_bn(x, filters, 3, stride)
            y = conv_bn(y, filters, 3, 1, relu=False)
            if stride != 1:
                x = L.Conv2D(filters, 1, stride, "same")(x)
            x = L.ReLU()(L.Add()([x, y]))
        x = L.AveragePooling2D(pool_size=8)(x)
        x = L.Dense(10, activation="softmax")(L.Flatten()(x))
    elif builder == "dscnn":
        x = conv_bn(inputs, 64, (10, 4), 2)
        for _ in range(4):
            x = L.DepthwiseConv2D(3, 1, "same")(x)
            x = L.ReLU()(L.BatchNormalization()(x))
            x = conv_bn(x, 64, 1)
        x = L.AveragePooling2D(pool_size=(int(x.shape[1]), int(x.shape[2])))(x)
        x = L.Dense(12, activation="softmax")(L.Flatten()(x))
    elif builder == "mobilenet_v1_025":
        x = conv_bn(inputs, 8, 3, 2)
        for filters, stride in ((16, 1), (32, 2), (32, 1), (64, 2), (64, 1), (128, 2),
                                (128, 1), (128, 1), (128, 1), (128, 1), (128, 1), (256, 2), (256, 1)):
            x = L.DepthwiseConv2D(3, stride, "same")(x)
            x = L.ReLU()(L.BatchNormalization()(x))
            x = conv_bn(x, filters, 1)
        x = L.AveragePooling2D(pool_size=int(x.shape[1]))(x)
        x = L.Dense(2, activation="softmax")(L.Flatten()(x))
    else:  # fc_autoencoder
        x = inputs
        for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
            x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
        x = L.Dense(640)(x)
    return keras.Model(inputs, x, name=builder)
