"""The push service: new posts as Server-Sent Events, fed by the queue (docs/push.md).

A process group of its own (``push-1..N``), apart from the request/response API: its gunicorn
runs one asyncio worker (uvicorn's) that holds thousands of idle streams, where a sync API
worker would be taken by one. Each process reads ``events.post.created`` from JetStream with an
ordered consumer and fans every post out to the clients it holds.
"""
