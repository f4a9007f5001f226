"""Mechanisms shared by every Kith service: config, event store, codec, Kafka, projections, gRPC."""
