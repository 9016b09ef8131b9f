"""Where hepml keeps data it makes or downloads: ``$HEPML_DATA``, else the user cache dir."""

from __future__ import annotations

import os
from pathlib import Path


def data_home() -> Path:
    """The cache folder for generated samples and downloads (created on demand).

    ``$HEPML_DATA`` wins; otherwise the platform's user cache dir (``~/.cache/hepml`` on Linux).
    """
    env = os.environ.get("HEPML_DATA")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hepml"))
