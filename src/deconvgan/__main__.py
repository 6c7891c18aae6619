"""``python -m deconvgan``: the command line (also ``torchrun -m deconvgan``)."""

from deconvgan.cli import main

raise SystemExit(main())
