"""The app cores' own tests (Kotlin on the JVM, Swift with swift test) against tests/golden.

Both run here as subprocesses, so the README's single test command covers them. Each needs its
toolchain: Debian's kotlin and junit4 for the Kotlin core, Swift for the Swift package.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _swift() -> str | None:
    found = shutil.which("swift")
    if found:
        return found
    bundled = Path("/opt/swift/usr/bin/swift")
    return str(bundled) if bundled.exists() else None


@pytest.mark.skipif(shutil.which("kotlinc") is None, reason="kotlinc missing: apt-get install kotlin junit4")
def test_kotlin_core_matches_golden():
    result = subprocess.run(
        ["bash", str(ROOT / "android_demo" / "core" / "run-tests.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    match = re.search(r"OK \((\d+) tests?\)", result.stdout)
    assert match, result.stdout[-2000:]
    assert int(match.group(1)) >= 5


@pytest.mark.skipif(_swift() is None, reason="swift missing: install the Swift toolchain")
def test_swift_core_matches_golden():
    swift = _swift()
    env = os.environ | {"PATH": f"{Path(swift).parent}:{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [swift, "test"],
        cwd=ROOT / "ios_demo" / "MobileExportCore",
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"Executed \d+ tests?, with 0 failures", output), output[-2000:]
