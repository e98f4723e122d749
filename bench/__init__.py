"""The benchmark behind ``make bench``: how close a sync comes to what the network allows.

It runs the real ``accesstrail sync`` against the simulators (in a process of their own, with an
injected latency), counts the requests against the minimum a correct client must make, and
compares the wall time with a bare concurrent fetch of those pages (the floor). ``python -m
bench --help`` lists the options; ``bench/RESULTS.md`` records the figures.
"""
