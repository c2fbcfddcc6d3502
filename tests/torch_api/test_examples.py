"""Smoke tests of examples/port_from_pytorch.py and examples/port_vae.py: PyTorch-shaped scripts running on nerve
with only their import lines changed."""
import pytest

from tests.test_scripts import ROOT, data, number, run_script


def test_port_from_pytorch():
    out = run_script("examples/port_from_pytorch.py", "--data", data("fashion-mnist"), "--limit", 200,
                     "--num-workers", 2)
    assert "Train Epoch: 1 [0/200 (0%)]" in out
    number(r"^Test set: Average loss: (\S+),", out, 0.0, 10.0)
    number(r"^test accuracy (\S+) on (?:cpu|cuda)", out, 0.0, 1.0)


def test_port_vae(tmp_path):
    out = run_script("examples/port_vae.py", "--tiny", "--png", tmp_path / "vae.png")
    number(r"^port_vae: test ELBO (\S+) nats per image", out, -60.0, 0.0)


@pytest.mark.parametrize("script,imports", [("port_from_pytorch.py", 6), ("port_vae.py", 4)])
def test_port_differs_from_pytorch_only_in_its_import_lines(script, imports):
    """Each line naming nerve below the docstring is an import whose comment is its PyTorch twin."""
    source = (ROOT / "examples" / script).read_text()
    code = source.split('"""', 2)[2]
    lines = [line for line in code.splitlines() if "nerve" in line]
    assert len(lines) == imports
    for line in lines:
        statement, _, twin = line.partition("#")
        assert statement.startswith(("import nerve", "from nerve")), line
        assert " ".join(statement.replace("nerve.functional", "torch.nn.functional").replace("nerve", "torch")
                        .split()) in (twin.strip(), twin.strip() + " as torch"), line
