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


MARKER = "summary.json"


def check_output_folder(out: Path, *, force: bool) -> None:
    """Fail early, before any heavy work, when ``out`` cannot be (re)placed.

    ``force`` replaces only an empty folder or an earlier output of this tool (one with
    ``summary.json``), so a mistyped ``--out`` cannot delete a folder of the user's own.
    """
    if out.exists() and not out.is_dir():
        raise OutputError(f"Output path {out} is a file, not a folder; choose another --out.")
    if out.exists():
        resolved, here = out.resolve(), Path.cwd().resolve()
        if resolved == here or resolved in here.parents:
            raise OutputError(f"Output folder {out} contains the current folder; choose another --out.")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise OutputError(
                f"Output folder {out} is not empty and was not written by mobile-export (it has no {MARKER}); "
                "--force replaces only earlier outputs, so choose another --out."
            )
        if not force:
            raise OutputError(f"Output folder {out} already exists; pass --force to replace it, or choose another --out.")
    parent = out.resolve().parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"Cannot create {out}: {parent} is a file, not a folder; choose another --out.")
    if not parent.is_dir():
        raise OutputError(f"Cannot create {out}: its parent folder {parent} does not exist; create it first.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"Cannot write to {parent} (permission denied); choose another --out.")
    # Permission bits do not tell everything (root, read-only or virtual file systems), so try it.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.check-", dir=parent))
    except OSError as error:
        raise OutputError(f"Cannot write to {parent} ({error.strerror}); choose another --out.") from None


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
