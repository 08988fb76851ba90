"""Commands for tests that build namespaces, bridges and guests: run one and check it, start a
long-lived one in a namespace with its output in a log file, and tie such children to the test
process so that none outlives it."""

from __future__ import annotations

import ctypes
import signal
import subprocess
from pathlib import Path


def sh(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a command; with `check`, a non-zero exit raises with its stderr."""
    done = subprocess.run(list(args), capture_output=True, text=True, check=False,
                          timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done


def die_with_parent() -> None:
    """In the child before exec: SIGKILL it if the test process dies without cleaning up
    (`ip netns exec` execs the command, so QEMU, dnsmasq and servers inherit this)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG


def start_in(netns: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start `args` in a namespace, its stdout and stderr going to `log`."""
    out = open(log, "wb")  # noqa: SIM115 - the child owns it
    try:
        return subprocess.Popen(["ip", "netns", "exec", netns, *args], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=die_with_parent)
    finally:
        out.close()
