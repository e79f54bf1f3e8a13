import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest


@pytest.fixture(autouse=True)
def _unit_tests_do_not_train(request, monkeypatch):
    """`make test-fast` runs the tests not marked integration and promises no training: a test that
    trains in this process without the mark fails here, instead of slowing the fast suite."""
    if request.node.get_closest_marker("integration"):
        return
    import nas.candidate
    import nas.candidate._train as train

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test trained a model: mark it @pytest.mark.integration")

    monkeypatch.setattr(train, "fit_epochs", refuse)
    monkeypatch.setattr(nas.candidate, "fit_epochs", refuse)
