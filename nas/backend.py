"""The one place TensorFlow is imported: `from nas.backend import tf, keras`.

Keras 2 (tf-keras) must be selected before the import, because tensorflow-model-optimization
works only with Keras 2. Import this module inside the functions that need TensorFlow, so that
`import nas` and `nas --help` stay fast."""

from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from .logs import stderr_to_log  # noqa: E402

with stderr_to_log("nas.tensorflow"):  # oneDNN, CUDA and absl notices at import: to the log, not the terminal
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices("GPU")  # the CUDA probe ("failed call to cuInit" without a GPU) happens here

if os.environ["TF_USE_LEGACY_KERAS"] != "1":  # pragma: no cover - guarded by the setdefault above
    raise ImportError("nas needs TF_USE_LEGACY_KERAS=1 (Keras 2) for tensorflow-model-optimization")

tf.get_logger().setLevel("ERROR")

__all__ = ["tf", "keras"]
