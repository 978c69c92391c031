"""The package as a user installs it: `make sdk-package-python` writes a
wheel and an sdist (here into a temporary directory instead of dist/);
each installs offline into a fresh virtual environment (seeing Debian's
grpcio and protobuf) and imports from there with the version
tools/sdk-version gives."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
import unittest

from helpers import REPO, watchdog


def run(*args: str, cwd: str = REPO) -> str:
    done = subprocess.run(args, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class PackageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dist = tempfile.TemporaryDirectory()
        run("make", "--no-print-directory", "sdk-package-python", f"PY_DIST={cls.dist.name}")
        cls.version = run(os.path.join(REPO, "tools", "sdk-version")).strip().replace("-dev.", ".dev")

    @classmethod
    def tearDownClass(cls) -> None:
        cls.dist.cleanup()

    def setUp(self) -> None:
        watchdog(self)

    def artifact(self, pattern: str) -> str:
        found = glob.glob(os.path.join(self.dist.name, pattern.format(version=self.version)))
        self.assertEqual(len(found), 1, f"{pattern}: {found}")
        return found[0]

    def install(self, *pip_args: str) -> str:
        """Installs into a new venv and returns its python."""
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        venv = os.path.join(tmp.name, "venv")
        run(sys.executable, "-m", "venv", "--system-site-packages", venv)
        python = os.path.join(venv, "bin", "python")
        run(python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", *pip_args)
        run(python, "-m", "pip", "check")  # the installed grpcio and protobuf are in range
        return python

    def assert_imports(self, python: str) -> None:
        # From a directory without the source tree, so the venv's copy loads.
        out = run(python, "-c", "import cablehub, cablehub.aio, cablehub.v1.cable_pb2_grpc; "
                  "print(cablehub.__version__); print(cablehub.__file__)", cwd=tempfile.gettempdir())
        version, path = out.split()
        self.assertEqual(version, self.version)
        self.assertIn(os.sep + "site-packages" + os.sep, path)

    def test_wheel_installs_and_imports(self) -> None:
        self.assert_imports(self.install(self.artifact("cablehub-{version}-py3-none-any.whl")))

    def test_sdist_installs_and_imports(self) -> None:
        # --no-build-isolation: setuptools from the system, no download.
        self.assert_imports(self.install("--no-build-isolation", self.artifact("cablehub-{version}.tar.gz")))


if __name__ == "__main__":
    unittest.main()
