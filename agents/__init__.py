"""The Faust worker: its agents, tables, metrics and web views."""
