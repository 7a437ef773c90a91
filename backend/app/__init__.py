"""The application: the API, the queue's relay and workers, the push service and the edge purger.

Each process starts in app.processes (one module per process); the packages beside it are what
they are built of, and import none of them.
"""
