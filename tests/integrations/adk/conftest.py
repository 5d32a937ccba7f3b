import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "persistent: only for services that persist sessions")
