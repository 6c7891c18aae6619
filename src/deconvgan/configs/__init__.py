"""Config presets shipped with the package: `deconvgan train <name>`."""
