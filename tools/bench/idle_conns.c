/*
 * idle_conns: opens N keep-alive HTTP/1.1 connections to one loopback address,
 * sends one GET on each and reads its whole response (so the server has set
 * up its per-connection state), then leaves them all open and idle.
 *
 * Part of the sluice benchmark harness (tools/bench/bench.py), which compiles it
 * with `cc -O2`. Linux only (epoll).
 *
 *   idle_conns -a 127.0.0.1 -p PORT [-n 5000] [-c 32] [-u /small] [-t 60] [-H 300]
 *
 *   -a ADDR   IPv4 address; must be in 127.0.0.0/8 (loopback only)
 *   -p PORT   TCP port
 *   -n N      connections to open (default 5000)
 *   -c C      connections in progress at once (default 32): bounds the load
 *             and the number of upstream connections the proxy opens
 *   -u PATH   request path (default /small)
 *   -t SECS   deadline for setting all connections up (default 60)
 *   -H SECS   hard limit on the whole life of the process (default 300)
 *
 * Protocol on stdout/stdin (line based, for the harness):
 *   prints  "ready ok=K failed=F"  once every connection is idle (or failed,
 *                                  or the -t deadline passed);
 *   then reads stdin: the line "check" prints "open K closed C" (how many of the
 *   idle connections the server still keeps open); EOF or "quit" closes every
 *   connection and exits 0. Exits 2 on usage errors, 1 on setup errors.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { ST_NEW, ST_CONNECTING, ST_READING, ST_IDLE, ST_FAILED };

struct conn {
  int fd;
  enum state st;
  char *buf; /* only while a response is being read */
  size_t len;
  size_t cap;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void) {
  fprintf(stderr,
          "usage: idle_conns -a 127.0.0.1 -p PORT [-n N] [-c C] [-u PATH] [-t SECS] [-H SECS]\n");
  exit(2);
}

/* Returns 1 when buf holds a complete response, 0 when more is needed, -1 on
 * a response we do not accept (not 200, or framing we cannot follow). */
static int response_complete(const char *buf, size_t len) {
  const char *end = memmem(buf, len, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head_len = (size_t)(end - buf) + 4;
  if (len < 12 || strncmp(buf, "HTTP/1.", 7) != 0) return -1;
  if (strncmp(buf + 9, "200", 3) != 0) return -1;
  /* Walk the header lines for Content-Length / Transfer-Encoding. */
  long content_length = -1;
  int chunked = 0;
  const char *line = memchr(buf, '\n', head_len);
  while (line && line + 1 < buf + head_len) {
    line++;
    const char *eol = memchr(line, '\n', (size_t)(buf + head_len - line));
    if (!eol) break;
    size_t n = (size_t)(eol - line);
    if (n > 15 && strncasecmp(line, "content-length:", 15) == 0) {
      content_length = strtol(line + 15, NULL, 10);
    } else if (n > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
      if (memmem(line, n, "chunked", 7)) chunked = 1;
    }
    line = eol;
  }
  if (chunked) {
    /* Good enough for a benchmark: the last-chunk marker at the very end. */
    return (len >= head_len + 5 && memcmp(buf + len - 5, "0\r\n\r\n", 5) == 0) ? 1 : 0;
  }
  if (content_length < 0) return -1; /* would need read-until-close: not keep-alive */
  return len >= head_len + (size_t)content_length ? 1 : 0;
}

int main(int argc, char **argv) {
  const char *addr = NULL;
  int port = 0, n = 5000, inflight_max = 32;
  const char *path = "/small";
  double setup_deadline = 60, hard_limit = 300;
  int opt;
  while ((opt = getopt(argc, argv, "a:p:n:c:u:t:H:")) != -1) {
    switch (opt) {
      case 'a': addr = optarg; break;
      case 'p': port = atoi(optarg); break;
      case 'n': n = atoi(optarg); break;
      case 'c': inflight_max = atoi(optarg); break;
      case 'u': path = optarg; break;
      case 't': setup_deadline = atof(optarg); break;
      case 'H': hard_limit = atof(optarg); break;
      default: usage();
    }
  }
  if (!addr || port <= 0 || port > 65535 || n <= 0 || inflight_max <= 0) usage();

  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((unsigned short)port);
  if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) usage();
  if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127) {
    fprintf(stderr, "idle_conns: refusing %s: loopback (127.0.0.0/8) only\n", addr);
    return 2;
  }

  /* Never outlive the harness for long, whatever happens to it. */
  signal(SIGPIPE, SIG_IGN);
  alarm((unsigned)hard_limit);

  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)n + 64) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
      fprintf(stderr, "idle_conns: open-files limit %lu too low for %d connections\n",
              (unsigned long)rl.rlim_cur, n);
      return 1;
    }
  }

  char request[512];
  int req_len = snprintf(request, sizeof request,
                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: sluice-idle-conns\r\n\r\n",
                         path, addr, port);
  if (req_len <= 0 || (size_t)req_len >= sizeof request) usage();

  struct conn *conns = calloc((size_t)n, sizeof *conns);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (!conns || ep < 0) {
    perror("idle_conns: setup");
    return 1;
  }
  for (int i = 0; i < n; i++) conns[i].fd = -1;

  int next = 0, inflight = 0, ok = 0, failed = 0;
  double deadline = now_s() + setup_deadline;
  struct epoll_event events[256];

  while (ok + failed < n) {
    while (inflight < inflight_max && next < n) {
      struct conn *c = &conns[next];
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->fd < 0) {
        perror("idle_conns: socket");
        c->st = ST_FAILED;
        failed++;
        next++;
        continue;
      }
      int one = 1;
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
      if (r < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        c->st = ST_FAILED;
        failed++;
        next++;
        continue;
      }
      c->st = ST_CONNECTING;
      struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)next};
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      inflight++;
      next++;
    }
    if (ok + failed >= n) break;
    double left = deadline - now_s();
    if (left <= 0) {
      fprintf(stderr, "idle_conns: setup deadline passed with %d in progress\n", inflight);
      for (int i = 0; i < n; i++) {
        struct conn *c = &conns[i];
        if (c->st == ST_CONNECTING || c->st == ST_READING || c->st == ST_NEW) {
          if (c->fd >= 0) close(c->fd);
          c->fd = -1;
          free(c->buf);
          c->buf = NULL;
          c->st = ST_FAILED;
          failed++;
        }
      }
      break;
    }
    int ne = epoll_wait(ep, events, 256, (int)(left * 1000) + 1);
    if (ne < 0) {
      if (errno == EINTR) continue;
      perror("idle_conns: epoll_wait");
      return 1;
    }
    for (int k = 0; k < ne; k++) {
      int i = (int)events[k].data.u32;
      struct conn *c = &conns[i];
      int fail = 0;
      if (c->st == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0 || (events[k].events & (EPOLLERR | EPOLLHUP))) {
          fail = 1;
        } else if (send(c->fd, request, (size_t)req_len, MSG_NOSIGNAL) != req_len) {
          fail = 1; /* a short first write of ~100 bytes does not happen on loopback */
        } else {
          c->st = ST_READING;
          c->cap = 4096;
          c->buf = malloc(c->cap);
          c->len = 0;
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        }
      } else if (c->st == ST_READING) {
        for (;;) {
          if (c->len == c->cap) {
            c->cap *= 2;
            c->buf = realloc(c->buf, c->cap);
          }
          ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
          if (r > 0) {
            c->len += (size_t)r;
            continue;
          }
          if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
          if (r < 0 && errno == EINTR) continue;
          fail = 1; /* closed or error before the whole response */
          break;
        }
        if (!fail) {
          int done = response_complete(c->buf, c->len);
          if (done < 0) {
            fail = 1;
          } else if (done > 0) {
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            free(c->buf);
            c->buf = NULL;
            c->st = ST_IDLE;
            ok++;
            inflight--;
          }
        }
      }
      if (fail) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
        free(c->buf);
        c->buf = NULL;
        c->st = ST_FAILED;
        failed++;
        inflight--;
      }
    }
  }

  printf("ready ok=%d failed=%d\n", ok, failed);
  fflush(stdout);

  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "check", 5) == 0) {
      int open = 0, closed = 0;
      for (int i = 0; i < n; i++) {
        if (conns[i].st != ST_IDLE) continue;
        char b;
        ssize_t r = recv(conns[i].fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          open++;
        else
          closed++; /* 0 = EOF, >0 = unexpected bytes, <0 = reset */
      }
      printf("open %d closed %d\n", open, closed);
      fflush(stdout);
    } else if (strncmp(line, "quit", 4) == 0) {
      break;
    }
  }
  for (int i = 0; i < n; i++)
    if (conns[i].fd >= 0) close(conns[i].fd);
  return 0;
}
