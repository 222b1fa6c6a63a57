# PyMOTW's http_server_send_header.py, taking the port as its argument: the
# original that examples/http_server_headers.rs ports.
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class GetHandler(BaseHTTPRequestHandler):

    def do_GET(self):
        self.send_response(200)
        self.send_header(
            'Content-Type',
            'text/plain; charset=utf-8',
        )
        self.send_header(
            'Last-Modified',
            self.date_time_string(time.time())
        )
        self.end_headers()
        self.wfile.write('Response body\n'.encode('utf-8'))


if __name__ == '__main__':
    server = HTTPServer(('127.0.0.1', int(sys.argv[1])), GetHandler)
    print('Starting server on 127.0.0.1 port {}, use <Ctrl-C> to stop'.format(
        server.server_address[1]), flush=True)
    server.serve_forever()
