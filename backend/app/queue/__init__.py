"""The message-queue step (docs/messaging.md): the relay that publishes the outbox to NATS
JetStream, the workers that consume it, and what /readyz reads of the broker."""
