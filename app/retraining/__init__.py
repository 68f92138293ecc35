"""Retraining stage: a new data version (or a drift alert) in, a gated new champion out."""
