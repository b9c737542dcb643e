"""Outgoing deliveries: the worker (`worker`) claims due jobs with leases, each `attempt`
signs and POSTs one, `queue_pass` records outcomes and claims the next on the writer
thread, and `policy` decides retries and host pauses as pure functions."""
