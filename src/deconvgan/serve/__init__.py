"""``deconvgan serve``: trained generators over HTTP, with a web page to explore them.

The pieces, one concept per module:

* :mod:`~deconvgan.serve.settings` -- :class:`ServeSettings`, every option of the server, validated once;
* :mod:`~deconvgan.serve.registry` -- snapshots loaded by name (safetensors only; requests never name files);
* :mod:`~deconvgan.serve.backends` -- ONNX Runtime (built in memory from the snapshot) or eager PyTorch;
* :mod:`~deconvgan.serve.batcher` -- concurrent requests merged into one generator call on a worker thread;
* :mod:`~deconvgan.serve.directions` -- GANSpace latent directions, computed once per model at start-up;
* :mod:`~deconvgan.serve.render` -- request parameters to latents, images and tiles (the sampling functions);
* :mod:`~deconvgan.serve.encode` -- PNG, GIF, ``.npy`` and ETags;
* :mod:`~deconvgan.serve.app` -- :func:`create_app`, the FastAPI application factory;
* :mod:`~deconvgan.serve.command` -- the ``deconvgan serve`` subcommand.

Importing this package imports neither FastAPI nor torch: the command line stays fast without the extra.
"""

from deconvgan.serve.settings import ServeSettings

__all__ = ["ServeSettings"]
