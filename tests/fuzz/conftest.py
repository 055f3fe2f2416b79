"""Fuzz targets for the tests: built once per session, scratch files under tmp, quiet."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

import pytest

from bench.fuzz import TARGETS
from bench.fuzz.targets_files import SCRATCH_ENV


@pytest.fixture(scope="session")
def fuzz_target(tmp_path_factory):
    """fuzz_target(name) -> test_one_input, built once (a Modbus target sets up an event
    loop and five clients; a board target reads the shipped board)."""
    built: dict = {}
    # the journal target fsyncs: on tmpfs when there is one, not on the shared disk
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    scratch = tempfile.mkdtemp(prefix="edge-fuzz-test-", dir=shm) if shm else \
        str(tmp_path_factory.mktemp("fuzz-scratch"))
    mp = pytest.MonkeyPatch()
    mp.setenv(SCRATCH_ENV, scratch)

    def get(name: str):
        if name not in built:
            built[name] = TARGETS[name].build()
        return built[name]
    yield get
    mp.undo()
    shutil.rmtree(scratch, ignore_errors=True)


@pytest.fixture()
def quiet_logs():
    """A bad input is logged by design (torn journal tails, rejected commands): thousands
    of warnings would drown the test output."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)
