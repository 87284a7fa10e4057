"""Storage: the only package with SQL. Services use the Store protocol from base.py."""

from ragdesk.core.store.base import Store

__all__ = ["Store"]
