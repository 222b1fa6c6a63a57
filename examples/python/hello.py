# The hello benchmark handler in Python, HTTP/1.1 keep-alive under
# ThreadingHTTPServer (plain HTTPServer serves one connection at a time):
# what examples/hello.rs is measured against. `--quiet` drops the log.
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hello(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Content-Length', '14')
        self.end_headers()
        self.wfile.write(b'Hello, world!\n')

    def log_message(self, *args):
        if '--quiet' not in sys.argv:
            super().log_message(*args)


if __name__ == '__main__':
    server = ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), Hello)
    print('Serving HTTP on 127.0.0.1 port {}'.format(server.server_address[1]), flush=True)
    server.serve_forever()
