"""PyTorch-style code using the nn/optim names added for issue 19 runs with ``import nerve as torch``: a spatial
transformer, a CTC recogniser, weight norm + SWA with a cyclic schedule, lazy layers under DataParallel."""
import numpy as np

import nerve as torch
import nerve.functional as F
from nerve import nn, optim
from nerve.nn.utils import parametrizations, parametrize
from nerve.optim.lr_scheduler import ChainedScheduler, ConstantLR, CyclicLR, ExponentialLR
from nerve.optim.swa_utils import SWALR, AveragedModel, get_ema_multi_avg_fn, update_bn


class STN(nn.Module):
    def __init__(self):
        super().__init__()
        self.loc = nn.Sequential(nn.Flatten(), nn.LazyLinear(6))

    def forward(self, x):
        theta = self.loc(x).view(-1, 2, 3) + torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
        grid = F.affine_grid(theta, x.size(), align_corners=False)
        return F.grid_sample(x, grid, align_corners=False)


def test_spatial_transformer_and_unfold_port():
    torch.manual_seed(0)
    model = nn.DataParallel(STN())
    x = torch.randn(2, 1, 6, 6)
    out = model(x)
    assert out.shape == (2, 1, 6, 6) and "module.loc.1.weight" in model.state_dict()
    patches = nn.Unfold(kernel_size=2, stride=2)(out)
    assert torch.allclose(nn.Fold(output_size=(6, 6), kernel_size=2, stride=2)(patches), out)
    up = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.PixelShuffle(2))
    assert up(x).shape == (2, 1, 12, 12)


def test_ctc_recogniser_port():
    torch.manual_seed(0)
    T, N, C = 12, 3, 5
    rnn = nn.GRU(4, 16)
    head = nn.Linear(16, C)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    opt = optim.Adam(list(rnn.parameters()) + list(head.parameters()), lr=0.02)
    x = torch.randn(T, N, 4)
    targets = torch.randint(1, C, (N, 4), dtype=torch.long)
    input_lengths = torch.full((N,), T, dtype=torch.long)
    target_lengths = torch.tensor([4, 3, 2], dtype=torch.long)
    first = None
    for _ in range(60):
        log_probs = head(rnn(x)[0]).log_softmax(2)
        loss = ctc(log_probs, targets, input_lengths, target_lengths)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(rnn.parameters(), 5.0, foreach=True)
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.3 * first


def test_weight_norm_swa_schedules_port():
    torch.manual_seed(0)
    model = nn.Sequential(parametrizations.weight_norm(nn.Linear(3, 8)), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))
    assert parametrize.is_parametrized(model[0], "weight")
    nn.init.trunc_normal_(model[3].weight, std=0.02)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = ChainedScheduler([ConstantLR(opt, factor=0.5, total_iters=5), ExponentialLR(opt, gamma=0.99)])
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    swa = AveragedModel(model)
    x = torch.randn(64, 3)
    y = x.sum(1, keepdim=True)
    for epoch in range(40):
        loss = F.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update_parameters(model)
        if epoch >= 20:
            swa.update_parameters(model)
        sched.step()
    update_bn([(x, y)], swa)
    swa.eval()
    assert F.mse_loss(swa(x), y).item() < 0.5 * F.mse_loss(torch.zeros(64, 1), y).item()
    swalr = SWALR(opt, swa_lr=0.01, anneal_epochs=2)
    swalr.step()
    swalr.step()
    assert np.isclose(opt.param_groups[0]["lr"], 0.01)
    cyc = CyclicLR(optim.SGD(model.parameters(), lr=0.1, momentum=0.9), base_lr=0.001, max_lr=0.1, step_size_up=4)
    assert cyc.get_last_lr() == [0.001]
    transformer = nn.Transformer(d_model=8, nhead=2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    mask = transformer.generate_square_subsequent_mask(3)
    assert transformer(torch.randn(4, 2, 8), torch.randn(3, 2, 8), tgt_mask=mask).shape == (3, 2, 8)
    sync = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(sync[1], nn.SyncBatchNorm)
