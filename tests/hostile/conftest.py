"""The hostile tests use the end-to-end tests' local stack fixture."""

from tests.e2e.conftest import local_stack  # noqa: F401
