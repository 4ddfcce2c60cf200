"""Grafana dashboards as code, and the JSON they generate."""
