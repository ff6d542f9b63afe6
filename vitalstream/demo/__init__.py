"""`vitalstream demo`: the whole pipeline on the local stack, driven by simulated people, shown live.

Modules, one job each: orchestrate (child processes by PID), install (stack, schema, topics), fleet (the
simulated people's accounts and device credentials), uploads (simulated events as API, Nightscout and Kafka
payloads), drive (sending them), scenario (a crisis reading and two faulty messages), observe (figures from
Prometheus, TimescaleDB, Kafka and the API), display (rich Live, or plain lines without a terminal), run (all of it).
"""
