"""``nn.utils.rnn``: pad/pack/unpack round trips against hand-made layouts, gradients through packing, and the
recurrent layers on a PackedSequence equal to each sequence run alone."""
import numpy as np
import pytest

import nerve
from nerve import nn
from nerve.nn.utils.rnn import (
    PackedSequence, pack_padded_sequence, pack_sequence, pad_packed_sequence, pad_sequence, unpack_sequence,
    unpad_sequence,
)
from tests.helpers import T


def _seqs():
    rng = np.random.default_rng(0)
    return [T(rng.normal(size=(n, 2)), requires_grad=True) for n in (2, 4, 1)]


def test_pad_sequence_layouts_and_padding_side():
    a, b, c = _seqs()
    out = pad_sequence([a, b, c], padding_value=-1.0)
    assert out.shape == (4, 3, 2)
    np.testing.assert_array_equal(out[:, 0].numpy(), np.r_[a.numpy(), -np.ones((2, 2))])
    left = pad_sequence([a, b, c], batch_first=True, padding_side="left")
    np.testing.assert_array_equal(left[2].numpy(), np.r_[np.zeros((3, 2)), c.numpy()])
    assert [t.shape for t in unpad_sequence(out, [2, 4, 1])] == [(2, 2), (4, 2), (1, 2)]
    with pytest.raises(ValueError, match="share their trailing shape"):
        pad_sequence([a, nerve.ones(2, 3)])


def test_packing_is_time_major_by_decreasing_length_and_round_trips():
    a, b, c = _seqs()
    packed = pack_sequence([a, b, c], enforce_sorted=False)
    assert isinstance(packed, PackedSequence)
    assert packed.batch_sizes.tolist() == [3, 2, 1, 1] and packed.sorted_indices.tolist() == [1, 0, 2]
    # step 0 of b, a, c; step 1 of b, a; step 2 of b; step 3 of b
    expected = np.stack([b.numpy()[0], a.numpy()[0], c.numpy()[0], b.numpy()[1], a.numpy()[1], b.numpy()[2],
                         b.numpy()[3]])
    np.testing.assert_array_equal(packed.data.numpy(), expected)
    padded, lengths = pad_packed_sequence(packed, batch_first=True, total_length=5)
    assert padded.shape == (3, 5, 2) and lengths.tolist() == [2, 4, 1]
    for got, want in zip(unpack_sequence(packed), (a, b, c)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    # gradients flow back through packing to each sequence's real steps
    (packed.data * 2).sum().backward()
    assert all(np.array_equal(t.grad.numpy(), 2 * np.ones(t.shape)) for t in (a, b, c))
    with pytest.raises(ValueError, match="not in decreasing order"):
        pack_sequence([a, b, c])
    with pytest.raises(ValueError, match="expected 3 integer lengths"):
        pack_padded_sequence(pad_sequence([a, b, c]), [2, 4])


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_recurrent_layers_on_a_packed_sequence_equal_each_sequence_alone(cls):
    nerve.manual_seed(0)
    rnn = cls(2, 3, num_layers=2, bidirectional=True).to(dtype=nerve.float64)
    seqs = _seqs()
    out, state = rnn(pack_sequence(seqs, enforce_sorted=False))
    assert isinstance(out, PackedSequence)
    outputs = unpack_sequence(out)
    h_n = state[0] if cls is nn.LSTM else state
    for k, s in enumerate(seqs):
        alone, alone_state = rnn(s.unsqueeze(1))
        np.testing.assert_allclose(outputs[k].numpy(), alone[:, 0].numpy(), rtol=1e-12, atol=1e-14)
        alone_h = alone_state[0] if cls is nn.LSTM else alone_state
        np.testing.assert_allclose(h_n[:, k].numpy(), alone_h[:, 0].numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="carries its lengths"):
        rnn(pack_sequence(seqs, enforce_sorted=False), lengths=[1, 2, 3])
