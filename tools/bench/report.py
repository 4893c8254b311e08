"""The report of one benchmark run (tools/bench/bench.py): one-line summaries
against the best peer and the baseline, the tables, the markdown file, the plot."""
import os, platform, statistics, subprocess


def output(*cmd):
    done = subprocess.run(cmd, capture_output=True, text=True)
    return done.stdout + done.stderr


PEERS = ('nginx', 'haproxy')
# Per scenario, what the summary compares: (label, metric, higher is better).
METRICS = {
    'idle-conns': [('KiB/idle conn', 'per_conn', False)],
    'small-keepalive': [('CPU/req', 'cpu_us', False), ('p99', 'p99', False),
                        ('syscalls/req', 'syscalls', False),
                        ('syscalls/req pipelined', 'syscalls:pipelined x16', False),
                        ('syscalls/req chunked POST', 'syscalls:chunked POST', False),
                        ('syscalls/req reconnect', 'syscalls:reconnect', False),
                        ('allocs/req', 'allocs', False), ('req/s', 'rps', True)],
    '1MiB': [('CPU/req', 'cpu_us', False), ('p99', 'p99', False), ('req/s', 'rps', True)],
}
CAVEAT = ('Absolute numbers on a shared 2-core VM drift (by up to 2x within one run, with what '
          'the host runs); only ratios within one run count.')
SUMMARY_NOTE = """\
Each ratio is sluice ÷ the better of nginx and HAProxy for that figure (named), the median over
rounds of the same-round ratio; below 1 is better, except req/s (above 1 is faster)."""
THROUGHPUT_NOTE = """\
Values are medians over rounds. Ratios are against nginx: the median over rounds of (proxy / nginx
in the same round); req/s above 1 is faster, CPU/req below 1 is cheaper.
CPU µs/req = (utime+stime of the proxy's worker process over the measured run) / requests
completed. RSS = the worker's resident set after the run (max over rounds). errors = wrk socket
errors + non-2xx/3xx. proxy CPU % = the worker's CPU time / wall time of the run (100 = one core
saturated).
The per-round table adds how busy the load CPU (wrk + backend) was and the backend's CPU µs/req:
when the load CPU is near 100 % and the proxy is not, the load side is the limit and req/s
understates the faster proxy; CPU µs/req still compares."""
SYSCALLS_NOTE = """\
Syscalls of the proxy's worker process (all its threads) during a separate {seconds} s wrk run with
{conns} connections under `strace -c -f -p`, divided by the requests wrk completed, for each load:
keep-alive = one GET at a time per connection; pipelined x16 = 16 GETs written at once
(tools/bench/wrk/pipeline.lua); chunked POST = each request a POST with a two-chunk body
(tools/bench/wrk/chunked.lua); reconnect = every request on a new connection
(`Connection: close`, tools/bench/wrk/close.lua). strace slows the worker, which then finds more events per
epoll_wait than at full speed: compare proxies, not absolute counts."""
ALLOCS_NOTE = """\
Heap allocations (malloc, calloc, realloc to a new block, the aligned variants; C++ `new` goes
through malloc) of the proxy's worker process during a separate {seconds} s wrk run with {conns}
new keep-alive connections, through a second instance of the proxy started with
tools/bench/alloc_count.c preloaded, after a warm-up run; divided by the requests wrk completed.
The figure includes what setting up those connections allocates. A proxy's own pools and free lists
are not heap allocations."""
IDLE_NOTE = """\
KiB per idle conn = (RSS with the connections open - RSS before) / connections. Kernel socket
memory is not in RSS."""


def x(ratio):
    return 'n/a' if ratio is None else f'{ratio:.2f}x'


def median(values):
    return statistics.median(values) if values else None


class Table:
    """Rows of formatted cells, as markdown or as aligned text; the columns
    numbered in `text` are left-aligned, the others (numbers) right-aligned."""

    def __init__(self, headers, rows, text=(0,)):
        self.headers, self.rows, self.left = headers, rows, text

    def markdown(self):
        if not self.rows:
            return '(none)'
        align = ['---' if i in self.left else '---:' for i in range(len(self.headers))]
        return '\n'.join('| ' + ' | '.join(r) + ' |' for r in [self.headers, align] + self.rows)

    def text(self):
        rows = [self.headers] + self.rows
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.headers))]
        return '\n'.join('  '.join(c.ljust(w) if i in self.left else c.rjust(w)
                                   for i, (c, w) in enumerate(zip(r, widths))).rstrip()
                         for r in rows)


class Report:
    def __init__(self, bench):
        self.b, self.args = bench, bench.args
        self.order = bench.args.proxies

    # ------------------------------------------------------------ figures --
    def series(self, scenario, metric):
        """{proxy: {round: value}} of one metric in one scenario."""
        if metric.startswith('syscalls'):
            # 'syscalls' is the scenario's own load; 'syscalls:LOAD' another one.
            load = metric.partition(':')[2] or 'keep-alive'
            return {s.proxy: {1: s.per_request} for s in self.b.syscalls if s.load == load}
        if metric == 'allocs':
            return {a.proxy: {1: a.per_request} for a in self.b.allocations}
        if scenario == 'idle-conns':
            return {i.proxy: {1: i.per_conn} for i in self.b.idle}
        out = {}
        for r in self.b.runs:
            if r.scenario == scenario:
                out.setdefault(r.proxy, {})[r.round] = getattr(r, metric)
        return out

    @staticmethod
    def ratio(series, a, b):
        """Median over rounds of (a / b in the same round): a ratio taken
        minutes apart cancels the machine's slow drift, absolute numbers do not."""
        if a not in series or b not in series:
            return None
        return median([v / series[b][n] for n, v in series[a].items()
                       if series[b].get(n, 0) > 0])

    @staticmethod
    def best_peer(series, higher_better):
        peers = [p for p in PEERS if p in series]
        pick = max if higher_better else min
        return pick(peers, key=lambda p: median(list(series[p].values()))) if peers else None

    def summary(self):
        """[(scenario, [(label, higher_better, vs best peer, that peer, vs baseline)])]"""
        out = []
        for scenario, metrics in METRICS.items():
            if scenario not in self.args.scenarios:
                continue
            items = []
            for label, metric, higher in metrics:
                s = self.series(scenario, metric)
                if s:
                    peer = self.best_peer(s, higher)
                    items.append((label, higher, peer and self.ratio(s, 'sluice', peer), peer,
                                  self.ratio(s, 'sluice', 'sluice-baseline')))
            out.append((scenario, items))
        return out

    def summary_item(self, scenario, i, label, ratio, peer):
        if label == 'allocs/req':
            # Counts, not a ratio: the best peer may allocate nothing at all.
            values = {p: v[1] for p, v in self.series(scenario, 'allocs').items()}
            return f'{label} ' + ', '.join(f'{p} {values[p]:.3f}' for p in self.order
                                           if p in values)
        return f'{label} {x(ratio)}{" best peer" if i == 0 else ""} ({peer or "no peer"})'

    def summary_lines(self):
        lines = []
        for scenario, items in self.summary():
            if not items or 'sluice' not in self.series(scenario, METRICS[scenario][0][1]):
                lines.append(f'{scenario}: sluice not measured')
                continue
            peer = ', '.join(self.summary_item(scenario, i, label, v, p)
                             for i, (label, _, v, p, _) in enumerate(items))
            line = f'{scenario}: sluice {peer}'
            if 'sluice-baseline' in self.order:
                line += '; vs baseline: ' + ', '.join(f'{label} {x(v)}'
                                                      for label, _, _, _, v in items)
            lines.append(line)
        return lines

    def disturbance(self):
        other = sorted(r.other_pct for r in self.b.runs)
        if not other:
            return 'n/a', None
        warn = (f'other processes used up to {other[-1]:.0f}% of a core during measured runs: '
                'those rounds are disturbed (see the per-round table)') if other[-1] > 20 else None
        return f'median {median(other):.0f}%, max {other[-1]:.0f}% of a core', warn

    def notes(self):
        """[(what, proxy, reason)] of every proxy that was skipped, failed or not traced."""
        return ([('SKIPPED', p, r) for p, r in self.b.skipped.items()]
                + [('FAILED', p, '; '.join(r)) for p, r in self.b.failed.items()]
                + [('syscalls not counted for', p, r) for p, r in self.b.syscall_notes.items()]
                + [('allocations not counted for', p, r) for p, r in self.b.alloc_notes.items()])

    # ------------------------------------------------------------- tables --
    def throughput_table(self):
        rows = []
        for scenario in ('small-keepalive', '1MiB'):
            for proxy in self.order:
                runs = [r for r in self.b.runs if r.scenario == scenario and r.proxy == proxy]
                if not runs:
                    continue
                rps, cpu = self.series(scenario, 'rps'), self.series(scenario, 'cpu_us')
                med = {k: median([getattr(r, k) for r in runs])
                       for k in ('rps', 'p50', 'p99', 'cpu_us', 'proxy_pct')}
                rows.append([scenario, proxy, f'{med["rps"]:.0f}',
                             x(self.ratio(rps, proxy, 'nginx')), f'{med["p50"]:.3f}',
                             f'{med["p99"]:.3f}', f'{med["cpu_us"]:.2f}',
                             x(self.ratio(cpu, proxy, 'nginx')), f'{med["proxy_pct"]:.0f}',
                             str(max(r.rss for r in runs)),
                             str(sum(r.socket_errors + r.non2xx for r in runs)), str(len(runs))])
        return Table(['scenario', 'proxy', 'req/s', 'req/s vs nginx', 'p50 ms', 'p99 ms',
                      'CPU µs/req', 'CPU/req vs nginx', 'proxy CPU %', 'RSS KiB', 'errors',
                      'rounds'], rows, text=(0, 1))

    def syscalls_table(self):
        rows = []
        loads = list(dict.fromkeys(s.load for s in self.b.syscalls))
        for load in loads:
            per = {s.proxy: s for s in self.b.syscalls if s.load == load}
            for p in [p for p in self.order if p in per]:
                top = sorted(per[p].calls.items(), key=lambda kv: -kv[1])[:6]
                rows.append([load, p, str(per[p].requests), f'{per[p].per_request:.2f}',
                             ', '.join(f'{n} {c / per[p].requests:.2f}' for n, c in top
                                       if c / per[p].requests >= 0.005)])
        return Table(['load', 'proxy', 'requests', 'syscalls/req', 'top calls per request'], rows,
                     text=(0, 1, 4))

    def allocations_table(self):
        per = {a.proxy: a for a in self.b.allocations}
        rows = [[p, str(a.connections), str(a.requests), str(a.allocations), str(a.frees),
                 f'{a.per_request:.3f}'] for p in self.order if (a := per.get(p))]
        return Table(['proxy', 'connections', 'requests', 'allocations', 'frees', 'allocs/req'],
                     rows)

    def idle_table(self):
        per = {i.proxy: i for i in self.b.idle}
        rows = [[p, str(i.ok), i.failed, i.open, str(i.before), str(i.during),
                 f'{i.per_conn:.2f}', str(i.after)] for p in self.order if (i := per.get(p))]
        return Table(['proxy', 'idle conns', 'failed', 'still open at measurement',
                      'RSS before KiB', 'RSS with idle conns KiB', 'KiB per idle conn',
                      'RSS after close KiB'], rows)

    def rounds_table(self):
        rows = [[r.scenario, str(r.round), r.proxy, f'{r.rps:.0f}', f'{r.p50:.3f}', f'{r.p99:.3f}',
                 f'{r.cpu_us:.2f}', f'{r.proxy_pct:.0f}', f'{r.load_pct:.0f}',
                 f'{r.backend_us:.2f}', f'{r.other_pct:.0f}', f'{r.calibration_ms:.0f}',
                 str(r.rss), str(r.requests), str(r.socket_errors), str(r.non2xx)]
                for r in self.b.runs]
        return Table(['scenario', 'round', 'proxy', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req',
                      'proxy CPU %', 'load CPU busy %', 'backend CPU µs/req',
                      'other processes CPU %', 'calibration ms', 'RSS KiB', 'requests',
                      'socket errors', 'non-2xx'], rows, text=(0, 2))

    # -------------------------------------------------------------- output --
    def machine(self):
        model = mem = '?'
        with open('/proc/cpuinfo') as f:
            model = next((line.split(': ', 1)[1].strip() for line in f
                          if line.startswith('model name')), '?')
        with open('/proc/meminfo') as f:
            mem = f'{int(f.readline().split()[1]) / 1048576:.1f} GiB'
        return f'{os.cpu_count()} CPUs ({model}), {mem} RAM, Linux {platform.release()}'

    def versions(self):
        out = [f'{s.name}: {s.version()}' for s in self.b.servers if s.name != 'backend']
        out.append(f'wrk {(output(self.b.tools["wrk"], "-v").split() or ["?", "?"])[1]}')
        if 'strace' in self.b.tools:
            strace = output(self.b.tools['strace'], '-V').split('\n')[0]
            out.append(strace.replace(' -- version', ''))
        return ', '.join(out)

    def commit(self):
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        git = lambda *a: subprocess.run(['git', '--no-optional-locks', '-C', root, *a],
                                        capture_output=True, text=True)
        rev = git('rev-parse', '--short', 'HEAD').stdout.strip() or 'no commit'
        if git('diff', '--quiet', 'HEAD', '--', 'src').returncode == 1:
            rev += ' + uncommitted changes in src/'
        return rev

    def settings(self):
        a = self.args
        load = {'idle-conns': f'idle-conns: {a.idle_conns} connections',
                'small-keepalive': f'small-keepalive: wrk -t1 -c{a.connections} GET /small (100 B)'
                + (f', then syscalls: a separate {a.strace_duration} s wrk -t1 '
                   f'-c{a.strace_connections} per proxy and load (keep-alive, pipelined x16, '
                   'chunked POST, reconnect) under strace -c -f -p <worker>'
                   if a.strace_duration else '')
                + (f', then allocations: a separate {a.alloc_duration} s wrk -t1 '
                   f'-c{a.alloc_connections} per proxy through an instance with alloc_count.so'
                   if a.alloc_duration else ''),
                '1MiB': f'1MiB: wrk -t1 -c{a.connections_1m} GET /1m'}
        return (f'{a.rounds} round(s) x {a.duration} s per proxy and scenario (+{a.warmup} s '
                f'warm-up each), proxies alternating within each round ({" ".join(a.proxies)}), '
                'the order rotated by one each round; '
                + '; '.join(v for k, v in load.items() if k in a.scenarios))

    def console(self):
        b = self.b
        _, warn = self.disturbance()
        parts = [f'== sluice benchmark ({b.started:%Y-%m-%dT%H:%M:%SZ}, {os.cpu_count()} CPUs, '
                 f'pinning: {b.pinning()})']
        parts += [f'WARNING: {warn}'] if warn else []
        parts += [f'{what}: {p}: {reason}' for what, p, reason in self.notes()]
        for table in (self.throughput_table(), self.syscalls_table(), self.allocations_table(),
                      self.idle_table()):
            if table.rows:
                parts += ['', table.text()]
        parts += [''] + self.summary_lines()
        parts += ['', f'markdown: {self.args.out}', f'plot: {self.plot_note}']
        return '\n'.join(parts)

    def write(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        png = os.path.splitext(path)[0] + '.png'
        try:
            self.plot_note = self.plot(png) or png
        except Exception as e:      # a plot is not worth losing the report for
            self.plot_note = f'not made: {e!r}'
        with open(path, 'w') as f:
            f.write(self.markdown(os.path.basename(png)))

    def markdown(self, png_name):
        b, a = self.b, self.args
        disturbance, warn = self.disturbance()
        out = [f'# sluice benchmark: {" vs ".join(a.proxies)}', '',
               f'- date: {b.started:%Y-%m-%dT%H:%M:%SZ} (UTC)',
               f'- machine: {self.machine()}; load average before/after: '
               f'{b.loadavg[0]} / {b.loadavg[-1]}',
               f'- versions: {self.versions()}',
               f'- commit: {self.commit()}',
               f'- command: `{a.command}`',
               f'- settings: {self.settings()}',
               '- one worker process each, all in front of the same nginx backend; '
               f'CPU pinning: {b.pinning()}',
               f'- other processes on the machine: {b.busy_at_start:.0f}% of a core in use just '
               f'before the start; during the measured runs {disturbance}']
        out += [f'- **WARNING: {warn}**'] if warn else []
        out += ['', f'**{CAVEAT}**', '', '## Summary', '', SUMMARY_NOTE + (
            ' "vs baseline" is sluice ÷ sluice-baseline the same way.'
            if 'sluice-baseline' in a.proxies else ''), '']
        out += [f'- {line}' for line in self.summary_lines()]
        out += ['', f'![sluice ratios]({png_name})' if self.plot_note.endswith('.png')
                else f'(plot {self.plot_note})', '', '## Skipped or failed', '']
        out += [f'- **{what}: {p}**: {reason}' for what, p, reason in self.notes()] or [
            '- none: every proxy ran every scenario']
        out += ['', '## Throughput and latency (median over rounds)', '',
                self.throughput_table().markdown(), '', THROUGHPUT_NOTE]
        if b.syscalls or b.syscall_notes:
            out += ['', '## Syscalls per request (small-keepalive, under strace)', '',
                    self.syscalls_table().markdown(), '',
                    SYSCALLS_NOTE.format(seconds=a.strace_duration, conns=a.strace_connections)]
        if b.allocations or b.alloc_notes:
            out += ['', '## Heap allocations per request (small-keepalive, counted)', '',
                    self.allocations_table().markdown(), '',
                    ALLOCS_NOTE.format(seconds=a.alloc_duration, conns=a.alloc_connections)]
        out += ['', '## Idle keep-alive connections', '',
                self.idle_table().markdown() if 'idle-conns' in a.scenarios else '(not run)', '',
                IDLE_NOTE, '', '## Every round', '', self.rounds_table().markdown(), '']
        return '\n'.join(out)

    def plot(self, path):
        """Bars of the lower-is-better ratios per scenario; returns why it was not made, or None."""
        try:
            import matplotlib
            matplotlib.use('Agg')
            import matplotlib.pyplot as plt
        except ImportError as e:
            return f'not made: {e} (apt-get install python3-matplotlib)'
        items = [(f'{sc}\n{label}', v, peer, base) for sc, metrics in self.summary()
                 for label, higher, v, peer, base in metrics
                 if not higher and label != 'allocs/req' and (v, base) != (None, None)]
        if not items:
            return 'not made: no ratios'
        series = [('sluice ÷ best peer', [i[1] for i in items], [i[2] for i in items])]
        if 'sluice-baseline' in self.order:
            series.append(('sluice ÷ sluice-baseline', [i[3] for i in items], [''] * len(items)))
        width = 0.8 / len(series)
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(items)), 4.5))
        for k, (label, values, peers) in enumerate(series):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(items))]
            heights = [float('nan') if v is None else v for v in values]
            bars = ax.bar(xs, heights, width, label=label)
            ax.bar_label(bars, labels=['' if v is None else f'{v:.2f}x' + (f'\n{p}' if p else '')
                                       for v, p in zip(values, peers)], fontsize=8)
        ax.axhline(1.0, color='black', linewidth=0.8)
        ax.set_xticks(range(len(items)), [i[0] for i in items], fontsize=8)
        ax.set_ylabel('ratio (below 1: sluice needs less)')
        ax.set_title(f'sluice, run of {self.b.started:%Y-%m-%d %H:%M} UTC: ratios within this run',
                     fontsize=10)
        ax.margins(y=0.2)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return None
