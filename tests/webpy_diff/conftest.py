"""The apps set web.config at import (debug, session_parameters): put both configs back after each test."""

import copy

import pytest
import web as webpy

import webmini


@pytest.fixture(autouse=True)
def _restore_configs():
    saved = [(cfg, copy.deepcopy(dict(cfg))) for cfg in (webmini.config, webpy.config)]
    yield
    for cfg, values in saved:
        cfg.clear()
        cfg.update(values)
