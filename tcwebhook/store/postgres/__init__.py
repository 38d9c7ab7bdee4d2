"""The PostgreSQL backend (``pip install 'tcwebhook[postgres]'``)."""

from tcwebhook.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
