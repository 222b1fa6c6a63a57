# PyMOTW's http_server_threads.py, taking the port as its argument, with
# ?sleep=S added: the original that examples/http_server_threads.rs ports.
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from urllib import parse


class Handler(BaseHTTPRequestHandler):

    def do_GET(self):
        query = parse.parse_qs(parse.urlparse(self.path).query)
        sleep = float(query.get('sleep', ['0'])[0])
        if sleep > 0:
            time.sleep(sleep)
        self.send_response(200)
        self.send_header('Content-Type',
                         'text/plain; charset=utf-8')
        self.end_headers()
        message = threading.current_thread().name
        self.wfile.write(message.encode('utf-8'))
        self.wfile.write(b'\n')


class ThreadedHTTPServer(ThreadingMixIn, HTTPServer):
    """Handle requests in a separate thread."""


if __name__ == '__main__':
    server = ThreadedHTTPServer(('127.0.0.1', int(sys.argv[1])), Handler)
    print('Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop'.format(
        server.server_address[1]), flush=True)
    server.serve_forever()
