/*
 * cmd_record.c - `sim trace record` (live processes and QEMU guests, Linux
 * only) and `sim trace import` (QEMU ELF memory dumps): the command-line
 * side of traces/record.c and traces/import_elf.c.
 *
 * Both write the trace mode 0600 (it describes someone's memory) and keyed
 * with a per-trace random secret unless --no-salt.  Ctrl-C (SIGINT/SIGTERM)
 * during a recording ends it cleanly at the last whole snapshot.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "import_elf.h"
#include "record.h"
#include "trace.h"

#define MAX_TARGETS 256

/* ---- record ------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static bool rec_stop(void *arg)
{
	(void)arg;
	return interrupted != 0;
}

struct rec_progress {
	struct cli_progress bar;
	uint64_t count;
};

static void rec_progress(void *arg, uint64_t done, uint64_t bytes)
{
	struct rec_progress *p = arg;
	char detail[96];

	if (p->count)
		snprintf(detail, sizeof(detail), "snapshot %llu/%llu, %.0f MiB read",
			 (unsigned long long)done, (unsigned long long)p->count, (double)bytes / (1 << 20));
	else
		snprintf(detail, sizeof(detail), "snapshot %llu, %.0f MiB read (Ctrl-C ends)",
			 (unsigned long long)done, (double)bytes / (1 << 20));
	cli_progress_update(&p->bar, p->count ? (double)done / (double)p->count : 0.0, detail);
	if (!p->count)
		p->bar.last_shown = -1; /* redraw every snapshot */
}

static void record_usage(FILE *f)
{
	fputs("usage: sim trace record -o FILE (--pid PID... | --qemu) [options]\n"
	      "\n"
	      "Records live memory as a trace: every --interval-ms, a snapshot of every present\n"
	      "page of each target (XXH3-128 fingerprint, zero flag, transparent-huge-page flag,\n"
	      "NUMA node).  Pages mapped to the host's shared zero page count as absent.  Linux,\n"
	      "root (pagemap frame numbers, /proc/kpageflags, other processes' memory).\n"
	      "\n"
	      "  -o, --output FILE    trace to write (mode 0600; replaced only when complete)\n"
	      "  --pid PID            record this process (repeatable): its writable private\n"
	      "                       anonymous memory; page = virtual address / page size within\n"
	      "                       clusters of mappings (the trace description lists them)\n"
	      "  --qemu               record every running qemu-system-* guest (with --pid: those\n"
	      "                       QEMU processes): its RAM, page = guest-physical frame\n"
	      "                       number, named after -name (or qemu-PID)\n"
	      "  --interval-ms N      time between snapshot starts (default 1000)\n"
	      "  --count N            snapshots (default 10; 0 = until Ctrl-C)\n"
	      "  --pause              stop each QEMU guest over QMP (-qmp unix:PATH) while it is\n"
	      "                       read, for consistent snapshots; without it they are fuzzy\n"
	      "  --no-salt            unkeyed fingerprints (plain XXH3-128): comparable across\n"
	      "                       traces and with other tools, but anyone holding a page's\n"
	      "                       content can test whether the trace contains it\n"
	      "  --reader vm_readv|mem  read pages with process_vm_readv(2) (default) or pread\n"
	      "                       on /proc/PID/mem (bench/bench_record.sh compares them)\n"
	      "\n"
	      "A target that exits ends the trace at the last whole snapshot.  Exit codes: 1\n"
	      "failure, 2 usage (incl. no such PID), 4 not root / no QEMU / no QMP socket.\n",
	      f);
}

int cmd_trace_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "pid", required_argument, NULL, 'p' },
		{ "qemu", no_argument, NULL, 'q' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "pause", no_argument, NULL, 'P' },
		{ "no-salt", no_argument, NULL, 'S' },
		{ "reader", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct trace_rec_opts o = { .interval_ms = 1000, .count = 10, .mode = 0600 };
	struct trace_rec_target *t = NULL;
	struct trace_rec_result res;
	struct rec_progress prog;
	struct sp_err err = { 0 };
	struct sigaction sa = { 0 }, old_int, old_term;
	pid_t pids[MAX_TARGETS];
	int npids = 0, c, li, rc;
	bool qemu = false, ok;
	const char *out = NULL;
	uint64_t u;

	optind = 1;
	opterr = 0;
	while ((li = -1, c = getopt_long(argc, argv, ":o:h", opts, &li)) != -1) {
		ok = true;
		switch (c) {
		case 'o': out = optarg; break;
		case 'p':
			ok = cli_parse_u64(optarg, &u) && u > 0 && u <= 0x7fffffff;
			if (ok && npids == MAX_TARGETS)
				return cli_usage_error("trace record", "at most %d --pid", MAX_TARGETS);
			pids[npids++] = (pid_t)u;
			break;
		case 'q': qemu = true; break;
		case 'i': ok = cli_parse_u64(optarg, &o.interval_ms) && o.interval_ms >= 1 &&
			       o.interval_ms <= 86400000ull; break;
		case 'c': ok = cli_parse_u64(optarg, &o.count) && o.count <= 10000000; break;
		case 'P': o.pause = true; break;
		case 'S': o.unkeyed = true; break;
		case 'R':
			ok = !strcmp(optarg, "mem") || !strcmp(optarg, "vm_readv");
			o.proc_mem = !strcmp(optarg, "mem");
			break;
		case 'h': record_usage(stdout); return EXIT_OK;
		case ':': return cli_usage_error("trace record", "option '%s' needs a value", argv[optind - 1]);
		default: return cli_usage_error("trace record", "unknown option '%s'", argv[optind - 1]);
		}
		if (!ok)
			return cli_usage_error("trace record", "invalid value '%s' for --%s", optarg,
					       li >= 0 ? opts[li].name : "o");
	}
	if (optind < argc)
		return cli_usage_error("trace record", "unexpected argument '%s'", argv[optind]);
	if (!out)
		return cli_usage_error("trace record", "-o FILE is required");
	if (!qemu && !npids)
		return cli_usage_error("trace record", "give --pid PID... or --qemu");
	if (o.pause && !qemu)
		return cli_usage_error("trace record", "--pause works with --qemu (it stops guests over QMP)");
	if (qemu && !npids) {
		npids = trace_rec_find_qemu(pids, MAX_TARGETS, &err);
		if (npids < 0)
			return cli_fail(&err);
		if (npids == 0) {
			fprintf(stderr, "sim: --qemu: no running qemu-system-* process found\n");
			return EXIT_UNAVAILABLE;
		}
	}
	t = calloc((size_t)npids, sizeof(*t));
	if (!t) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	for (int i = 0; i < npids; i++) {
		rc = qemu ? trace_rec_target_qemu(&t[i], pids[i], &err)
			  : trace_rec_target_process(&t[i], pids[i], &err);
		if (rc < 0) {
			free(t);
			return cli_fail(&err);
		}
		for (int j = 0; j < i; j++) {
			if (!strcmp(t[j].name, t[i].name)) {
				char base[201];

				snprintf(base, sizeof(base), "%.200s", t[j].name);
				snprintf(t[i].name, sizeof(t[i].name), "%s-%d", base, (int)pids[i]);
			}
		}
	}

	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	interrupted = 0;
	o.stop = rec_stop;
	o.progress = rec_progress;
	o.arg = &prog;
	prog.count = o.count;
	cli_progress_init(&prog.bar, "recording");
	rc = trace_record(out, t, (uint32_t)npids, &o, &res, &err);
	cli_progress_done(&prog.bar);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free(t);
	if (rc < 0)
		return cli_fail(&err);
	printf("%s: %u snapshots of %d guests%s; %.1f MiB read and fingerprinted in %.3f s "
	       "(%.2f GB/s)\n",
	       out, res.snapshots, npids,
	       res.target_exited ? " (a target exited: the trace ends at the last whole snapshot)"
	       : interrupted ? " (interrupted)" : "",
	       (double)res.bytes_read / (1 << 20), res.read_seconds,
	       res.read_seconds > 0 ? (double)res.bytes_read / res.read_seconds / 1e9 : 0.0);
	return EXIT_OK;
}

/* ---- import ------------------------------------------------------------- */

static void import_progress(void *arg, uint64_t done, uint64_t total)
{
	cli_progress_update(arg, total ? (double)done / (double)total : 1.0, NULL);
}

static void import_usage(FILE *f)
{
	fputs("usage: sim trace import [--format qemu-elf] -o FILE [options] [--guest NAME] VMCORE...\n"
	      "                        [--guest NAME VMCORE...]...\n"
	      "\n"
	      "Imports ELF memory dumps written by QEMU's dump-guest-memory or\n"
	      "`virsh dump --memory-only` (ELF64 core, one PT_LOAD per RAM block, p_paddr =\n"
	      "guest-physical address; page = guest-physical frame number).\n"
	      "\n"
	      "`--guest NAME` names the dumps that follow it.  The dumps of one guest become\n"
	      "its snapshots in the order given; snapshot k of every guest is at time\n"
	      "k * --interval-ms.  Dumps before any --guest belong to a guest named after the\n"
	      "first dump's file name (without its extension).\n"
	      "\n"
	      "  -o, --output FILE    trace to write (mode 0600; replaced only when complete)\n"
	      "  --format qemu-elf    the dump format (the only one so far; the default)\n"
	      "  --guest NAME         guest of the dumps that follow\n"
	      "  --interval-ms N      time between snapshots (default 1000)\n"
	      "  --no-salt            unkeyed fingerprints (see `sim trace record --help`)\n"
	      "\n"
	      "A malformed dump (bad magic, truncated, segments beyond the file or overlapping,\n"
	      "absurd counts) is reported with its file and byte offset, exit 3, no output.\n",
	      f);
}

static char *default_guest(const char *path)
{
	const char *b = strrchr(path, '/');
	char *name, *dot;

	name = strdup(b ? b + 1 : path);
	if (!name)
		return NULL;
	dot = strrchr(name, '.');
	if (dot && dot != name)
		*dot = '\0';
	if (!name[0] || strlen(name) > 255) {
		free(name);
		name = strdup("guest");
	}
	return name;
}

int cmd_trace_import(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "guest", required_argument, NULL, 'g' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "no-salt", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct trace_import_opts o = { .interval_ms = 1000, .mode = 0600 };
	struct trace_import_input *in;
	struct sp_err err = { 0 };
	struct cli_progress prog;
	const char *out = NULL, *guest = NULL;
	char *defname = NULL;
	uint32_t n = 0;
	int c, li, rc;

	in = calloc((size_t)argc, sizeof(*in));
	if (!in) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	optind = 1;
	opterr = 0;
	/* A leading '-': dumps come back in order (c == 1), so --guest applies to those after it. */
	while ((li = -1, c = getopt_long(argc, argv, "-:o:h", opts, &li)) != -1) {
		switch (c) {
		case 1:
			in[n].path = optarg;
			in[n].guest = guest;
			n++;
			break;
		case 'o': out = optarg; break;
		case 'f':
			if (strcmp(optarg, "qemu-elf")) {
				free(in);
				return cli_usage_error("trace import", "unknown --format '%s' (valid: qemu-elf)",
						       optarg);
			}
			break;
		case 'g':
			if (!optarg[0] || strlen(optarg) > 255) {
				free(in);
				return cli_usage_error("trace import", "--guest NAME must be 1..255 bytes");
			}
			guest = optarg;
			break;
		case 'i':
			if (!cli_parse_u64(optarg, &o.interval_ms) || o.interval_ms < 1 ||
			    o.interval_ms > 86400000ull) {
				free(in);
				return cli_usage_error("trace import", "invalid value '%s' for --interval-ms",
						       optarg);
			}
			break;
		case 'S': o.unkeyed = true; break;
		case 'h': free(in); import_usage(stdout); return EXIT_OK;
		case ':': free(in); return cli_usage_error("trace import", "option '%s' needs a value", argv[optind - 1]);
		default: free(in); return cli_usage_error("trace import", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (!out || n == 0) {
		free(in);
		return cli_usage_error("trace import", "expected -o FILE and at least one VMCORE");
	}
	for (uint32_t i = 0; i < n; i++) {
		if (in[i].guest)
			continue;
		if (!defname && !(defname = default_guest(in[0].path))) {
			free(in);
			fprintf(stderr, "sim: out of memory\n");
			return EXIT_FAIL;
		}
		in[i].guest = defname;
	}
	o.progress = import_progress;
	o.arg = &prog;
	cli_progress_init(&prog, "importing");
	rc = trace_import_qemu_elf(out, in, n, &o, &err);
	cli_progress_done(&prog);
	free(in);
	free(defname);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}
