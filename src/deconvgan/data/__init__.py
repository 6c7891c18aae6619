"""Training data: every source decoded once into an in-memory uint8 tensor.

Sources (``data.source``): ``digits`` (embedded, offline, the default), ``mnist``,
``fashion-mnist``, ``cifar10``, ``stacked-mnist`` and ``folder``. Standard datasets live under
:func:`resolve_data_root` and are downloaded (md5-checked) when missing and ``data.download``
is true.
"""

from deconvgan.data.dataset import DATA_ROOT_ENV, ImageDataset, resolve_data_root
from deconvgan.data.load import data_arg, load_dataset

__all__ = ["DATA_ROOT_ENV", "ImageDataset", "data_arg", "load_dataset", "resolve_data_root"]
