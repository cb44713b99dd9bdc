"""Helper for the power-cut tests: `otelspool-powercutfs`, a FUSE filesystem whose power can be
cut (crates/testkit/src/powercut: its module doc is the model, i.e. what survives a cut).

Binary: `$OTELSPOOL_POWERCUTFS_BIN`, default target/debug/otelspool-powercutfs. Mounting needs
/dev/fuse and either root or `fusermount3` (Debian package fuse3, installed by .ci/run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from chaos import tool
from conftest import START_TIMEOUT, STOP_TIMEOUT, Ports, Process, wait_until


def skip_unless_fuse_works() -> None:
    """Skips the test, saying why, where this machine cannot mount a FUSE filesystem."""
    if not Path("/dev/fuse").exists():
        pytest.skip("/dev/fuse is missing: power-cut tests need FUSE (modprobe fuse)")
    if os.geteuid() != 0 and shutil.which("fusermount3") is None:
        pytest.skip("not root and no fusermount3: install the fuse3 package")


def mounted(path: Path) -> bool:
    """Whether something is mounted on `path`, by the mount table: `os.path.ismount` says no
    for a FUSE mount that answers EIO or whose process died."""
    target = os.path.abspath(path)
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = (line.split()[1] for line in mounts if len(line.split()) > 1)
        return any(p.encode().decode("unicode_escape") == target for p in points)


def unmount(path: Path) -> None:
    """Detaches whatever is mounted on `path` (a dead FUSE mount included)."""
    if not mounted(path):
        return
    if os.geteuid() == 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=STOP_TIMEOUT)
    else:
        subprocess.run(["fusermount3", "-uz", str(path)], capture_output=True,
                       timeout=STOP_TIMEOUT)


class PowercutFs:
    """`otelspool-powercutfs` mounted on `mount` over the backing directory `backing`."""

    def __init__(self, ports: Ports, work: Path, mount: Path, backing: Path) -> None:
        self.mount, self.backing = mount, backing
        self.control_port = ports()
        self.ready_path = work / "powercutfs-ready.json"
        backing.mkdir(exist_ok=True)
        mount.mkdir(exist_ok=True)
        self.process = Process("powercutfs", [
            str(tool("OTELSPOOL_POWERCUTFS_BIN", "otelspool-powercutfs")),
            f"--backing={backing}", f"--mount={mount}",
            f"--control=127.0.0.1:{self.control_port}", f"--ready-file={self.ready_path}",
        ], work)

    @property
    def control(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def start(self) -> "PowercutFs":
        """Mounts on what the backing directory holds (what survived the last cut)."""
        self.ready_path.unlink(missing_ok=True)
        self.process.spawn()

        def ready():
            if not self.process.alive():
                pytest.fail(f"powercutfs exited during start\n{self.process.diagnostics()}",
                            pytrace=False)
            return (self.ready_path.exists() and mounted(self.mount)
                    and requests.get(f"{self.control}/stats", timeout=1).json()["powered"])

        wait_until("powercutfs to mount", ready, START_TIMEOUT,
                   diagnostics=self.process.diagnostics)
        return self

    def stats(self) -> dict:
        return requests.get(f"{self.control}/stats", timeout=2).json()

    def cut(self) -> dict:
        """Cuts the power; returns what was thrown away. Every later I/O on the mount fails."""
        answer = requests.post(f"{self.control}/cut", timeout=5)
        answer.raise_for_status()
        return answer.json()

    def stop(self) -> None:
        """Unmounts and waits for the process to exit (forcing both if it will not)."""
        if self.process.alive():
            try:
                requests.post(f"{self.control}/stop", timeout=2)
            except requests.RequestException:
                pass
            assert self.process.proc is not None
            try:
                self.process.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill9()
        unmount(self.mount)
        wait_until(f"{self.mount} to be unmounted", lambda: not mounted(self.mount),
                   STOP_TIMEOUT, diagnostics=self.process.diagnostics)

    def durable_files(self) -> dict[str, int]:
        """Files of the durable state and their sizes (relative paths)."""
        return {str(p.relative_to(self.backing)): p.stat().st_size
                for p in sorted(self.backing.rglob("*")) if p.is_file()}


def describe_cut(report: dict) -> str:
    stats = report.get("stats", {})
    return json.dumps({"files_unsynced": report.get("files_unsynced"),
                       "dirs_unsynced": report.get("dirs_unsynced"),
                       "file_syncs": stats.get("file_syncs"), "dir_syncs": stats.get("dir_syncs")})
