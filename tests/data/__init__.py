"""Tests of deconvgan.data (a package so helper imports and test names stay local to this folder)."""
