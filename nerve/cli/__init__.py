"""The ``nerve`` command: ``nerve train``, ``nerve evaluate RUN_DIR [FILE]``, ``nerve predict RUN_DIR FILE``, and
the tools' commands (``nerve attack``, ``nerve explain``, ``nerve pinn``). This module parses the arguments and
dispatches; each sub-command is an ``(add_parser, run)`` pair in ``COMMANDS``.

Every failure ends in one line on standard error and exit status 2 (``--debug`` adds the traceback); Ctrl-C
exits with 130. A run directory is self-contained: config.json (every option), model.safetensors (the weights
with what prediction needs: feature names and order, categories, input and target scaling, label names, a
language model's vocabulary), checkpoint.safetensors (the full training state), history.csv and curve.png.
"""
from __future__ import annotations

import argparse
import sys
import traceback

from nerve.cli.common import DEFAULTS, MODEL_DEFAULTS, CLIError, check_types, load_toml, validate
from nerve.cli.runs import cmd_evaluate, cmd_predict
from nerve.cli.tools import cmd_attack, cmd_explain, cmd_train_gan, run_model
from nerve.cli.train import start
from nerve.onnx.command import add_parser as add_export_parser, run as run_export
from nerve.pinn.command import add_parser as add_pinn_parser, run as run_pinn
from nerve.tune.command import add_parser as add_tune_parser, run as run_tune
from nerve.version import __version__

EXPLAIN_METHODS = ("saliency", "input-x-gradient", "integrated-gradients", "smoothgrad", "gradient-shap", "occlusion",
                   "grad-cam", "guided-grad-cam")


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (and exit status 2)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def add_train_parser(sub) -> argparse.ArgumentParser:
    train = sub.add_parser("train", help="train a network (default: an MLP on the embedded digits)")
    train.add_argument("--data", help="digits, mnist, fashion-mnist, moons, circles, spirals, xor, csv:PATH; "
                       "shakespeare or text:PATH for language models")
    train.add_argument("--target", help="the target column of --data csv:PATH (its header name; its position 1, "
                       "2, ... with --no-header)")
    train.add_argument("--no-header", action="store_true", default=None, dest="no_header",
                       help="the CSV has no header line: columns are named by position")
    train.add_argument("--model", help="mlp (default), cnn (conv32-conv64-pool-fc128), lenet (28x28 images); snn "
                       "(snnTorch tutorial 5's spiking MLP 784-1000-10, 25 steps); gan (a DCGAN on mnist or "
                       "fashion-mnist); char-lstm, char-gru or gpt with --data shakespeare or text:PATH")
    train.add_argument("--iters", type=int, help="training iterations of a language model (default 2000)")
    train.add_argument("--block-size", type=int, dest="block_size", help="context length of a language model")
    train.add_argument("--eval-iters", type=int, dest="eval_iters",
                       help="validation batches of a language model's closing estimate (default 200)")
    train.add_argument("--hidden", help="hidden layer widths, e.g. 128,64")
    train.add_argument("--activation", help="relu, tanh, sigmoid, gelu, silu, elu, leaky_relu, softplus")
    train.add_argument("--optimizer", help="adam, adamw, sgd, rmsprop, adagrad")
    train.add_argument("--rule", help="the learning rule: backprop (default), fa (feedback alignment), sign (sign "
                       "symmetry), dfa (direct feedback alignment); MLP and CNN models")
    train.add_argument("--adversarial", help="adversarial training (nerve.robust): fgsm, pgd, trades or fast")
    train.add_argument("--eps", type=float, help="the L-inf radius of --adversarial on unscaled inputs (default 0.1)")
    train.add_argument("--adv-steps", type=int, dest="adv_steps", help="PGD steps of --adversarial pgd/trades")
    train.add_argument("--lr", type=float)
    train.add_argument("--epochs", type=int)
    train.add_argument("--init", metavar="RUN_DIR_OR_WEIGHTS", help="start from these weights (a run directory "
                       "or a .safetensors file); layers whose shape differs (a new head) keep their initialisation")
    train.add_argument("--freeze", metavar="NAMES", help="comma-separated submodules not to train, or 'features' "
                       "(every layer before the head); see nerve.nn.summary for the names")
    train.add_argument("--patience", type=int, help="early stopping: epochs without a better val_loss before "
                       "training stops and the best epoch's weights are restored (default 5; 0: off)")
    train.add_argument("--batch-size", type=int, dest="batch_size")
    train.add_argument("--dropout", type=float)
    train.add_argument("--weight-decay", type=float, dest="weight_decay")
    train.add_argument("--seed", type=int)
    train.add_argument("--verbose", type=int, choices=(0, 1, 2))
    train.add_argument("--out", help="run directory (default runs/DATA-MODEL-TIME); an existing run is refused")
    train.add_argument("--overwrite", action="store_true", help="let --out replace an existing run")
    train.add_argument("--config", help="a TOML file of these options (command-line options win)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint; "
                       "only --epochs, --iters, --verbose and --eval-iters may differ from the run's")
    return train


def run_train(args) -> int:
    given = load_toml(args.config) if args.config else {}
    given.update(check_types({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None},
                             "nerve train"))
    if args.resume:
        if args.overwrite:
            raise CLIError("--resume continues a run; --overwrite would replace it: give one of them")
        if run_model(args.resume) == "gan":
            return cmd_train_gan(None, args.resume)
        return start(None, given, args.resume, False)
    cfg = dict(DEFAULTS)
    cfg.update(MODEL_DEFAULTS.get(given.get("model", cfg["model"]), {}))
    cfg.update(given)
    validate(cfg)
    if cfg["model"] == "gan":
        return cmd_train_gan(cfg, None, args.overwrite)
    return start(cfg, given, None, args.overwrite)


def add_evaluate_parser(sub) -> argparse.ArgumentParser:
    ev = sub.add_parser("evaluate", help="test metrics of a finished run (on a labelled file, or its test split)")
    ev.add_argument("run_dir")
    ev.add_argument("input", nargs="?", help="a CSV with the target column, a .npz with arrays x and y, or (language "
                    "models) a text file; default: the run's own test split, which needs its data")
    ev.add_argument("--no-header", action="store_true", dest="no_header",
                    help="the CSV has no header: the training file's columns, in its order")
    return ev


def add_predict_parser(sub) -> argparse.ArgumentParser:
    pr = sub.add_parser("predict", help="predictions of a finished run for a CSV, .npy or .npz file; text from a "
                        "prompt for a language model")
    pr.add_argument("run_dir")
    pr.add_argument("input", nargs="?", help="CSV (columns matched by header name), .npy/.npz, or a prompt file")
    pr.add_argument("--output", help="write predictions here instead of standard output")
    pr.add_argument("--no-header", action="store_true", dest="no_header",
                    help="the CSV has no header: the features in training order")
    pr.add_argument("--prompt", help="language models: the text to continue")
    pr.add_argument("--length", type=int, default=300, help="language models: characters to generate (default 300)")
    pr.add_argument("--temperature", type=float, default=0.8, help="language models: sampling temperature")
    pr.add_argument("--seed", type=int, help="language models: the sampling seed")
    return pr


def add_attack_parser(sub) -> argparse.ArgumentParser:
    at = sub.add_parser("attack", help="robust accuracy of a finished run under adversarial attacks")
    at.add_argument("run_dir")
    at.add_argument("--attack", default="fgsm,pgd", help="comma-separated: fgsm, pgd, mifgsm, ffgsm, square "
                    "(L-inf), fgm, pgdl2, cw, deepfool (L2) (default fgsm,pgd)")
    at.add_argument("--eps", default="0,0.05,0.1", help="comma-separated radii on unscaled inputs (default 0,0.05,0.1)")
    at.add_argument("--limit", type=int, help="attack the first N test samples only")
    return at


def add_explain_parser(sub) -> argparse.ArgumentParser:
    ex = sub.add_parser("explain", help="attribution maps of a finished run for a CSV or .npy file, as a PNG")
    ex.add_argument("run_dir")
    ex.add_argument("input")
    ex.add_argument("--method", default="integrated-gradients", choices=EXPLAIN_METHODS)
    ex.add_argument("--target", type=int, help="class index (default: each row's predicted class)")
    ex.add_argument("--output", help="PNG path (default RUN_DIR/explain-METHOD.png)")
    return ex


#: the sub-commands: (add_parser(sub) -> parser, run(args) -> exit status); a new command appends its pair
COMMANDS = [
    (add_train_parser, run_train),
    (add_evaluate_parser, cmd_evaluate),
    (add_predict_parser, cmd_predict),
    (add_attack_parser, lambda a: cmd_attack(a.run_dir, a.attack, a.eps, a.limit)),
    (add_explain_parser, lambda a: cmd_explain(a.run_dir, a.input, a.method, a.output, a.target)),
    (add_pinn_parser, run_pinn),
    (add_export_parser, run_export),
    (add_tune_parser, run_tune),
]


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nerve", description="nerve: train and study neural networks. Exit status: 0 done, "
                     "2 an error (one line on standard error), 130 interrupted (Ctrl-C; resumable)")
    parser.add_argument("--version", action="version", version=f"nerve {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser, run in COMMANDS:
        p = add_parser(sub)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error")
        p.set_defaults(run=run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = args.run(args)
        return status if isinstance(status, int) else 0
    except KeyboardInterrupt:
        print(f"nerve {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # every failure: one line, status 2
        if args.debug:
            traceback.print_exc()
        message = str(exc) if isinstance(exc, CLIError) else f"{type(exc).__name__}: {exc}"
        hint = "" if isinstance(exc, CLIError) or args.debug else " (--debug shows the traceback)"
        message = message.removeprefix(f"{args.command}: ")
        print(f"nerve {args.command}: {' '.join(message.split())}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
