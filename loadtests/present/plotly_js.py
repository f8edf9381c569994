"""Where a page's plotly.js comes from: inlined in the page, or one plotly.min.js shared by a folder's pages.

plotly.js is 4.6 MB; inlined, each page carries its own copy. With
`directory`, the pages of a results folder, a sweep's folder or a compare
page's folder load one `plotly.min.js` beside them by a relative path, so
the folder still opens offline, from disk, anywhere it is copied.
"""

from __future__ import annotations

import os
from pathlib import Path

from plotly.offline import get_plotlyjs

INLINE, DIRECTORY = "inline", "directory"
MODES = (INLINE, DIRECTORY)
PLOTLY_JS = "plotly.min.js"


def ensure_plotly_js(folder: Path) -> Path:
    """`folder/plotly.min.js`, written once (again only when it differs from the installed plotly's)."""
    path = folder / PLOTLY_JS
    script = get_plotlyjs()
    if not path.is_file() or path.stat().st_size != len(script.encode()):
        tmp = path.with_name(f".{PLOTLY_JS}.tmp")
        tmp.write_text(script, encoding="utf-8")
        os.replace(tmp, path)
    return path


def script_source(mode: str, *, page_dir: Path, shared_dir: Path) -> bool | str:
    """What plotly's `include_plotlyjs` takes for a page in `page_dir`: True (inline) or the shared file's relative path.

    With `directory`, the shared file is written into `shared_dir` if missing.
    """
    if mode == INLINE:
        return True
    if mode != DIRECTORY:
        raise ValueError(f"--plotlyjs: expected {' or '.join(MODES)}, got {mode!r}")
    ensure_plotly_js(shared_dir)
    return Path(os.path.relpath(shared_dir / PLOTLY_JS, page_dir)).as_posix()
