"""Torch modules of the deep estimators (no training code here)."""
