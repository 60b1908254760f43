// HTTP/1.1 requests over one TLS connection on loopback, client and server in one process (two
// threads), to measure what weft's TLS uprobes cost the process that makes the calls
// (scripts/bench/tls_call_cost.py). Per request: the client's SSL_write and SSL_read, the
// server's SSL_read and SSL_write. Prints the process's CPU time and the wall time of the
// request loop, in ns.
//   usage: tls_call_loop CERT KEY REQUESTS
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char kRequest[] = "GET /loop HTTP/1.1\r\nHost: bench\r\n\r\n";
static const char kResponse[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

struct server_args {
  SSL_CTX* ctx;
  int listener;
  long requests;
};

static void die(const char* what) {
  fprintf(stderr, "tls_call_loop: %s\n", what);
  ERR_print_errors_fp(stderr);
  exit(1);
}

// Reads exactly `n` bytes of plaintext (a message may come in several records).
static void read_exactly(SSL* ssl, char* buf, int n) {
  for (int got = 0; got < n;) {
    int r = SSL_read(ssl, buf + got, n - got);
    if (r <= 0) die("SSL_read failed");
    got += r;
  }
}

static void* serve(void* p) {
  struct server_args* a = p;
  int fd = accept(a->listener, NULL, NULL);
  if (fd < 0) die("accept failed");
  SSL* ssl = SSL_new(a->ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) die("SSL_accept failed");
  char buf[sizeof(kRequest)];
  for (long i = 0; i < a->requests; ++i) {
    read_exactly(ssl, buf, (int)strlen(kRequest));
    if (SSL_write(ssl, kResponse, (int)strlen(kResponse)) <= 0) die("server SSL_write failed");
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  close(fd);
  return NULL;
}

static long long ns_of(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec * 1000000000LL + t.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc != 4) die("usage: tls_call_loop CERT KEY REQUESTS");
  long requests = atol(argv[3]);
  SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
  if (!server_ctx || SSL_CTX_use_certificate_file(server_ctx, argv[1], SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(server_ctx, argv[2], SSL_FILETYPE_PEM) != 1)
    die("cannot load the certificate");
  SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
  if (!client_ctx) die("SSL_CTX_new failed");

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(addr);
  if (bind(listener, (struct sockaddr*)&addr, len) || listen(listener, 1) ||
      getsockname(listener, (struct sockaddr*)&addr, &len))
    die("cannot listen on loopback");
  struct server_args args = {server_ctx, listener, requests};
  pthread_t server;
  pthread_create(&server, NULL, serve, &args);

  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr*)&addr, len)) die("connect failed");
  SSL* ssl = SSL_new(client_ctx);
  SSL_set_fd(ssl, fd);
  if (SSL_connect(ssl) != 1) die("SSL_connect failed");

  long long cpu0 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall0 = ns_of(CLOCK_MONOTONIC);
  char buf[sizeof(kResponse)];
  for (long i = 0; i < requests; ++i) {
    if (SSL_write(ssl, kRequest, (int)strlen(kRequest)) <= 0) die("client SSL_write failed");
    read_exactly(ssl, buf, (int)strlen(kResponse));
    if (memcmp(buf, kResponse, strlen(kResponse)) != 0) die("unexpected response");
  }
  long long cpu1 = ns_of(CLOCK_PROCESS_CPUTIME_ID), wall1 = ns_of(CLOCK_MONOTONIC);
  pthread_join(server, NULL);
  printf("requests %ld cpu_ns %lld wall_ns %lld\n", requests, cpu1 - cpu0, wall1 - wall0);
  return 0;
}
