"""Preparing real infrastructure: databases and topics on existing servers.

The embedded PostgreSQL/Kafka supervisors for development and tests live in the
development package (``kith_dev.infra``), which the production image does not install.
"""


class InfraError(RuntimeError):
    """Infrastructure could not be brought up; the message says what to do."""
