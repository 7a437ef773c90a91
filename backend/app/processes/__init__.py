"""Where every process starts: one module per process, each a short entry point that builds its
parts from the environment and runs them. Nothing imports these modules; the launcher, compose
and k8s run them.

* ``api``: the API's Flask app factory, ``gunicorn 'app.processes.api:create_app()'``
* ``push``: the push service's ASGI app, ``gunicorn 'app.processes.push:create_app()'``
* ``heartbeat``: the heartbeat writer, ``python -m app.processes.heartbeat``
* ``relay``: an outbox relay, ``python -m app.processes.relay``
* ``worker``: a queue worker, ``python -m app.processes.worker``
* ``edge_purger``: an edge purger, ``python -m app.processes.edge_purger``
* ``cli``: the operator's CLI (API keys, breakers), ``python -m app.processes.cli``
"""
