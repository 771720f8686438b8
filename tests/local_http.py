"""A local HTTP server on 127.0.0.1 for download tests (no traffic leaves the machine)."""
import contextlib
import threading
from http.server import ThreadingHTTPServer


@contextlib.contextmanager
def local_server(handler, monkeypatch, timeout=60, **attributes):
    """Serve `handler` on 127.0.0.1 in a thread; yields the server with .base (its URL) and `attributes` set.

    Proxies are bypassed for 127.0.0.1; the server shuts down after the block, or after `timeout` seconds at
    the latest (a hung test cannot keep it alive).
    """
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    monkeypatch.setenv('no_proxy', '127.0.0.1,localhost')
    srv = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    srv.daemon_threads = True
    for name, value in attributes.items():
        setattr(srv, name, value)
    srv.base = f'http://127.0.0.1:{srv.server_address[1]}'
    thread = threading.Thread(target=srv.serve_forever, kwargs={'poll_interval': 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(timeout, srv.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield srv
    finally:
        watchdog.cancel()
        srv.shutdown()
        srv.server_close()
        thread.join(5)
