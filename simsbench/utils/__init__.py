"""Utilities: estimator discovery, estimator tags and estimator checks."""
