"""Spike pictures: each writes a PNG of the data given and rejects data of the wrong shape."""
from __future__ import annotations

import numpy as np
import pytest

import nerve
from nerve import nn, snn
from nerve.snn import spikeplot

pytest.importorskip("matplotlib")


def test_raster_traces_rates_and_fields(tmp_path):
    lif = snn.Leaky(beta=0.9, init_hidden=True, output=True)
    cur = np.linspace(0.05, 0.4, 4, dtype=np.float32)[None]
    spk, mem = zip(*[lif(nerve.tensor(cur)) for _ in range(30)])
    spk = np.array([s.numpy()[0] for s in spk])
    mem = np.array([m.numpy()[0] for m in mem])
    assert 0 < spk.sum() < spk.size
    paths = [spikeplot.raster(spk, str(tmp_path / "raster.png")),
             spikeplot.traces(mem, str(tmp_path / "traces.png"), spk=spk)]
    loop = snn.TimeLoop(nn.Sequential(nn.Linear(4, 6), snn.Leaky(0.8, init_hidden=True)), num_steps=5)
    loop(nerve.ones(2, 4))
    paths.append(spikeplot.firing_rates(loop.stats(), str(tmp_path / "rates.png")))
    paths.append(spikeplot.receptive_fields(np.random.default_rng(0).random((5, 16)), str(tmp_path / "rf.png"),
                                            shape=(4, 4)))
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"spikeplot.raster: expected 2 dimensions, got shape \(30,\)"):
        spikeplot.raster(spk[:, 0], str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match=r"spikeplot.receptive_fields: rows of 16 values do not make \(28, 28\)"):
        spikeplot.receptive_fields(np.ones((2, 16)), str(tmp_path / "x.png"))
    with pytest.raises(ValueError, match="spikeplot.firing_rates: no '<layer>.rate' entries"):
        spikeplot.firing_rates({"synops": 3.0}, str(tmp_path / "x.png"))
