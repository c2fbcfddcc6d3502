"""Helpers shared by the test files: float64 tensors, seeded inputs, NumPy references used by more than one file,
layer checks, a small classification task, data sets without the network, an independent TensorBoard reader."""
import math
import struct
import urllib.error

import numpy as np
from scipy.special import erf

import nerve
from nerve import nn
from nerve.data.datasets import download


# --- tensors and seeded inputs -------------------------------------------------------------------------------
def T(a, requires_grad: bool = False) -> nerve.Tensor:
    """``a`` as a float64 Tensor (gradcheck needs float64); ``requires_grad`` as in ``nerve.tensor``."""
    return nerve.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad)


def randn64(*shape, requires_grad: bool = True) -> nerve.Tensor:
    """Standard-normal float64 leaf from nerve's generator (conftest seeds it before every test)."""
    return nerve.randn(*shape, dtype=nerve.float64, requires_grad=requires_grad)


def away_from_kinks(rng, shape, kinks=(-3.0, -1.0, 0.0, 1.0, 3.0, 6.0), gap=0.05, low=-5.0, high=8.0):
    """Uniform values in [low, high] at least ``gap`` from the points where a piecewise function bends, so finite
    differences never straddle a kink."""
    x = rng.uniform(low, high, size=shape)
    for k in kinks:
        near = np.abs(x - k) < gap
        x[near] = k + np.where(x[near] >= k, gap, -gap)
    return x


# --- NumPy references ----------------------------------------------------------------------------------------
def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def np_softplus(x):
    return np.logaddexp(0, x)


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_reduce(loss, reduction, denom=None):
    """A loss reduced as PyTorch's ``reduction`` does ("mean" divides by ``denom`` when given)."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (loss.size if denom is None else denom)


def np_gelu(x):
    """The exact GELU, x Phi(x)."""
    return x * 0.5 * (1 + erf(x / math.sqrt(2)))


def np_gelu_tanh(x):
    """GELU's tanh approximation."""
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def ref_attention(q, k, v, bias=None, scale=None):
    """softmax(q k^T scale + bias) v, one batch element, one query row at a time; masked rows give 0.
    Returns (out, weights)."""
    batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    L, S = q.shape[-2], k.shape[-2]
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    bias = np.zeros((L, S)) if bias is None else bias
    bias = np.broadcast_to(bias, batch + (L, S))
    q, k, v = (np.broadcast_to(a, batch + a.shape[-2:]) for a in (q, k, v))
    out = np.zeros(batch + (L, v.shape[-1]))
    weights = np.zeros(batch + (L, S))
    for b in np.ndindex(*batch):
        for i in range(L):
            scores = np.array([q[b][i] @ k[b][j] * scale + bias[b][i, j] for j in range(S)])
            if np.all(np.isneginf(scores)):
                continue
            e = np.exp(scores - scores.max())
            w = e / e.sum()
            weights[b][i] = w
            out[b][i] = sum(w[j] * v[b][j] for j in range(S))
    return out, weights


def ref_mha(m, query, key, value, bias=None):
    """PyTorch's MultiheadAttention spelled out in NumPy, batch-first (N, L, E) arrays; returns (out, weights)."""
    E, H = m.embed_dim, m.num_heads
    D = E // H
    if m.in_proj_weight is not None:
        wq, wk, wv = np.split(m.in_proj_weight.numpy(), 3)
    else:
        wq, wk, wv = m.q_proj_weight.numpy(), m.k_proj_weight.numpy(), m.v_proj_weight.numpy()
    bq, bk, bv = np.split(m.in_proj_bias.numpy(), 3) if m.in_proj_bias is not None else (0, 0, 0)
    q, k, v = query @ wq.T + bq, key @ wk.T + bk, value @ wv.T + bv
    N, L, S = query.shape[0], query.shape[1], key.shape[1]
    out = np.zeros((N, L, E))
    weights = np.zeros((N, H, L, S))
    for n in range(N):
        for h in range(H):
            cols = slice(h * D, (h + 1) * D)
            b = 0.0 if bias is None else np.broadcast_to(bias, (N, H, L, S))[n, h]
            o, w = ref_attention(q[n, :, cols], k[n, :, cols], v[n, :, cols], b)
            out[n, :, cols] = o
            weights[n, h] = w
    proj = m.out_proj
    out = out @ proj.weight.numpy().T + (proj.bias.numpy() if proj.bias is not None else 0)
    return out, weights


def ref_rnn_sequence(mode, xs, w_ih, w_hh, b_ih, b_hh, h, c):
    """One sequence xs (L, I) step by step, PyTorch's gates (LSTM rows i, f, g, o; GRU r, z, n with
    n = tanh(W_in x + b_in + r (W_hn h + b_hn))). Returns the states (L, H), the final h and c, and each step's
    values (for a hand-written backward)."""
    H = w_hh.shape[1]
    hs, cache = [], []
    for x in xs:
        if mode == "gru":
            ax, ah = w_ih @ x + b_ih, w_hh @ h + b_hh
            r, z = np_sigmoid(ax[:H] + ah[:H]), np_sigmoid(ax[H:2 * H] + ah[H:2 * H])
            n = np.tanh(ax[2 * H:] + r * ah[2 * H:])
            cache.append((x, h, r, z, n, ah[2 * H:]))
            h = (1 - z) * n + z * h
        else:
            a = w_ih @ x + b_ih + w_hh @ h + b_hh
            if mode == "lstm":
                i, f, g, o = np_sigmoid(a[:H]), np_sigmoid(a[H:2 * H]), np.tanh(a[2 * H:3 * H]), np_sigmoid(a[3 * H:])
                cache.append((x, h, c, i, f, g, o))
                c = f * c + i * g
                h = o * np.tanh(c)
            else:
                cache.append((x, h, a))
                h = np.tanh(a) if mode == "rnn_tanh" else np.maximum(a, 0)
        hs.append(h)
    return np.array(hs).reshape(len(xs), H), h, c, cache


def ref_rnn_layer(mode, x, params, h0=None, c0=None, mask=None, reverse=False):
    """One direction of a recurrent layer over x (T, B, I) (params w_ih, w_hh, b_ih, b_hh; None biases are 0):
    each sequence alone through its real steps (``mask`` (T, B); None: all), padded outputs 0. Returns
    (out, h_n, c_n, [(steps, step values) per sequence])."""
    T_, B, _ = x.shape
    H = params[1].shape[1]
    params = [np.zeros(params[0].shape[0]) if p is None else p for p in params]
    h0 = np.zeros((B, H)) if h0 is None else h0
    c0 = np.zeros((B, H)) if c0 is None else c0
    mask = np.ones((T_, B), bool) if mask is None else mask
    out, h_n, c_n, caches = np.zeros((T_, B, H)), np.zeros((B, H)), np.zeros((B, H)), []
    for b in range(B):
        steps = np.flatnonzero(mask[:, b])[::-1 if reverse else 1]
        out[steps, b], h_n[b], c_n[b], cache = ref_rnn_sequence(mode, x[steps, b], *params, h0[b], c0[b])
        caches.append((steps, cache))
    return out, h_n, c_n, caches


# --- layers --------------------------------------------------------------------------------------------------
def n_params(module) -> int:
    """How many numbers a module trains (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters())


def round_trip(layer, make, x) -> None:
    """A second layer, built by ``make`` and loaded from the first's state dict, computes the same outputs."""
    twin = make()
    twin.load_state_dict(layer.state_dict())
    layer.eval()
    twin.eval()
    np.testing.assert_array_equal(layer(x).numpy(), twin(x).numpy())


def state_arrays(model) -> dict:
    """A snapshot of a model's state dict as NumPy copies."""
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


# --- a small classification task -----------------------------------------------------------------------------
def blobs(n=120, seed=0):
    """Three well separated Gaussian blobs in 4-D (float32 X, int64 y)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[2, 0, 0, 0], [0, 2, 0, 0], [0, 0, 2, 0]], dtype=np.float32)
    X = (centres[y] + 0.5 * rng.standard_normal((n, 4))).astype(np.float32)
    return X, y.astype(np.int64)


def mlp(dropout=0.0):
    """4 -> 16 -> 3 classifier for ``blobs``."""
    layers = [nn.Linear(4, 16), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(16, 3))


# --- data sets without the network --------------------------------------------------------------------------
def offline_data(monkeypatch, tmp_path):
    """No NERVE_DATA, an empty cache in ``tmp_path``, and a network that is unreachable; returns ``tmp_path``."""
    monkeypatch.delenv("NERVE_DATA", raising=False)
    monkeypatch.setenv("NERVE_CACHE", str(tmp_path / "cache"))

    def no_network(url, dest, timeout=60.0):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(download, "fetch", no_network)
    return tmp_path


# --- TensorBoard event files, read without the writer's code ------------------------------------------------
def crc32c_bitwise(data: bytes) -> int:
    """CRC-32C one bit at a time, independent of the table the writer uses."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked_crc32c_bitwise(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return ((crc >> 15 | crc << 17) + 0xA282EAD8) % 2 ** 32


def _varint(buf: bytes, i: int):
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def _fields(buf: bytes):
    """(field number, wire type, value) of a protobuf message; length-delimited values stay bytes."""
    i, out = 0, []
    while i < len(buf):
        key, i = _varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i:i + n], i + n
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, wire, value))
    return out


def read_events(path) -> list:
    """Every event of a TensorBoard file as a dict (wall_time, step, file_version, scalars), checksums checked."""
    with open(path, "rb") as f:
        raw = f.read()
    i, events = 0, []
    while i < len(raw):
        header = raw[i:i + 8]
        (n,) = struct.unpack("<Q", header)
        assert struct.unpack("<I", raw[i + 8:i + 12])[0] == masked_crc32c_bitwise(header)
        data = raw[i + 12:i + 12 + n]
        assert struct.unpack("<I", raw[i + 12 + n:i + 16 + n])[0] == masked_crc32c_bitwise(data)
        i += 16 + n
        event = {"scalars": {}}
        for number, wire, value in _fields(data):
            if number == 1:
                assert wire == 1
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif number == 2:
                event["step"] = value
            elif number == 3:
                event["file_version"] = value.decode()
            elif number == 5:
                for n5, _, v in _fields(value):
                    assert n5 == 1
                    entry = dict((num, val) for num, _, val in _fields(v))
                    event["scalars"][entry[1].decode()] = struct.unpack("<f", entry[2])[0]
        events.append(event)
    return events
