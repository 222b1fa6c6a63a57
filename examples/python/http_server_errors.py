# PyMOTW's http_server_errors.py, taking the port as its argument: the
# original that examples/http_server_errors.rs ports.
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class ErrorHandler(BaseHTTPRequestHandler):

    def do_GET(self):
        self.send_error(404)


if __name__ == '__main__':
    server = HTTPServer(('127.0.0.1', int(sys.argv[1])), ErrorHandler)
    print('Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop'.format(
        server.server_address[1]), flush=True)
    server.serve_forever()
