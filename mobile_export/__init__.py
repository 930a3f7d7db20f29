"""mobile-export: MobileNets built in Keras, quantized, exported for phones, and proven to agree.

The pipeline is scriptable without the CLI::

    import mobile_export

    result = mobile_export.build(out="out", arch="mobilenet_v2", quant=["int8"])
    print(mobile_export.predict("out/tflite-int8", ["cat.jpg"]))

Both are imported lazily, so ``import mobile_export`` stays cheap.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["build", "predict", "__version__"]


def __getattr__(name: str):
    if name == "build":
        from mobile_export.pipeline import build

        return build
    if name == "predict":
        from mobile_export.predict import predict

        return predict
    raise AttributeError(f"module 'mobile_export' has no attribute {name!r}")
