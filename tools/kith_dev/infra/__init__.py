"""Real infrastructure without Docker or root: embedded PostgreSQL and Apache Kafka."""
