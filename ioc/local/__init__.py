"""Local services started by the project itself: Kafka (and, later, Prometheus, Alertmanager)."""
