"""Making an exported student smaller: magnitude pruning of the student's weights (``torch.nn.utils.prune``)
before export, and int8 dynamic quantisation of the ONNX graph (``onnxruntime.quantization``) after it."""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import ConfigError

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
QUANTIZE = ("int8",)


def prune_weights(module: nn.Module, amount: float) -> int:
    """Zero the ``amount`` share of smallest-magnitude weights across the module's linear and convolution
    layers (global L1), made permanent; returns how many weights were zeroed.  Dense storage keeps the file
    size and the dense kernels' speed: pruning here buys sparsity, not speed (docs/deploy.md)."""
    from torch.nn.utils import prune

    if not 0.0 < amount < 1.0:
        raise ConfigError(f"--prune: {amount}; expected a share of weights between 0 and 1 (e.g. 0.3)")
    params = [(m, "weight") for m in module.modules() if isinstance(m, PRUNABLE)]
    if not params:
        raise ConfigError("--prune: the student has no linear or convolution layers to prune")
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for m, name in params:
        prune.remove(m, name)
    return int(sum(int((m.weight == 0).sum()) for m, _ in params))


SKIPPED_OPS = ("Conv",)   # ONNX Runtime's int8 convolution (ConvInteger) is slower on CPU than its fp32 one
                          # (3.5x on the benchmark's sensor student)


def quantize_model(src: Path, dst: Path, scheme: str) -> None:
    """int8: the matrix products' weights stored as int8, activations quantised on the fly (no calibration
    data needed); convolutions stay fp32."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    if scheme not in QUANTIZE:
        raise ConfigError(f"--quantize: {scheme!r}; expected one of {', '.join(QUANTIZE)}")
    ops = [op for op in IntegerOpsRegistry if op not in SKIPPED_OPS]
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=ops)
