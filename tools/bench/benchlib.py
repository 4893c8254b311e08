"""Helpers shared by the side-by-side scripts balance.py and tls.py: ports,
/proc readings, wrk's and strace's output, and the median (min-max) table
cells. (bench.py has its own, richer harness; it shares parse_strace.)"""
import os
import re
import socket
import statistics
import time

TICK = os.sysconf('SC_CLK_TCK')


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (TICK per second)."""
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    out = []
    for e in os.listdir('/proc'):
        if e.isdigit():
            try:
                with open(f'/proc/{e}/stat') as f:
                    if int(f.read().rsplit(')', 1)[1].split()[1]) == pid:
                        out.append(int(e))
            except OSError:
                pass
    return sorted(out)


def parse_wrk(text):
    def ms(m):
        return m and float(m[1]) * {'us': 0.001, 'ms': 1, 's': 1000}[m[2]]
    rps = re.search(r'Requests/sec:\s+([\d.]+)', text)
    req = re.search(r'(\d+) requests in', text)
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', text)
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', text)
    return dict(rps=float(rps[1]) if rps else 0.0, requests=int(req[1]) if req else 0,
                p50=ms(re.search(r'^\s+50%\s+([\d.]+)(us|ms|s)$', text, re.M)),
                p99=ms(re.search(r'^\s+99%\s+([\d.]+)(us|ms|s)$', text, re.M)),
                errors=sum(map(int, errors.groups())) if errors else 0,
                non2xx=int(non2xx[1]) if non2xx else 0)


def parse_strace(text):
    """strace -c's table -> {syscall: calls}. Columns: % time, seconds,
    usecs/call, calls, [errors], syscall; then a 'total' line."""
    rows = (line.split() for line in text.splitlines())
    return {f[-1]: int(f[3]) for f in rows if len(f) >= 5 and f[3].isdigit()
            and re.fullmatch(r'[\d.]+', f[0]) and f[-1] != 'total'}


def cell(values, fmt):
    """The median of the rounds, with (min-max) when there are several."""
    values = [v for v in values if v is not None]
    if not values:
        return '–'
    med = statistics.median(values)
    return (fmt.format(med) if len(values) == 1 else
            f'{fmt.format(med)} ({fmt.format(min(values))}–{fmt.format(max(values))})')


def write_report(path, lines):
    """Writes the markdown report to `path` and prints it."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print(f'\nwritten: {path}')
