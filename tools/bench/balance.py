#!/usr/bin/python3
"""Balancing policies side by side: sluice (round_robin, least_conn, random,
p2c_ewma), nginx (round robin, least_conn) and HAProxy (roundrobin,
leastconn), each proxy with one worker, in front of the same three backends,
one of which answers SLOW ms late. For each: requests/s, p50 and p99 latency
(wrk --latency) and the proxy
worker's CPU time per request. Rounds alternate the proxies.

    /usr/bin/python3 tools/bench/balance.py                      # ~3 minutes
    /usr/bin/python3 tools/bench/balance.py --duration 3s --rounds 1

Writes tools/bench/results/balance.md. The backends are tools/bench/slow_backend.py
(asyncio; ~0.2 ms per request when not slowed), so absolute rates are the
backends', not the proxies': compare the policies, not the numbers.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchlib import (TICK, cell, children, cpu_ticks, free_port, parse_wrk, wait_port,
                      write_report)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
class Proxy:
    def __init__(self, name, kind, policy, work):
        self.name, self.kind, self.policy = name, kind, policy
        self.dir = os.path.join(work, name.replace(' ', '_'))
        os.makedirs(self.dir)
        self.port = free_port()
        self.proc = None

    def config(self, backends):
        servers = backends
        if self.kind == 'sluice':
            lines = [f'      - address: 127.0.0.1:{p}' for p in servers]
            extra = ''
            return ('workers: 1\nlog: { level: warn, access: off }\n'
                    'limits: { max_connections: 10000, max_requests_per_connection: 0 }\n'
                    f'listeners:\n  - address: 127.0.0.1:{self.port}\n    routes:\n'
                    '      - upstream: app\nupstreams:\n  app:\n'
                    f'    balance: {self.policy}\n{extra}    passive: off\n    servers:\n'
                    + '\n'.join(lines) + '\n    keepalive: { max_idle: 64, idle_timeout: 20s }\n')
        if self.kind == 'nginx':
            policy = 'least_conn;' if self.policy == 'least_conn' else ''
            ups = ''.join(f'        server 127.0.0.1:{p} max_fails=0;\n' for p in servers)
            return (f'worker_processes 1;\ndaemon off;\npid {self.dir}/nginx.pid;\n'
                    f'error_log {self.dir}/error.log warn;\nevents {{ worker_connections 4096; }}\n'
                    f'http {{\n    access_log off;\n    upstream app {{\n        {policy}\n{ups}'
                    '        keepalive 64;\n    }\n'
                    f'    server {{\n        listen 127.0.0.1:{self.port};\n'
                    '        location / {\n            proxy_pass http://app;\n'
                    '            proxy_http_version 1.1;\n'
                    '            proxy_set_header Connection "";\n        }\n    }\n}\n')
        ups = ''.join(f'    server s{i} 127.0.0.1:{p}\n' for i, p in enumerate(servers))
        return ('global\n    nbthread 1\n    maxconn 4000\ndefaults\n    mode http\n'
                '    option http-keep-alive\n    http-reuse always\n    timeout connect 5s\n'
                '    timeout client 60s\n    timeout server 60s\n'
                f'frontend f\n    bind 127.0.0.1:{self.port}\n    default_backend b\n'
                f'backend b\n    balance {self.policy}\n{ups}')

    def start(self, backends, cpu):
        path = os.path.join(self.dir, {'sluice': 'sluice.yaml', 'nginx': 'nginx.conf',
                                       'haproxy': 'haproxy.cfg'}[self.kind])
        with open(path, 'w') as f:
            f.write(self.config(backends))
        cmd = {'sluice': [os.path.join(ROOT, 'build/src/sluice'), '-c', path],
               'nginx': ['nginx', '-p', self.dir, '-e', f'{self.dir}/error.log', '-c', path],
               'haproxy': ['haproxy', '-db', '-f', path]}[self.kind]
        self.proc = subprocess.Popen(['taskset', '-c', str(cpu)] + cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, 'out.log'), 'w'))
        if not wait_port(self.port):
            raise SystemExit(f'{self.name}: did not start; see {self.dir}/out.log')
        kids = []
        deadline = time.monotonic() + 3
        while self.kind != 'haproxy' and not kids and time.monotonic() < deadline:
            kids = children(self.proc.pid)
            time.sleep(0.05)
        self.worker = kids[0] if kids else self.proc.pid

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGINT if self.kind == 'sluice' else signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--duration', default='8s')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--connections', type=int, default=32)
    ap.add_argument('--slow', type=float, default=20.0, help='ms added by the slow backend')
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'balance.md'))
    args = ap.parse_args()
    for tool in ('wrk', 'nginx', 'haproxy', 'taskset'):
        if not shutil.which(tool):
            raise SystemExit(f'{tool} is missing (bash tools/setup.sh)')
    work = tempfile.mkdtemp(prefix='sluice-balance-')
    backends, procs = [], []
    try:
        for delay in (0, 0, args.slow):
            port = free_port()
            procs.append(subprocess.Popen(['taskset', '-c', '1', sys.executable,
                                           os.path.join(HERE, 'slow_backend.py'), str(port),
                                           str(delay)]))
            if not wait_port(port):
                raise SystemExit('a backend did not start')
            backends.append(port)
        proxies = [Proxy(f'sluice {p}', 'sluice', p, work)
                   for p in ('round_robin', 'least_conn', 'random', 'p2c_ewma')]
        proxies += [Proxy('nginx round robin', 'nginx', 'round_robin', work),
                    Proxy('nginx least_conn', 'nginx', 'least_conn', work),
                    Proxy('haproxy roundrobin', 'haproxy', 'roundrobin', work),
                    Proxy('haproxy leastconn', 'haproxy', 'leastconn', work)]
        results = {p.name: [] for p in proxies}
        for r in range(args.rounds):
            for p in proxies:
                p.start(backends, cpu=0)
                # Warm-up: pools filled, p2c_ewma's averages learnt.
                subprocess.run(['wrk', '-t1', f'-c{args.connections}', '-d1s',
                                f'http://127.0.0.1:{p.port}/w'], capture_output=True)
                before = cpu_ticks(p.worker)
                done = subprocess.run(['taskset', '-c', '1', 'wrk', '-t1',
                                       f'-c{args.connections}', f'-d{args.duration}', '--latency',
                                       f'http://127.0.0.1:{p.port}/x'],
                                      capture_output=True, text=True)
                ticks = cpu_ticks(p.worker) - before
                p.stop()
                w = parse_wrk(done.stdout)
                w['cpu_us'] = ticks / TICK * 1e6 / w['requests'] if w['requests'] else None
                results[p.name].append(w)
                print(f'round {r + 1}: {p.name:20s} {w["rps"]:8.0f} req/s  p50 {w["p50"]} ms  '
                      f'p99 {w["p99"]} ms  non-2xx {w["non2xx"]}', flush=True)
        lines = ['# Balancing with one slow server', '',
                 f'Three backends (tools/bench/slow_backend.py), one {args.slow:g} ms slower; '
                 f'wrk -c{args.connections} for {args.duration}, {args.rounds} alternating rounds; '
                 'each proxy one worker on CPU 0, wrk and the backends on CPU 1. Medians of the '
                 'rounds (min–max).', '',
                 '| proxy, policy | requests/s | p50 ms | p99 ms | proxy CPU µs/request |',
                 '|---|---|---|---|---|']

        for p in proxies:
            rs = results[p.name]
            lines.append(f'| {p.name} | {cell([x["rps"] for x in rs], "{:.0f}")} | '
                         f'{cell([x["p50"] for x in rs], "{:.2f}")} | '
                         f'{cell([x["p99"] for x in rs], "{:.2f}")} | '
                         f'{cell([x["cpu_us"] for x in rs], "{:.1f}")} |')
        write_report(args.out, lines)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
