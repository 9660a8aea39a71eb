"""What every tutorial shares: quick mode and where the figures go.

``MINITX_TUTORIAL_QUICK=1`` picks small settings (what CI runs); ``MINITX_TUTORIAL_OUT`` moves the figures
(default: ``tutorials/figures/``). The tutorials import this module from their own folder, which is on the
path both when run as scripts and when opened as notebooks in ``tutorials/``.
"""
import os
from pathlib import Path

QUICK = os.environ.get("MINITX_TUTORIAL_QUICK", "0") == "1"
OUT = Path(os.environ.get("MINITX_TUTORIAL_OUT", Path(__file__).resolve().parent / "figures"))
OUT.mkdir(parents=True, exist_ok=True)
