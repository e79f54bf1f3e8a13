"""Builders of the generated calibration models around sequence operators (`_op_builders`):
attention, its softmax over scores, layer normalization and its squared difference, unrolled recurrent
layers and chains of the element-wise operators their cells are made of."""

from __future__ import annotations

from ._builder_parts import _L, _image


def _attention(rng):
    """Self-attention over a sequence of tokens (a tiny transformer's or a conformer's block): Keras'
    MultiHeadAttention (dense projections, RESHAPE and TRANSPOSE around two BATCH_MATMUL and a
    SOFTMAX), or one head written as Q.K^T (the right operand read transposed), SOFTMAX, .V."""
    keras, L = _L()
    from ..backend import tf

    tokens, dim = int(rng.choice([16, 25, 36, 49, 64, 100])), int(rng.choice([8, 16, 24, 32, 48]))
    inputs = keras.Input((tokens, dim))
    if rng.random() < 0.5:
        heads = int(rng.choice([1, 2, 4]))
        y = L.MultiHeadAttention(heads, int(rng.choice([4, 8, 16, 32])))(inputs, inputs)
    else:
        q, k, v = (L.Dense(int(rng.choice([8, 16, 32])) if i < 2 else dim)(inputs) for i in range(3))
        q = L.Dense(int(k.shape[-1]))(q) if q.shape[-1] != k.shape[-1] else q
        scores = L.Softmax()(L.Lambda(lambda t: tf.matmul(t[0], t[1], transpose_b=True))([q, k]))
        y = L.Lambda(lambda t: tf.matmul(t[0], t[1]))([scores, v])
    return keras.Model(inputs, L.Add()([inputs, y]) if rng.random() < 0.5 else y)


def _layer_norm(rng, epsilons: tuple[float, ...] = ()):
    """Layer normalization over a token's features or a pixel's channels (transformers, ConvNeXt):
    MEAN, SQUARED_DIFFERENCE, RSQRT, then the scale and shift, optionally a dense layer after.
    Keras' default epsilon (1e-3) converts to MEANs over a transposed tensor; one drawn from
    `epsilons` (1e-5, 1e-6: ViT's, DeiT's, ConvNeXt's) to MEANs over the innermost axis alone."""
    keras, L = _L()
    epsilon = float(rng.choice(epsilons)) if epsilons else 1e-3
    if rng.random() < 0.6:
        inputs = keras.Input((int(rng.choice([16, 32, 49, 64, 100])), int(rng.choice([8, 16, 32, 64]))))
    else:
        inputs = keras.Input(_image(rng, min_size=4, max_size=16, channels=(8, 16, 32)))
    y = L.LayerNormalization(epsilon=epsilon)(inputs)
    return keras.Model(inputs, L.Dense(int(rng.choice([8, 16, 32])))(y) if rng.random() < 0.5 else y)


def _scores_softmax(rng):
    """SOFTMAX over attention scores, (heads, queries, keys): rows as long as the sequence, as many as
    heads x queries (XNNPACK runs a row's max, exponentials and scale over the whole row)."""
    keras, L = _L()
    tokens = int(rng.choice([16, 25, 36, 49, 64, 100, 144, 196, 256]))
    inputs = keras.Input((int(rng.choice([1, 2, 3, 4])), tokens, tokens))
    return keras.Model(inputs, L.Softmax()(inputs))


def _recurrent(rng):
    """A recurrent layer unrolled as deployed files are (LSTM, GRU or a plain RNN over 4-32 steps, 8-64
    units): per step a fully connected layer or two, SPLIT into gates, LOGISTIC, TANH, MUL and ADD on
    vectors of a few hundred elements, UNPACK of the sequence first. Hundreds of tiny operators, so
    a model's fixed cost per inference is told apart from each operator's own."""
    keras, L = _L()
    steps, units = int(rng.integers(4, 33)), int(rng.choice([8, 16, 24, 32, 48, 64]))
    inputs = keras.Input((steps, int(rng.choice([3, 6, 10, 13, 20, 40]))))
    layer = (L.LSTM, L.GRU, L.SimpleRNN)[int(rng.integers(3))]
    x = layer(units, unroll=True, return_sequences=bool(rng.random() < 0.25))(inputs)
    return keras.Model(inputs, L.Dense(int(rng.choice([4, 8, 12])))(x) if rng.random() < 0.5 else x)


def _elementwise_chain(rng):
    """A chain of 2-32 element-wise operators (LOGISTIC, TANH, ADD, MUL of the chain with its input)
    on one short vector: what a recurrent cell's gates do, with nothing else in the model."""
    keras, L = _L()
    inputs = keras.Input((int(rng.choice([16, 32, 64, 128, 256])),))
    x = inputs
    for _ in range(int(rng.integers(2, 33))):
        kind = int(rng.integers(4))
        x = (L.Activation("sigmoid")(x) if kind == 0 else L.Activation("tanh")(x) if kind == 1
             else L.Add()([x, inputs]) if kind == 2 else L.Multiply()([x, inputs]))
    return keras.Model(inputs, x)


def _squared_difference(rng):
    """SQUARED_DIFFERENCE alone, as a layer norm's variance takes it: tokens (T, C) or pixels against
    a per-row mean (T, 1), a per-feature vector (1, C), or a tensor of the same shape. In a layer
    norm it always comes with its MEANs, which left the fit unable to tell their costs apart."""
    keras, L = _L()
    from ..backend import tf

    shape = ((int(rng.choice([16, 32, 49, 64, 100])), int(rng.choice([8, 16, 32, 64]))) if rng.random() < 0.6
             else _image(rng, min_size=4, max_size=16, channels=(8, 16, 32)))
    other = (*shape[:-1], 1) if rng.random() < 0.6 else (1,) * (len(shape) - 1) + shape[-1:] if rng.random() < 0.5 else shape
    a, b = keras.Input(shape), keras.Input(other)
    return keras.Model([a, b], L.Lambda(lambda t: tf.math.squared_difference(t[0], t[1]))([a, b]))

