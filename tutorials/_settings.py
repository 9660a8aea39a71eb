"""What every tutorial shares: quick mode, where the figures go, and PyTorch as an optional reference.

``MINITX_TUTORIAL_QUICK=1`` picks small settings (what CI runs); ``MINITX_TUTORIAL_OUT`` moves the figures
(default: ``tutorials/figures/``). The tutorials import this module from their own folder, which is on the
path both when run as scripts and when opened as notebooks in ``tutorials/``.
"""
import os
from pathlib import Path

QUICK = os.environ.get("MINITX_TUTORIAL_QUICK", "0") == "1"
OUT = Path(os.environ.get("MINITX_TUTORIAL_OUT", Path(__file__).resolve().parent / "figures"))
OUT.mkdir(parents=True, exist_ok=True)


def optional_torch():
    """PyTorch if it is installed, else None: tutorials compare with it when they can. The first README command
    (`pip install -e .`) does not install it; `pip install -e ".[test]"` does."""
    try:
        import torch
    except ImportError:
        print("(PyTorch is not installed: the comparisons with it are skipped; pip install -e \".[test]\" adds it)")
        return None
    return torch
