"""The event contract and the broker: what an event is (events.py: one encode and decode, with
its validation), the one NATS connection, stream and consumer helper (broker.py), the relays'
wake-up word on Redis (wake.py), and what the broker says of the consumers (status.py). The
services that record events, the relays and workers, the push feed and the edge purger read and
write events only through it; it knows nothing of who does."""
