"""``ioc bench``: the end-to-end benchmark of the worker on a real broker (issue 7).

One run pre-loads N simulated events from all 41 sources into the feed topics, then measures,
each on the same data and with its own consumer group:

- ``raw``: the ceiling, a plain aiokafka consume-and-orjson-decode loop (:mod:`bench.raw`);
- ``peer``: the same job written with Quix Streams (:mod:`bench.peer`): validate, dedupe by
  event id, latest value per indicator and area, count per source;
- ``worker``: this project's worker process end to end (:mod:`bench.worker`), with one worker
  and, for scale-out, with two on the two partitions.

It reports events/s, the ratios ours/peer and ours/raw, p50/p99 latency from produce time to
processed at a fixed offered load, and each process's peak RSS (:mod:`bench.report`).
"""
