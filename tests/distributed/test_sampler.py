"""DistributedSampler and DistributedLoader without MPI (explicit ranks), and the errors that need no second rank."""
import sys

import numpy
import pytest

import nerve
from nerve import nn, optim
from nerve.data import TensorDataset
from nerve.distributed import DistributedLoader, DistributedOptimizer, DistributedSampler, comm


@pytest.mark.parametrize("n, world", [(64, 2), (10, 3), (7, 4), (5, 1)])
def test_shards_are_disjoint_cover_the_epoch_and_take_equal_steps(n, world):
    shards = [list(DistributedSampler(range(n), num_replicas=world, rank=r, seed=5)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) == -(-n // world)
    every = [i for s in shards for i in s]
    assert sorted(set(every)) == list(range(n))  # covering
    padding = len(every) - n
    assert padding == (-n) % world  # disjoint except the few repeated to even the shards (PyTorch's padding)
    if padding == 0:
        assert len(set(every)) == n


def test_the_order_is_reshuffled_each_epoch_and_the_same_on_every_rank():
    a = DistributedSampler(range(50), num_replicas=2, rank=0, seed=1)
    b = DistributedSampler(range(50), num_replicas=2, rank=1, seed=1)
    first = list(a)
    assert first == list(a)  # the same epoch gives the same order
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert sorted(list(a) + list(b)) == list(range(50))
    # rank r holds positions r, r + W, ... of the epoch's permutation of (seed, epoch)
    assert list(a) == numpy.random.default_rng([1, 1]).permutation(50)[0::2].tolist()


def test_drop_last_and_no_shuffle():
    assert list(DistributedSampler(range(7), num_replicas=2, rank=1, shuffle=False, drop_last=True)) == [1, 3, 5]
    assert list(DistributedSampler(range(7), num_replicas=2, rank=1, shuffle=False)) == [1, 3, 5, 0]


@pytest.mark.parametrize("kwargs, message", [
    ({"num_replicas": 0}, "num_replicas must be a positive int"),
    ({"num_replicas": 2, "rank": 2}, r"rank must be in \[0, 2\)"),
    ({"num_replicas": 8, "rank": 0, "drop_last": True}, "5 samples cannot be shared by 8 ranks"),
])
def test_sampler_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistributedSampler(range(5), **kwargs)


def _batches(loader):
    return [b[0].numpy().ravel().tolist() for b in loader]


def test_loader_state_moves_between_world_sizes_with_the_same_global_batch():
    data = TensorDataset(numpy.arange(24.0)[:, None])
    two = [DistributedLoader(data, 4, seed=9, num_replicas=2, rank=r) for r in range(2)]
    one = DistributedLoader(data, 8, seed=9, num_replicas=1, rank=0)
    rank0, rank1 = _batches(two[0]), _batches(two[1])
    for b, batch in enumerate(_batches(one)):  # step b of 2 ranks x 4 = step b of 1 rank x 8
        assert sorted(rank0[b] + rank1[b]) == sorted(batch)
    it = iter(two[0])
    next(it)  # 1 step of the second epoch by 2 ranks: 8 samples of all ranks
    state = two[0].state_dict()
    assert state["samples_done"] == 8 and state["epoch"] == 1
    resumed = DistributedLoader(data, 8, seed=123, num_replicas=1, rank=0)
    resumed.load_state_dict(state)
    fresh = DistributedLoader(data, 8, seed=9, num_replicas=1, rank=0)
    _batches(fresh)
    assert _batches(resumed) == _batches(fresh)[1:]
    odd = DistributedLoader(data, 3, num_replicas=1, rank=0)
    with pytest.raises(ValueError, match="8 samples of the epoch were used, not a multiple of this run's global "
                                         r"batch 3 \(3 x 1 ranks\)"):
        odd.load_state_dict(state)
    with pytest.raises(ValueError, match="non-distributed run"):
        odd.load_state_dict({"num_samples": 24, "batch_size": 3})


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"pip install 'nerve\[mpi\]'"):
        comm._mpi()


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="timeout must be a positive number of seconds, got 0"):
        comm.set_timeout(0)


def test_distributed_optimizer_refuses_closures_and_double_wrapping(monkeypatch):
    monkeypatch.setattr(comm, "launched_by_mpi", lambda: False)
    model = nn.Linear(3, 2)
    opt = DistributedOptimizer(optim.SGD(model.parameters(), lr=0.1))
    assert isinstance(opt, optim.SGD) and opt.bytes_per_step == 8 * 4 + 2 * 4  # 6 + 2 values and 2 flags
    with pytest.raises(ValueError, match=r"DistributedOptimizer\(SGD\): step\(closure\) is not supported"):
        opt.step(lambda: model(nerve.ones(1, 3)).sum())
    with pytest.raises(ValueError, match="already distributed"):
        DistributedOptimizer(opt)


def test_fit_distributed_refuses_a_plain_data_loader(monkeypatch):
    monkeypatch.setattr(comm, "launched_by_mpi", lambda: False)
    from nerve.data import DataLoader
    model = nn.Linear(3, 2)
    loader = DataLoader(TensorDataset(numpy.zeros((4, 3)), numpy.zeros(4, dtype=int)), batch_size=2)
    with pytest.raises(TypeError, match="fit\\(distributed=True\\): the training data must be arrays, a Dataset or a "
                                        "DistributedLoader"):
        nerve.train.fit(model, loader, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
                        distributed=True, verbose=0)


def test_a_distributed_checkpoint_resumes_only_distributed(tmp_path, monkeypatch):
    monkeypatch.setattr(comm, "launched_by_mpi", lambda: False)
    data = (numpy.random.default_rng(0).normal(size=(16, 3)).astype(numpy.float32), numpy.arange(16) % 2)

    def run(distributed, **kwargs):
        nerve.manual_seed(0)
        model = nn.Linear(3, 2)
        return nerve.train.fit(model, data, loss="cross_entropy", optimizer=optim.SGD(model.parameters(), lr=0.1),
                               batch_size=4, verbose=0, distributed=distributed, **kwargs)
    run(True, checkpoint=tmp_path / "d.ckpt")
    with pytest.raises(ValueError, match=r"written by fit\(distributed=True\); resume it with distributed=True "
                                         r"\(under mpiexec"):
        run(False, epochs=2, resume=tmp_path / "d.ckpt")
    run(False, checkpoint=tmp_path / "p.ckpt")
    with pytest.raises(ValueError, match=r"written by fit\(distributed=False\); resume it with distributed=False"):
        run(True, epochs=2, resume=tmp_path / "p.ckpt")


def test_distributed_data_parallel_on_one_process_is_the_module(monkeypatch):
    monkeypatch.setattr(comm, "launched_by_mpi", lambda: False)
    import nerve.distributed as dist

    dist.init_process_group("nccl", rank=0, world_size=1)
    model = nn.Linear(3, 2)
    ddp = dist.DistributedDataParallel(model, device_ids=[0])
    x = nerve.ones(4, 3)
    assert ddp.module is model and set(ddp.state_dict()) == {"module.weight", "module.bias"}
    with ddp.no_sync():
        ddp(x).sum().backward()
    ddp(x).sum().backward()
    numpy.testing.assert_allclose(model.bias.grad.numpy(), [8.0, 8.0])
    assert dist.get_rank() == 0 and dist.get_world_size() == 1 and dist.get_backend() == "mpi"
    t = nerve.tensor([1.0, 2.0])
    dist.all_reduce(t, op=dist.ReduceOp.AVG)
    assert t.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="rank=1, but mpiexec started this process with rank 0"):
        dist.init_process_group("gloo", rank=1)
    with pytest.raises(TypeError, match="expected a Module"):
        dist.DistributedDataParallel(lambda t: t)
