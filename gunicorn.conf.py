"""gunicorn settings for Perly's web processes. gunicorn reads ./gunicorn.conf.py by default, so
`gunicorn perly.wsgi:application` from the checkout uses it; command-line flags override it.

Perly must run behind a proxy that buffers whole requests and responses (docs/operations.md,
"Web processes behind a load balancer"). These settings are the backstop when something slow
reaches gunicorn anyway: threads so that one slow client cannot hold a whole process, and a bounded
request read (perly/gunicorn_worker.py) so that it cannot hold a thread for long either.
"""

import os

wsgi_app = "perly.wsgi:application"

# gthread with a deadline on reading each request (PERLY_REQUEST_READ_TIMEOUT, 15 s).
worker_class = "perly.gunicorn_worker.BoundedReadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))

# gthread's main loop heartbeats while threads work, so this only catches a stuck process.
timeout = 30
graceful_timeout = 30
# An idle kept-alive connection waits in the worker's poller, not in a thread.
keepalive = 5

# Above the app's own query limits (PERLY_MAX_QUERY_STRING_BYTES 4,096, PERLY_MAX_QUERY_PARAMS
# 100), so a client normally meets the app's answer. Past these, gunicorn refuses: a request line
# over 8,190 bytes is a 414, more than 100 header fields or one over 8,190 bytes a 431; the worker
# writes them (and its 400s) in the JSON error envelope too.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190

# The default control socket is one path per user ($HOME/.gunicorn/gunicorn.ctl): a second
# gunicorn on the machine would take it over. Perly's runbook does not use gunicornc.
control_socket_disable = True
