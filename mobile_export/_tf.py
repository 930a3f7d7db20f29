"""Import TensorFlow quietly, and keep the converter's console output out of the user's terminal."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path


def import_tensorflow():
    """Import TensorFlow and Keras with their start-up banners kept off the terminal.

    TF_CPP_MIN_LOG_LEVEL silences most C++ logs, but absl still prints a few lines to descriptor 2
    before that setting is read, so the first import also runs inside :func:`captured_output`.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        with captured_output(None):
            import keras  # noqa: F401  (Keras imports TensorFlow as its backend)
            import tensorflow
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def captured_output(log_path: Path | None):
    """Send everything written to file descriptors 1 and 2 to ``log_path`` while the block runs.

    The TFLite converter and Keras' export print hundreds of lines from C++ and Python; a clean
    terminal needs the redirect at the descriptor level. With ``log_path=None`` the output goes
    to a temporary file that is removed afterwards unless the block raised.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    if log_path is None:
        handle, name = tempfile.mkstemp(suffix=".log")
        os.close(handle)
        target = Path(name)
    else:
        target = log_path
    saved = os.dup(1), os.dup(2)
    # In Jupyter, sys.stdout is not descriptor 1, so Python-level writes are redirected too.
    saved_streams = sys.stdout, sys.stderr
    with open(target, "ab") as log, open(target, "a", encoding="utf-8", errors="replace") as text_log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = text_log
        try:
            yield target
        finally:
            text_log.flush()
            sys.stdout, sys.stderr = saved_streams
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
    if log_path is None:
        target.unlink(missing_ok=True)
