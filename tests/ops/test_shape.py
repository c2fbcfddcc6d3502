"""Shape ops: forward against NumPy, gradcheck and gradgradcheck in float64, errors."""
import numpy as np
import pytest

import nerve
from tests.ops.table import Case, table_tests


def _np_pad(a, pad, value=0.0):
    """Reference constant pad in PyTorch's order (last dim first); negative widths crop."""
    widths = [(0, 0)] * a.ndim
    for i in range(len(pad) // 2):
        widths[a.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    crop = tuple(slice(max(-lo, 0), a.shape[k] - max(-hi, 0)) for k, (lo, hi) in enumerate(widths))
    return np.pad(a[crop], [(max(lo, 0), max(hi, 0)) for lo, hi in widths], constant_values=value)


def _np_split(a, sizes, axis):
    return np.split(a, np.cumsum(sizes)[:-1], axis=axis)


def _np_unfold(a, dim, size, step):
    """PyTorch's Tensor.unfold by a loop over the windows: window i is a[start:start+size] along dim, last."""
    n = (a.shape[dim] - size) // step + 1
    windows = [np.moveaxis(np.take(a, range(i * step, i * step + size), axis=dim), dim, -1) for i in range(n)]
    return np.stack(windows, axis=dim)


def _np_repeat(a, reps):
    """PyTorch's Tensor.repeat is numpy.tile once there are at least as many counts as dimensions."""
    return np.tile(a, reps)


CASES = [
    Case("reshape", lambda a: a.reshape(6, 4), lambda a: a.reshape(6, 4), [(2, 3, 4)]),
    Case("reshape_infer", lambda a: a.view(-1), lambda a: a.reshape(-1), [(2, 3)]),
    Case("reshape_0d", lambda a: a.reshape(1, 1), lambda a: a.reshape(1, 1), [()]),
    Case("reshape_empty", lambda a: a.reshape(3, 0), lambda a: a.reshape(3, 0), [(0, 3)]),
    Case("expand", lambda a: a.expand(2, 3, 4), lambda a: np.broadcast_to(a, (2, 3, 4)), [(3, 1)]),
    Case("expand_keep", lambda a: a.expand(-1, 4), lambda a: np.broadcast_to(a, (3, 4)), [(3, 1)]),
    Case("broadcast_to_0d", lambda a: nerve.broadcast_to(a, (2, 3)), lambda a: np.broadcast_to(a, (2, 3)), [()]),
    Case("permute", lambda a: a.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    Case("permute_neg", lambda a: a.permute(-1, 0, -2), lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
    Case("transpose", lambda a: a.transpose(0, -1), lambda a: np.swapaxes(a, 0, -1), [(2, 3, 4)]),
    Case("swapaxes", lambda a: nerve.swapaxes(a, 1, 2), lambda a: np.swapaxes(a, 1, 2), [(2, 3, 4)]),
    Case("T", lambda a: a.T, lambda a: a.T, [(2, 3)]),
    Case("squeeze", lambda a: a.squeeze(), lambda a: a.squeeze(), [(1, 3, 1, 2)]),
    Case("squeeze_dim", lambda a: a.squeeze(-2), lambda a: a.squeeze(-2), [(1, 3, 1, 2)]),
    Case("unsqueeze", lambda a: a.unsqueeze(-1), lambda a: a[..., None], [(2, 3)]),
    Case("unsqueeze_0d", lambda a: a.unsqueeze(0), lambda a: a[None], [()]),
    Case("flatten", lambda a: a.flatten(1), lambda a: a.reshape(2, -1), [(2, 3, 4)]),
    Case("movedim", lambda a: a.movedim(0, -1), lambda a: np.moveaxis(a, 0, -1), [(2, 3, 4)]),
    Case("moveaxis", lambda a: nerve.moveaxis(a, -1, 0), lambda a: np.moveaxis(a, -1, 0), [(2, 3, 4)]),
    Case("movedim_many", lambda a: nerve.movedim(a, (0, 1), (2, 0)),
         lambda a: np.moveaxis(a, (0, 1), (2, 0)), [(2, 3, 4)]),
    Case("concat", lambda a, b: nerve.concat([a, b]), lambda a, b: np.concatenate([a, b]),
         [(2, 3), (4, 3)]),
    Case("cat_last", lambda a, b, c: nerve.cat([a, b, c], dim=-1), lambda a, b, c: np.concatenate([a, b, c], -1),
         [(2, 3), (2, 1), (2, 0)]),
    Case("concat_3d", lambda a, b: nerve.concat((a, b), 1), lambda a, b: np.concatenate([a, b], 1),
         [(2, 1, 2), (2, 3, 2)]),
    Case("concat_empty", lambda a, b: nerve.concat([a, b]), lambda a, b: np.concatenate([a, b]), [(0, 3), (2, 3)]),
    Case("stack", lambda a, b, c: nerve.stack([a, b, c]), lambda a, b, c: np.stack([a, b, c]),
         [(2, 3)] * 3),
    Case("stack_last", lambda a, b: nerve.stack([a, b], dim=-1), lambda a, b: np.stack([a, b], -1), [(2, 3)] * 2),
    Case("stack_0d", lambda a, b: nerve.stack([a, b]), lambda a, b: np.stack([a, b]), [(), ()]),
    Case("split_int", lambda a: a.split(2), lambda a: _np_split(a, [2, 2, 1], 0), [(5, 2)]),
    Case("split_sections", lambda a: nerve.split(a, [1, 0, 3], dim=-1), lambda a: _np_split(a, [1, 0, 3], -1),
         [(2, 4)]),
    Case("split_empty", lambda a: a.split(3), lambda a: [a], [(0, 2)]),
    Case("chunk", lambda a: a.chunk(3), lambda a: _np_split(a, [3, 3, 1], 0), [(7, 2)]),
    Case("chunk_fewer", lambda a: a.chunk(4, dim=1), lambda a: _np_split(a, [2, 2, 2], 1), [(2, 6)]),
    Case("unbind", lambda a: a.unbind(1), lambda a: [a[:, i] for i in range(3)], [(2, 3)]),
    Case("pad_last", lambda a: nerve.pad(a, (1, 2)), lambda a: _np_pad(a, (1, 2)), [(2, 3)]),
    Case("pad_3d", lambda a: nerve.pad(a, (1, 0, 0, 2, 1, 1)), lambda a: _np_pad(a, (1, 0, 0, 2, 1, 1)),
         [(2, 2, 3)]),
    Case("pad_value_crop", lambda a: nerve.pad(a, (-1, 2, 1, -1), value=1.5),
         lambda a: _np_pad(a, (-1, 2, 1, -1), 1.5), [(3, 4)]),
    Case("pad_crop_all", lambda a: nerve.pad(a, (-3, 1)), lambda a: _np_pad(a, (-3, 1)), [(2, 3)]),
    Case("pad_empty", lambda a: nerve.pad(a, (1, 1, 2, 0)), lambda a: _np_pad(a, (1, 1, 2, 0)), [(0, 3)]),
    Case("pad_0d", lambda a: nerve.pad(a, ()), lambda a: a, [()]),
    Case("flip", lambda a: a.flip(0), lambda a: np.flip(a, 0), [(3, 2)]),
    Case("flip_many", lambda a: nerve.flip(a, (0, -1)), lambda a: np.flip(a, (0, 2)), [(2, 3, 4)]),
    Case("flip_args", lambda a: a.flip(1, 2), lambda a: np.flip(a, (1, 2)), [(2, 3, 4)]),
    Case("roll", lambda a: a.roll(1, 0), lambda a: np.roll(a, 1, 0), [(3, 2)]),
    Case("roll_many", lambda a: nerve.roll(a, (1, -5), (0, -1)), lambda a: np.roll(a, (1, -5), (0, 2)),
         [(2, 3, 4)]),
    Case("roll_flat", lambda a: a.roll(4), lambda a: np.roll(a, 4), [(2, 3)]),
    Case("repeat", lambda a: a.repeat(2, 1), lambda a: _np_repeat(a, (2, 1)), [(2, 3)]),
    Case("repeat_new_dims", lambda a: a.repeat(2, 1, 3), lambda a: _np_repeat(a, (2, 1, 3)), [(2,)]),
    Case("repeat_tuple", lambda a: a.repeat((3, 2)), lambda a: _np_repeat(a, (3, 2)), [(1, 2)]),
    Case("repeat_0d", lambda a: a.repeat(3), lambda a: _np_repeat(a, 3), [()]),
    Case("repeat_zero", lambda a: a.repeat(0, 2), lambda a: _np_repeat(a, (0, 2)), [(2, 3)]),
    Case("tile", lambda a: a.tile(2), lambda a: np.tile(a, 2), [(2, 3)]),
    Case("tile_more", lambda a: nerve.tile(a, (2, 1, 2)), lambda a: np.tile(a, (2, 1, 2)), [(2, 3)]),
    Case("repeat_interleave", lambda a: a.repeat_interleave(2), lambda a: np.repeat(a, 2), [(2, 3)]),
    Case("repeat_interleave_dim", lambda a: a.repeat_interleave(3, dim=-1), lambda a: np.repeat(a, 3, -1),
         [(2, 2)]),
    Case("repeat_interleave_counts", lambda a: a.repeat_interleave(nerve.tensor([2, 0, 3]), dim=1),
         lambda a: np.repeat(a, [2, 0, 3], 1), [(2, 3)]),
    Case("repeat_interleave_0d", lambda a: a.repeat_interleave(3), lambda a: np.repeat(a, 3), [()]),
    Case("repeat_interleave_empty", lambda a: a.repeat_interleave(2, dim=0), lambda a: np.repeat(a, 2, 0),
         [(0, 3)]),
    Case("roll_tuple_one_dim", lambda a: a.roll((1, 2), (1, 1)), lambda a: np.roll(a, 3, 1), [(2, 3)]),
    Case("view_as", lambda a, b: a.view_as(b) * 1.0 + b, lambda a, b: a.reshape(b.shape) + b, [(2, 3), (3, 2)]),
    Case("reshape_as", lambda a, b: a.reshape_as(b), lambda a, b: a.reshape(b.shape), [(6,), (2, 3)], grad=[0]),
    Case("expand_as", lambda a, b: a.expand_as(b) * b, lambda a, b: a * b, [(3, 1), (2, 3, 4)]),
    Case("contiguous", lambda a: a.T.contiguous(), lambda a: a.T, [(2, 3)]),
    Case("contiguous_already", lambda a: a.contiguous() * 2.0, lambda a: a * 2.0, [(2, 3)]),
    Case("unflatten", lambda a: a.unflatten(1, (2, -1)), lambda a: a.reshape(3, 2, 2, 5), [(3, 4, 5)]),
    Case("unflatten_fn", lambda a: nerve.unflatten(a, -1, (1, 3)), lambda a: a.reshape(2, 1, 3), [(2, 3)]),
    Case("unfold", lambda a: a.unfold(1, 3, 2), lambda a: _np_unfold(a, 1, 3, 2), [(2, 7, 3)]),
    Case("unfold_overlap", lambda a: a.unfold(0, 2, 1), lambda a: _np_unfold(a, 0, 2, 1), [(5,)]),
    Case("unfold_last", lambda a: a.unfold(-1, 4, 4), lambda a: _np_unfold(a, 2, 4, 4), [(2, 1, 9)]),
    Case("meshgrid_ij", lambda a, b, c: nerve.meshgrid(a, b, c, indexing="ij"),
         lambda a, b, c: np.meshgrid(a, b, c, indexing="ij"), [(2,), (3,), (4,)]),
    Case("meshgrid_xy", lambda a, b: nerve.meshgrid([a, b], indexing="xy"),
         lambda a, b: np.meshgrid(a, b, indexing="xy"), [(2,), (3,)]),
    Case("meshgrid_one", lambda a: nerve.meshgrid(a), lambda a: np.meshgrid(a, indexing="ij"), [(3,)]),
]
for _case in CASES:  # every shape op is linear, so every case also runs gradgradcheck
    _case.second = True

(test_forward, test_gradcheck, test_gradgradcheck, test_array_and_tensor_paths_agree,
 test_rule_reads_only_its_namespace) = table_tests(CASES)


def test_split_and_chunk_return_tuples_of_pytorch_sizes():
    x = nerve.arange(10.0)
    assert [t.shape for t in x.split(4)] == [(4,), (4,), (2,)]
    assert [t.shape for t in x.chunk(4)] == [(3,), (3,), (3,), (1,)]
    assert [t.shape for t in nerve.arange(6.0).chunk(4)] == [(2,), (2,), (2,)]
    assert isinstance(x.split([5, 5]), tuple)


def test_split_gradients_sum_into_one_input():
    x = nerve.randn(6, 2, requires_grad=True)
    a, b, c = x.chunk(3)
    (a * 1.0 + b * 2.0 + c * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy()[:, 0], [1, 1, 2, 2, 3, 3])


def test_pad_keeps_dtype_and_value():
    x = nerve.ones(2, 2)
    y = nerve.pad(x, (0, 1), value=-2.0)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy()[:, 2], [-2.0, -2.0])


def test_repeat_interleave_tensor_of_one_count_acts_as_int():
    x = nerve.tensor([1.0, 2.0])
    np.testing.assert_array_equal(x.repeat_interleave(nerve.tensor([2])).numpy(), [1, 1, 2, 2])


def test_concat_type_promotion_returns_gradient_in_input_dtype():
    a = nerve.ones(2, requires_grad=True)
    b = nerve.ones(2, dtype=nerve.float64, requires_grad=True)
    out = nerve.concat([a, b])
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64


@pytest.mark.parametrize("call, err, match", [
    (lambda: nerve.concat([nerve.ones(2, 3), nerve.ones(4, 5)], 1), ValueError,
     r"concat: tensors must have the same shape except in dim 1, got \(2, 3\) and \(4, 5\)"),
    (lambda: nerve.concat([nerve.ones(2, 3), nerve.ones(2)]), ValueError, r"concat: .*\(2, 3\) and \(2,\)"),
    (lambda: nerve.concat([]), ValueError, "concat: expected a non-empty"),
    (lambda: nerve.concat([nerve.ones(()), nerve.ones(())]), ValueError, "concat: zero-dimensional"),
    (lambda: nerve.concat([nerve.ones(2)], dim=1), IndexError, "concat: dim 1 is out of range"),
    (lambda: nerve.stack([nerve.ones(2, 3), nerve.ones(3, 2)]), ValueError,
     r"stack: tensors must all have the same shape, got \(2, 3\) and \(3, 2\)"),
    (lambda: nerve.stack([nerve.ones(2)], dim=-3), IndexError, "stack: dim -3"),
    (lambda: nerve.ones(5).split([2, 2]), ValueError, r"split: sections \[2, 2\] .* size 5"),
    (lambda: nerve.ones(5).split(0), ValueError, "split: split_size must be positive"),
    (lambda: nerve.ones(5).chunk(0), ValueError, "chunk: chunks must be a positive integer"),
    (lambda: nerve.ones(2, 3).split(1, dim=2), IndexError, "split: dim 2 is out of range"),
    (lambda: nerve.pad(nerve.ones(2, 3), (1,)), ValueError, r"pad: pad must have an even length"),
    (lambda: nerve.pad(nerve.ones(3), (1, 1, 1, 1)), ValueError, r"pad: .*shape \(3,\)"),
    (lambda: nerve.pad(nerve.ones(3), (-2, -2)), ValueError, "pad: .*negative size"),
    (lambda: nerve.ones(2, 3).flip(2), IndexError, "flip: dim 2 is out of range"),
    (lambda: nerve.ones(2, 3).flip(0, -2), ValueError, "flip: dims .* repeat"),
    (lambda: nerve.ones(2, 3).roll((1, 2), 0), ValueError, "roll: shifts"),
    (lambda: nerve.ones(2, 3).roll((1, 2)), ValueError, "roll: without dims"),
    (lambda: nerve.ones(2, 3).repeat(2), ValueError, r"repeat: got 1 repeat counts .* shape \(2, 3\)"),
    (lambda: nerve.ones(2).repeat(-1), ValueError, "repeat: repeat counts must be non-negative"),
    (lambda: nerve.ones(3).repeat_interleave(nerve.tensor([1, 2])), ValueError,
     r"repeat_interleave: repeats has shape \(2,\)"),
    (lambda: nerve.ones(3).repeat_interleave(nerve.tensor([1.0, 2.0, 3.0])), TypeError,
     "repeat_interleave: repeats must be an int"),
    (lambda: nerve.ones(3).repeat_interleave(-1), ValueError, "repeat_interleave: repeats must be non-negative"),
    (lambda: nerve.ones(2, 3).movedim(0, 2), IndexError, "movedim: dim 2"),
    (lambda: nerve.ones(2, 6).unflatten(1, (4, -1)), RuntimeError, r"unflatten: sizes \(4, -1\) .* size 6"),
    (lambda: nerve.ones(2, 6).unflatten(1, (2, 2)), RuntimeError, r"unflatten: sizes \(2, 2\)"),
    (lambda: nerve.ones(2, 6).unfold(1, 7, 1), RuntimeError, r"unfold: size 7 must be in \[0, 6\]"),
    (lambda: nerve.ones(2, 6).unfold(1, 2, 0), RuntimeError, "unfold: .* step 0 >= 1"),
    (lambda: nerve.meshgrid(nerve.ones(2), indexing="yx"), ValueError, "meshgrid: indexing must be"),
    (lambda: nerve.meshgrid(nerve.ones(2, 2)), ValueError, r"meshgrid: expected 0-D or 1-D .* \(2, 2\)"),
])
def test_errors_name_the_op_and_shapes(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_contiguous_copies_only_when_needed_and_the_copy_is_independent():
    x = nerve.arange(6.0).reshape(2, 3)
    assert x.contiguous() is x and x.is_contiguous()
    y = x.T
    assert not y.is_contiguous()
    z = y.contiguous()
    assert z.is_contiguous()
    z[0, 0] = 100.0
    assert x[0, 0].item() == 0.0
