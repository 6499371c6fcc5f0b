/*
 * Switchyard bench load client: many WebSocket connections on one epoll loop, so that the
 * client is never the bottleneck. It does the HTTP upgrade itself, walks frame headers to
 * count frames and bytes, keeps only the first bytes of each message (enough to find the
 * embedded `{"i":<n>,"t":<us>` that the publisher puts at the front of every payload), and
 * tracks per connection the last `i` seen: a jump is a lost event, a repeat a duplicate.
 * Latency (now - t, CLOCK_MONOTONIC microseconds) is recorded on sampled connections only.
 *
 * Roles:  sub    N subscribers (also used for idle-connection scale)
 *         pub    one publishing connection; closed loop (window over the slowest subscriber
 *                process, read from a shared-memory slot file) or open loop at a fixed rate
 *         churn  C concurrent slots, each: connect, authenticate, subscribe, close, again
 * Protocols: sy (Switchyard JSON), raw (the bare uWS app: payload is the frame), sio
 *            (Socket.IO 4 / Engine.IO 4 over WebSocket), cf (Centrifugo's JSON protocol:
 *            connect with a JWT, subscribe, publications as pushes, `{}` pings answered with
 *            `{}`; one frame may carry several newline-separated replies, so cf frames are
 *            taken line by line). A cf publisher publishes through Centrifugo's HTTP API
 *            (POST /api/publish, X-API-Key, keep-alive and pipelined: Go's server answers a
 *            connection's requests one after another, so publishes keep their order).
 *
 * Control: commands on stdin, one per line: reset | report [final_i] | pub closed W |
 * pub rate R | stop | churn | quit. Replies on stdout, one line each. Every run is bounded:
 * --deadline seconds (default 300) ends the process, and so does stdin closing.
 *
 * Load is sent only to the loopback addresses given in --host/--src.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum { P_SY, P_RAW, P_SIO, P_CF };
enum { R_SUB, R_PUB, R_CHURN };
enum { S_IDLE, S_CONNECTING, S_HS, S_SETUP, S_READY, S_CLOSED };

#define PFX 192          /* bytes of each message kept for parsing */
#define MAX_INFLIGHT 128 /* connections being set up at once, per process */
#define HS_MAX 2048

typedef struct {
  int fd;
  int idx;
  int state;
  int port_i;
  int resuming;
  int sampled;
  int tracked; /* counts toward lost/min_last */
  int ever_ready; /* a connection that never got set up is a failure, not a loss */
  uint32_t gen; /* bumped at every close: a parser loop stops when its socket was replaced */
  /* frame parser */
  uint8_t hdr[14];
  int hdr_len;
  int hdr_need;
  uint64_t pay_left;
  uint64_t msg_len;
  uint8_t opcode;
  uint8_t fin;
  uint8_t ctl; /* current frame is a control frame */
  uint8_t pfx[PFX];
  int pfx_len;
  /* handshake */
  char *hs;
  int hs_len;
  /* tracking */
  int64_t last_i;
  int64_t lost_at;
  char session[96];
  /* pending output */
  char *out;
  size_t out_len, out_off, out_cap;
} conn_t;

/* ---------- options ---------- */
static int proto = P_SY, role = R_SUB;
static const char *host = "127.0.0.1";
static const char *src = NULL;
static int ports[16];
static int nports = 0;
static int nconns = 1;
static const char *channel = "bench";
static char **tokens = NULL;
static int ntokens = 0;
static int token_offset = 0;
static int sample = 8;
static int deadline_s = 300;
static int reconnect_on_loss = 0;
static int concurrency = 8;
static const char *shm_path = NULL;
static int shm_slot = -1, shm_slots = 0;
static int64_t *shm = NULL;
static int payload_min = 64, payload_max = 256;
static const char *api_key = "";

/* ---------- state ---------- */
static int ep;
static conn_t *conns;
static int inflight = 0;
static int next_to_open = 0;
static int64_t t_start_us;

static uint64_t st_events, st_bytes, st_frames, st_lost, st_dups, st_ready, st_failed, st_reconnects, st_resumed,
    st_resumed_since, st_churn, st_churn_fail, st_closed_by_server, st_http_ok, st_http_err;
static int64_t st_resume_max_us, st_resume_last_at;
static uint64_t st_published;
static uint64_t st_close_codes[5000]; /* by close code; codes from the server's close frames */

/* publisher */
static int pub_mode = 0; /* 0 off, 1 closed, 2 rate */
static int64_t pub_window = 64;
static double pub_rate = 0;
static int64_t pub_started_us = 0;
static int64_t pub_sent_at_start = 0;
static int64_t pub_next_i = 1;
static int churn_on = 0;
static double churn_rate = 0; /* cycles per second offered; 0: closed loop over the slots */
static int64_t churn_started_us = 0;
static uint64_t churn_begun = 0;

/* histogram: microseconds, 1 us up to 2048 us, then 1024 sub-buckets per power of two */
#define H_LIN 2048
#define H_SUB 1024
#define H_EXP 27
#define H_N (H_LIN + H_EXP * H_SUB)
static uint32_t hist[H_N];

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void hist_record(int64_t v) {
  if (v < 0) v = 0;
  int idx;
  if (v < H_LIN) {
    idx = (int)v;
  } else {
    int e = 63 - __builtin_clzll((uint64_t)v) - 10; /* v >> e in [1024, 2048) */
    if (e > H_EXP) {
      idx = H_N - 1;
    } else {
      idx = H_LIN + (e - 1) * H_SUB + (int)((v >> e) - 1024);
    }
  }
  hist[idx]++;
}

static int64_t hist_value(int idx) {
  if (idx < H_LIN) return idx;
  int e = (idx - H_LIN) / H_SUB + 1;
  int64_t m = (idx - H_LIN) % H_SUB + 1024;
  return (m << e) + ((1LL << e) >> 1);
}

static void die(const char *msg) {
  fprintf(stderr, "loadgen: %s\n", msg);
  exit(2);
}

/* ---------- output ---------- */
static void flush_out(conn_t *c);

static void queue_out(conn_t *c, const char *data, size_t len) {
  if (c->fd < 0) return;
  if (c->out_len == c->out_off) {
    c->out_len = c->out_off = 0;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n == (ssize_t)len) return;
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK) return; /* the read side notices the error */
      n = 0;
    }
    data += n;
    len -= (size_t)n;
  }
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + len) cap *= 2;
    if (cap > (size_t)256 << 20) die("output buffer over 256 MiB: the server stopped reading");
    c->out = realloc(c->out, cap);
    if (!c->out) die("out of memory");
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c->idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void flush_out(conn_t *c) {
  while (c->out_off < c->out_len) {
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (n <= 0) return;
    c->out_off += (size_t)n;
  }
  c->out_off = c->out_len = 0;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c->idx};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A masked client frame; the mask key is zero, which the RFC allows and which makes masking free. */
static void send_frame(conn_t *c, int opcode, const char *payload, size_t len) {
  char buf[16];
  size_t h = 0;
  buf[h++] = (char)(0x80 | opcode);
  if (len < 126) {
    buf[h++] = (char)(0x80 | len);
  } else if (len < 65536) {
    buf[h++] = (char)(0x80 | 126);
    buf[h++] = (char)(len >> 8);
    buf[h++] = (char)(len & 0xff);
  } else {
    buf[h++] = (char)(0x80 | 127);
    for (int i = 7; i >= 0; i--) buf[h++] = (char)((len >> (8 * i)) & 0xff);
  }
  buf[h++] = 0; buf[h++] = 0; buf[h++] = 0; buf[h++] = 0;
  if (c->out_len == c->out_off && h + len <= 4096) {
    char tmp[4096];
    memcpy(tmp, buf, h);
    memcpy(tmp + h, payload, len);
    queue_out(c, tmp, h + len);
  } else {
    queue_out(c, buf, h);
    queue_out(c, payload, len);
  }
}

static void send_text(conn_t *c, const char *s) { send_frame(c, 1, s, strlen(s)); }

/* ---------- connection lifecycle ---------- */
static void start_connect(conn_t *c);

static const char *token_for(int idx) {
  if (ntokens == 0) return "";
  return tokens[(idx + token_offset) % ntokens];
}

static void close_fd(conn_t *c) {
  c->gen++;
  if (c->fd >= 0) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  if (c->state == S_CONNECTING || c->state == S_HS || c->state == S_SETUP) inflight--;
  free(c->hs);
  c->hs = NULL;
  c->hs_len = 0;
  c->out_len = c->out_off = 0;
  c->hdr_len = 0;
  c->hdr_need = 2;
  c->pay_left = 0;
  c->pfx_len = 0;
  c->msg_len = 0;
}

static void mark_ready(conn_t *c) {
  if (c->state != S_SETUP && c->state != S_HS) return;
  inflight--;
  c->state = S_READY;
  if (role == R_CHURN) {
    st_churn++;
    close_fd(c);
    c->state = S_IDLE;
    if (churn_on && churn_rate <= 0) start_connect(c);
    return;
  }
  if (c->resuming) {
    int64_t dt = now_us() - c->lost_at;
    if (dt > st_resume_max_us) st_resume_max_us = dt;
    st_resume_last_at = now_us();
    c->resuming = 0;
  } else {
    st_ready++;
  }
  c->ever_ready = 1;
}

static void fail_conn(conn_t *c) {
  int was = c->state;
  close_fd(c);
  c->state = S_CLOSED;
  if (role == R_CHURN) {
    st_churn_fail++;
    c->state = S_IDLE;
    if (churn_on && churn_rate <= 0) start_connect(c);
    return;
  }
  if (was == S_READY || c->resuming) {
    st_closed_by_server += was == S_READY;
    if (reconnect_on_loss) {
      if (!c->resuming) c->lost_at = now_us();
      c->resuming = 1;
      st_reconnects++;
      c->port_i = (c->port_i + 1) % nports;
      start_connect(c);
      return;
    }
  } else {
    st_failed++;
  }
}

static void start_connect(conn_t *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    st_failed++;
    c->state = S_CLOSED;
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (src) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &sa.sin_addr);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind to --src failed");
  }
  struct sockaddr_in da = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[c->port_i])};
  inet_pton(AF_INET, host, &da.sin_addr);
  c->fd = fd;
  c->state = S_CONNECTING;
  inflight++;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)c->idx};
  epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  if (connect(fd, (struct sockaddr *)&da, sizeof da) < 0 && errno != EINPROGRESS) {
    /* the next event reports the error */
  }
}

static void send_upgrade(conn_t *c) {
  char req[1024];
  const char *path;
  char pathbuf[512];
  if (proto == P_SY) {
    path = "/ws";
  } else if (proto == P_SIO) {
    path = "/socket.io/?EIO=4&transport=websocket";
  } else if (proto == P_CF) {
    path = "/connection/websocket";
  } else {
    snprintf(pathbuf, sizeof pathbuf, "/?ch=%s%s", channel, role == R_PUB ? "&pub=1" : "");
    path = pathbuf;
  }
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: c3dpdGNoeWFyZC1iZW5jaA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, host, ports[c->port_i]);
  c->state = S_HS;
  queue_out(c, req, (size_t)n);
}

/* After the 101: what each protocol sends first. */
static void on_open(conn_t *c) {
  c->state = S_SETUP;
  if (proto == P_RAW) {
    mark_ready(c);
  } else if (proto == P_SY) {
    char buf[2048];
    if (c->resuming && c->session[0]) {
      snprintf(buf, sizeof buf, "{\"type\":\"auth\",\"token\":\"%s\",\"session_id\":\"%s\"}", token_for(c->idx), c->session);
    } else {
      snprintf(buf, sizeof buf, "{\"type\":\"auth\",\"token\":\"%s\"}", token_for(c->idx));
    }
    send_text(c, buf);
    if (role != R_PUB && !(c->resuming && c->session[0])) {
      snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"channel\":\"%s\"}", channel);
      send_text(c, buf);
    }
  } else if (proto == P_CF) {
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"id\":1,\"connect\":{\"token\":\"%s\"}}", token_for(c->idx));
    send_text(c, buf);
  }
  /* sio waits for the Engine.IO open packet */
}

static int64_t parse_int(const uint8_t *p, const uint8_t *end) {
  int64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
  return v;
}

static const uint8_t *find(const uint8_t *hay, int len, const char *needle) {
  return memmem(hay, (size_t)len, needle, strlen(needle));
}

/* An event: `{"i":<n>,"t":<us>` somewhere in the kept prefix. */
static int on_event(conn_t *c, const uint8_t *d, int len) {
  const uint8_t *p = find(d, len, "{\"i\":");
  if (!p) return 0;
  const uint8_t *end = d + len;
  int64_t i = parse_int(p + 5, end);
  st_events++;
  if (c->tracked) {
    if (i <= c->last_i) {
      st_dups++;
    } else {
      if (i > c->last_i + 1) st_lost += (uint64_t)(i - c->last_i - 1);
      c->last_i = i;
    }
  }
  if (c->sampled) {
    const uint8_t *t = find(p, (int)(end - p), ",\"t\":");
    if (t) hist_record(now_us() - parse_int(t + 5, end));
  }
  return 1;
}

/* One line of a Centrifugo frame. */
static void on_cf_line(conn_t *c, const uint8_t *d, int len) {
  if (len == 2 && d[0] == '{' && d[1] == '}') { /* server ping */
    send_text(c, "{}");
    return;
  }
  if (on_event(c, d, len)) return;
  if (c->state != S_SETUP) return;
  if (find(d, len, "\"error\":")) {
    fail_conn(c);
  } else if (find(d, len, "\"id\":1,") && find(d, len, "\"connect\":")) {
    char buf[512];
    snprintf(buf, sizeof buf, "{\"id\":2,\"subscribe\":{\"channel\":\"%s\"}}", channel);
    send_text(c, buf);
  } else if (find(d, len, "\"id\":2,") && find(d, len, "\"subscribe\":")) {
    mark_ready(c);
  }
}

static void on_message(conn_t *c, const uint8_t *d, int len) {
  if (proto == P_CF) {
    on_cf_line(c, d, len);
    return;
  }
  if (proto == P_SIO) {
    if (len == 1 && d[0] == '2') { /* Engine.IO ping */
      send_text(c, "3");
      return;
    }
    if (len >= 2 && d[0] == '4' && d[1] == '2') {
      if (on_event(c, d, len)) return;
      if (c->state == S_SETUP && find(d, len, "\"subscribed\"")) mark_ready(c);
      return;
    }
    if (c->state == S_SETUP) {
      if (d[0] == '0') { /* open: connect to the default namespace with the token */
        char buf[2048];
        snprintf(buf, sizeof buf, "40{\"token\":\"%s\"}", token_for(c->idx));
        send_text(c, buf);
      } else if (len >= 2 && d[0] == '4' && d[1] == '0') {
        if (role == R_PUB) {
          mark_ready(c);
        } else {
          char buf[512];
          snprintf(buf, sizeof buf, "42[\"subscribe\",\"%s\"]", channel);
          send_text(c, buf);
        }
      } else if (len >= 2 && d[0] == '4' && d[1] == '4') {
        fail_conn(c);
      }
    }
    return;
  }
  if (on_event(c, d, len)) return;
  if (proto != P_SY || c->state != S_SETUP) return;
  if (find(d, len, "\"type\":\"auth_success\"")) {
    const uint8_t *s = find(d, len, "\"session_id\":\"");
    if (s) {
      s += 14;
      int k = 0;
      while (s + k < d + len && s[k] != '"' && k < (int)sizeof c->session - 1) k++;
      memcpy(c->session, s, (size_t)k);
      c->session[k] = 0;
    }
    if (role == R_PUB) {
      mark_ready(c);
    } else if (c->resuming && c->session[0]) {
      if (find(d, len, "\"resumed\":true")) {
        st_resumed++;
      } else { /* the session was not found: fall back to since */
        char buf[512];
        snprintf(buf, sizeof buf, "{\"type\":\"subscribe\",\"channel\":\"%s\",\"since\":%lld}", channel, (long long)(c->last_i < 0 ? 0 : c->last_i));
        send_text(c, buf);
        st_resumed_since++;
      }
    }
  } else if (find(d, len, "\"type\":\"subscription_result\"")) {
    if (find(d, len, "\"success\":true")) mark_ready(c);
    else fail_conn(c);
  } else if (find(d, len, "\"type\":\"auth_error\"")) {
    fail_conn(c);
  }
}

static void on_frame_end(conn_t *c) {
  int op = c->opcode;
  if (op == 9) { /* ping: pong with the same payload */
    send_frame(c, 10, (const char *)c->pfx, (size_t)c->pfx_len);
  } else if (op == 8) {
    int code = c->pfx_len >= 2 ? (c->pfx[0] << 8) | c->pfx[1] : 1005;
    if (code >= 0 && code < 5000) st_close_codes[code]++;
    fail_conn(c);
  } else if (op == 10) {
  } else if (c->fin) {
    st_frames++;
    if (proto != P_CF || c->pfx_len > 0) on_message(c, c->pfx, c->pfx_len);
    c->pfx_len = 0;
  }
  c->ctl = 0;
}

/* Walks the bytes of one read: headers in, payloads counted, prefixes kept. */
static void feed(conn_t *c, const uint8_t *p, size_t n) {
  uint32_t gen = c->gen;
  while (n > 0 && c->fd >= 0 && c->gen == gen) {
    if (c->pay_left == 0 && c->hdr_len < c->hdr_need) {
      while (n > 0 && c->hdr_len < c->hdr_need) {
        c->hdr[c->hdr_len++] = *p++;
        n--;
        if (c->hdr_len == 2) {
          int l7 = c->hdr[1] & 0x7f;
          c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0) + ((c->hdr[1] & 0x80) ? 4 : 0);
        }
      }
      if (c->hdr_len < c->hdr_need) return;
      uint64_t len = c->hdr[1] & 0x7f;
      if (len == 126) len = ((uint64_t)c->hdr[2] << 8) | c->hdr[3];
      else if (len == 127) {
        len = 0;
        for (int i = 0; i < 8; i++) len = (len << 8) | c->hdr[2 + i];
      }
      int op = c->hdr[0] & 0x0f;
      c->fin = (c->hdr[0] & 0x80) != 0;
      if (op >= 8) {
        c->ctl = 1;
        c->opcode = (uint8_t)op;
        c->pfx_len = 0;
      } else {
        if (op != 0) {
          c->opcode = (uint8_t)op;
          c->pfx_len = 0;
        }
      }
      c->pay_left = len;
      c->hdr_len = 0;
      c->hdr_need = 2;
      if (len == 0) {
        on_frame_end(c);
        continue;
      }
    }
    if (c->gen != gen) return;
    size_t take = c->pay_left < n ? (size_t)c->pay_left : n;
    if (proto == P_CF && !c->ctl) {
      /* newline-separated replies: each line is a message of its own */
      const uint8_t *q = p, *qend = p + take;
      while (q < qend && c->gen == gen) {
        const uint8_t *nl = memchr(q, '\n', (size_t)(qend - q));
        const uint8_t *stop = nl ? nl : qend;
        size_t k = (size_t)(stop - q);
        if (k > (size_t)(PFX - c->pfx_len)) k = (size_t)(PFX - c->pfx_len);
        memcpy(c->pfx + c->pfx_len, q, k);
        c->pfx_len += (int)k;
        if (nl) {
          on_message(c, c->pfx, c->pfx_len);
          c->pfx_len = 0;
          q = nl + 1;
        } else {
          q = qend;
        }
      }
      if (c->gen != gen) return;
    } else if (c->pfx_len < PFX) {
      size_t k = PFX - (size_t)c->pfx_len;
      if (k > take) k = take;
      memcpy(c->pfx + c->pfx_len, p, k);
      c->pfx_len += (int)k;
    }
    p += take;
    n -= take;
    c->pay_left -= take;
    if (c->pay_left == 0) on_frame_end(c);
  }
}

/* Counts the HTTP API's answers: status lines, 200 or not (a status line split over two reads is kept in `carry`). */
static void http_responses(const uint8_t *p, size_t n) {
  static uint8_t carry[16];
  static size_t carry_len = 0;
  uint8_t scan[sizeof carry + 4096];
  while (n > 0) {
    size_t k = n < 4096 ? n : 4096;
    memcpy(scan, carry, carry_len);
    memcpy(scan + carry_len, p, k);
    size_t len = carry_len + k;
    const uint8_t *q = scan, *end = scan + len;
    const uint8_t *hit;
    size_t consumed = 0;
    while ((hit = memmem(q, (size_t)(end - q), "HTTP/1.1 ", 9)) != NULL) {
      if (end - hit < 12) break; /* the code is not all here yet */
      if (hit[9] == '2' && hit[10] == '0' && hit[11] == '0') st_http_ok++;
      else st_http_err++;
      q = hit + 12;
      consumed = (size_t)(q - scan);
    }
    size_t keep = len - consumed < sizeof carry ? len - consumed : sizeof carry;
    memcpy(carry, end - keep, keep);
    carry_len = keep;
    p += k;
    n -= k;
  }
}

static void on_readable(conn_t *c) {
  static uint8_t buf[1 << 16];
  uint32_t gen = c->gen;
  for (int rounds = 0; rounds < 8 && c->fd >= 0 && c->gen == gen; rounds++) {
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n == 0) {
      fail_conn(c);
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      fail_conn(c);
      return;
    }
    st_bytes += (uint64_t)n;
    if (proto == P_CF && role == R_PUB) {
      http_responses(buf, (size_t)n);
      continue;
    }
    if (c->state == S_HS) {
      if (!c->hs) c->hs = malloc(HS_MAX);
      size_t k = (size_t)n;
      if (c->hs_len + (int)k > HS_MAX - 1) k = (size_t)(HS_MAX - 1 - c->hs_len);
      memcpy(c->hs + c->hs_len, buf, k);
      c->hs_len += (int)k;
      c->hs[c->hs_len] = 0;
      char *end = strstr(c->hs, "\r\n\r\n");
      if (!end) {
        if (c->hs_len >= HS_MAX - 1) fail_conn(c);
        continue;
      }
      if (strncmp(c->hs, "HTTP/1.1 101", 12) != 0) {
        fail_conn(c);
        return;
      }
      size_t used = (size_t)(end + 4 - c->hs);
      size_t before = (size_t)(c->hs_len - (int)k);
      size_t rest_off = used - before; /* offset into buf of the first frame byte */
      free(c->hs);
      c->hs = NULL;
      c->hs_len = 0;
      on_open(c);
      if (rest_off < (size_t)n) feed(c, buf + rest_off, (size_t)n - rest_off);
      continue;
    }
    feed(c, buf, (size_t)n);
    if ((size_t)n < sizeof buf) return;
  }
}

/* ---------- publisher ---------- */
static uint32_t rng = 2463534242u;
static uint32_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

static const char PAD[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

static void publish_one(conn_t *c, int64_t t) {
  char data[512];
  int64_t i = pub_next_i++;
  int size = payload_min + (int)(xorshift() % (uint32_t)(payload_max - payload_min + 1));
  int n = snprintf(data, sizeof data, "{\"i\":%lld,\"t\":%lld,\"p\":\"", (long long)i, (long long)t);
  int pad = size - n - 2;
  if (pad < 0) pad = 0;
  if (pad > (int)sizeof PAD - 1) pad = (int)sizeof PAD - 1;
  memcpy(data + n, PAD, (size_t)pad);
  n += pad;
  data[n++] = '"';
  data[n++] = '}';
  data[n] = 0;
  char frame[1024];
  int fl;
  if (proto == P_CF) {
    char req[2048];
    int bl = snprintf(frame, sizeof frame, "{\"channel\":\"%s\",\"data\":%s}", channel, data);
    int rl = snprintf(req, sizeof req,
                      "POST /api/publish HTTP/1.1\r\nHost: %s:%d\r\nX-API-Key: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      host, ports[c->port_i], api_key, bl, frame);
    queue_out(c, req, (size_t)rl);
    st_published++;
    return;
  }
  if (proto == P_SY) {
    fl = snprintf(frame, sizeof frame, "{\"type\":\"publish\",\"channel\":\"%s\",\"event\":\"b\",\"data\":%s}", channel, data);
  } else if (proto == P_SIO) {
    fl = snprintf(frame, sizeof frame, "42[\"publish\",\"%s\",%s]", channel, data);
  } else {
    fl = snprintf(frame, sizeof frame, "%s", data);
  }
  send_frame(c, 1, frame, (size_t)fl);
  st_published++;
}

static int64_t slowest_progress(void) {
  int64_t m = INT64_MAX;
  for (int k = 0; k < shm_slots; k++) {
    int64_t v = __atomic_load_n(&shm[k], __ATOMIC_RELAXED);
    if (v >= 0 && v < m) m = v;
  }
  return m == INT64_MAX ? pub_next_i - 1 : m;
}

static void pub_tick(void) {
  conn_t *c = &conns[0];
  if (c->state != S_READY || c->fd < 0) return;
  if (pub_mode == 1) {
    int64_t done = slowest_progress();
    int burst = 0;
    while (pub_next_i - 1 - done < pub_window && burst < 256) {
      publish_one(c, now_us());
      burst++;
    }
  } else if (pub_mode == 2) {
    int64_t now = now_us();
    int64_t due = pub_sent_at_start + (int64_t)((double)(now - pub_started_us) * pub_rate / 1e6);
    int burst = 0;
    while (pub_next_i - 1 < due && burst < 2000) {
      /* stamped with when it was due, not when sent: no coordinated omission */
      int64_t k = pub_next_i - 1 - pub_sent_at_start;
      publish_one(c, pub_started_us + (int64_t)((double)k * 1e6 / pub_rate));
      burst++;
    }
  }
}

/* ---------- subscribers' progress for the publisher's window ---------- */
static void publish_progress(void) {
  if (!shm || shm_slot < 0) return;
  int64_t m = INT64_MAX;
  for (int k = 0; k < nconns; k++) {
    conn_t *c = &conns[k];
    if (c->tracked && c->state == S_READY && c->last_i < m) m = c->last_i;
  }
  if (m == INT64_MAX) m = -1;
  __atomic_store_n(&shm[shm_slot], m, __ATOMIC_RELAXED);
}

/* ---------- control ---------- */
static void report(int64_t final_i) {
  uint64_t tail = 0;
  int64_t minl = INT64_MAX, maxl = -1;
  int ready_now = 0;
  for (int k = 0; k < nconns; k++) {
    conn_t *c = &conns[k];
    if (c->state == S_READY) ready_now++;
    if (!c->tracked || !c->ever_ready) continue;
    if (c->last_i < minl) minl = c->last_i;
    if (c->last_i > maxl) maxl = c->last_i;
    if (final_i > c->last_i) tail += (uint64_t)(final_i - c->last_i);
  }
  if (minl == INT64_MAX) minl = -1;
  printf("{\"conns\":%d,\"ready\":%llu,\"ready_now\":%d,\"failed\":%llu,\"events\":%llu,\"frames\":%llu,\"bytes\":%llu,"
         "\"lost\":%llu,\"tail\":%llu,\"dups\":%llu,\"min_last\":%lld,\"max_last\":%lld,\"reconnects\":%llu,\"closed_by_server\":%llu,"
         "\"resumed\":%llu,\"resumed_since\":%llu,\"resume_max_us\":%lld,\"resume_last_at_us\":%lld,\"churn\":%llu,"
         "\"churn_fail\":%llu,\"http_ok\":%llu,\"http_errors\":%llu,\"published\":%llu,\"next_i\":%lld,\"now_us\":%lld,\"hist\":[",
         nconns, (unsigned long long)st_ready, ready_now, (unsigned long long)st_failed, (unsigned long long)st_events,
         (unsigned long long)st_frames, (unsigned long long)st_bytes, (unsigned long long)st_lost, (unsigned long long)tail,
         (unsigned long long)st_dups, (long long)minl, (long long)maxl, (unsigned long long)st_reconnects,
         (unsigned long long)st_closed_by_server, (unsigned long long)st_resumed, (unsigned long long)st_resumed_since,
         (long long)st_resume_max_us, (long long)st_resume_last_at, (unsigned long long)st_churn,
         (unsigned long long)st_churn_fail, (unsigned long long)st_http_ok, (unsigned long long)st_http_err,
         (unsigned long long)st_published, (long long)pub_next_i, (long long)now_us());
  int first = 1;
  for (int k = 0; k < H_N; k++) {
    if (!hist[k]) continue;
    printf("%s[%lld,%u]", first ? "" : ",", (long long)hist_value(k), hist[k]);
    first = 0;
  }
  printf("],\"close_codes\":{");
  first = 1;
  for (int k = 0; k < 5000; k++) {
    if (!st_close_codes[k]) continue;
    printf("%s\"%d\":%llu", first ? "" : ",", k, (unsigned long long)st_close_codes[k]);
    first = 0;
  }
  printf("}}\n");
  fflush(stdout);
}

static void reset_counters(void) {
  st_events = st_bytes = st_frames = st_dups = st_lost = 0;
  st_churn = st_churn_fail = st_published = 0;
  st_reconnects = st_resumed = st_resumed_since = st_closed_by_server = 0;
  st_resume_max_us = st_resume_last_at = 0;
  memset(st_close_codes, 0, sizeof st_close_codes);
  memset(hist, 0, sizeof hist);
}

static void command(char *line) {
  if (strncmp(line, "reset", 5) == 0) {
    reset_counters();
    printf("ok\n");
    fflush(stdout);
  } else if (strncmp(line, "report", 6) == 0) {
    int64_t final_i = -1;
    if (line[6] == ' ') final_i = atoll(line + 7);
    report(final_i);
  } else if (strncmp(line, "pub closed", 10) == 0) {
    pub_window = atoll(line + 11);
    if (pub_window < 1) pub_window = 1;
    pub_mode = 1;
    printf("ok\n");
    fflush(stdout);
  } else if (strncmp(line, "pub rate", 8) == 0) {
    pub_rate = atof(line + 9);
    if (pub_rate <= 0) pub_rate = 1;
    pub_mode = 2;
    pub_started_us = now_us();
    pub_sent_at_start = pub_next_i - 1;
    printf("ok\n");
    fflush(stdout);
  } else if (strncmp(line, "stop", 4) == 0) {
    pub_mode = 0;
    churn_on = 0;
    printf("{\"published_total\":%lld}\n", (long long)(pub_next_i - 1));
    fflush(stdout);
  } else if (strncmp(line, "churn", 5) == 0) {
    churn_on = 1;
    churn_rate = line[5] == ' ' ? atof(line + 6) : 0;
    churn_started_us = now_us();
    churn_begun = 0;
    if (churn_rate <= 0)
      for (int k = 0; k < nconns; k++)
        if (conns[k].state == S_IDLE || conns[k].state == S_CLOSED) start_connect(&conns[k]);
    printf("ok\n");
    fflush(stdout);
  } else if (strncmp(line, "quit", 4) == 0) {
    exit(0);
  }
}

static char inbuf[65536];
static size_t inlen = 0;

static void on_stdin(void) {
  ssize_t n = read(0, inbuf + inlen, sizeof inbuf - inlen - 1);
  if (n <= 0) exit(0); /* the orchestrator went away */
  inlen += (size_t)n;
  char *nl;
  while ((nl = memchr(inbuf, '\n', inlen))) {
    *nl = 0;
    command(inbuf);
    size_t used = (size_t)(nl + 1 - inbuf);
    memmove(inbuf, nl + 1, inlen - used);
    inlen -= used;
  }
}

static void load_tokens(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die("cannot open --tokens file");
  char line[4096];
  int cap = 0;
  while (fgets(line, sizeof line, f)) {
    size_t l = strlen(line);
    while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = 0;
    if (l == 0) continue;
    if (ntokens == cap) {
      cap = cap ? cap * 2 : 64;
      tokens = realloc(tokens, sizeof(char *) * (size_t)cap);
    }
    tokens[ntokens++] = strdup(line);
  }
  fclose(f);
}

static void on_alarm(int sig) {
  (void)sig;
  _exit(3);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : "";
    if (!strcmp(a, "--role")) {
      role = !strcmp(v, "pub") ? R_PUB : !strcmp(v, "churn") ? R_CHURN : R_SUB;
      i++;
    } else if (!strcmp(a, "--proto")) {
      proto = !strcmp(v, "raw") ? P_RAW : !strcmp(v, "sio") ? P_SIO : !strcmp(v, "cf") ? P_CF : P_SY;
      i++;
    } else if (!strcmp(a, "--host")) {
      host = v;
      i++;
    } else if (!strcmp(a, "--src")) {
      src = v;
      i++;
    } else if (!strcmp(a, "--ports")) {
      char *s = strdup(v), *tok, *save = NULL;
      for (tok = strtok_r(s, ",", &save); tok && nports < 16; tok = strtok_r(NULL, ",", &save)) ports[nports++] = atoi(tok);
      i++;
    } else if (!strcmp(a, "--conns")) {
      nconns = atoi(v);
      i++;
    } else if (!strcmp(a, "--channel")) {
      channel = v;
      i++;
    } else if (!strcmp(a, "--tokens")) {
      load_tokens(v);
      i++;
    } else if (!strcmp(a, "--token-offset")) {
      token_offset = atoi(v);
      i++;
    } else if (!strcmp(a, "--sample")) {
      sample = atoi(v);
      i++;
    } else if (!strcmp(a, "--deadline")) {
      deadline_s = atoi(v);
      i++;
    } else if (!strcmp(a, "--reconnect")) {
      reconnect_on_loss = 1;
    } else if (!strcmp(a, "--concurrency")) {
      concurrency = atoi(v);
      i++;
    } else if (!strcmp(a, "--shm")) {
      shm_path = v;
      i++;
    } else if (!strcmp(a, "--slot")) {
      shm_slot = atoi(v);
      i++;
    } else if (!strcmp(a, "--slots")) {
      shm_slots = atoi(v);
      i++;
    } else if (!strcmp(a, "--api-key")) {
      api_key = v;
      i++;
    } else if (!strcmp(a, "--payload")) {
      sscanf(v, "%d-%d", &payload_min, &payload_max);
      i++;
    } else {
      fprintf(stderr, "loadgen: unknown option %s\n", a);
      return 2;
    }
  }
  if (nports == 0) die("--ports is required");
  if (strncmp(host, "127.", 4) != 0 || (src && strncmp(src, "127.", 4) != 0)) die("load goes to loopback (127.0.0.0/8) only");
  if (payload_min < 40) payload_min = 40;
  if (payload_max < payload_min) payload_max = payload_min;
  if (payload_max > 400) payload_max = 400;
  if (role == R_PUB) nconns = 1;
  if (role == R_CHURN) nconns = concurrency;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
  alarm((unsigned)deadline_s);
  t_start_us = now_us();
  if (shm_path) {
    int fd = open(shm_path, O_RDWR);
    if (fd < 0) die("cannot open --shm");
    shm = mmap(NULL, 8 * 256, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (shm == MAP_FAILED) die("mmap --shm failed");
    close(fd);
    if (shm_slots > 256) shm_slots = 256;
  }
  ep = epoll_create1(0);
  conns = calloc((size_t)nconns, sizeof(conn_t));
  for (int k = 0; k < nconns; k++) {
    conn_t *c = &conns[k];
    c->fd = -1;
    c->idx = k;
    c->hdr_need = 2;
    /* spread over the ports; with --reconnect all start on the first and move on at a loss */
    c->port_i = reconnect_on_loss ? 0 : k % nports;
    c->sampled = sample > 0 && k % sample == 0;
    c->tracked = role == R_SUB;
    c->last_i = 0;
    c->state = S_IDLE;
  }
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
  struct epoll_event sev = {.events = EPOLLIN, .data.u32 = 0xffffffffu};
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &sev);

  struct epoll_event evs[512];
  int announced = 0;
  int64_t last_progress = 0;
  for (;;) {
    /* open connections, at most MAX_INFLIGHT at a time */
    if (role != R_CHURN) {
      while (next_to_open < nconns && inflight < MAX_INFLIGHT) start_connect(&conns[next_to_open++]);
      if (!announced && next_to_open == nconns && inflight == 0) {
        announced = 1;
        printf("ready %llu %llu\n", (unsigned long long)st_ready, (unsigned long long)st_failed);
        fflush(stdout);
      }
    } else if (!announced) {
      announced = 1;
      printf("ready 0 0\n");
      fflush(stdout);
    }
    int timeout = (pub_mode != 0 || (churn_on && churn_rate > 0)) ? 1 : 5;
    int n = epoll_wait(ep, evs, 512, timeout);
    for (int e = 0; e < n; e++) {
      uint32_t id = evs[e].data.u32;
      if (id == 0xffffffffu) {
        on_stdin();
        continue;
      }
      conn_t *c = &conns[id];
      if (c->fd < 0) continue;
      uint32_t what = evs[e].events;
      if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (what & (EPOLLERR | EPOLLHUP))) {
          fail_conn(c);
          continue;
        }
        if (what & EPOLLOUT) {
          struct epoll_event ev = {.events = EPOLLIN, .data.u32 = id};
          epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
          if (proto == P_CF && role == R_PUB) {
            c->state = S_SETUP; /* plain HTTP keep-alive: nothing to set up */
            mark_ready(c);
          } else {
            send_upgrade(c);
          }
        }
        continue;
      }
      if (what & EPOLLOUT) flush_out(c);
      if (c->fd >= 0 && (what & (EPOLLIN | EPOLLERR | EPOLLHUP))) on_readable(c);
    }
    if (pub_mode) pub_tick();
    if (churn_on && churn_rate > 0) {
      /* open loop: start cycles as they fall due, on free slots (a cycle with no free slot waits) */
      uint64_t due = (uint64_t)((double)(now_us() - churn_started_us) * churn_rate / 1e6);
      for (int k = 0; k < nconns && churn_begun < due; k++) {
        if (conns[k].state == S_IDLE || conns[k].state == S_CLOSED) {
          start_connect(&conns[k]);
          churn_begun++;
        }
      }
    }
    int64_t now = now_us();
    if (shm && now - last_progress >= 1000) {
      publish_progress();
      last_progress = now;
    }
  }
}
