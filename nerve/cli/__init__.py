"""The ``nerve`` command: ``nerve train``, ``nerve evaluate RUN_DIR``, ``nerve predict RUN_DIR INPUT``, and the
tools' commands (``nerve attack``, ``nerve explain``, ``nerve pinn``). This module parses the arguments and
dispatches; ``common.py`` holds what the commands share.

A run directory holds config.json (every option, so runs can be evaluated and resumed), model.safetensors
(the weights with the model's config and the input scaling), checkpoint.safetensors (the full training
state), history.csv and, with matplotlib installed, curve.png.
"""
from __future__ import annotations

import argparse
import sys

from nerve.cli.common import DEFAULTS, LM_MODELS, MODEL_DEFAULTS, CLIError, load_toml
from nerve.cli.runs import cmd_evaluate, cmd_predict
from nerve.cli.tools import cmd_attack, cmd_explain, cmd_train_gan, run_model
from nerve.cli.train import cmd_train, cmd_train_lm
from nerve.pinn.command import add_parser as add_pinn_parser, run as run_pinn

EXPLAIN_METHODS = ("saliency", "input-x-gradient", "integrated-gradients", "smoothgrad", "gradient-shap", "occlusion",
                   "grad-cam", "guided-grad-cam")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nerve", description="nerve: train and study neural networks")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network (default: an MLP on the embedded digits)")
    train.add_argument("--data", help="digits, mnist, fashion-mnist, moons, circles, spirals, xor, csv:PATH; "
                       "shakespeare or text:PATH for language models")
    train.add_argument("--target", help="the target column of --data csv:PATH")
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
    train.add_argument("--batch-size", type=int, dest="batch_size")
    train.add_argument("--dropout", type=float)
    train.add_argument("--weight-decay", type=float, dest="weight_decay")
    train.add_argument("--seed", type=int)
    train.add_argument("--verbose", type=int, choices=(0, 1, 2))
    train.add_argument("--out", help="run directory (default runs/DATA-MODEL-TIME)")
    train.add_argument("--config", help="a TOML file of these options (command-line options win)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    ev = sub.add_parser("evaluate", help="test metrics of a finished run")
    ev.add_argument("run_dir")
    pr = sub.add_parser("predict", help="predictions of a finished run for a CSV or .npy file")
    pr.add_argument("run_dir")
    pr.add_argument("input")
    pr.add_argument("--output", help="write predictions here instead of standard output")
    at = sub.add_parser("attack", help="robust accuracy of a finished run under adversarial attacks")
    at.add_argument("run_dir")
    at.add_argument("--attack", default="fgsm,pgd", help="comma-separated: fgsm, pgd, mifgsm, ffgsm, square "
                    "(L-inf), fgm, pgdl2, cw, deepfool (L2) (default fgsm,pgd)")
    at.add_argument("--eps", default="0,0.05,0.1", help="comma-separated radii on unscaled inputs (default 0,0.05,0.1)")
    at.add_argument("--limit", type=int, help="attack the first N test samples only")
    ex = sub.add_parser("explain", help="attribution maps of a finished run for a CSV or .npy file, as a PNG")
    ex.add_argument("run_dir")
    ex.add_argument("input")
    ex.add_argument("--method", default="integrated-gradients", choices=EXPLAIN_METHODS)
    ex.add_argument("--target", type=int, help="class index (default: each row's predicted class)")
    ex.add_argument("--output", help="PNG path (default RUN_DIR/explain-METHOD.png)")
    add_pinn_parser(sub)
    return parser


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "train":
            cfg = dict(DEFAULTS)
            if args.config:
                cfg.update(load_toml(args.config))
            model = args.model or cfg["model"]
            cfg.update({k: v for k, v in MODEL_DEFAULTS.get(model, {}).items() if cfg[k] == DEFAULTS[k]})
            cfg.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
            if cfg["model"] == "gan" or (args.resume and run_model(args.resume) == "gan"):
                return cmd_train_gan(cfg, args.resume)
            if cfg["model"] in LM_MODELS:
                if cfg["rule"] != "backprop":
                    raise CLIError(f"--rule {cfg['rule']}: learning rules train MLP and CNN models, not "
                                   f"{cfg['model']}")
                return cmd_train_lm(cfg)
            return cmd_train(cfg, args.resume)
        if args.command == "evaluate":
            return cmd_evaluate(args.run_dir)
        if args.command == "attack":
            return cmd_attack(args.run_dir, args.attack, args.eps, args.limit)
        if args.command == "explain":
            return cmd_explain(args.run_dir, args.input, args.method, args.output, args.target)
        if args.command == "pinn":
            run_pinn(args)
            return 0
        return cmd_predict(args.run_dir, args.input, args.output)
    except CLIError as exc:
        print(f"nerve {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
