"""AdaBN: batch-norm statistics re-estimated on a target domain's unlabelled inputs, weights untouched."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from kgdistill.encoders.adabn import adapt_batch_norm, batch_norms
from kgdistill.encoders.wdcnn import WDCNNEncoder


def test_statistics_become_the_targets_and_predictions_use_them():
    torch.manual_seed(0)
    net = nn.Sequential(nn.BatchNorm1d(2), nn.Linear(2, 1))
    net.train()
    net(torch.tensor([[0.0, 10.0], [2.0, 14.0]]))     # source: running stats move towards mean (1, 12)
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    target = torch.tensor([[4.0, -1.0], [6.0, -3.0], [8.0, -5.0]])
    adapted = adapt_batch_norm(net, target)
    bn = adapted[0]
    # by hand: means (6, -3); unbiased variances ((4 + 0 + 4) / 2, (4 + 0 + 4) / 2) = (4, 4)
    assert torch.allclose(bn.running_mean, torch.tensor([6.0, -3.0]))
    assert torch.allclose(bn.running_var, torch.tensor([4.0, 4.0]))
    assert bn.momentum == 0.1 and not adapted.training
    for k, v in net.state_dict().items():           # the source model is left as it was
        assert torch.equal(v, before[k]), k
    for k in ("0.weight", "0.bias", "1.weight", "1.bias"):  # no learned weight changes
        assert torch.equal(adapted.state_dict()[k], before[k])
    # predictions normalise with the target's statistics: x = (6, -3) is the target's mean -> BN output = bias
    x = torch.tensor([[6.0, -3.0]])
    want = adapted[1](adapted[0].bias.unsqueeze(0))
    assert torch.allclose(adapted(x), want)
    assert not torch.allclose(net(x), want)


def test_wdcnn_every_batch_norm_re_estimated():
    torch.manual_seed(0)
    enc = WDCNNEncoder(1, 1024, 8).eval()
    target = 3.0 + 2.0 * torch.randn(16, 1, 1024)
    adapted = adapt_batch_norm(enc, target)
    first = batch_norms(adapted)[0]
    with torch.no_grad():  # the first batch norm sees the first convolution's output on the target inputs
        h = enc.conv[0](target)
    assert torch.allclose(first.running_mean, h.mean(dim=(0, 2)), atol=1e-5)
    assert torch.allclose(first.running_var, h.var(dim=(0, 2), unbiased=True), rtol=1e-4)
    assert len(batch_norms(adapted)) == 6 and all(int(b.num_batches_tracked) == 1 for b in batch_norms(adapted))
    assert all(int(b.num_batches_tracked) == 0 for b in batch_norms(enc))


def test_refusals():
    with pytest.raises(ValueError, match="no batch-norm layer"):
        adapt_batch_norm(nn.Linear(2, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="at least one"):
        adapt_batch_norm(nn.BatchNorm1d(2), torch.zeros(0, 2))


class _Fixed(nn.Module):
    """Concept embeddings that do not depend on anything (stands in for the teacher's GNN)."""

    def __init__(self, c: torch.Tensor):
        super().__init__()
        self.c = c

    def forward(self) -> torch.Tensor:
        return self.c


def test_teacher_labels_the_unlabelled_samples_with_their_own_statistics():
    from kgdistill.train.distill import teacher_targets
    from kgdistill.train.trainer import StageData

    torch.manual_seed(0)
    enc = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    enc.train()
    enc(torch.randn(32, 3))                              # source statistics
    x = torch.cat([torch.randn(6, 3), 5 + 3 * torch.randn(5, 3)])   # 6 source windows, 5 of another domain
    labels = torch.tensor([0, 1, 0, 1, 0, 1, -1, -1, -1, -1, -1])
    data = StageData(x=x, labels=labels, x_val=x[:2], y_val=labels[:2])
    concepts = _Fixed(torch.randn(2, 2))
    cand = torch.arange(2)
    _, plain, _ = teacher_targets(enc, concepts, data, cand, 0.1)
    _, adapted, logits = teacher_targets(enc, concepts, data, cand, 0.1, adabn_unlabelled=True)
    assert torch.equal(adapted[:6], plain[:6])           # the labelled (source) samples: the teacher as trained
    assert torch.allclose(adapted[6:], adapt_batch_norm(enc, x[6:]).eval()(x[6:]))   # the others: AdaBN on them
    assert not torch.allclose(adapted[6:], plain[6:]) and logits.shape == (11, 2)
