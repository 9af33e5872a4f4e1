"""Serving stage: top-k recommendations from a trained model."""
