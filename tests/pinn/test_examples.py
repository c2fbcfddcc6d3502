"""Smoke tests of the PINN example and benchmark scripts with tiny budgets (see tests/test_scripts.py)."""
from tests.test_scripts import data, number, run_script, without_torch  # noqa: F401 (fixture)


def test_pinn_burgers(tmp_path):
    out = run_script("examples/pinn_burgers.py", "--data", data("burgers"), "--adam", "3", "--lbfgs", "3", "--n-f",
                     "300", "--display-every", "3", "--out", tmp_path)
    number(r"^burgers: relative L2 error (\S+) after", out, 0.0, 10.0)
    assert (tmp_path / "burgers_field.png").exists() and (tmp_path / "burgers_losses.png").exists()


def test_command_inverse_and_poisson(capsys):
    """The runner behind the examples and ``nerve pinn``, in-process (the scripts' own paths are run above)."""
    import argparse

    from nerve.pinn.command import add_arguments, run
    parser = add_arguments(argparse.ArgumentParser())
    for problem, extra in (("burgers", ["--inverse", "--data", str(data("burgers"))]), ("poisson", [])):
        args = parser.parse_args(["--adam", "2", "--lbfgs", "2", "--display-every", "2", "--out", "", *extra])
        args.problem = problem
        run(args)
    out = capsys.readouterr().out
    number(r"^burgers inverse: lambda_1 (\S+) ", out, -10.0, 10.0)
    number(r"^poisson: relative L2 error (\S+) after", out, 0.0, 10.0)


def test_pinn_heat():
    out = run_script("examples/pinn_poisson.py", "--problem", "heat", "--adam", "3", "--lbfgs", "3",
                     "--display-every", "3", "--out", "")
    number(r"^heat: relative L2 error (\S+) after", out, 0.0, 10.0)


def test_bench_pinn(without_torch):  # noqa: F811
    out = run_script("bench/pinn.py", "--points", "300", "--steps", "1", "--rounds", "1", env=without_torch)
    number(r"^nerve iteration: (\S+) ms", out, 0.0)
