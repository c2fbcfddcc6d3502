"""Generative adversarial networks: the ``GAN`` trainer over ``nerve.train.fit``, the stock ``gan_step``, the
losses (minimax, non-saturating, hinge, least squares, Wasserstein) and penalties (WGAN-GP, R1), the EMA
generator, mode-coverage and Fréchet measurements, and their callbacks and pictures."""
from nerve.gan import metrics
from nerve.gan.callbacks import ModeCoverage, SampleGrid
from nerve.gan.losses import (
    LOSSES, GANLoss, HingeLoss, LeastSquaresLoss, MinimaxLoss, NonSaturatingLoss, WassersteinLoss, get_loss,
    gradient_penalty, r1_penalty,
)
from nerve.gan.metrics import class_histogram, frechet_distance, inception_score, mode_coverage
from nerve.gan.model import GANModel
from nerve.gan.plots import make_grid, plot_samples_2d, save_image
from nerve.gan.run import train_dcgan
from nerve.gan.step import GANStep, check_gan, gan_step
from nerve.gan.trainer import GAN, StopOnCollapse

__all__ = ["GAN", "GANModel", "GANStep", "gan_step", "check_gan", "StopOnCollapse", "GANLoss", "MinimaxLoss",
           "NonSaturatingLoss", "HingeLoss", "LeastSquaresLoss", "WassersteinLoss", "LOSSES", "get_loss",
           "gradient_penalty", "r1_penalty", "metrics", "mode_coverage", "frechet_distance", "inception_score",
           "class_histogram", "ModeCoverage", "SampleGrid", "make_grid", "save_image", "plot_samples_2d",
           "train_dcgan"]
