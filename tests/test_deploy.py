"""The deploy files the README points an operator at: a unit systemd accepts, a Dockerfile that
installs exactly as the README's set-up command does."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    unit = (ROOT / "deploy" / "audiencesync.service").read_text()
    assert "ExecStart=/opt/audiencesync/.venv/bin/audiencesync serve" in unit
    here = unit.replace("/opt/audiencesync/.venv/bin/audiencesync", str(Path(sys.executable).parent / "audiencesync"))
    here = here.replace("/opt/audiencesync", str(ROOT)).replace("User=audiencesync", "User=root")
    here = here.replace("EnvironmentFile=/etc", "EnvironmentFile=-/etc")  # no secrets file on this machine
    path = tmp_path / "audiencesync.service"
    path.write_text(here)
    done = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True)
    problems = [line for line in done.stderr.splitlines() if "audiencesync.service" in line]
    assert done.returncode == 0 and not problems, done.stderr


def test_the_dockerfile_installs_from_the_lock_file_as_the_readme_does():
    docker = (ROOT / "deploy" / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "COPY pyproject.toml uv.lock Makefile" in docker and "make setup" in docker
    assert "sync --frozen" in makefile  # `make setup` installs exactly the lock file
    assert "make demo" in readme.split("\n## ")[0] and "make test" in readme.split("\n## ")[0]
    assert 'CMD ["serve"' in docker
