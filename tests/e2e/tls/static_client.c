/* An HTTPS client for the TLS tests, built by the test with OpenSSL linked in statically:
 * GET each path on one kept-alive connection (SSL_write, SSL_read on a socket BIO), print each
 * status. With WEFT_HOLD set: print "ready" and wait for a line on stdin before connecting (the
 * test waits until weft has hooked this executable), and after the requests print "holding" and
 * wait for stdin to close (the test looks at the running process).
 * Usage: static_client PORT PATH... */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "static_client: %s\n", what);
	ERR_print_errors_fp(stderr);
	return 1;
}

/* Reads one response (headers, then Content-Length bytes of body); returns its status or -1. */
static int read_response(SSL *ssl)
{
	char buf[16384];
	size_t have = 0;
	char *end = NULL;
	while (!(end = strstr(buf, "\r\n\r\n"))) {
		int n = SSL_read(ssl, buf + have, (int)(sizeof(buf) - 1 - have));
		if (n <= 0)
			return -1;
		have += (size_t)n;
		buf[have] = '\0';
	}
	int status = atoi(buf + 9);
	const char *cl = strstr(buf, "Content-Length: ");
	long body = cl ? atol(cl + 16) : 0;
	long got = (long)(have - (size_t)(end + 4 - buf));
	while (got < body) {
		int n = SSL_read(ssl, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		got += n;
	}
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return fail("usage: static_client PORT PATH...");
	int hold = getenv("WEFT_HOLD") != NULL;
	if (hold) {
		char line[16];
		printf("ready\n");
		fflush(stdout);
		if (!fgets(line, sizeof(line), stdin))
			return fail("stdin closed before the go-ahead");
	}
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
	inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0)
		return fail("connect");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	if (!ssl || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1)
		return fail("TLS handshake");
	for (int i = 2; i < argc; i++) {
		char req[512];
		int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", argv[i]);
		if (SSL_write(ssl, req, len) != len)
			return fail("SSL_write");
		int status = read_response(ssl);
		if (status < 0)
			return fail("SSL_read");
		printf("%d\n", status);
		fflush(stdout);
	}
	SSL_shutdown(ssl);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	if (hold) {
		printf("holding\n");
		fflush(stdout);
		while (getchar() != EOF)
			;
	}
	return 0;
}
