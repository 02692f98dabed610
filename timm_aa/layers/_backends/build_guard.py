"""Run the C compiler so that it dies with the process that builds the kernel (``native.py`` starts this file).

``python build_guard.py PARENT_PID COMMAND...``: runs ``COMMAND`` in this process's own process group and checks
ten times a second that ``PARENT_PID`` is still its parent; once it is not (the parent was killed, even with
SIGKILL), it kills the whole group: the compiler driver and whatever it started (cc1, as, ld), itself included.
Standard library only, run with ``python -I -S`` (no site packages, no environment variables, nothing imported
from the working directory).
"""

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Run ``argv[1:]`` while ``argv[0]`` (a pid) is our parent; return its exit status.

    Example:
        >>> main([str(os.getppid()), sys.executable, '-c', 'pass'])
        0
    """
    parent, command = int(argv[0]), argv[1:]
    proc = subprocess.Popen(command)
    while True:
        try:
            return proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            if os.getppid() != parent:
                os.killpg(os.getpgid(0), signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
