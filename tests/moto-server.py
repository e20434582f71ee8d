#!/usr/bin/env python3
"""moto's S3 server for weft's tests, with conditional writes made atomic.

Stock `moto_server` serves each request on its own thread and checks `If-Match` /
`If-None-Match` before it stores the object, with no lock between the check and the write: two
concurrent PUTs with the same `If-Match` can both succeed. Real S3 (and MinIO) never allows that,
and weft's contract tests catch it as a lost update. This launcher serves moto's own application
with the same options as `moto_server -H HOST -p PORT`, and runs every request that changes state
(PUT, POST, DELETE) one at a time, so a condition is checked and applied as one step. Reads stay
concurrent.
"""
import argparse
import os
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

WRITES = {"PUT", "POST", "DELETE"}


def serialised_writes(app):
    lock = threading.Lock()

    def wrapped(environ, start_response):
        if environ.get("REQUEST_METHOD") not in WRITES:
            return app(environ, start_response)
        with lock:
            # the whole response is produced under the lock: moto writes while it answers
            return list(app(environ, start_response))

    return wrapped


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised_writes(app), threaded=True)


if __name__ == "__main__":
    main()
