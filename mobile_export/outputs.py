"""Writing OUT atomically: everything goes to a hidden staging folder beside OUT, then one rename.

A crash, a Ctrl-C or a failed conversion removes the staging folder and leaves any earlier OUT as
it was, so OUT is either the complete old result or the complete new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """OUT cannot be written; the message names the path and the fix."""


def check_output_folder(out: Path, *, force: bool) -> None:
    """Fail early, before any heavy work, when ``out`` cannot be (re)placed."""
    if out.exists() and not force:
        raise OutputError(f"Output folder {out} already exists; pass --force to replace it, or choose another --out.")
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} is a file, not a folder; choose another --out.")
    parent = out.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"Cannot create {out}: its parent folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write to {parent} (permission denied); choose another --out.")


@contextlib.contextmanager
def staged_folder(out: Path, *, force: bool):
    """Yield an empty staging folder; on success it replaces ``out`` in one rename."""
    check_output_folder(out, force=force)
    parent = out.resolve().parent
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as error:
        raise OutputError(f"Cannot write to {parent} ({error.strerror}); choose another --out.") from None
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, out)


def replace_folder(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``, replacing an existing ``out`` only once the new one is complete."""
    os.chmod(staging, 0o755)
    if not out.exists():
        staging.rename(out)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.resolve().parent))
    backup.rmdir()
    out.rename(backup)
    try:
        staging.rename(out)
    except OSError:
        backup.rename(out)
        raise
    shutil.rmtree(backup, ignore_errors=True)
