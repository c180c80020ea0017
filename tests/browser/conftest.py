"""Session fixtures of the browser tests (tests/browser/pages_kit.py): one server, one browser."""

from pages_kit import browser, site

__all__ = ["browser", "site"]
