"""Smoke test of examples/port_from_pytorch.py: a PyTorch-shaped script running on nerve, on a few images."""
from tests.test_scripts import ROOT, data, number, run_script


def test_port_from_pytorch():
    out = run_script("examples/port_from_pytorch.py", "--data", data("fashion-mnist"), "--limit", 200,
                     "--num-workers", 2)
    assert "Train Epoch: 1 [0/200 (0%)]" in out
    number(r"^Test set: Average loss: (\S+),", out, 0.0, 10.0)
    number(r"^test accuracy (\S+) on (?:cpu|cuda)", out, 0.0, 1.0)


def test_port_differs_from_pytorch_only_in_its_import_lines():
    """Each line naming nerve below the docstring is an import whose comment is its PyTorch twin."""
    source = (ROOT / "examples" / "port_from_pytorch.py").read_text()
    code = source.split('"""', 2)[2]
    lines = [line for line in code.splitlines() if "nerve" in line]
    assert len(lines) == 6
    for line in lines:
        statement, _, twin = line.partition("#")
        assert statement.startswith(("import nerve", "from nerve")), line
        assert " ".join(statement.replace("nerve.functional", "torch.nn.functional").replace("nerve", "torch")
                        .split()) in (twin.strip(), twin.strip() + " as torch"), line
