"""Neural-network building blocks, written by hand on minitx's Tensor. ``functional`` holds the functions."""
from minitx.nn import functional  # noqa: F401
