"""Utilities: estimator discovery and estimator checks."""
