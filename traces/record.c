/*
 * record.c - implements the live recorder of record.h.  LINUX ONLY: it reads
 * /proc/PID/{maps,pagemap,mem,cmdline}, /proc/kpageflags and uses
 * move_pages(2) and QMP over a unix socket.
 *
 * The idea.  Each target keeps two page-state arrays over its recorded pages
 * (the concatenation of its segments): `prev`, the state last written, and
 * `cur`, the snapshot being read.  A snapshot reads every target into `cur`
 * first; only when all are read whole are the pages whose state differs from
 * `prev` written as the snapshot's records (the format's deltas), and `cur`
 * becomes `prev`.  So a target that exits mid-snapshot (its pagemap or mem
 * read returns nothing: the mm is gone) ends the trace at the last whole
 * snapshot, and the file is committed or, with no snapshot, never appears.
 *
 * Invariants: memory is O(recorded pages) (at most TRACE_REC_MAX_PAGES per
 * target), never O(address space); records are written in (guest, page)
 * order because segments are sorted by first page number; a page mapped to
 * the shared zero page (or the huge zero page) is recorded as absent; the
 * keyed hash secret is never written anywhere.
 *
 * Notes.
 * - Reading: pagemap for a window of up to 512 pages, then one
 *   process_vm_readv(2) per run of present pages (measured 25-35% faster
 *   than pread() on /proc/PID/mem, bench/README.md; opts->proc_mem selects
 *   the latter).  A page unmapped between the two reads makes the pread
 *   fail with EIO; the run is then read page by page and the vanished pages
 *   count as absent.
 * - Without --pause a snapshot is fuzzy: the guest runs while it is read.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "pagehash.h"
#include "record.h"
#include "trace.h"

#define WINDOW 512              /* pages per pagemap read */
#define PM_PRESENT (1ull << 63)
#define PM_PFN_MASK ((1ull << 55) - 1)
#define KPF_THP_BIT 22
#define KPF_ZERO_PAGE_BIT 24

/* ---- small file helpers ----------------------------------------------- */

/* Reads a whole /proc file into a NUL-terminated heap buffer. */
static int slurp_fd(int fd, char **out, size_t *len)
{
	size_t cap = 8192, n = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t r;

	if (!buf)
		return SP_ENOMEM;
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE) {
		free(buf);
		return SP_EIO;
	}
	for (;;) {
		if (n == cap) {
			cap *= 2;
			nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return SP_ENOMEM;
			}
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return SP_EIO;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

static int slurp(const char *path, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc;

	if (fd < 0)
		return SP_EIO;
	rc = slurp_fd(fd, out, len);
	close(fd);
	return rc;
}

static int pid_missing_or_denied(pid_t pid, const char *what, struct sp_err *err)
{
	char path[64];
	struct stat st;
	int e = errno; /* of the failed open */

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	if (stat(path, &st) < 0)
		return sp_err_set(err, SP_EINVAL, "pid %d: no such process", (int)pid);
	errno = e;
	if (errno == EACCES || errno == EPERM)
		return sp_err_set(err, SP_EPERM,
				  "pid %d: cannot read its %s: permission denied (recording needs root)",
				  (int)pid, what);
	return sp_err_set(err, SP_EIO, "pid %d: cannot read its %s: %s", (int)pid, what,
			  strerror(errno));
}

/* ---- /proc/PID/maps ----------------------------------------------------- */

struct vma {
	uint64_t start, end;
	char perms[5];
	uint64_t inode;
	const char *name; /* points into the maps buffer; "" when anonymous */
};

/* Parses the next line of a maps buffer at *pos; false at the end. */
static bool next_vma(char **pos, struct vma *v)
{
	char *line = *pos, *nl, *p;
	unsigned long long s, e, off, ino;
	char perms[5];
	int n = 0;

	if (!*line)
		return false;
	nl = strchr(line, '\n');
	if (nl) {
		*nl = '\0';
		*pos = nl + 1;
	} else {
		*pos = line + strlen(line);
	}
	if (sscanf(line, "%llx-%llx %4s %llx %*s %llu %n", &s, &e, perms, &off, &ino, &n) < 5)
		return next_vma(pos, v);
	p = line + n;
	while (*p == ' ')
		p++;
	v->start = s;
	v->end = e;
	memcpy(v->perms, perms, 5);
	v->inode = ino;
	v->name = p;
	return true;
}

/* Writable private anonymous memory of a process: what the recorder records. */
static bool vma_eligible(const struct vma *v)
{
	return v->end - v->start <= TRACE_REC_MAX_MAPPING && v->perms[0] == 'r' && v->perms[1] == 'w' && v->perms[3] == 'p' && v->inode == 0 &&
	       (v->name[0] == '\0' || !strcmp(v->name, "[heap]") || !strncmp(v->name, "[stack", 6));
}

/* ---- targets ------------------------------------------------------------ */

static uint64_t page_size(void)
{
	return (uint64_t)sysconf(_SC_PAGESIZE);
}

static int check_readable(pid_t pid, struct sp_err *err)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pid_missing_or_denied(pid, "memory", err);
	close(fd);
	return 0;
}

static int add_segment(struct trace_rec_target *t, uint64_t va, uint64_t pages, uint64_t first,
		       struct sp_err *err)
{
	if (t->nseg == TRACE_REC_MAX_SEGMENTS)
		return sp_err_set(err, SP_ELIMIT, "pid %d: more than %d address clusters to record",
				  (int)t->pid, TRACE_REC_MAX_SEGMENTS);
	t->seg[t->nseg++] = (struct trace_rec_segment){ va, pages, first };
	if (first + pages > t->pages)
		t->pages = first + pages;
	return 0;
}

int trace_rec_target_process(struct trace_rec_target *t, pid_t pid, struct sp_err *err)
{
	char path[64], *maps, *pos;
	struct vma v;
	uint64_t ps = page_size(), cs = 0, ce = 0, total = 0;
	bool have = false;
	int rc;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	if (pid <= 0)
		return sp_err_set(err, SP_EINVAL, "pid %d: no such process", (int)pid);
	rc = check_readable(pid, err);
	if (rc < 0)
		return rc;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (slurp(path, &maps, NULL) < 0)
		return pid_missing_or_denied(pid, "mappings", err);
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	{
		char *comm;

		if (slurp(path, &comm, NULL) == 0) {
			comm[strcspn(comm, "\n")] = '\0';
			snprintf(t->name, sizeof(t->name), "%s-%d", comm[0] ? comm : "pid", (int)pid);
			free(comm);
		} else {
			snprintf(t->name, sizeof(t->name), "pid-%d", (int)pid);
		}
	}
	/* Clusters of eligible mappings less than TRACE_REC_CLUSTER_GAP apart. */
	pos = maps;
	rc = 0;
	while (rc == 0 && next_vma(&pos, &v)) {
		if (!vma_eligible(&v))
			continue;
		if (have && v.start - ce < TRACE_REC_CLUSTER_GAP) {
			ce = v.end;
			continue;
		}
		if (have) {
			rc = add_segment(t, cs, (ce - cs) / ps, total, err);
			total += (ce - cs) / ps;
		}
		cs = v.start;
		ce = v.end;
		have = true;
	}
	if (rc == 0 && have)
		rc = add_segment(t, cs, (ce - cs) / ps, total, err);
	free(maps);
	if (rc < 0)
		return rc;
	if (!have)
		return sp_err_set(err, SP_ELIMIT, "pid %d: no writable anonymous memory to record",
				  (int)pid);
	if (t->pages > TRACE_REC_MAX_PAGES)
		return sp_err_set(err, SP_ELIMIT, "pid %d: %" PRIu64 " pages to record (at most %llu)",
				  (int)pid, t->pages, TRACE_REC_MAX_PAGES);
	return 0;
}

int trace_rec_parse_qemu_mem(const char *s, uint64_t *bytes)
{
	const char *p = s;
	char *end;
	unsigned long long v;
	double mult = 1 << 20;

	if (!strncmp(p, "size=", 5))
		p += 5;
	else if (!isdigit((unsigned char)*p))
		return SP_EINVAL;
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno || end == p)
		return SP_EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K': mult = 1024.0; end++; break;
	case 'M': mult = 1 << 20; end++; break;
	case 'G': mult = 1 << 30; end++; break;
	case 'T': mult = 1099511627776.0; end++; break;
	case 'B': mult = 1; end++; break;
	default: break;
	}
	if (toupper((unsigned char)*end) == 'B' && mult > 1)
		end++;
	if (*end && *end != ',')
		return SP_EINVAL;
	if ((double)v * mult > 18e18)
		return SP_EINVAL;
	*bytes = (uint64_t)((double)v * mult);
	return 0;
}

/* "key=VAL," or the first bare value of a QEMU option string, into out. */
static bool qemu_opt(const char *opts, const char *key, char *out, size_t len)
{
	size_t kl = key ? strlen(key) : 0;
	const char *p = opts;

	while (p && *p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if ((!key && p == opts && !memchr(p, '=', n)) ||
		    (key && n > kl && !strncmp(p, key, kl) && p[kl] == '=')) {
			const char *val = key ? p + kl + 1 : p;
			size_t vl = key ? n - kl - 1 : n;

			if (vl >= len)
				vl = len - 1;
			memcpy(out, val, vl);
			out[vl] = '\0';
			return true;
		}
		p = e ? e + 1 : NULL;
	}
	return false;
}

/* QEMU's command line: the guest's name (-name), RAM size (-m), QMP socket (-qmp) and machine (-M). */
static int qemu_cmdline(struct trace_rec_target *t, pid_t pid, uint64_t *mem, char *machine,
			size_t machine_len, struct sp_err *err)
{
	char path[64], *cmd, buf[256];
	char *args[4096];
	size_t len, nargs = 0;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (slurp(path, &cmd, &len) < 0)
		return pid_missing_or_denied(pid, "command line", err);
	for (size_t i = 0; i < len && nargs < 4096; i += strlen(cmd + i) + 1)
		args[nargs++] = cmd + i;
	snprintf(t->name, sizeof(t->name), "qemu-%d", (int)pid);
	for (size_t i = 0; i + 1 < nargs; i++) {
		const char *o = args[i], *a = args[i + 1];

		if (o[0] == '-' && o[1] == '-')
			o++;
		if (!strcmp(o, "-m")) {
			if (trace_rec_parse_qemu_mem(a, mem) < 0) {
				int rc = sp_err_set(err, SP_EINVAL, "pid %d: cannot parse QEMU option -m %s",
						    (int)pid, a);

				free(cmd);
				return rc;
			}
		} else if (!strcmp(o, "-name")) {
			if (!qemu_opt(a, "guest", buf, sizeof(buf)) && !qemu_opt(a, NULL, buf, sizeof(buf)))
				continue;
			if (buf[0])
				snprintf(t->name, sizeof(t->name), "%s", buf);
		} else if (!strcmp(o, "-qmp")) {
			if (!strncmp(a, "unix:", 5)) {
				snprintf(t->qmp, sizeof(t->qmp), "%s", a + 5);
				t->qmp[strcspn(t->qmp, ",")] = '\0';
			}
		} else if (!strcmp(o, "-M") || !strcmp(o, "-machine")) {
			if (!qemu_opt(a, "type", machine, machine_len))
				qemu_opt(a, NULL, machine, machine_len);
		}
	}
	free(cmd);
	return 0;
}

/* Guest RAM: an anonymous rw mapping of exactly mem bytes (else the smallest one at most 4 MiB
 * larger: alignment slack). */
static int find_guest_ram(const struct trace_rec_target *t, pid_t pid, uint64_t mem, uint64_t *ram_va,
			  struct sp_err *err)
{
	char path[64], *maps, *pos;
	struct vma v;
	int best_rank = 0;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	if (slurp(path, &maps, NULL) < 0)
		return pid_missing_or_denied(pid, "mappings", err);
	pos = maps;
	while (next_vma(&pos, &v)) {
		uint64_t sz = v.end - v.start;
		int rank;

		if (v.perms[0] != 'r' || v.perms[1] != 'w' || sz < mem || sz > mem + (4u << 20))
			continue;
		rank = (v.inode == 0 && !v.name[0]) ? 4 : 2; /* anonymous first, then memfd etc. */
		if (sz == mem)
			rank++;
		if (rank > best_rank) {
			best_rank = rank;
			*ram_va = v.start;
		}
	}
	free(maps);
	if (!best_rank)
		return sp_err_set(err, SP_ENOTSUP,
				  "pid %d (%s): no guest-RAM mapping of %" PRIu64 " MiB found", (int)pid,
				  t->name, mem >> 20);
	return 0;
}

int trace_rec_target_qemu(struct trace_rec_target *t, pid_t pid, struct sp_err *err)
{
	char machine[64] = "";
	uint64_t ps = page_size(), mem = 128ull << 20, ram_va = 0, lowmem;
	int rc;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	t->qemu = true;
	if (pid <= 0)
		return sp_err_set(err, SP_EINVAL, "pid %d: no such process", (int)pid);
	rc = check_readable(pid, err);
	if (rc == 0)
		rc = qemu_cmdline(t, pid, &mem, machine, sizeof(machine), err);
	if (rc == 0)
		rc = find_guest_ram(t, pid, mem, &ram_va, err);
	if (rc < 0)
		return rc;
	/* RAM above the low-memory limit sits at 4 GiB in guest-physical space. */
	if (strstr(machine, "q35"))
		lowmem = mem >= 0xb0000000ull ? 0x80000000ull : mem;
	else
		lowmem = mem >= 0xe0000000ull ? 0xc0000000ull : mem;
	rc = add_segment(t, ram_va, lowmem / ps, 0, err);
	if (rc == 0 && mem > lowmem)
		rc = add_segment(t, ram_va + lowmem, (mem - lowmem) / ps, (4ull << 30) / ps, err);
	if (rc == 0 && t->pages > TRACE_REC_MAX_PAGES)
		rc = sp_err_set(err, SP_ELIMIT, "pid %d: guest of %" PRIu64 " pages (at most %llu)",
				(int)pid, t->pages, TRACE_REC_MAX_PAGES);
	return rc;
}

int trace_rec_find_qemu(pid_t *out, int max, struct sp_err *err)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!d)
		return sp_err_set(err, SP_EIO, "/proc: %s", strerror(errno));
	while ((de = readdir(d)) != NULL) {
		char path[300], exe[PATH_MAX];
		const char *base;
		ssize_t l;
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
		l = readlink(path, exe, sizeof(exe) - 1);
		if (l <= 0)
			continue;
		exe[l] = '\0';
		base = strrchr(exe, '/');
		base = base ? base + 1 : exe;
		if (strncmp(base, "qemu-system-", 12))
			continue;
		if (n < max)
			out[n] = (pid_t)pid;
		n++;
	}
	closedir(d);
	/* readdir order is not numeric: sort, so guests come in pid order. */
	for (int i = 1; i < n && i < max; i++) {
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			pid_t x = out[j];

			out[j] = out[j - 1];
			out[j - 1] = x;
		}
	}
	return n < max ? n : max;
}

/* ---- QMP ---------------------------------------------------------------- */

/* Reads lines until one holds "return" (0) or "error" (SP_EIO). */
static int qmp_wait(int fd, const char *sock, const char *cmd, struct sp_err *err)
{
	char buf[8192];
	size_t n = 0;

	for (;;) {
		ssize_t r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		char *nl;

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return sp_err_set(err, SP_EIO, "QMP %s: no answer to '%s'%s%s", sock, cmd,
					  r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
		n += (size_t)r;
		buf[n] = '\0';
		while ((nl = strchr(buf, '\n')) != NULL) {
			*nl = '\0';
			if (strstr(buf, "\"return\"") || strstr(buf, "\"QMP\""))
				return 0;
			if (strstr(buf, "\"error\""))
				return sp_err_set(err, SP_EIO, "QMP %s: '%s' failed: %.200s", sock, cmd, buf);
			n -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, n + 1);
		}
		if (n == sizeof(buf) - 1)
			n = 0; /* an overlong event: drop it */
	}
}

static int qmp_send(int fd, const char *sock, const char *cmd, struct sp_err *err)
{
	char line[128];
	int len = snprintf(line, sizeof(line), "{\"execute\":\"%s\"}\r\n", cmd);

	if (send(fd, line, (size_t)len, MSG_NOSIGNAL) != len)
		return sp_err_set(err, SP_EIO, "QMP %s: sending '%s': %s", sock, cmd, strerror(errno));
	return qmp_wait(fd, sock, cmd, err);
}

int trace_rec_qmp(const char *sock, const char *command, struct sp_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 10 };
	int fd, rc;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return sp_err_set(err, SP_EINVAL, "QMP socket path too long: %s", sock);
	strcpy(sa.sun_path, sock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return sp_err_set(err, SP_EIO, "QMP socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = sp_err_set(err, errno == EACCES ? SP_EPERM : SP_EIO, "QMP %s: connect: %s", sock,
				strerror(errno));
		close(fd);
		return rc;
	}
	rc = qmp_wait(fd, sock, "greeting", err);
	if (rc == 0)
		rc = qmp_send(fd, sock, "qmp_capabilities", err);
	if (rc == 0)
		rc = qmp_send(fd, sock, command, err);
	close(fd);
	return rc;
}

/* ---- reading one snapshot ----------------------------------------------- */

struct pstate {
	struct sp_fp fp;
	uint16_t node;
	uint8_t flags;
};

struct tstate {
	const struct trace_rec_target *t;
	int maps_fd, pagemap_fd, mem_fd;
	uint64_t npages;        /* recorded pages: sum of segment lengths */
	struct pstate *prev, *cur;
};

struct recorder {
	const struct trace_rec_opts *o;
	struct trace_hasher hasher;
	uint64_t ps;
	uint64_t zero_pfn;
	int kpf_fd;
	bool numa;             /* more than one node: ask move_pages per page */
	uint8_t *buf;          /* WINDOW pages */
	uint64_t pm[WINDOW];
	uint64_t kf[WINDOW];
	void *addr[WINDOW];
	int status[WINDOW];
	uint64_t bytes;
	double seconds;
};

#define GONE 1 /* internal: the target's memory is gone */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* PFN of this process's shared zero page: read (never write) a fresh anonymous page. */
static int find_zero_pfn(uint64_t *out, struct sp_err *err)
{
	uint64_t ps = page_size(), e = 0;
	volatile char *p = mmap(NULL, ps, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int fd;
	char c;

	if (p == MAP_FAILED)
		return sp_err_set(err, SP_ENOMEM, "mmap: %s", strerror(errno));
	c = p[0];
	(void)c;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / ps * 8)) != 8) {
		if (fd >= 0)
			close(fd);
		munmap((void *)p, ps);
		return sp_err_set(err, SP_EIO, "/proc/self/pagemap: %s", strerror(errno));
	}
	close(fd);
	munmap((void *)p, ps);
	*out = e & PM_PFN_MASK;
	if (!(e & PM_PRESENT) || *out == 0)
		return sp_err_set(err, SP_EPERM,
				  "page frame numbers are hidden from this user: recording needs root "
				  "(CAP_SYS_ADMIN) for /proc/PID/pagemap PFNs and /proc/kpageflags");
	return 0;
}

static int open_failed(const struct trace_rec_target *t, const char *what, struct sp_err *err)
{
	if (errno == ESRCH)
		return sp_err_set(err, SP_EIO, "pid %d exited before the first snapshot was complete; "
				  "no trace written", (int)t->pid);
	return pid_missing_or_denied(t->pid, what, err);
}

static int tstate_open(struct tstate *s, const struct trace_rec_target *t, struct sp_err *err)
{
	char path[64];

	memset(s, 0, sizeof(*s));
	s->t = t;
	s->maps_fd = s->pagemap_fd = s->mem_fd = -1;
	for (uint32_t i = 0; i < t->nseg; i++)
		s->npages += t->seg[i].pages;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)t->pid);
	s->maps_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->maps_fd < 0)
		return open_failed(t, "mappings", err);
	snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)t->pid);
	s->pagemap_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->pagemap_fd < 0)
		return open_failed(t, "pagemap", err);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)t->pid);
	s->mem_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->mem_fd < 0)
		return open_failed(t, "memory", err);
	s->prev = calloc(s->npages, sizeof(*s->prev));
	s->cur = calloc(s->npages, sizeof(*s->cur));
	if (!s->prev || !s->cur)
		return sp_err_set(err, SP_ENOMEM, "pid %d: out of memory for %" PRIu64 " pages",
				  (int)t->pid, s->npages);
	return 0;
}

static void tstate_close(struct tstate *s)
{
	if (s->maps_fd >= 0)
		close(s->maps_fd);
	if (s->pagemap_fd >= 0)
		close(s->pagemap_fd);
	if (s->mem_fd >= 0)
		close(s->mem_fd);
	free(s->prev);
	free(s->cur);
}

/* Reads n pages at va into buf; returns pages read whole (a page that vanished reads as absent). */
static int read_run(struct recorder *rc, struct tstate *s, uint64_t va, uint64_t n,
		    uint8_t *buf, bool *ok)
{
	ssize_t r;

	if (!rc->o->proc_mem) {
		struct iovec local = { buf, n * rc->ps }, remote = { (void *)(uintptr_t)va, n * rc->ps };

		r = process_vm_readv(s->t->pid, &local, 1, &remote, 1, 0);
		if (r < 0 && errno == ESRCH)
			return GONE;
		if (r < 0)
			r = -2; /* EFAULT etc.: page by page below */
	} else {
		r = pread(s->mem_fd, buf, n * rc->ps, (off_t)va);
	}

	if (r == (ssize_t)(n * rc->ps)) {
		for (uint64_t i = 0; i < n; i++)
			ok[i] = true;
		return 0;
	}
	if (r == 0 || (r < 0 && errno == ESRCH))
		return GONE;
	/* Page by page (pread: EIO on a page unmapped meanwhile). */
	for (uint64_t i = 0; i < n; i++) {
		r = pread(s->mem_fd, buf + i * rc->ps, rc->ps, (off_t)(va + i * rc->ps));
		if (r == 0 || (r < 0 && errno == ESRCH))
			return GONE;
		ok[i] = r == (ssize_t)rc->ps;
	}
	return 0;
}

/* Reads kpageflags for the present entries of pm[0..n) into kf, coalescing PFN runs. */
static int read_kflags(struct recorder *rc, uint64_t n, struct sp_err *err)
{
	uint64_t i = 0;

	while (i < n) {
		uint64_t pfn, j;

		if (!(rc->pm[i] & PM_PRESENT)) {
			rc->kf[i++] = 0;
			continue;
		}
		pfn = rc->pm[i] & PM_PFN_MASK;
		for (j = i + 1; j < n && (rc->pm[j] & PM_PRESENT) &&
				(rc->pm[j] & PM_PFN_MASK) == pfn + (j - i); j++)
			;
		if (pread(rc->kpf_fd, rc->kf + i, (j - i) * 8, (off_t)(pfn * 8)) != (ssize_t)((j - i) * 8))
			return sp_err_set(err, SP_EIO, "/proc/kpageflags: %s", strerror(errno));
		i = j;
	}
	return 0;
}

/*
 * Reads the window [va, va + n pages) into st[0..n): eligible marks the pages
 * that belong to recorded mappings now.
 */
static int read_window(struct recorder *rc, struct tstate *s, uint64_t va, uint64_t n,
		       const bool *eligible, struct pstate *st, struct sp_err *err)
{
	bool ok[WINDOW];
	ssize_t r;
	uint64_t i;
	int rr;

	memset(st, 0, n * sizeof(*st));
	r = pread(s->pagemap_fd, rc->pm, n * 8, (off_t)(va / rc->ps * 8));
	if (r == 0 || (r < 0 && errno == ESRCH))
		return GONE;
	if (r != (ssize_t)(n * 8))
		return sp_err_set(err, SP_EIO, "pid %d: pagemap: %s", (int)s->t->pid,
				  r < 0 ? strerror(errno) : "short read");
	for (i = 0; i < n; i++) {
		if (!eligible[i])
			rc->pm[i] = 0;
	}
	rr = read_kflags(rc, n, err);
	if (rr < 0)
		return rr;
	for (i = 0; i < n; i++) {
		if ((rc->pm[i] & PM_PRESENT) &&
		    ((rc->pm[i] & PM_PFN_MASK) == rc->zero_pfn || (rc->kf[i] >> KPF_ZERO_PAGE_BIT & 1)))
			rc->pm[i] = 0; /* the shared zero page costs nothing: absent */
	}
	for (i = 0; i < n;) {
		uint64_t j;

		if (!(rc->pm[i] & PM_PRESENT)) {
			i++;
			continue;
		}
		for (j = i + 1; j < n && (rc->pm[j] & PM_PRESENT); j++)
			;
		rr = read_run(rc, s, va + i * rc->ps, j - i, rc->buf + i * rc->ps, ok + i);
		if (rr)
			return rr;
		for (uint64_t k = i; k < j; k++) {
			bool zero;

			if (!ok[k]) {
				rc->pm[k] = 0;
				continue;
			}
			st[k].fp = trace_page_fp(&rc->hasher, rc->buf + k * rc->ps, rc->ps, &zero);
			st[k].flags = TRACE_PRESENT | (zero ? TRACE_ZERO : 0) |
				      ((rc->kf[k] >> KPF_THP_BIT & 1) ? TRACE_HUGE : 0);
		}
		rc->bytes += (j - i) * rc->ps;
		i = j;
	}
	if (rc->numa) {
		unsigned long cnt = 0;

		for (i = 0; i < n; i++) {
			if (st[i].flags & TRACE_PRESENT)
				rc->addr[cnt++] = (void *)(uintptr_t)(va + i * rc->ps);
		}
		if (cnt && move_pages(s->t->pid, cnt, rc->addr, NULL, rc->status, 0) == 0) {
			cnt = 0;
			for (i = 0; i < n; i++) {
				if (st[i].flags & TRACE_PRESENT) {
					int node = rc->status[cnt++];

					if (node >= 0 && node <= TRACE_MAX_NODE)
						st[i].node = (uint16_t)node;
				}
			}
		}
	}
	return 0;
}

/* Eligible intervals of a process now (sorted): [lo, hi) pairs, from its maps. */
struct ranges {
	uint64_t *v;
	size_t n, cap;
};

static int load_ranges(struct tstate *s, struct ranges *rg, struct sp_err *err)
{
	char *maps, *pos;
	struct vma v;
	int rc;

	rg->n = 0;
	rc = slurp_fd(s->maps_fd, &maps, NULL);
	if (rc == SP_ENOMEM)
		return sp_err_set(err, rc, "out of memory");
	if (rc < 0)
		return errno == ESRCH || errno == ENOENT ? GONE
			: sp_err_set(err, SP_EIO, "pid %d: maps: %s", (int)s->t->pid, strerror(errno));
	pos = maps;
	while (next_vma(&pos, &v)) {
		if (!vma_eligible(&v))
			continue;
		if (rg->n + 2 > rg->cap) {
			size_t cap = rg->cap ? rg->cap * 2 : 256;
			uint64_t *nv = realloc(rg->v, cap * sizeof(*nv));

			if (!nv) {
				free(maps);
				return sp_err_set(err, SP_ENOMEM, "out of memory");
			}
			rg->v = nv;
			rg->cap = cap;
		}
		rg->v[rg->n++] = v.start;
		rg->v[rg->n++] = v.end;
	}
	free(maps);
	return rg->n == 0 ? GONE : 0; /* a live process always has a stack */
}

static int read_target(struct recorder *rc, struct tstate *s, struct ranges *rg,
		       struct sp_err *err)
{
	const struct trace_rec_target *t = s->t;
	uint64_t base = 0;
	bool eligible[WINDOW];
	int r;

	if (!t->qemu) {
		r = load_ranges(s, rg, err);
		if (r)
			return r;
	}
	for (uint32_t g = 0; g < t->nseg; g++) {
		const struct trace_rec_segment *sg = &t->seg[g];
		size_t ri = 0;

		for (uint64_t off = 0; off < sg->pages; off += WINDOW) {
			uint64_t n = sg->pages - off < WINDOW ? sg->pages - off : WINDOW;
			uint64_t va = sg->va + off * rc->ps;

			if (t->qemu) {
				memset(eligible, 1, sizeof(eligible));
			} else {
				bool any = false;

				for (uint64_t i = 0; i < n; i++) {
					uint64_t a = va + i * rc->ps;

					while (ri < rg->n && rg->v[ri + 1] <= a)
						ri += 2;
					eligible[i] = ri < rg->n && rg->v[ri] <= a;
					any |= eligible[i];
				}
				if (!any) {
					memset(s->cur + base + off, 0, n * sizeof(*s->cur));
					continue;
				}
			}
			r = read_window(rc, s, va, n, eligible, s->cur + base + off, err);
			if (r)
				return r;
		}
		base += sg->pages;
	}
	return 0;
}

static bool pstate_eq(const struct pstate *a, const struct pstate *b)
{
	return a->flags == b->flags && a->node == b->node && sp_fp_eq(a->fp, b->fp);
}

static int write_deltas(struct trace_writer *w, uint32_t guest, struct tstate *s,
			struct sp_err *err)
{
	uint64_t base = 0;

	for (uint32_t g = 0; g < s->t->nseg; g++) {
		const struct trace_rec_segment *sg = &s->t->seg[g];

		for (uint64_t i = 0; i < sg->pages; i++) {
			struct pstate *c = &s->cur[base + i];
			struct trace_record rec;
			int rc;

			if (pstate_eq(c, &s->prev[base + i]))
				continue;
			rec.guest = guest;
			rec.page = sg->first_page + i;
			rec.flags = c->flags;
			rec.node = c->node;
			rec.fp = c->fp;
			rc = trace_writer_record(w, &rec, err);
			if (rc < 0)
				return rc;
		}
		base += sg->pages;
	}
	{
		struct pstate *x = s->prev;

		s->prev = s->cur;
		s->cur = x;
	}
	return 0;
}

/* ---- the recording ------------------------------------------------------ */

static bool want_stop(const struct trace_rec_opts *o)
{
	return o->stop && o->stop(o->arg);
}

static void sleep_until(double t, const struct trace_rec_opts *o)
{
	for (;;) {
		double left = t - now_s();
		struct timespec ts;

		if (left <= 0 || want_stop(o))
			return;
		if (left > 0.05)
			left = 0.05; /* wake up to notice stop() */
		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		nanosleep(&ts, NULL);
	}
}

static void describe(struct trace_header *h, const struct trace_rec_target *t, uint32_t n,
		     const struct trace_rec_opts *o, uint64_t ps)
{
	char host[128] = "?";
	size_t len;

	gethostname(host, sizeof(host) - 1);
	len = (size_t)snprintf(h->desc, sizeof(h->desc),
			       "recorded by sim trace record on %s, interval %" PRIu64 " ms, %s, %s;",
			       host, o->interval_ms, o->pause ? "guests paused" : "fuzzy",
			       o->unkeyed ? "unkeyed" : "keyed");
	for (uint32_t i = 0; i < n && len < sizeof(h->desc) - 1; i++) {
		len += (size_t)snprintf(h->desc + len, sizeof(h->desc) - len, " %s: pid %d%s",
					t[i].name, (int)t[i].pid, t[i].qemu ? ", page = guest frame" : "");
		for (uint32_t g = 0; g < t[i].nseg && len < sizeof(h->desc) - 1; g++)
			len += (size_t)snprintf(h->desc + len, sizeof(h->desc) - len,
						", va 0x%" PRIx64 " -> page %" PRIu64, t[i].seg[g].va,
						t[i].seg[g].first_page);
		if (len < sizeof(h->desc) - 1)
			len += (size_t)snprintf(h->desc + len, sizeof(h->desc) - len, ";");
	}
	(void)ps;
	if (len >= sizeof(h->desc) - 1)
		strcpy(h->desc + sizeof(h->desc) - 5, "...");
}

/* The recorder: its checks, /proc/kpageflags, the read window, the hasher and every target opened. */
static int recorder_open(struct recorder *rc, const struct trace_rec_target *targets, uint32_t n,
			 struct tstate **st, struct sp_err *err)
{
	const struct trace_rec_opts *o = rc->o;
	int r;

	if (n < 1 || n > TRACE_MAX_GUESTS)
		return sp_err_set(err, SP_EINVAL, "%u targets (1..%d allowed)", n, TRACE_MAX_GUESTS);
	rc->ps = page_size();
	for (uint32_t i = 0; i < n; i++) {
		if (o->pause && targets[i].qemu && !targets[i].qmp[0])
			return sp_err_set(err, SP_ENOTSUP,
					  "--pause: guest %s (pid %d) has no QMP socket: start QEMU "
					  "with -qmp unix:PATH,server=on,wait=off",
					  targets[i].name, (int)targets[i].pid);
	}
	r = find_zero_pfn(&rc->zero_pfn, err);
	if (r < 0)
		return r;
	rc->kpf_fd = open("/proc/kpageflags", O_RDONLY | O_CLOEXEC);
	if (rc->kpf_fd < 0)
		return sp_err_set(err, errno == EACCES || errno == EPERM ? SP_EPERM : SP_EIO,
				  "/proc/kpageflags: %s (recording needs root)", strerror(errno));
	rc->numa = numa_available() >= 0 && numa_max_node() > 0;
	rc->buf = aligned_alloc(4096, WINDOW * rc->ps);
	*st = calloc(n, sizeof(**st));
	for (uint32_t i = 0; *st && i < n; i++)
		(*st)[i].maps_fd = (*st)[i].pagemap_fd = (*st)[i].mem_fd = -1;
	if (!rc->buf || !*st)
		return sp_err_set(err, SP_ENOMEM, "out of memory");
	r = trace_hasher_init(&rc->hasher, !o->unkeyed, err);
	for (uint32_t i = 0; r == 0 && i < n; i++)
		r = tstate_open(&(*st)[i], &targets[i], err);
	return r;
}

/* The header: one guest per target, the recording's settings in the description. */
static int record_header(struct trace_header *h, const struct recorder *rc,
			 const struct trace_rec_target *targets, uint32_t n, struct sp_err *err)
{
	const struct trace_rec_opts *o = rc->o;
	int r = trace_header_init(h, n, err);

	if (r < 0)
		return r;
	h->page_size = (uint32_t)rc->ps;
	h->fp_algo = TRACE_FP_XXH3_128;
	h->flags = (o->unkeyed ? 0 : TRACE_F_KEYED) | (o->pause ? 0 : TRACE_F_FUZZY);
	for (uint32_t i = 0; i < n; i++) {
		snprintf(h->guests[i].name, sizeof(h->guests[i].name), "%s", targets[i].name);
		h->guests[i].pages = targets[i].pages;
	}
	describe(h, targets, n, o, rc->ps);
	return 0;
}

/*
 * Reads every target for one snapshot, a QEMU guest paused around its read
 * with --pause: 0, GONE when a target exited or a stop came (the snapshot is
 * dropped), or an error.
 */
static int read_snapshot(struct recorder *rc, struct tstate *st, const struct trace_rec_target *targets,
			 uint32_t n, struct ranges *rg, struct sp_err *err)
{
	const struct trace_rec_opts *o = rc->o;

	for (uint32_t i = 0; i < n; i++) {
		bool paused = false;
		double t_read;
		int r;

		if (o->pause && targets[i].qemu) {
			r = trace_rec_qmp(targets[i].qmp, "stop", err);
			if (r < 0)
				return r;
			paused = true;
		}
		t_read = now_s();
		r = read_target(rc, &st[i], rg, err);
		rc->seconds += now_s() - t_read;
		if (paused) {
			int c = trace_rec_qmp(targets[i].qmp, "cont", err);

			if (r == 0 && c < 0)
				r = c;
		}
		if (r != 0)
			return r;
		if (want_stop(o))
			return GONE; /* interrupted mid-snapshot: drop it */
	}
	return 0;
}

/* Snapshots every interval_ms until count, a stop, or a target's exit. */
static int record_loop(struct recorder *rc, struct tstate *st, const struct trace_rec_target *targets,
		       uint32_t n, struct trace_writer *w, struct trace_rec_result *res,
		       struct sp_err *err)
{
	const struct trace_rec_opts *o = rc->o;
	struct ranges rg = { 0 };
	double t0 = now_s();
	uint64_t last_ms = 0;
	int r = 0;

	for (uint64_t k = 0; o->count == 0 || k < o->count; k++) {
		uint64_t ms;

		if (k > 0)
			sleep_until(t0 + (double)(k * o->interval_ms) / 1000.0, o);
		if (want_stop(o))
			break;
		ms = (uint64_t)((now_s() - t0) * 1000.0);
		if (k > 0 && ms <= last_ms)
			ms = last_ms + 1;
		r = read_snapshot(rc, st, targets, n, &rg, err);
		if (r == GONE) {
			res->target_exited = !want_stop(o);
			r = 0;
			break;
		}
		if (r == 0)
			r = trace_writer_begin_snapshot(w, ms, err);
		for (uint32_t i = 0; i < n && r == 0; i++)
			r = write_deltas(w, i, &st[i], err);
		if (r < 0)
			break;
		last_ms = ms;
		res->snapshots++;
		if (o->progress)
			o->progress(o->arg, res->snapshots, rc->bytes);
	}
	free(rg.v);
	return r;
}

int trace_record(const char *path, const struct trace_rec_target *targets, uint32_t ntargets,
		 const struct trace_rec_opts *o, struct trace_rec_result *res, struct sp_err *err)
{
	struct recorder rc = { .o = o, .kpf_fd = -1 };
	struct trace_header h = { 0 };
	struct trace_writer *w = NULL;
	struct tstate *st = NULL;
	int r;

	memset(res, 0, sizeof(*res));
	r = recorder_open(&rc, targets, ntargets, &st, err);
	if (r == 0)
		r = record_header(&h, &rc, targets, ntargets, err);
	if (r == 0)
		r = trace_writer_open(&w, path, &h, o->mode, err);
	if (r == 0)
		r = record_loop(&rc, st, targets, ntargets, w, res, err);
	if (r == 0 && res->snapshots == 0)
		r = sp_err_set(err, SP_EIO, "%s: %s before the first snapshot was complete; no trace written",
			       path, res->target_exited || !want_stop(o) ? "a target exited" : "interrupted");
	if (r == 0) {
		r = trace_writer_commit(w, err);
		w = NULL;
	}
	if (w)
		trace_writer_abort(w);
	res->bytes_read = rc.bytes;
	res->read_seconds = rc.seconds;
	for (uint32_t i = 0; st && i < ntargets; i++)
		tstate_close(&st[i]);
	free(st);
	free(rc.buf);
	if (rc.kpf_fd >= 0)
		close(rc.kpf_fd);
	trace_hasher_release(&rc.hasher);
	trace_header_release(&h);
	return r;
}
