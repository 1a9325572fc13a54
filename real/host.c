/*
 * host.c - implements host.h: one pass over a (possibly fake) /proc and
 * /sys that fills struct real_host.
 *
 * Every file is read whole with one open/read/close, so a pass over a host
 * with a few hundred processes stays in the microseconds per process; the
 * per-process files are read only for processes whose comm matches.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "ksm_sysfs.h"

int real_host_is_qemu(const char *comm)
{
	return !strcmp(comm, "qemu-kvm") || !strncmp(comm, "qemu-system-", 12) ||
	       !strncmp(comm, "qemu:", 5) || !strcmp(comm, "kvm");
}

/* A decimal number after blanks (async-signal-safe, unlike strtoll): its value, or -1. */
static int64_t decimal(const char *q)
{
	int64_t v = 0;

	while (*q == ' ' || *q == '\t')
		q++;
	if (*q < '0' || *q > '9')
		return -1;
	while (*q >= '0' && *q <= '9' && v < INT64_MAX / 10 - 9)
		v = v * 10 + (*q++ - '0');
	return v;
}

/* "Key:   123 kB" lines: the value of key, or -1.  Async-signal-safe. */
static int64_t field(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (!strncmp(p, key, klen) && p[klen] == ':')
			return decimal(p + klen + 1);
	}
	return -1;
}

/* meminfo's text into h's memory fields; false without MemTotal.  Async-signal-safe. */
static bool parse_meminfo(const char *buf, struct ctl_host *h)
{
	int64_t total, mfree, buffers, cached, avail, stotal, sfree;

	total = field(buf, "MemTotal");
	if (total <= 0)
		return false;
	mfree = field(buf, "MemFree");
	buffers = field(buf, "Buffers");
	cached = field(buf, "Cached");
	avail = field(buf, "MemAvailable");
	stotal = field(buf, "SwapTotal");
	sfree = field(buf, "SwapFree");
	h->mem_total_kib = (uint64_t)total;
	h->mem_free_kib = (uint64_t)((mfree > 0 ? mfree : 0) + (buffers > 0 ? buffers : 0) +
				     (cached > 0 ? cached : 0));
	/* Kernels before 3.14 have no MemAvailable: ksmtuned's free is the best guess. */
	h->mem_available_kib = avail >= 0 ? (uint64_t)avail : h->mem_free_kib;
	h->swap_total_kib = stotal > 0 ? (uint64_t)stotal : 0;
	h->swap_free_kib = sfree > 0 ? (uint64_t)sfree : 0;
	return true;
}

static int read_meminfo(const char *procfs, struct ctl_host *h, struct sp_err *err)
{
	char path[512], buf[8192];
	int rc;

	snprintf(path, sizeof(path), "%s/meminfo", procfs);
	rc = real_read_small(path, buf, sizeof(buf));
	if (rc < 0)
		return sp_err_set(err, SP_EIO, "cannot read %s: %s", path, strerror(-rc));
	if (!parse_meminfo(buf, h))
		return sp_err_set(err, SP_EIO, "%s: no MemTotal line", path);
	return 0;
}

int real_host_read_meminfo(const char *procfs, struct ctl_host *out, struct sp_err *err)
{
	memset(out, 0, sizeof(*out));
	out->page_size = 4096;
	return read_meminfo(procfs ? procfs : "/proc", out, err);
}

static int64_t counter(const struct real_ksm_state *ksm, int file)
{
	return ksm->present[file] ? ksm->v[file] : 0;
}

int64_t real_unshare_worst(const struct real_ksm_state *ksm, const struct ctl_host *mem)
{
	return (counter(ksm, REAL_KSM_PAGES_SHARING) + counter(ksm, REAL_KSM_KSM_ZERO_PAGES)) *
	       (mem->page_size ? mem->page_size : 4096);
}

int64_t real_unshare_reserve(const struct ctl_host *mem, int64_t reserve_mib)
{
	if (reserve_mib >= 0)
		return reserve_mib << 20;
	return (int64_t)mem->mem_total_kib * 1024 / 20;
}

int64_t real_unshare_headroom(const struct ctl_host *mem, int64_t reserve_mib)
{
	return ((int64_t)mem->mem_available_kib + (int64_t)mem->swap_free_kib) * 1024 -
	       real_unshare_reserve(mem, reserve_mib);
}

int real_unshare_check(const struct real_ksm_state *ksm, const struct ctl_host *mem, int64_t reserve_mib,
		       int64_t own_bytes, const char *what, struct sp_err *err)
{
	int64_t worst = real_unshare_worst(ksm, mem), room = real_unshare_headroom(mem, reserve_mib);
	char own[64] = "";

	if (own_bytes < 0)
		own_bytes = 0;
	if (room >= worst && room - worst >= own_bytes)
		return 0;
	if (own_bytes > 0)
		snprintf(own, sizeof(own), " on top of this run's %lld MiB",
			 (long long)((own_bytes + (1 << 20) - 1) >> 20));
	return sp_err_set(err, SP_ENOROOM,
			  "refused %s: a full unshare needs up to %lld MiB (pages_sharing %lld + ksm_zero_pages "
			  "%lld)%s, but MemAvailable + SwapFree - reserve leaves %lld MiB",
			  what, (long long)(worst >> 20), (long long)counter(ksm, REAL_KSM_PAGES_SHARING),
			  (long long)counter(ksm, REAL_KSM_KSM_ZERO_PAGES), own, (long long)(room >> 20));
}

void real_unshare_paths_init(struct real_unshare_paths *p, const char *ksm_dir, const char *procfs,
			     int64_t reserve_mib)
{
	snprintf(p->sharing, sizeof(p->sharing), "%s/pages_sharing", ksm_dir);
	snprintf(p->zero, sizeof(p->zero), "%s/ksm_zero_pages", ksm_dir);
	snprintf(p->meminfo, sizeof(p->meminfo), "%s/meminfo", procfs ? procfs : "/proc");
	p->reserve_mib = reserve_mib;
}

/* A counter of the KSM directory (async-signal-safe): true with it in st, or absent and absent_ok. */
static bool read_counter(const char *path, int file, bool absent_ok, struct real_ksm_state *st)
{
	char buf[32];
	int rc = real_read_small(path, buf, sizeof(buf));

	if (rc < 0)
		return rc == -ENOENT && absent_ok;
	st->v[file] = decimal(buf);
	st->present[file] = true;
	return st->v[file] >= 0;
}

bool real_unshare_allows_signal_safe(const struct real_unshare_paths *p)
{
	struct real_ksm_state st;
	struct ctl_host mem;
	char buf[8192];
	int e = errno;
	bool ok;

	memset(&st, 0, sizeof(st));
	memset(&mem, 0, sizeof(mem));
	mem.page_size = 4096;
	ok = read_counter(p->sharing, REAL_KSM_PAGES_SHARING, false, &st) &&
	     read_counter(p->zero, REAL_KSM_KSM_ZERO_PAGES, true, &st) &&
	     real_read_small(p->meminfo, buf, sizeof(buf)) == 0 && parse_meminfo(buf, &mem) &&
	     real_unshare_headroom(&mem, p->reserve_mib) >= real_unshare_worst(&st, &mem);
	errno = e;
	return ok;
}

static void read_guest(const char *procfs, long pid, struct real_guest *g)
{
	char path[512], buf[4096];

	g->rss_kib = 0;
	g->ksm_merging_pages = g->ksm_rmap_items = -1;
	snprintf(path, sizeof(path), "%s/%ld/status", procfs, pid);
	if (real_read_small(path, buf, sizeof(buf)) == 0) {
		int64_t v = field(buf, "VmRSS");

		g->rss_kib = v > 0 ? v : 0;
	}
	snprintf(path, sizeof(path), "%s/%ld/ksm_stat", procfs, pid);
	if (real_read_small(path, buf, sizeof(buf)) == 0) {
		/* "ksm_rmap_items 12" lines: no colon */
		const char *p = strstr(buf, "ksm_merging_pages ");

		if (p)
			g->ksm_merging_pages = strtoll(p + 18, NULL, 10);
		p = strstr(buf, "ksm_rmap_items ");
		if (p)
			g->ksm_rmap_items = strtoll(p + 15, NULL, 10);
	}
}

static uint32_t count_nodes(const char *sysfs)
{
	char path[512];
	DIR *d;
	struct dirent *e;
	uint32_t n = 0;

	snprintf(path, sizeof(path), "%s/devices/system/node", sysfs);
	d = opendir(path);
	if (!d)
		return 1;
	while ((e = readdir(d))) {
		char *end;

		if (!strncmp(e->d_name, "node", 4) && e->d_name[4] &&
		    (strtoul(e->d_name + 4, &end, 10), *end == '\0'))
			n++;
	}
	closedir(d);
	return n ? n : 1;
}

int real_host_read(const char *procfs, const char *sysfs, struct real_host *out, struct sp_err *err)
{
	DIR *d;
	struct dirent *e;
	pid_t ksmd = 0;
	int rc;

	if (!procfs)
		procfs = "/proc";
	if (!sysfs)
		sysfs = "/sys";
	memset(out, 0, sizeof(*out));
	out->mem.page_size = 4096;
	rc = read_meminfo(procfs, &out->mem, err);
	if (rc < 0)
		return rc;
	d = opendir(procfs);
	if (!d)
		return sp_err_set(err, SP_EIO, "cannot open %s: %s", procfs, strerror(errno));
	while ((e = readdir(d))) {
		char path[512], comm[64];
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%ld/comm", procfs, pid);
		if (real_read_small(path, comm, sizeof(comm)) < 0)
			continue; /* gone meanwhile */
		if (!strcmp(comm, "ksmd")) {
			ksmd = (pid_t)pid;
		} else if (real_host_is_qemu(comm)) {
			struct real_guest g = { .pid = (pid_t)pid };

			snprintf(g.comm, sizeof(g.comm), "%s", comm);
			read_guest(procfs, pid, &g);
			out->mem.committed_kib += (uint64_t)g.rss_kib;
			if (out->nguests < REAL_HOST_MAX_GUESTS)
				out->guests[out->nguests] = g;
			out->nguests++;
		}
	}
	closedir(d);
	out->mem.guests = out->nguests;
	out->ksmd_cpu_ns = -1;
	if (ksmd && real_proc_cpu_ns_at(procfs, ksmd, &out->ksmd_cpu_ns, NULL) < 0)
		out->ksmd_cpu_ns = -1;
	if (real_vmstat_cow_ksm_at(procfs, &out->cow_ksm, NULL) < 0 || out->cow_ksm < 0)
		out->cow_ksm = -1;
	out->numa_nodes = count_nodes(sysfs);
	return 0;
}
