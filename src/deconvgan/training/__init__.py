"""Training: the loop, its schedule, the generator's moving average, run directories and logs."""

from deconvgan.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
