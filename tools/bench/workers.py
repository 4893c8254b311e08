#!/usr/bin/python3
"""Two workers on two cores: is CPU per request unchanged from one worker,
and are accepts spread evenly? sluice with 1 worker, 2 workers with
`reuse_port: true` (the default: one SO_REUSEPORT socket per worker) and 2
workers with `reuse_port: false` (one shared socket, the old behaviour), in
front of the same nginx backend, alternating each round:

  keepalive   wrk -c200 keep-alive for --duration: requests/s, CPU of all
              workers per request, p99, and how the 200 connections landed
              on the workers (`accepted` per slot in /status)
  reconnect   wrk -c50 with `Connection: close` (a new connection per
              request): the same figures over thousands of accepts

The spread is reported as the largest slot's share of the accepts against
an even share ("+4 %" = the busiest worker took 4 % more than 1/workers).
Nothing is pinned: the workers, wrk and the backend share the two cores, as
they would on a 2-core host; CPU per request is the figure that matters.

    /usr/bin/python3 tools/bench/workers.py                  # ~2 minutes
    /usr/bin/python3 tools/bench/workers.py --duration 3s --rounds 1

Writes tools/bench/results/workers.md. Needs wrk and nginx (tools/setup.sh).
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchlib import TICK, cell, children, cpu_ticks, free_port, parse_wrk, wait_port, write_report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VARIANTS = (('1 worker', 1, True), ('2 workers, reuse_port', 2, True),
            ('2 workers, shared socket', 2, False))


def status_slots(admin_port):
    """{slot: (accepted, requests)} of the serving generation."""
    with urllib.request.urlopen(f'http://127.0.0.1:{admin_port}/status', timeout=5) as r:
        status = json.load(r)
    for generation in status['generations']:
        if generation['state'] == 'serving':
            return {w['slot']: (w['accepted'], w['requests']) for w in generation['workers']}
    return {}


class Sluice:
    def __init__(self, binary, work, name, workers, reuse_port, backend_port):
        self.dir = os.path.join(work, name.replace(' ', '_').replace(',', ''))
        os.makedirs(self.dir)
        self.port, self.admin = free_port(), free_port()
        self.workers = workers
        with open(os.path.join(self.dir, 'sluice.yaml'), 'w') as f:
            f.write(f'workers: {workers}\nlog: {{ level: warn, access: off }}\n'
                    f'admin: {{ address: 127.0.0.1:{self.admin} }}\n'
                    'limits: { max_connections: 10000, max_requests_per_connection: 0 }\n'
                    f'listeners:\n  - address: 127.0.0.1:{self.port}\n'
                    f'    reuse_port: {"true" if reuse_port else "false"}\n'
                    '    routes: [{ upstream: app }]\n'
                    f'upstreams:\n  app:\n    servers: [{{ address: 127.0.0.1:{backend_port} }}]\n'
                    '    keepalive: { max_idle: 128, idle_timeout: 20s }\n')
        self.proc = subprocess.Popen([binary, '-c', os.path.join(self.dir, 'sluice.yaml')],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, 'err.log'), 'w'))
        if not wait_port(self.port) or not wait_port(self.admin):
            sys.exit(f'sluice ({name}) did not start: see {self.dir}/err.log')
        deadline = time.monotonic() + 5
        while len(children(self.proc.pid)) < workers and time.monotonic() < deadline:
            time.sleep(0.05)

    def cpu(self):
        return sum(cpu_ticks(pid) for pid in children(self.proc.pid))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def measure(proxy, connections, seconds, close):
    before_slots, before_cpu = status_slots(proxy.admin), proxy.cpu()
    cmd = ['wrk', '-t2', f'-c{connections}', f'-d{seconds}', '--latency']
    if close:
        cmd += ['-H', 'Connection: close']
    done = subprocess.run(cmd + [f'http://127.0.0.1:{proxy.port}/'], capture_output=True, text=True)
    cpu = proxy.cpu() - before_cpu
    after_slots = status_slots(proxy.admin)
    w = parse_wrk(done.stdout)
    if not w['requests'] or w['errors'] or w['non2xx']:
        print(done.stdout, done.stderr, file=sys.stderr)
        return None
    accepted = [after_slots[s][0] - before_slots.get(s, (0, 0))[0] for s in sorted(after_slots)]
    total = sum(accepted)
    excess = (max(accepted) * len(accepted) / total - 1) * 100 if total else None
    return dict(rps=w['rps'], p99=w['p99'], us=cpu / TICK * 1e6 / w['requests'],
                accepted=accepted, excess=excess if proxy.workers > 1 else None)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--sluice', default=os.path.join(ROOT, 'build', 'src', 'sluice'))
    ap.add_argument('--duration', default='8s')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'workers.md'))
    args = ap.parse_args(argv)
    for tool in ('wrk', 'nginx'):
        if not shutil.which(tool):
            sys.exit(f'{tool} not found (tools/setup.sh installs it)')
    work = tempfile.mkdtemp(prefix='sluice-workers-')
    backend_port = free_port()
    with open(os.path.join(work, 'backend.conf'), 'w') as f:
        f.write(f'worker_processes 1;\ndaemon off;\npid {work}/backend.pid;\n'
                f'error_log {work}/backend.err warn;\nevents {{ worker_connections 4096; }}\n'
                'http { access_log off; keepalive_requests 100000;\n'
                f'  server {{ listen 127.0.0.1:{backend_port};\n'
                '    location / { return 200 "hello from the backend\\n"; } } }\n')
    backend = subprocess.Popen(['nginx', '-p', work, '-e', f'{work}/backend.err', '-c',
                                f'{work}/backend.conf'], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    proxies = []
    results = {}
    try:
        if not wait_port(backend_port):
            sys.exit('the nginx backend did not start')
        proxies = [(name, Sluice(args.sluice, work, name, n, reuse, backend_port))
                   for name, n, reuse in VARIANTS]
        for rnd in range(args.rounds):
            order = proxies[rnd % len(proxies):] + proxies[:rnd % len(proxies)]
            for name, proxy in order:
                for scenario, conns, close in (('keepalive', 200, False),
                                               ('reconnect', 50, True)):
                    m = measure(proxy, conns, args.duration, close)
                    print(f'round {rnd + 1} {name} {scenario}: {m}', flush=True)
                    if m:
                        results.setdefault((name, scenario), []).append(m)
    finally:
        for _, proxy in proxies:
            proxy.stop()
        backend.send_signal(signal.SIGTERM)
        backend.wait(10)
        shutil.rmtree(work, ignore_errors=True)

    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip()
    lines = [f'# sluice, one worker against two (commit {commit}, {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})',
             '', f'`tools/bench/workers.py --duration {args.duration} --rounds {args.rounds}`; '
             'nginx backend; nothing pinned (2 cores shared with wrk and the backend). '
             'Medians (min–max) over the rounds.', '',
             '| sluice | load | requests/s | CPU µs per request (all workers) | p99 ms | '
             'accepts per worker (last round) | busiest worker above an even share |',
             '|---|---|---|---|---|---|---|']
    for name, _, _ in VARIANTS:
        for scenario in ('keepalive', 'reconnect'):
            rows = results.get((name, scenario), [])
            if not rows:
                lines.append(f'| {name} | {scenario} | failed | | | | |')
                continue
            excess = [r['excess'] for r in rows]
            lines.append(f'| {name} | {scenario} | {cell([r["rps"] for r in rows], "{:.0f}")} | '
                         f'{cell([r["us"] for r in rows], "{:.1f}")} | '
                         f'{cell([r["p99"] for r in rows], "{:.2f}")} | '
                         f'{" / ".join(map(str, rows[-1]["accepted"]))} | '
                         f'{cell(excess, "+{:.1f} %") if excess[0] is not None else "–"} |')
    one = {s: results.get(('1 worker', s)) for s in ('keepalive', 'reconnect')}
    two = {s: results.get(('2 workers, reuse_port', s)) for s in ('keepalive', 'reconnect')}
    lines.append('')
    for s in ('keepalive', 'reconnect'):
        if one[s] and two[s]:
            ratios = [b['us'] / a['us'] for a, b in zip(one[s], two[s])]
            lines.append(f'- {s}: CPU per request, 2 workers (reuse_port) / 1 worker: '
                         f'{cell(ratios, "{:.2f}")}')
    write_report(args.out, lines)


if __name__ == '__main__':
    main(sys.argv[1:])
