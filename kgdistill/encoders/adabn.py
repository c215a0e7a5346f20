"""AdaBN (Li et al. 2018, Pattern Recognition 80:109; the load-shift baseline of WDCNN, Zhang et al. 2017): a model
trained on one domain meets another by re-estimating its batch-norm statistics there, with no label and no
gradient step.  A new motor load shifts the vibration's level and spectrum; the normalisation follows it while
every learned weight stays as trained."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def batch_norms(module: nn.Module) -> list[_BatchNorm]:
    return [m for m in module.modules() if isinstance(m, _BatchNorm)]


@torch.no_grad()
def adapt_batch_norm(module: nn.Module, x: torch.Tensor) -> nn.Module:
    """A copy of ``module`` (left untouched) whose batch-norm layers hold the statistics of ``x``, the target
    domain's unlabelled inputs, taken in one pass over all of them (each layer's mean and unbiased variance over
    every sample, as its input arrives after the layers before it were re-estimated), in evaluation mode."""
    if not len(x):
        raise ValueError("AdaBN needs at least one target-domain input")
    out = copy.deepcopy(module)
    norms = batch_norms(out)
    if not norms:
        raise ValueError(f"{type(module).__name__} has no batch-norm layer: AdaBN has nothing to re-estimate")
    momenta = [bn.momentum for bn in norms]
    out.eval()                       # dropout and the rest stay in evaluation mode ...
    for bn in norms:                 # ... only the batch norms collect the new statistics
        bn.reset_running_stats()
        bn.momentum = None           # cumulative average: after one batch, exactly that batch's statistics
        bn.train()
    out(x)
    for bn, momentum in zip(norms, momenta):
        bn.momentum = momentum
    return out.eval()
