"""Each exported op on its own: a one-op module traced at batch 2, run by onnxruntime at batches 3 and 5 against
nerve's own result (float32, 1e-5)."""
import numpy
import pytest

ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need the extra nerve[onnx]")

import nerve  # noqa: E402
import nerve.functional as F  # noqa: E402
import nerve.onnx as nx  # noqa: E402
from nerve import nn  # noqa: E402

MASK = nerve.tensor(numpy.array([True, False, True, True, False, True]))
EXPONENT = nerve.tensor(numpy.linspace(0.5, 2.0, 6).astype(numpy.float32))

OPS = {  # name: x (batch, 6) -> output
    "abs": lambda x: x.abs(), "neg": lambda x: -x, "exp": lambda x: x.exp(), "sin": lambda x: x.sin(),
    "cos": lambda x: x.cos(), "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(), "erf": lambda x: x.erf(),
    "sign": lambda x: x.sign(), "log": lambda x: (x.abs() + 1).log(), "log1p": lambda x: x.abs().log1p(),
    "expm1": lambda x: x.expm1(), "sqrt": lambda x: x.abs().sqrt(), "rsqrt": lambda x: (x.abs() + 1).rsqrt(),
    "pow_scalar": lambda x: x ** 3, "pow": lambda x: (x.abs() + 1) ** EXPONENT, "sub_div": lambda x: (x - 2) / 3,
    "clamp": lambda x: x.clamp(-0.5, 0.7), "maximum": lambda x: nerve.maximum(x, EXPONENT - 1),
    "minimum": lambda x: nerve.minimum(x, EXPONENT - 1), "where": lambda x: nerve.where(MASK, x, x * 0.1),
    "where_compare": lambda x: nerve.where(x > 0.2, x, x * 0.1), "compare_and": lambda x: ((x <= 0.5) & (x != 0.1)) * x,
    "compare_eq_ge": lambda x: nerve.where((x.clamp(-0.5, 0.5) == 0.5) | (x >= 1), x, -x),
    "cast": lambda x: x.double().exp().float(), "clone": lambda x: x.clone() + 1,
    "relu": F.relu, "leaky_relu": lambda x: F.leaky_relu(x, 0.2), "elu": lambda x: F.elu(x, 0.7), "silu": F.silu,
    "softplus": F.softplus, "softplus_beta": lambda x: F.softplus(x, beta=2.0),
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"), "softmax": lambda x: F.softmax(x, -1),
    "log_softmax": lambda x: F.log_softmax(x, -1), "logsumexp": lambda x: x.logsumexp(1),
    "sum": lambda x: x.sum(1, keepdim=True), "mean": lambda x: x.mean(1), "var": lambda x: x.var(1),
    "amax": lambda x: x.amax(1), "max_dim": lambda x: x.max(1)[0], "prod": lambda x: x.prod(1),
    "cumsum": lambda x: x.cumsum(1), "norm": lambda x: x.norm(dim=1), "norm_l1": lambda x: x.norm(p=1, dim=1),
    "cat": lambda x: nerve.cat([x, x * 2], 1), "stack": lambda x: nerve.stack([x, x + 1], 1),
    "flip": lambda x: x.flip(1), "repeat": lambda x: x.repeat(1, 2), "pad": lambda x: F.pad(x, (1, 2), value=0.5),
    "transpose": lambda x: x.reshape(-1, 2, 3).transpose(1, 2), "expand": lambda x: x[:, :1].expand(-1, 4),
    "einsum": lambda x: nerve.einsum("bi,bi->b", x, x), "matmul": lambda x: x @ EXPONENT.reshape(6, 1),
    "index_int_none": lambda x: x[:, 2, None], "index_step": lambda x: x[:, ::-2],
    "index_ellipsis": lambda x: x[..., 1:4],
    "index_array": lambda x: x[:, numpy.array([4, 0, 4])], "index_last": lambda x: x[:, -1],
}


class One(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("name", sorted(OPS))
def test_one_op(tmp_path, name):
    model = One(OPS[name]).eval()
    rng = numpy.random.default_rng(0)
    nx.export(model, nerve.tensor(rng.normal(size=(2, 6)).astype(numpy.float32)), tmp_path / "op.onnx")
    session = ort.InferenceSession(str(tmp_path / "op.onnx"), providers=["CPUExecutionProvider"])
    for batch in (3, 5):
        x = rng.normal(size=(batch, 6)).astype(numpy.float32)
        want = model(nerve.tensor(x)).numpy()
        got = session.run(None, {"input": x})[0]
        assert got.shape == want.shape
        numpy.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)
