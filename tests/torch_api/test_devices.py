"""Devices the PyTorch way: nerve.device, Tensor.device, to(...), Module.to(...), cuda/accelerator/backends."""
import pickle

import numpy as np
import pytest

import nerve


def test_device_objects_parse_compare_and_print():
    cpu = nerve.device("cpu")
    assert cpu.type == "cpu" and cpu.index is None and str(cpu) == "cpu" and repr(cpu) == "device(type='cpu')"
    gpu = nerve.device("cuda:1")
    assert (gpu.type, gpu.index, str(gpu)) == ("cuda", 1, "cuda:1")
    assert nerve.device("cuda", 1) == gpu and nerve.device(gpu) == gpu and nerve.device("gpu:1") == gpu
    assert gpu == "cuda" and gpu == "cuda:1" and gpu != "cuda:0" and gpu != "cpu"
    assert nerve.device("cuda") == nerve.device("cuda", 0)    # no index: any index (unlike PyTorch)
    assert {cpu: 1}["cpu"] == 1 and pickle.loads(pickle.dumps(gpu)) == gpu
    assert cpu != 3
    for bad in ("tpu", "cuda:x", "cpu:"):
        with pytest.raises(RuntimeError, match="device"):
            nerve.device(bad)
    with pytest.raises(RuntimeError, match="non-negative"):
        nerve.device("cuda", -1)


def test_tensor_device_is_an_object_equal_to_its_name():
    x = nerve.ones(2)
    assert isinstance(x.device, nerve.device) and x.device == "cpu" and x.device == nerve.device("cpu")
    assert f"{x.device}" == "cpu" and not x.is_cuda


def test_tensor_to_accepts_devices_dtypes_and_tensors():
    x = nerve.tensor([1.0, 2.0])
    assert x.to(nerve.device("cpu")) is x and x.to("cpu") is x and x.cpu() is x
    assert x.to(nerve.float64).dtype == np.float64 and x.to("float64").dtype == np.float64
    assert x.to("cpu", nerve.float16).dtype == np.float16
    assert x.to(nerve.device("cpu"), dtype=nerve.int64).dtype == np.int64
    other = nerve.zeros(1, dtype=nerve.float64)
    y = x.to(other)
    assert y.dtype == np.float64 and y.device == other.device
    c = x.to("cpu", copy=True)
    assert c is not x and not np.shares_memory(c.data, x.data)
    assert x.to("cpu", non_blocking=True) is x
    with pytest.raises(TypeError, match="at most"):
        x.to("cpu", nerve.float32, nerve.float64)


def test_module_to_accepts_device_objects_and_dtypes():
    layer = nerve.nn.Linear(3, 2)
    weight = layer.weight
    assert layer.to(nerve.device("cpu")) is layer and layer.weight is weight
    layer.to(nerve.device("cpu"), nerve.float64)
    assert layer.weight.dtype == np.float64 and layer.weight is weight
    layer.to(nerve.zeros(1, dtype=nerve.float32))
    assert layer.bias.dtype == np.float32
    layer.to("float64")
    assert layer.bias.dtype == np.float64
    with pytest.raises(TypeError, match="only floating dtypes"):
        layer.to(nerve.int64)


def test_creation_takes_device_objects():
    assert nerve.zeros(2, device=nerve.device("cpu")).device == "cpu"
    assert nerve.tensor([1.0], device=nerve.device("cpu")).device == "cpu"


def _has_gpu() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - no CuPy, no driver or no device: no GPU
        return False


def test_cuda_accelerator_and_backends_queries_agree_with_the_machine():
    gpu = _has_gpu()
    assert nerve.cuda.is_available() is gpu and nerve.accelerator.is_available() is gpu
    assert (nerve.cuda.device_count() > 0) is gpu and nerve.accelerator.device_count() == nerve.cuda.device_count()
    assert nerve.accelerator.current_accelerator(check_available=True) == ("cuda" if gpu else None)
    assert nerve.backends.mps.is_available() is False and nerve.backends.mps.is_built() is False
    nerve.backends.cudnn.benchmark = True          # accepted, changes nothing
    nerve.backends.cudnn.benchmark = False
    nerve.backends.cuda.matmul.allow_tf32 = True
    nerve.set_float32_matmul_precision("high")
    assert nerve.get_float32_matmul_precision() == "high"
    nerve.set_float32_matmul_precision("highest")
    with pytest.raises(ValueError, match="expected 'highest', 'high' or 'medium', got 'low'"):
        nerve.set_float32_matmul_precision("low")
    nerve.use_deterministic_algorithms(True)
    assert nerve.are_deterministic_algorithms_enabled()
    nerve.use_deterministic_algorithms(False)
    nerve.cuda.manual_seed(0)
    nerve.cuda.manual_seed_all(0)
    nerve.cuda.synchronize()
    if not gpu:
        with pytest.raises(RuntimeError, match="no GPU is available"):
            nerve.cuda.current_device()


@pytest.mark.skipif(not _has_gpu(), reason="needs CuPy and a GPU")
def test_moves_to_a_gpu_keep_values_and_gradients():
    x = nerve.tensor([1.0, -2.0], requires_grad=True)
    y = x.to(nerve.device("cuda"))
    assert y.device == "cuda" and y.device.index == 0 and y.is_cuda and y.type() == "torch.cuda.FloatTensor"
    (y * y).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0])
    layer = nerve.nn.Linear(2, 1).to(nerve.device("cuda"))
    assert layer.weight.device == "cuda"
    assert nerve.zeros(2, device="cuda:0").device == nerve.device("cuda", 0)


@pytest.mark.parametrize("own", [True, False])
def test_num_threads_sets_the_threads_nerve_computes_with(own):
    """Own threads on: their count, BLAS kept single-threaded; off: BLAS's threads (as torch.set_num_threads)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    nerve.set_intra_op_threads(2 if own else None)  # conftest gives the process's mode back afterwards
    before = nerve.get_num_threads()
    try:
        for n in (3, 1):
            nerve.set_num_threads(n)
            blas = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
            assert nerve.get_num_threads() == n and blas and set(blas) == {1 if own else n}
            assert nerve.ops.streams.get_threads() == (n if own else 0)
    finally:
        nerve.set_num_threads(before)
    with pytest.raises(ValueError, match="expected a positive int, got 0"):
        nerve.set_num_threads(0)
