"""deconvgan: image synthesis with deconvolution (transposed-convolution) GANs."""

__version__ = "0.1.0"
