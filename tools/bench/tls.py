#!/usr/bin/python3
"""TLS side by side: sluice, nginx and HAProxy terminating TLS (TLS 1.3,
one worker each) in front of the same plain nginx backend, alternating
proxies each round:

  full         `openssl s_time -new`: a full handshake (ECDSA P-256) and one
               request per connection: handshakes per second and proxy CPU
               per handshake
  full-rsa     the same with an RSA 2048 certificate
  handshakes   every wrk request on a new connection (Connection: close);
               wrk resumes its session on each reconnect
  resumed      `openssl s_time -reuse -www /`: resumed handshakes (session
               tickets), each with one request, per second and proxy CPU
               per handshake (s_time is one sequential client: its rate is
               bounded by its own CPU; the proxy CPU per handshake is the
               figure to compare)
  keepalive    requests on kept-alive TLS connections: requests per second,
               proxy CPU per request, p99; in round 1 also a separate 3 s
               wrk run (20 connections) under `strace -c -f -p WORKER`:
               syscalls per keep-alive HTTPS request (OpenSSL's reads and
               writes as the proxy makes them)
  idle         --idle-conns TLS connections opened (one request each, then
               held open): the proxy worker's resident memory per connection

    /usr/bin/python3 tools/bench/tls.py                  # ~2 minutes
    /usr/bin/python3 tools/bench/tls.py --duration 3s --rounds 1

Writes tools/bench/results/tls.md. Needs wrk, nginx, haproxy, openssl,
taskset (tools/setup.sh).
"""
import argparse
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from benchlib import (TICK, cell, children, cpu_ticks, free_port, parse_strace, parse_wrk,
                      wait_port, write_report)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
def start(cmd, cpu, log, port, worker_is_child):
    proc = subprocess.Popen(['taskset', '-c', str(cpu)] + cmd, stdout=subprocess.DEVNULL,
                            stderr=open(log, 'w'))
    if not wait_port(port):
        raise SystemExit(f'{cmd[0]} did not start; see {log}')
    worker = proc.pid
    deadline = time.monotonic() + 3
    while worker_is_child and time.monotonic() < deadline:
        kids = children(proc.pid)
        if kids:
            worker = kids[0]
            break
        time.sleep(0.05)
    return proc, worker


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid):
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


def idle_tls(port, worker, count, ca):
    """Opens `count` TLS connections, one request each, holds them; returns
    (KiB per idle connection, connections that made it)."""
    context = ssl.create_default_context(cafile=ca)
    context.check_hostname = False
    before = rss_kib(worker)
    held = []
    try:
        for _ in range(count):
            raw = socket.create_connection(('127.0.0.1', port), timeout=5)
            conn = context.wrap_socket(raw, server_hostname='bench.test')
            conn.sendall(b'GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n')
            got = b''
            while b'hello from the backend' not in got:
                piece = conn.recv(4096)
                if not piece:
                    break
                got += piece
            held.append(conn)
        time.sleep(1)  # let the proxy settle (buffers released after the response)
        after = rss_kib(worker)
        return (after - before) / max(1, len(held)), len(held)
    except OSError:
        after = rss_kib(worker)
        return (after - before) / max(1, len(held)), len(held)
    finally:
        for conn in held:
            conn.close()


def count_syscalls(worker, url, work, name):
    """(syscalls per request, {syscall: per request}) of the worker alone
    during a 3 s keep-alive wrk run under strace -c, or (None, {})."""
    out = os.path.join(work, f'strace-{name}.txt')
    strace = subprocess.Popen(['taskset', '-c', '0', 'strace', '-c', '-f', '-o', out,
                               '-p', str(worker)], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached (it stops the worker for each syscall from then on)
    done = subprocess.run(['taskset', '-c', '1', 'wrk', '-t1', '-c20', '-d3s', url],
                          capture_output=True, text=True)
    strace.send_signal(signal.SIGINT)
    try:
        strace.wait(10)
    except subprocess.TimeoutExpired:
        strace.kill()
        strace.wait()
    w = parse_wrk(done.stdout)
    calls = {}
    if os.path.exists(out):
        with open(out, errors='replace') as f:
            calls = parse_strace(f.read())
    if not (calls and w['requests']) or w['errors'] or w['non2xx']:
        return None, {}
    n = w['requests']
    return sum(calls.values()) / n, {k: v / n for k, v in calls.items()}


def s_time(port, seconds, mode):
    """openssl s_time -new (a full handshake per connection) or -reuse (one
    full, then resumed ones), each connection fetching /, for `seconds`;
    returns (handshakes per second, handshakes)."""
    done = subprocess.run(['taskset', '-c', '1', 'openssl', 's_time', '-connect',
                           f'127.0.0.1:{port}', mode, '-www', '/', '-time', str(seconds)],
                          capture_output=True, text=True)
    m = re.search(r'(\d+) connections in ([\d.]+) real seconds', done.stdout)
    if not m or float(m.group(2)) <= 0:
        return 0, 0
    return int(m.group(1)) / float(m.group(2)), int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument('--duration', default='6s')
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--idle-conns', type=int, default=2000)
    ap.add_argument('--out', default=os.path.join(HERE, 'results', 'tls.md'))
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.idle_conns + 256)), hard))
    for tool in ('wrk', 'nginx', 'haproxy', 'openssl', 'taskset', 'strace'):
        if not shutil.which(tool):
            raise SystemExit(f'{tool} is missing (bash tools/setup.sh)')
    work = tempfile.mkdtemp(prefix='sluice-tls-bench-')
    os.chmod(work, 0o755)
    certs = {}
    for kind, newkey in (('ecdsa', ['ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1']),
                         ('rsa', ['rsa:2048'])):
        key, crt, pem = (os.path.join(work, f'{kind}.{n}') for n in ('key', 'crt', 'pem'))
        subprocess.run(['openssl', 'req', '-x509', '-newkey'] + newkey +
                       ['-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=bench.test', '-days',
                        '2', '-addext', 'subjectAltName=DNS:bench.test'],
                       check=True, capture_output=True)
        with open(pem, 'w') as f:
            f.write(open(crt).read() + open(key).read())
        certs[kind] = (key, crt, pem)
    backend_port = free_port()
    with open(os.path.join(work, 'backend.conf'), 'w') as f:
        f.write(f'worker_processes 1;\ndaemon off;\npid {work}/backend.pid;\n'
                f'error_log {work}/backend.err warn;\nevents {{ worker_connections 4096; }}\n'
                'http { access_log off; keepalive_requests 100000;\n'
                f'  server {{ listen 127.0.0.1:{backend_port};\n'
                '    location / { return 200 "hello from the backend\\n"; } } }\n')
    backend, _ = start(['nginx', '-p', work, '-e', f'{work}/backend.err', '-c',
                        f'{work}/backend.conf'], 1, f'{work}/backend.log', backend_port, True)
    proxies = {}

    def configure(name, kind):
        key, crt, pem = certs[kind]
        port = free_port()
        d = os.path.join(work, name + '-' + kind)
        os.makedirs(d, exist_ok=True)
        if name == 'sluice':
            path = os.path.join(d, 'sluice.yaml')
            open(path, 'w').write(
                'workers: 1\nlog: { level: warn, access: off }\n'
                'limits: { max_connections: 10000, max_requests_per_connection: 0 }\n'
                f'listeners:\n  - address: 127.0.0.1:{port}\n    tls:\n'
                f'      certificates: [{{cert: {crt}, key: {key}}}]\n'
                '    routes: [{upstream: app}]\n'
                f'upstreams:\n  app:\n    servers: [{{address: 127.0.0.1:{backend_port}}}]\n'
                '    keepalive: { max_idle: 64, idle_timeout: 20s }\n')
            return port, [os.path.join(ROOT, 'build/src/sluice'), '-c', path], True, signal.SIGINT
        if name == 'nginx':
            path = os.path.join(d, 'nginx.conf')
            open(path, 'w').write(
                f'worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\n'
                f'error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n'
                'http { access_log off;\n'
                f'  upstream app {{ server 127.0.0.1:{backend_port}; keepalive 64; }}\n'
                f'  server {{ listen 127.0.0.1:{port} ssl; ssl_certificate {crt};\n'
                f'    ssl_certificate_key {key}; ssl_protocols TLSv1.2 TLSv1.3;\n'
                '    ssl_session_cache shared:SSL:10m;\n'
                '    location / { proxy_pass http://app; proxy_http_version 1.1;\n'
                '      proxy_set_header Connection ""; } } }\n')
            return port, ['nginx', '-p', d, '-e', f'{d}/error.log', '-c', path], True, signal.SIGTERM
        path = os.path.join(d, 'haproxy.cfg')
        open(path, 'w').write(
            'global\n    nbthread 1\n    maxconn 4000\n    ssl-default-bind-options ssl-min-ver TLSv1.2\n'
            'defaults\n    mode http\n    option http-keep-alive\n    http-reuse always\n'
            '    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n'
            f'frontend f\n    bind 127.0.0.1:{port} ssl crt {pem}\n    default_backend b\n'
            f'backend b\n    server s1 127.0.0.1:{backend_port}\n')
        return port, ['haproxy', '-db', '-f', path], False, signal.SIGTERM

    names = ['sluice', 'nginx', 'haproxy']
    scenarios = ('full', 'full-rsa', 'handshakes', 'resumed', 'keepalive', 'idle')
    results = {(n, s): [] for n in names for s in scenarios}
    syscalls = {}
    seconds = int(args.duration.rstrip('s'))

    def timed(name, scenario, worker, port, mode):
        before = cpu_ticks(worker)
        rate, count = s_time(port, seconds, mode)
        ticks = cpu_ticks(worker) - before
        cpu = ticks / TICK * 1e6 / count if count else None
        results[(name, scenario)].append({'rps': rate, 'cpu_us': cpu})
        print(f'round {r + 1}: {name:8s} {scenario:14s} {rate:8.0f}/s  '
              f'cpu {cpu and round(cpu, 1)} µs', flush=True)

    def measure(name, scenario, worker, url):
        extra = ['-H', 'Connection: close'] if scenario.startswith('handshakes') else []
        before = cpu_ticks(worker)
        done = subprocess.run(['taskset', '-c', '1', 'wrk', '-t1', '-c32', f'-d{args.duration}',
                               '--latency'] + extra + [url], capture_output=True, text=True)
        ticks = cpu_ticks(worker) - before
        w = parse_wrk(done.stdout)
        w['cpu_us'] = ticks / TICK * 1e6 / w['requests'] if w['requests'] else None
        results[(name, scenario)].append(w)
        print(f'round {r + 1}: {name:8s} {scenario:14s} {w["rps"]:8.0f}/s  '
              f'cpu {w["cpu_us"] and round(w["cpu_us"], 1)} µs  p99 {w["p99"]} ms  '
              f'errors {w["errors"]}', flush=True)

    try:
        for r in range(args.rounds):
            for name in names:
                port, cmd, child, sig = configure(name, 'ecdsa')
                proc, worker = start(cmd, 0, os.path.join(work, name + '.log'), port, child)
                url = f'https://127.0.0.1:{port}/'
                subprocess.run(['wrk', '-t1', '-c16', '-d1s', url], capture_output=True)
                measure(name, 'handshakes', worker, url)
                measure(name, 'keepalive', worker, url)
                if r == 0:
                    syscalls[name] = count_syscalls(worker, url, work, name)
                    print(f'round 1: {name:8s} syscalls per keep-alive request: '
                          f'{syscalls[name][0] and round(syscalls[name][0], 2)}', flush=True)
                timed(name, 'resumed', worker, port, '-reuse')
                timed(name, 'full', worker, port, '-new')
                per_conn, opened = idle_tls(port, worker, args.idle_conns, certs['ecdsa'][1])
                results[(name, 'idle')].append(per_conn)
                print(f'round {r + 1}: {name:8s} idle           {opened} TLS connections held, '
                      f'{per_conn:.2f} KiB each', flush=True)
                stop(proc, sig)
                port, cmd, child, sig = configure(name, 'rsa')
                proc, worker = start(cmd, 0, os.path.join(work, name + '-rsa.log'), port, child)
                url = f'https://127.0.0.1:{port}/'
                subprocess.run(['wrk', '-t1', '-c16', '-d1s', url], capture_output=True)
                timed(name, 'full-rsa', worker, port, '-new')
                stop(proc, sig)

        lines = ['# TLS termination', '',
                 f'TLS 1.3, one worker per proxy on CPU 0; wrk -c32 (and openssl s_time) on '
                 f'CPU 1 for {args.duration}, {args.rounds} alternating rounds; the same plain '
                 'nginx backend (CPU 1). ECDSA P-256 unless it says RSA. Medians (min–max).', '',
                 '| proxy | full handshakes/s (s_time -new) | CPU µs per full handshake+request | '
                 'RSA 2048 full handshakes/s | RSA: CPU µs per full handshake+request | '
                 'resumed handshakes/s (s_time -reuse) | CPU µs per resumed handshake+request | '
                 'wrk reconnects/s (resumed) | CPU µs per wrk reconnect+request | '
                 'keep-alive requests/s | CPU µs per request | keep-alive p99 ms | '
                 f'KiB per idle TLS connection ({args.idle_conns}) |',
                 '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
        for name in names:
            h, k = results[(name, 'handshakes')], results[(name, 'keepalive')]
            rsa, res = results[(name, 'full-rsa')], results[(name, 'resumed')]
            full = results[(name, 'full')]
            lines.append(f'| {name} | {cell([x["rps"] for x in full], "{:.0f}")} | '
                         f'{cell([x["cpu_us"] for x in full], "{:.0f}")} | '
                         f'{cell([x["rps"] for x in rsa], "{:.0f}")} | '
                         f'{cell([x["cpu_us"] for x in rsa], "{:.0f}")} | '
                         f'{cell([x["rps"] for x in res], "{:.0f}")} | '
                         f'{cell([x["cpu_us"] for x in res], "{:.0f}")} | '
                         f'{cell([x["rps"] for x in h], "{:.0f}")} | '
                         f'{cell([x["cpu_us"] for x in h], "{:.0f}")} | '
                         f'{cell([x["rps"] for x in k], "{:.0f}")} | '
                         f'{cell([x["cpu_us"] for x in k], "{:.1f}")} | '
                         f'{cell([x["p99"] for x in k], "{:.2f}")} | '
                         f'{cell(results[(name, "idle")], "{:.2f}")} |')
        lines += ['', '| proxy | syscalls per keep-alive HTTPS request (round 1, strace) | '
                  'top calls per request |', '|---|---|---|']
        for name in names:
            total, per = syscalls.get(name, (None, {}))
            top = sorted(per.items(), key=lambda kv: -kv[1])[:6]
            lines.append(f'| {name} | {"–" if total is None else f"{total:.2f}"} | '
                         + ', '.join(f'{k} {v:.2f}' for k, v in top if v >= 0.005) + ' |')
        lines += ['', 'Syscalls of the worker process alone during a separate 3 s wrk run '
                  '(20 keep-alive TLS connections) under `strace -c -f -p`, divided by the '
                  'requests wrk completed; strace slows the worker: compare proxies, not '
                  'absolute counts.']
        write_report(args.out, lines)
    finally:
        stop(backend)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    main()
