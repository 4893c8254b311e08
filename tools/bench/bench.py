#!/usr/bin/python3
"""sluice benchmark: the same load through sluice, nginx and HAProxy (and, if
asked, a baseline sluice build) in one run on one machine, each proxy with one
worker, all in front of the same nginx backend, in alternating, rotating rounds.

    /usr/bin/python3 tools/bench/bench.py                    # 3 rounds x 10 s
    /usr/bin/python3 tools/bench/bench.py --duration 2s --rounds 1 --idle-conns 500
    /usr/bin/python3 tools/bench/bench.py --sluice-baseline /tmp/sluice-before

Method, settings and caveats: tools/bench/README.md; the configs: conf/.
Python 3.11 standard library; matplotlib (Debian python3-matplotlib) only for
the plot. All traffic goes to 127.0.0.1; every process started here is stopped
on exit. Exit status: 0 = ran (read the SKIPPED/FAILED lines), 1 = harness
failure, 3 = --strict and a proxy was skipped or failed, 130 = interrupted.
"""
import argparse, dataclasses, datetime, http.client, os, random, re, resource, select, shlex
import shutil, signal, socket, string, struct, subprocess, sys, tempfile, time

from benchlib import parse_strace   # next to this file
from report import Report

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
HZ = os.sysconf('SC_CLK_TCK')
PROXIES = ('sluice', 'sluice-baseline', 'nginx', 'haproxy')
SCENARIOS = ('idle-conns', 'small-keepalive', '1MiB')
QUIET_PCT = 20              # other processes above this % of one core disturb a run
IDLE_INFLIGHT = 32          # idle-conns: connections being set up at once
SMALL = b'x' * 100          # /small
BIG = os.urandom(1 << 20)   # /1m


class HarnessError(Exception):
    """The harness itself cannot go on (missing tool, broken backend): exit 1."""


def log(msg):
    print(f'bench: {msg}', file=sys.stderr, flush=True)


# ------------------------------------------------------------------ settings --
def duration(text):
    m = re.fullmatch(r'(\d+)([sm]?)', text)
    if not m:
        raise argparse.ArgumentTypeError(f'bad duration {text!r} (use e.g. 10s or 2m)')
    return int(m[1]) * (60 if m[2] == 'm' else 1)


def number(text):
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'{text!r} is not a number')
    return int(text)


def names(text):
    return text.replace(',', ' ').split()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    env_vars = []

    def opt(flag, var, default, help='', **kw):
        # Every flag keeps the environment variable run.sh read as its default.
        env_vars.append(var)
        value = os.environ.get(var)
        if kw.get('action') in ('store_true', argparse.BooleanOptionalAction):
            value = default if value is None else value not in ('', '0', 'no', 'false')
        p.add_argument(flag, default=default if value is None else value,
                       help=f'{help} [{var}]'.strip(), **kw)

    opt('--sluice', 'SLUICE', f'{ROOT}/build/src/sluice', 'sluice binary')
    opt('--sluice-baseline', 'SLUICE_BASELINE', None, 'another sluice build, measured as '
        '"sluice-baseline" exactly like sluice', metavar='PATH')
    opt('--proxies', 'BENCH_PROXIES', 'sluice nginx haproxy',
        f'proxies and their order in round 1, of: {" ".join(PROXIES)}', type=names)
    opt('--scenarios', 'BENCH_SCENARIOS', ' '.join(SCENARIOS), 'scenarios', type=names)
    opt('--duration', 'BENCH_DURATION', '10s', 'measured wrk run', type=duration)
    opt('--warmup', 'BENCH_WARMUP', '1s', 'unmeasured wrk run before each measured one',
        type=duration)
    opt('--rounds', 'BENCH_ROUNDS', '3', type=number)
    opt('--connections', 'BENCH_CONNECTIONS', '50', 'wrk connections, small-keepalive', type=number)
    opt('--connections-1m', 'BENCH_CONNECTIONS_1M', '10', 'wrk connections, 1MiB', type=number)
    opt('--idle-conns', 'BENCH_IDLE_CONNS', '5000', type=number)
    opt('--strace-duration', 'BENCH_STRACE_DURATION', '3s', 'small-keepalive: a run under '
        'strace -c counts syscalls per request (0 = none)', type=duration)
    opt('--strace-connections', 'BENCH_STRACE_CONNECTIONS', '20', type=number)
    opt('--alloc-duration', 'BENCH_ALLOC_DURATION', '3s', 'small-keepalive: a run through a '
        'second instance of each proxy with tools/bench/alloc_count.c preloaded counts heap '
        'allocations per request (0 = none)', type=duration)
    opt('--alloc-connections', 'BENCH_ALLOC_CONNECTIONS', '10', type=number)
    opt('--pin', 'BENCH_PIN', (os.cpu_count() or 1) >= 2, 'pin proxies to --proxy-cpu, wrk and '
        'the backend to --load-cpu', action=argparse.BooleanOptionalAction)
    opt('--proxy-cpu', 'BENCH_PROXY_CPU', '0', type=number)
    opt('--load-cpu', 'BENCH_LOAD_CPU', '1', type=number)
    opt('--out', 'BENCH_OUT', f'{HERE}/results/latest.md', 'markdown report; the plot goes '
        'next to it (.png)')
    opt('--keep', 'BENCH_KEEP', False, 'keep the temp dir (configs, logs, raw wrk and strace '
        'output)', action='store_true')
    opt('--strict', 'BENCH_STRICT', False, 'exit 3 when a proxy was skipped or failed',
        action='store_true')
    opt('--wait-quiet', 'BENCH_WAIT_QUIET', '0', 'wait up to SECONDS before each run for other '
        'processes to go quiet, and repeat (twice at most) a run they disturbed; 0 = only warn',
        type=number, metavar='SECONDS')
    args = p.parse_args(argv)
    args.env = [v for v in env_vars if v in os.environ]
    if args.sluice_baseline and 'sluice-baseline' not in args.proxies:
        at = args.proxies.index('sluice') + 1 if 'sluice' in args.proxies else len(args.proxies)
        args.proxies.insert(at, 'sluice-baseline')
    bad = [n for n in args.proxies if n not in PROXIES] + [n for n in args.scenarios
                                                           if n not in SCENARIOS]
    if bad:
        p.error(f'unknown proxy or scenario: {" ".join(bad)}')
    if len(set(args.proxies)) < len(args.proxies):
        p.error('a proxy is listed twice in --proxies')
    if 'sluice-baseline' in args.proxies and not args.sluice_baseline:
        p.error('sluice-baseline needs --sluice-baseline PATH (or SLUICE_BASELINE)')
    if args.duration < 1 or min(args.rounds, args.connections, args.connections_1m,
                                args.idle_conns, args.strace_connections,
                                args.alloc_connections) < 1:
        p.error('duration, rounds and connection counts must be at least 1')
    if args.pin and max(args.proxy_cpu, args.load_cpu) >= (os.cpu_count() or 1):
        p.error(f'--proxy-cpu/--load-cpu must be below {os.cpu_count()}, the CPUs here')
    return args


# --------------------------------------------------------------------- /proc --
def stat_fields(pid):
    """/proc/PID/stat after the command name (field n of proc(5) is [n-3]); None when gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rindex(')') + 2:].split()


def alive(pid):
    fields = stat_fields(pid)
    return fields is not None and fields[0] not in 'ZX'


def cpu_ticks(pid):
    """utime + stime of a whole process (all its threads), in clock ticks."""
    fields = stat_fields(pid)
    return None if fields is None else int(fields[11]) + int(fields[12])


def children(pid):
    return sorted(int(e) for e in os.listdir('/proc')
                  if e.isdigit() and (f := stat_fields(e)) and int(f[1]) == pid)


def rss_kib(pid):
    # smaps_rollup is exact; VmRSS may lag a little behind it.
    for path, key in ((f'/proc/{pid}/smaps_rollup', 'Rss:'), (f'/proc/{pid}/status', 'VmRSS:')):
        try:
            with open(path) as f:
                return next(int(line.split()[1]) for line in f if line.startswith(key))
        except (OSError, StopIteration):
            pass
    return None


def cpu_times(cpu=None):
    """(busy, total) clock ticks of one CPU or of all, from /proc/stat."""
    want = 'cpu' if cpu is None else f'cpu{cpu}'
    with open('/proc/stat') as f:
        ticks = next([int(v) for v in line.split()[1:]] for line in f if line.split()[0] == want)
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)     # busy = all but idle and iowait


def machine_busy_pct():
    """CPU in use on the whole machine over one second, in % of one core."""
    before = cpu_times()[0]
    time.sleep(1)
    return (cpu_times()[0] - before) / HZ * 100


def loadavg():
    with open('/proc/loadavg') as f:
        return ' '.join(f.read().split()[:3])


def describe_exit(rc):
    if rc >= 0 and rc <= 128:
        return f'exit status {rc}'
    sig = -rc if rc < 0 else rc - 128   # timeout re-raises its child's signal, or says 128+N
    try:
        return f'killed by signal {signal.Signals(sig).name}'
    except ValueError:
        return f'killed by signal {sig}'


def tail(path, lines=3):
    try:
        with open(path, errors='replace') as f:
            return ' '.join(f.read().strip().split('\n')[-lines:]) or '(none)'
    except OSError:
        return '(none)'


def free_port():
    # Below the kernel's ephemeral range (32768+), so that no outgoing
    # connection takes the port between this check and the server's bind.
    for _ in range(50):
        with socket.socket() as s:
            try:
                s.bind(('127.0.0.1', random.randrange(20000, 30000)))
                return s.getsockname()[1]
            except OSError:
                pass
    raise HarnessError('found no free port in 20000-29999')


# ------------------------------------------------------------------- servers --
class Server:
    """A server started under `timeout` in its own process group, so that even a
    SIGKILL of this script leaves nothing running past bench.max_life."""
    template = None                 # its config, in conf/
    stop_signal = signal.SIGTERM
    worker_mode = 'child'           # child: main's child serves; self: main does; auto: either

    def __init__(self, bench, name, cpu):
        self.bench, self.name, self.cpu = bench, name, cpu
        self.dir = os.path.join(bench.work, name)
        os.makedirs(os.path.join(self.dir, 'tmp'))
        os.chmod(self.dir, 0o755)   # workers of a root nginx run as nobody and read files here
        self.config = os.path.join(self.dir, os.path.basename(self.template))
        self.log = os.path.join(bench.work, name + '.out')
        self.port = free_port()
        self.wrap = self.main = self.worker = None
        self.env = None                 # extra environment (the allocation counter)

    def command(self):
        raise NotImplementedError

    def check_config(self):
        """Why the config or the binary is unusable, or None."""
        return None

    def version(self):
        done = subprocess.run(self.command()[:1] + ['-v'], capture_output=True, text=True)
        return (done.stdout + done.stderr).strip().split('\n')[0]

    def start(self):
        """Starts the server; returns None once it listens, else why it does not."""
        with open(os.path.join(HERE, 'conf', self.template)) as f:
            text = string.Template(f.read()).substitute(self.bench.conf_values, dir=self.dir,
                                                        port=self.port)
        with open(self.config, 'w') as f:
            f.write(text)
        reason = self.check_config()
        if reason:
            return reason
        with open(self.log, 'wb') as out:
            self.wrap = subprocess.Popen(
                ['timeout', '-k', '5', str(self.bench.max_life)] + self.bench.pin(self.cpu)
                + self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=self.env and {**os.environ, **self.env})
        deadline = time.monotonic() + 10
        while not self.accepts():
            if self.wrap.poll() is not None:
                return (f'exited at start-up ({describe_exit(self.wrap.returncode)}) before '
                        f'listening on 127.0.0.1:{self.port}; output: {tail(self.log)}')
            if time.monotonic() > deadline:
                return f'nothing listening on 127.0.0.1:{self.port} after 10 s'
            time.sleep(0.1)
        self.main = self.child(self.wrap.pid, 5)
        kid = self.main and self.worker_mode != 'self' and self.child(
            self.main, 5 if self.worker_mode == 'child' else 0.5)
        self.worker = kid or (self.main if self.worker_mode != 'child' else None)
        return None if self.worker else 'could not find its worker process'

    def accepts(self):
        try:
            socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def child(self, pid, seconds):
        deadline = time.monotonic() + seconds
        while not (kids := children(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if len(kids) > 1:
            log(f'{self.name}: more than one worker process ({kids}); measuring {kids[0]}')
        return kids[0] if kids else None

    def death(self):
        """Why the worker is gone, for a FAILED line."""
        how = 'main process still running'
        if not alive(self.main):
            try:
                how = describe_exit(self.wrap.wait(3))
            except subprocess.TimeoutExpired:
                pass
        return f'worker pid {self.worker} gone, {how}; output: {tail(self.log)}'

    def stop(self):
        if self.wrap is None:
            return
        try:
            if self.main and alive(self.main):
                os.kill(self.main, self.stop_signal)
            elif self.wrap.poll() is None:
                self.wrap.terminate()       # timeout passes it on
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 5
        while alive(self.wrap.pid) and time.monotonic() < deadline:    # a zombie is not alive
            time.sleep(0.05)
        # timeout made itself a process-group leader: sweep what is left of its
        # group while it is unreaped, so that the group id cannot be reused yet.
        try:
            os.killpg(self.wrap.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.wrap.wait()
        self.wrap = None


class Nginx(Server):
    """The nginx proxy; the backend is the same with another config."""
    template = 'nginx.conf'

    def command(self):
        return [self.bench.tools['nginx'], '-p', self.dir, '-e', f'{self.dir}/error.log',
                '-c', self.config]

    def version(self):
        return super().version().split('/')[-1]


class Backend(Nginx):
    template = 'backend.conf'


class Haproxy(Server):
    template = 'haproxy.cfg'
    worker_mode = 'self'            # -db: foreground, no master: the one process serves

    def command(self):
        return [self.bench.tools['haproxy'], '-db', '-f', self.config]

    def check_config(self):
        done = subprocess.run([self.bench.tools['haproxy'], '-c', '-q', '-f', self.config],
                              capture_output=True, text=True, timeout=10)
        out = (done.stdout + done.stderr).strip()[:300]
        return f'config check failed: {out}' if done.returncode else None

    def version(self):
        return (super().version().split() + ['?'] * 3)[2]


class Sluice(Server):
    """sluice, or the baseline build: the same config, another binary."""
    template = 'sluice.yaml'
    stop_signal = signal.SIGINT     # stop at once: nothing to drain in a benchmark
    worker_mode = 'auto'            # its worker process if it forks one, else itself

    def __init__(self, bench, name, cpu, binary):
        super().__init__(bench, name, cpu)
        self.binary = os.path.abspath(binary)

    def command(self):
        return [self.binary, '-c', self.config]

    def check_config(self):
        if not os.access(self.binary, os.X_OK):
            return (f'binary not found at {self.binary} (build it: cmake -S . -B build '
                    '-DCMAKE_BUILD_TYPE=Release && cmake --build build --target sluice)')
        done = subprocess.run([self.binary, '-t', '-c', self.config], capture_output=True,
                              text=True, timeout=10)
        out = (done.stdout + done.stderr).strip()[:300]
        return f'config test failed: {out}' if done.returncode else None

    def version(self):
        return f'{super().version() if os.access(self.binary, os.X_OK) else "?"} ({self.binary})'


def http_check(port):
    """Pre-flight: /small and /1m byte for byte, on one keep-alive connection.
    Returns (why it failed or None, whether the connection was kept alive)."""
    conn, kept = http.client.HTTPConnection('127.0.0.1', port, timeout=10), True
    try:
        for path, body in (('/small', SMALL), ('/1m', BIG), ('/small', SMALL)):
            try:
                conn.request('GET', path)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as e:
                return f'GET {path} failed: {e!r}', kept
            if resp.status != 200:
                return f'GET {path} answered {resp.status}, expected 200', kept
            if data != body:
                return (f'GET {path} returned a different body ({len(data)} bytes, '
                        f'expected {len(body)})'), kept
            kept = kept and not resp.will_close
        return None, kept
    finally:
        conn.close()


class LineReader:
    """Lines from a child's pipe, with a deadline: the idle client and strace
    answer in their own time, or die instead."""

    def __init__(self, pipe):
        self.fd, self.buf = pipe.fileno(), b''

    def wait_for(self, pattern, seconds):
        """The first line matching the regex, or None on timeout or EOF."""
        deadline = time.monotonic() + seconds
        while True:
            while b'\n' in self.buf:
                line, self.buf = self.buf.split(b'\n', 1)
                if re.search(pattern, line.decode(errors='replace')):
                    return line.decode(errors='replace')
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 4096)
            if not chunk:
                return None
            self.buf += chunk


# ------------------------------------------------------------------- results --
@dataclasses.dataclass
class Run:
    """One measured wrk run of one proxy."""
    scenario: str
    proxy: str
    round: int
    rps: float
    p50: float
    p99: float
    cpu_us: float           # proxy worker CPU per completed request
    rss: int
    requests: int
    socket_errors: int
    non2xx: int
    proxy_pct: float        # proxy worker CPU / wall time
    load_pct: float         # how busy the load CPU (wrk + backend) was
    backend_us: float
    calibration_ms: float
    other_pct: float        # CPU of everything else on the machine, % of one core


@dataclasses.dataclass
class Idle:
    proxy: str
    ok: int
    failed: str
    open: str
    before: int
    during: int
    after: int

    @property
    def per_conn(self):
        return (self.during - self.before) / self.ok


# The loads syscalls are counted under (small-keepalive): (name, wrk script in
# tools/bench/wrk/ or None). The first is the scenario's own load.
SYSCALL_LOADS = [('keep-alive', None), ('pipelined x16', 'pipeline.lua'),
                 ('chunked POST', 'chunked.lua'), ('reconnect', 'close.lua')]


@dataclasses.dataclass
class Syscalls:
    proxy: str
    requests: int
    calls: dict             # syscall -> calls over the traced run
    load: str = SYSCALL_LOADS[0][0]

    @property
    def per_request(self):
        return sum(self.calls.values()) / self.requests


@dataclasses.dataclass
class Allocations:
    proxy: str
    requests: int
    allocations: int        # malloc/calloc/realloc/memalign calls of the worker over the run
    frees: int
    connections: int

    @property
    def per_request(self):
        return self.allocations / self.requests


def read_alloc_counts(directory, pid):
    """(allocations, frees, live bytes) of one process running alloc_count.so, or None."""
    try:
        with open(os.path.join(directory, f'alloc.{pid}'), 'rb') as f:
            return struct.unpack('<3Q', f.read(24))
    except (OSError, struct.error):
        return None


def parse_wrk(text):
    def ms(m):
        return m and float(m[1]) * {'us': 0.001, 'ms': 1, 's': 1000, 'm': 60000}[m[2]]
    req, rps = re.search(r'(\d+) requests in', text), re.search(r'Requests/sec:\s+([\d.]+)', text)
    if not (req and rps):
        return None
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)',
                       text)
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', text)
    return dict(requests=int(req[1]), rps=float(rps[1]),
                p50=ms(re.search(r'^\s+50%\s+([\d.]+)(us|ms|s|m)$', text, re.M)),
                p99=ms(re.search(r'^\s+99%\s+([\d.]+)(us|ms|s|m)$', text, re.M)),
                socket_errors=sum(map(int, errors.groups())) if errors else 0,
                non2xx=int(non2xx[1]) if non2xx else 0)


# ----------------------------------------------------------------- scenarios --
class IdleConns:
    """Memory per idle keep-alive client connection. Runs first, on fresh
    proxies, so that heap the load scenarios left free cannot hide the cost."""
    name = 'idle-conns'

    def run(self, bench):
        client = os.path.join(bench.work, 'idle_conns')
        if subprocess.run(['cc', '-O2', '-o', client, f'{HERE}/idle_conns.c']).returncode:
            raise HarnessError('cannot compile tools/bench/idle_conns.c')
        for proxy in list(bench.active):
            self.measure(bench, proxy, client)

    def measure(self, bench, proxy, client):
        time.sleep(1)
        before = rss_kib(proxy.worker)
        if before is None:
            return bench.mark_failed(proxy, f'worker exited before idle-conns: {proxy.death()}')
        err = os.path.join(bench.work, f'idle-{proxy.name}.err')
        with open(err, 'wb') as err_file:
            proc = bench.track(subprocess.Popen(
                bench.pin(bench.args.load_cpu) + [
                    client, '-a', '127.0.0.1', '-p', str(proxy.port), '-u', '/small', '-t', '60',
                    '-n', str(bench.args.idle_conns), '-c', str(IDLE_INFLIGHT), '-H', '140'],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err_file))
        lines = LineReader(proc.stdout)
        ready = lines.wait_for('^ready ', 90)
        time.sleep(1)
        during, opened = rss_kib(proxy.worker), None
        try:
            proc.stdin.write(b'check\n')
            proc.stdin.flush()
            opened = lines.wait_for('^open ', 10)
        except BrokenPipeError:     # the client is gone; `ready` says why
            pass
        bench.untrack(proc, 5)      # closing its stdin makes it close every connection and exit
        time.sleep(1)
        after = rss_kib(proxy.worker)
        if None in (during, after) or not alive(proxy.worker):
            return bench.mark_failed(proxy, f'worker exited during idle-conns: {proxy.death()}')
        m = re.match(r'ready ok=(\d+) failed=(\d+)', ready or '')
        if not m or m[1] == '0':
            why = m and 'no connection completed its request' or f'idle client: {tail(err, 2)}'
            return bench.note_failure(proxy, f'idle-conns: {why}')
        result = Idle(proxy.name, int(m[1]), m[2], opened.split()[1] if opened else '?',
                      before, during, after)
        bench.idle.append(result)
        log(f'idle-conns {proxy.name}: {result.ok} idle (failed {result.failed}, still open '
            f'{result.open}), RSS {before} -> {during} KiB ({result.per_conn:.2f} KiB/conn), '
            f'{after} KiB after close')


class Throughput:
    """wrk rounds on one path: each round runs every proxy once, the order
    rotated by one per round, so that slow drift of the machine falls on all alike."""

    def __init__(self, name, path, connections, count_syscalls=False, count_allocs=False):
        self.name, self.path, self.connections = name, path, connections
        self.count_syscalls, self.count_allocs = count_syscalls, count_allocs

    def run(self, bench):
        order = bench.args.proxies
        for rnd in range(1, bench.args.rounds + 1):
            k = (rnd - 1) % len(order)
            for proxy in [bench.proxy(n) for n in order[k:] + order[:k]]:
                if proxy in bench.active:
                    self.measure(bench, rnd, proxy)
        if self.count_syscalls and bench.args.strace_duration:
            for load, script in SYSCALL_LOADS:
                for proxy in list(bench.active):
                    self.trace(bench, proxy, load, script)
        if self.count_allocs and bench.args.alloc_duration:
            for proxy in list(bench.active):
                self.count_allocations(bench, proxy)

    def measure(self, bench, rnd, proxy):
        for attempt in range(3):
            bench.wait_quiet()
            run = self.measure_once(bench, rnd, proxy)
            if not run or not bench.args.wait_quiet or run.other_pct <= QUIET_PCT or attempt == 2:
                break
            log(f'{self.name} round {rnd} {proxy.name}: disturbed (other processes '
                f'{run.other_pct:.0f}% of a core); repeating')
        if run:
            bench.runs.append(run)

    def measure_once(self, bench, rnd, proxy):
        url = f'http://127.0.0.1:{proxy.port}{self.path}'
        if bench.args.warmup:
            bench.wrk(url, self.connections, bench.args.warmup)
        calibration = bench.calibrate()
        load_cpu = bench.args.load_cpu if bench.args.pin else None
        t0, b0 = cpu_ticks(proxy.worker), cpu_ticks(bench.backend.worker)
        if t0 is None:
            return bench.mark_failed(proxy, f'worker exited during {self.name} warm-up: '
                                            f'{proxy.death()}')
        l0, m0 = cpu_times(load_cpu), cpu_times()
        k0, w0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        rc, out = bench.wrk(url, self.connections, bench.args.duration, latency=True)
        k1, w1 = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
        m1, l1 = cpu_times(), cpu_times(load_cpu)
        b1, t1 = cpu_ticks(bench.backend.worker), cpu_ticks(proxy.worker)
        rss = rss_kib(proxy.worker)
        with open(os.path.join(bench.work, f'wrk-{self.name}-{proxy.name}-r{rnd}.txt'), 'w') as f:
            f.write(out)
        if None in (t1, rss) or not alive(proxy.worker):
            return bench.mark_failed(proxy, f'worker exited during {self.name} round {rnd}: '
                                            f'{proxy.death()}')
        if b1 is None:
            raise HarnessError(f'the backend nginx worker exited during {self.name} round {rnd}')
        w = parse_wrk(out) if rc == 0 else None
        if not w or w['p99'] is None:
            return bench.note_failure(proxy, f'{self.name} round {rnd}: wrk exit {rc}: '
                                             f'{" ".join(out.strip().split(chr(10))[-3:])}')
        secs, n = w1 - w0, max(w['requests'], 1)
        proxy_s, backend_s = (t1 - t0) / HZ, (b1 - b0) / HZ
        wrk_s = (k1.ru_utime + k1.ru_stime) - (k0.ru_utime + k0.ru_stime)
        # CPU used on the machine by anything but the proxy worker, the backend
        # worker and wrk: a build or a test suite next to the benchmark.
        other_s = max(0.0, (m1[0] - m0[0]) / HZ - proxy_s - backend_s - wrk_s)
        run = Run(self.name, proxy.name, rnd, w['rps'], w['p50'], w['p99'], proxy_s * 1e6 / n,
                  rss, w['requests'], w['socket_errors'], w['non2xx'], proxy_s / secs * 100,
                  (l1[0] - l0[0]) / max(l1[1] - l0[1], 1) * 100, backend_s * 1e6 / n,
                  calibration, other_s / secs * 100)
        log(f'{self.name} round {rnd}/{bench.args.rounds} {proxy.name}: {run.rps:.0f} req/s, '
            f'p50 {run.p50:.3f} ms, p99 {run.p99:.3f} ms, {run.cpu_us:.2f} us CPU/req (proxy '
            f'CPU {run.proxy_pct:.0f}%, load CPU busy {run.load_pct:.0f}%, backend '
            f'{run.backend_us:.2f} us/req, other processes {run.other_pct:.0f}%), RSS {rss} KiB, '
            f'errors {run.socket_errors}, non-2xx {run.non2xx}, calibration {calibration:.0f} ms')
        return run

    def trace(self, bench, proxy, load, script):
        """A separate short run under `strace -c -f -p WORKER`: the syscalls of
        the worker alone (all its threads; not nginx's master, not the backend),
        under wrk's plain load or one of tools/bench/wrk/'s scripts."""
        out = os.path.join(bench.work, f'strace-{proxy.name}-{load.split()[0]}.txt')
        # On the proxy CPU: the traced worker is stopped while strace handles its stops.
        strace = bench.track(subprocess.Popen(
            bench.pin(bench.args.proxy_cpu) + [bench.tools['strace'], '-c', '-f', '-o', out,
                                               '-p', str(proxy.worker)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        lines = LineReader(strace.stderr)
        if not lines.wait_for(r'Process \d+ attached', 10):
            bench.untrack(strace, 2)
            return bench.note_syscalls(proxy, load, 'strace did not attach: ' + lines.buf.decode(
                errors='replace').strip()[:300])
        rc, text = bench.wrk(f'http://127.0.0.1:{proxy.port}{self.path}',
                             bench.args.strace_connections, bench.args.strace_duration,
                             script=script and os.path.join(HERE, 'wrk', script))
        strace.send_signal(signal.SIGINT)       # detach and write the table
        bench.untrack(strace, 10)
        if not alive(proxy.worker):
            return bench.mark_failed(proxy, f'worker exited under strace ({load}): '
                                            f'{proxy.death()}')
        w = parse_wrk(text) if rc == 0 else None
        calls = {}
        if os.path.exists(out):
            with open(out, errors='replace') as f:
                calls = parse_strace(f.read())
        if not (w and w['requests'] and calls):
            return bench.note_syscalls(proxy, load, f'wrk exit {rc}, {len(calls)} syscalls in '
                                                    'the table')
        if w['socket_errors'] or w['non2xx']:
            # A proxy that refused the load (a 4xx for every chunked POST, say)
            # would count cheap errors, not requests.
            return bench.note_syscalls(proxy, load, f'{w["socket_errors"]} socket errors, '
                                                    f'{w["non2xx"]} non-2xx responses')
        result = Syscalls(proxy.name, w['requests'], calls, load)
        bench.syscalls.append(result)
        log(f'syscalls {proxy.name} ({load}): {result.per_request:.2f} per request over '
            f'{result.requests} requests')


    def count_allocations(self, bench, proxy):
        """A second instance of the proxy, its processes running alloc_count.so
        (so that the timed runs above carry no interposer): after a warm-up that
        fills its pools and free lists, a wrk run on fresh keep-alive
        connections; allocations of its worker / requests completed. The new
        connections' own allocations are in the figure, spread over the run."""
        counted = bench.make_proxy(proxy.name, proxy.name + '-alloc')
        counts_dir = os.path.join(counted.dir, 'alloc')
        os.makedirs(counts_dir)
        counted.env = {'LD_PRELOAD': bench.alloc_lib, 'ALLOC_COUNT_DIR': counts_dir}
        bench.servers.append(counted)
        try:
            reason = counted.start() or http_check(counted.port)[0]
            if reason:
                return bench.note_allocs(proxy, f'the counted instance: {reason}')
            url = f'http://127.0.0.1:{counted.port}{self.path}'
            bench.wrk(url, bench.args.alloc_connections, max(1, bench.args.warmup))
            before = read_alloc_counts(counts_dir, counted.worker)
            rc, text = bench.wrk(url, bench.args.alloc_connections, bench.args.alloc_duration)
            after = read_alloc_counts(counts_dir, counted.worker)
            w = parse_wrk(text) if rc == 0 else None
            if not (before and after and w and w['requests']):
                return bench.note_allocs(proxy, f'wrk exit {rc}; counter file of worker '
                                                f'{counted.worker}: {"found" if after else "missing"}')
            result = Allocations(proxy.name, w['requests'], after[0] - before[0],
                                 after[1] - before[1], bench.args.alloc_connections)
            bench.allocations.append(result)
            log(f'allocations {proxy.name}: {result.per_request:.3f} per request '
                f'({result.allocations} over {result.requests} requests)')
        finally:
            counted.stop()


# --------------------------------------------------------------------- bench --
class Bench:
    """One run: the backend, the proxies, the scenarios and their results."""

    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix='sluice-bench.')
        os.chmod(self.work, 0o755)
        self.servers, self.active, self.clients = [], [], []
        self.runs, self.idle, self.syscalls, self.allocations = [], [], [], []
        self.skipped, self.failed, self.syscall_notes, self.alloc_notes = {}, {}, {}, {}
        self.backend, self.tools, self.alloc_lib = None, {}, None

    def pin(self, cpu):
        return ['taskset', '-c', str(cpu)] if self.args.pin else []

    def proxy(self, name):
        return next(s for s in self.servers if s.name == name)

    def track(self, proc):
        """A client process to stop on exit, whatever happens."""
        self.clients.append(proc)
        return proc

    def untrack(self, proc, grace):
        """Closes its stdin (the idle client's signal to finish), waits, kills."""
        try:
            proc.stdin and proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdout, proc.stderr):     # only now: strace still writes to stderr
            pipe and pipe.close()
        self.clients.remove(proc)

    def wrk(self, url, connections, seconds, latency=False, script=None):
        cmd = self.pin(self.args.load_cpu) + [self.tools['wrk'], '-t1', f'-c{connections}',
                                              f'-d{seconds}s', *(['--latency'] * latency),
                                              *(['-s', script] if script else []), url]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
            return done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired:
            return 'timeout', ''

    def calibrate(self):
        """ms a fixed CPU loop takes on the proxy CPU now, with the load CPU busy
        too (the two vCPUs of a VM may share a core). The VM's speed drifts with
        what its host runs; this puts some of that drift next to the results."""
        loop = ('import time\nt = time.perf_counter()\ns = 0\nfor i in range(2000000): s += i\n'
                'print((time.perf_counter() - t) * 1000)')
        burner = self.args.pin and subprocess.Popen(
            self.pin(self.args.load_cpu) + [sys.executable, '-c', loop], stdout=subprocess.DEVNULL)
        done = subprocess.run(self.pin(self.args.proxy_cpu) + [sys.executable, '-c', loop],
                              capture_output=True, text=True)
        if burner:
            burner.wait()
        return float(done.stdout or 0)

    def wait_quiet(self):
        """With --wait-quiet, waits (at most that long) until other processes use
        less than QUIET_PCT of a core; returns what they use now (or None)."""
        if not self.args.wait_quiet:
            return None
        busy, start = machine_busy_pct(), time.monotonic()
        if busy > QUIET_PCT:
            log(f'other processes use {busy:.0f}% of a core; waiting for quiet '
                f'(at most {self.args.wait_quiet} s)')
            while busy > QUIET_PCT and time.monotonic() - start < self.args.wait_quiet:
                time.sleep(2)
                busy = machine_busy_pct()
            log(f'waited {time.monotonic() - start:.0f} s; other processes now use {busy:.0f}%')
        return busy

    def mark_failed(self, proxy, reason):
        """A proxy that died or broke mid-run leaves the run."""
        self.note_failure(proxy, reason)
        self.active.remove(proxy)

    def note_failure(self, proxy, reason):
        print(f'FAILED: {proxy.name}: {reason}', flush=True)
        self.failed.setdefault(proxy.name, []).append(reason)

    def note_syscalls(self, proxy, load, reason):
        log(f'syscalls not counted for {proxy.name} ({load}): {reason}')
        self.syscall_notes[f'{proxy.name} ({load})'] = reason

    def note_allocs(self, proxy, reason):
        log(f'allocations not counted for {proxy.name}: {reason}')
        self.alloc_notes[proxy.name] = reason

    def pinning(self):
        return (f'proxies on CPU {self.args.proxy_cpu}; wrk, the idle-connection client and the '
                f'backend on CPU {self.args.load_cpu}') if self.args.pin else 'none'

    def prepare(self):
        a = self.args
        needed = {'nginx': True, 'wrk': True, 'timeout': True, 'taskset': a.pin,
                  'haproxy': 'haproxy' in a.proxies,
                  'cc': 'idle-conns' in a.scenarios or ('small-keepalive' in a.scenarios
                                                        and a.alloc_duration > 0),
                  'strace': 'small-keepalive' in a.scenarios and a.strace_duration > 0}
        for tool in (t for t, yes in needed.items() if yes):    # nginx, haproxy: in /usr/sbin
            self.tools[tool] = shutil.which(tool) or shutil.which(tool, path='/usr/sbin:/sbin')
        missing = [t for t, path in self.tools.items() if not path]
        if missing:
            raise HarnessError(f'missing tools: {" ".join(missing)}; install them with bash '
                               'tools/setup.sh (or run with --strace-duration 0 without strace)')
        # Enough descriptors for the idle connections and their upstreams;
        # HAProxy refuses a maxconn whose ~2 descriptors each exceed the limit.
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        nofile = hard if hard != resource.RLIM_INFINITY else 1 << 20
        maxconn, nginx_connections = (9000, 10000) if nofile >= 19000 else ((nofile - 200) // 2,
                                                                            nofile - 200)
        if 'idle-conns' in a.scenarios and (nofile < a.idle_conns * 2 + 200
                                            or maxconn < a.idle_conns + 100):
            raise HarnessError(f'{a.idle_conns} idle connections do not fit the open-files limit '
                               f'{nofile} (proxies\' connection limit {maxconn})')
        self.conf_values = dict(maxconn=maxconn, nginx_connections=nginx_connections,
                                nginx_rlimit=min(nginx_connections + 100, nofile),
                                small_body=SMALL.decode(), www=f'{self.work}/www')
        per_run = a.duration + a.warmup + 15 + a.wait_quiet     # 3 attempts at most
        self.max_life = (600 + a.rounds * 2 * len(a.proxies) * 3 * per_run
                         + len(a.proxies) * (a.strace_duration + a.alloc_duration + 60))
        if 'small-keepalive' in a.scenarios and a.alloc_duration:
            self.alloc_lib = os.path.join(self.work, 'alloc_count.so')
            if subprocess.run(['cc', '-O2', '-shared', '-fPIC', '-o', self.alloc_lib,
                               f'{HERE}/alloc_count.c']).returncode:
                raise HarnessError('cannot compile tools/bench/alloc_count.c')

    def start_backend(self):
        os.makedirs(f'{self.work}/www', mode=0o755)
        for name, body in (('small', SMALL), ('1m', BIG)):
            with open(f'{self.work}/www/{name}', 'wb') as f:
                f.write(body)
            os.chmod(f'{self.work}/www/{name}', 0o644)
        self.backend = Backend(self, 'backend', self.args.load_cpu)
        self.servers.append(self.backend)
        reason = self.backend.start() or http_check(self.backend.port)[0]
        if reason:
            raise HarnessError(f'the backend nginx: {reason}; output: {tail(self.backend.log, 5)}')
        self.conf_values['backend_port'] = self.backend.port

    def make_proxy(self, kind, name):
        a, cpu = self.args, self.args.proxy_cpu
        return {'sluice': lambda: Sluice(self, name, cpu, a.sluice),
                'sluice-baseline': lambda: Sluice(self, name, cpu, a.sluice_baseline),
                'nginx': lambda: Nginx(self, name, cpu),
                'haproxy': lambda: Haproxy(self, name, cpu)}[kind]()

    def start_proxies(self):
        for name in self.args.proxies:
            proxy = self.make_proxy(name, name)
            self.servers.append(proxy)
            reason, kept = proxy.start(), True
            if not reason:
                reason, kept = http_check(proxy.port)
            if reason:
                self.skipped[name] = reason
                print(f'SKIPPED: {name}: {reason}', flush=True)
                proxy.stop()
                continue
            if not kept:
                log(f'warning: {name} did not keep the client connection alive between requests')
            log(f'{name}: 127.0.0.1:{proxy.port}, worker pid {proxy.worker} (main {proxy.main})')
            self.active.append(proxy)
        if not self.active:
            raise HarnessError('no proxy passed the pre-flight check; nothing to measure')

    def run(self):
        a = self.args
        self.prepare()
        self.busy_at_start = machine_busy_pct()
        if self.busy_at_start > QUIET_PCT and a.wait_quiet:
            self.busy_at_start = self.wait_quiet()
        if self.busy_at_start > QUIET_PCT:
            log(f'WARNING: other processes use {self.busy_at_start:.0f}% of a core right now: '
                'results will be disturbed (see the "other processes" column)')
        self.started, self.loadavg = datetime.datetime.now(datetime.timezone.utc), [loadavg()]
        self.start_backend()
        log(f'work dir {self.work}; backend 127.0.0.1:{self.backend.port}; '
            f'pinning: {self.pinning()}')
        self.start_proxies()
        scenarios = [IdleConns(),   # first: on freshly started proxies
                     Throughput('small-keepalive', '/small', a.connections, count_syscalls=True,
                                count_allocs=True),
                     Throughput('1MiB', '/1m', a.connections_1m)]
        for scenario in scenarios:
            if scenario.name in a.scenarios and self.active:
                scenario.run(self)
        self.loadavg.append(loadavg())
        report = Report(self)
        report.write(a.out)
        print(report.console(), flush=True)
        return 3 if a.strict and (self.skipped or self.failed) else 0

    def cleanup(self):
        for sig in (signal.SIGINT, signal.SIGTERM):     # a second Ctrl-C must not cut this short
            signal.signal(sig, signal.SIG_IGN)
        for proc in list(self.clients):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)         # strace detaches from the worker on it
            self.untrack(proc, 3)
        for server in reversed(self.servers):
            server.stop()
        # Everything started here has the work dir in its command line: nothing may be left.
        for pid in (int(e) for e in os.listdir('/proc') if e.isdigit()):
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if self.work.encode() in f.read() and pid != os.getpid():
                        log(f'warning: killing leftover process {pid}')
                        os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.args.keep:
            log(f'kept {self.work}')
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def command_line(args, argv):
    """The command as typed, with the environment settings that changed it."""
    envs = [f'{v}={shlex.quote(os.environ[v])}' for v in args.env]
    script = os.path.relpath(os.path.abspath(sys.argv[0]), ROOT)
    return ' '.join(envs + [sys.executable, shlex.quote(script)] + list(map(shlex.quote, argv)))


def main(argv):
    args = parse_args(argv)
    args.command = command_line(args, argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))     # runs the cleanup too
    bench = Bench(args)
    try:
        return bench.run()
    except HarnessError as e:
        print(f'bench: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('bench: interrupted', file=sys.stderr)
        return 130
    finally:
        bench.cleanup()


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
