"""The stream worker (`vitalstream worker streams`): Faust agents over the user-keyed topics.

- metrics/: the clinical metric functions (pure);
- state.py, steps.py: per-user state and the pure steps over it; glucose.py, days.py: windows and local days;
- messages.py: decoding and dead letters; rows.py: derived-table rows; telemetry.py: Prometheus metrics;
- processor.py: one batch end to end; agents.py, app.py, worker.py: the Faust shell around it.
"""
