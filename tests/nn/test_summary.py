"""nn.summary: the per-layer table, parameter totals, and a model left as it was."""
import nerve
import nerve.nn as nn


def test_summary_table():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    model[1].requires_grad_(False)
    lines = []
    text = nn.summary(model, (3, 4), print_fn=lines.append)
    assert lines == [text]
    assert "1 (Linear)" in text and "[-1, 5]" in text and "[-1, 12]" in text
    row = next(line for line in text.splitlines() if line.startswith("2 (BatchNorm1d)"))
    assert row.split()[-2:] == ["10", "yes"]
    frozen = next(line for line in text.splitlines() if line.startswith("1 (Linear)"))
    assert frozen.split()[-2:] == ["65", "no"]
    assert "Total params: 87" in text and "Trainable params: 22" in text
    assert "Non-trainable params: 65" in text
    assert model.training and not model[2].num_batches_tracked.item()  # mode and running stats untouched
    assert nn.summary(nn.Embedding(10, 3), (7,), dtype=nerve.int64, print_fn=None).count("[-1, 7, 3]") == 1
