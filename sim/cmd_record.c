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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "import_elf.h"
#include "live_cli.h"
#include "record.h"
#include "trace.h"

#define MAX_TARGETS 256

/* ---- record ------------------------------------------------------------- */

static bool rec_stop(void *arg)
{
	(void)arg;
	return cli_stop != 0;
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

struct record_opts {
	const char *out;
	struct cli_u64_list pids;
	bool qemu, pause, no_salt;
	uint64_t interval_ms, count;
	int reader; /* index in readers */
};

static const char *const readers[] = { "vm_readv", "mem", NULL };

static const struct cli_opt record_table[] = {
	{ .name = "output", .short_name = 'o', .type = CLI_PATH,
	  .offset = offsetof(struct record_opts, out), .metavar = "FILE", .required = true,
	  .help = "trace to write (mode 0600; replaced only when complete)" },
	{ .name = "pid", .type = CLI_U64_LIST, .offset = offsetof(struct record_opts, pids),
	  .metavar = "PID", .min = 1, .max = 0x7fffffff, .max_count = MAX_TARGETS,
	  .help = "record this process (repeatable): its writable private\n"
		  "anonymous memory; page = virtual address / page size within\n"
		  "clusters of mappings (the trace description lists them)" },
	{ .name = "qemu", .type = CLI_FLAG, .offset = offsetof(struct record_opts, qemu),
	  .help = "record every running qemu-system-* guest (with --pid: those\n"
		  "QEMU processes): its RAM, page = guest-physical frame\n"
		  "number, named after -name (or qemu-PID)" },
	{ .name = "interval-ms", .type = CLI_U64, .offset = offsetof(struct record_opts, interval_ms),
	  .metavar = "N", .min = 1, .max = 86400000,
	  .help = "time between snapshot starts (default {})" },
	{ .name = "count", .type = CLI_U64, .offset = offsetof(struct record_opts, count),
	  .metavar = "N", .max = 10000000, .help = "snapshots (default {}; 0 = until Ctrl-C)" },
	{ .name = "pause", .type = CLI_FLAG, .offset = offsetof(struct record_opts, pause),
	  .help = "stop each QEMU guest over QMP (-qmp unix:PATH) while it is\n"
		  "read, for consistent snapshots; without it they are fuzzy" },
	{ .name = "no-salt", .type = CLI_FLAG, .offset = offsetof(struct record_opts, no_salt),
	  .help = "unkeyed fingerprints (plain XXH3-128): comparable across\n"
		  "traces and with other tools, but anyone holding a page's\n"
		  "content can test whether the trace contains it" },
	{ .name = "reader", .type = CLI_ENUM, .offset = offsetof(struct record_opts, reader),
	  .metavar = "vm_readv|mem", .choices = readers,
	  .help = "read pages with process_vm_readv(2) (default) or pread\n"
		  "on /proc/PID/mem (bench/bench_record.sh compares them)" },
	{ 0 },
};

static const struct cli_spec record_spec = {
	.prog = CLI_PROG,
	.name = "trace record",
	.usage = "-o FILE (--pid PID... | --qemu) [options]",
	.about = "Records live memory as a trace: every --interval-ms, a snapshot of every present\n"
		 "page of each target (XXH3-128 fingerprint, zero flag, transparent-huge-page flag,\n"
		 "NUMA node).  Pages mapped to the host's shared zero page count as absent.  Linux,\n"
		 "root (pagemap frame numbers, /proc/kpageflags, other processes' memory).",
	.notes = "A target that exits ends the trace at the last whole snapshot.  Exit codes: 1\n"
		 "failure, 2 usage (incl. no such PID), 4 not root / no QEMU / no QMP socket.",
	.opts = record_table,
};

static int record_parse(struct record_opts *o, int argc, char **argv)
{
	int rc;

	memset(o, 0, sizeof(*o));
	o->interval_ms = 1000;
	o->count = 10;
	rc = cli_parse_args(&record_spec, argc, argv, o);
	if (rc != CLI_GO)
		return rc;
	if (!o->qemu && !o->pids.n)
		return cli_usage_error("trace record", "give --pid PID... or --qemu");
	if (o->pause && !o->qemu)
		return cli_usage_error("trace record", "--pause works with --qemu (it stops guests over QMP)");
	return CLI_GO;
}

/* The targets, found and opened; *t is freed by the caller. */
static int record_prepare(struct record_opts *o, struct trace_rec_target **t, struct sp_err *err)
{
	size_t n = o->pids.n;

	if (o->qemu && !n) {
		pid_t found[MAX_TARGETS];
		int k = trace_rec_find_qemu(found, MAX_TARGETS, err);

		if (k < 0)
			return cli_fail(err);
		if (k == 0) {
			fprintf(stderr, "sim: --qemu: no running qemu-system-* process found\n");
			return EXIT_UNAVAILABLE;
		}
		for (int i = 0; i < k; i++)
			o->pids.v[i] = (uint64_t)found[i];
		o->pids.n = n = (size_t)k;
	}
	*t = calloc(n, sizeof(**t));
	if (!*t) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		pid_t pid = (pid_t)o->pids.v[i];
		int rc = o->qemu ? trace_rec_target_qemu(&(*t)[i], pid, err)
				 : trace_rec_target_process(&(*t)[i], pid, err);

		if (rc < 0)
			return cli_fail(err);
		for (size_t j = 0; j < i; j++) {
			if (!strcmp((*t)[j].name, (*t)[i].name)) {
				char base[201];

				snprintf(base, sizeof(base), "%.200s", (*t)[j].name);
				snprintf((*t)[i].name, sizeof((*t)[i].name), "%s-%d", base, (int)pid);
			}
		}
	}
	return EXIT_OK;
}

int cmd_trace_record(int argc, char **argv)
{
	struct record_opts o;
	struct trace_rec_opts ro = { .mode = 0600 };
	struct trace_rec_target *t = NULL;
	struct trace_rec_result res;
	struct rec_progress prog;
	struct sp_err err = { 0 };
	int rc = record_parse(&o, argc, argv);

	if (rc != CLI_GO)
		return rc;
	{
		const char *outs[] = { o.out };

		rc = atomic_file_check(outs, 1, NULL, 0, &err) < 0 ? cli_fail(&err) : EXIT_OK;
	}
	if (rc == EXIT_OK)
		rc = record_prepare(&o, &t, &err);
	if (rc != EXIT_OK) {
		free(t);
		return rc;
	}
	ro.interval_ms = o.interval_ms;
	ro.count = o.count;
	ro.pause = o.pause;
	ro.unkeyed = o.no_salt;
	ro.proc_mem = !strcmp(readers[o.reader], "mem");
	ro.stop = rec_stop;
	ro.progress = rec_progress;
	ro.arg = &prog;
	prog.count = o.count;
	cli_guard_start(NULL, NULL, NULL); /* Ctrl-C ends the recording at the last whole snapshot */
	cli_progress_init(&prog.bar, "recording");
	rc = trace_record(o.out, t, (uint32_t)o.pids.n, &ro, &res, &err);
	cli_progress_done(&prog.bar);
	cli_guard_end(NULL, NULL);
	free(t);
	if (rc < 0)
		return cli_fail(&err);
	printf("%s: %u snapshots of %zu guests%s; %.1f MiB read and fingerprinted in %.3f s "
	       "(%.2f GB/s)\n",
	       o.out, res.snapshots, o.pids.n,
	       res.target_exited ? " (a target exited: the trace ends at the last whole snapshot)"
	       : cli_stop ? " (interrupted)" : "",
	       (double)res.bytes_read / (1 << 20), res.read_seconds,
	       res.read_seconds > 0 ? (double)res.bytes_read / res.read_seconds / 1e9 : 0.0);
	return EXIT_OK;
}

/* ---- import ------------------------------------------------------------- */

static void import_progress(void *arg, uint64_t done, uint64_t total)
{
	cli_progress_update(arg, total ? (double)done / (double)total : 1.0, NULL);
}

struct import_opts {
	const char *out;
	int format;
	uint64_t interval_ms;
	bool no_salt;
	const char *guest;             /* the current --guest */
	struct trace_import_input *in; /* the dumps, each with the --guest before it */
	uint32_t n;
};

static const char *const formats[] = { "qemu-elf", NULL };

static int import_guest(void *opts, const char *v, char *msg, size_t len)
{
	if (!v[0] || strlen(v) > 255) {
		snprintf(msg, len, "--guest NAME must be 1..255 bytes");
		return -1;
	}
	((struct import_opts *)opts)->guest = v;
	return 0;
}

static int import_dump(void *opts, const char *v, char *msg, size_t len)
{
	struct import_opts *o = opts;

	(void)msg;
	(void)len;
	o->in[o->n].path = v;
	o->in[o->n].guest = o->guest;
	o->n++;
	return 0;
}

static const struct cli_opt import_table[] = {
	{ .name = "output", .short_name = 'o', .type = CLI_PATH,
	  .offset = offsetof(struct import_opts, out), .metavar = "FILE", .required = true,
	  .help = "trace to write (mode 0600; replaced only when complete)" },
	{ .name = "format", .type = CLI_ENUM, .offset = offsetof(struct import_opts, format),
	  .metavar = "qemu-elf", .choices = formats,
	  .help = "the dump format (the only one so far; the default)" },
	{ .name = "guest", .type = CLI_FN, .metavar = "NAME", .fn = import_guest,
	  .help = "guest of the dumps that follow" },
	{ .name = "interval-ms", .type = CLI_U64, .offset = offsetof(struct import_opts, interval_ms),
	  .metavar = "N", .min = 1, .max = 86400000, .help = "time between snapshots (default {})" },
	{ .name = "no-salt", .type = CLI_FLAG, .offset = offsetof(struct import_opts, no_salt),
	  .help = "unkeyed fingerprints (see `sim trace record --help`)" },
	{ 0 },
};

static const struct cli_spec import_spec = {
	.prog = CLI_PROG,
	.name = "trace import",
	.usage = "[--format qemu-elf] -o FILE [options] [--guest NAME] VMCORE...\n"
		 "[--guest NAME VMCORE...]...",
	.about = "Imports ELF memory dumps written by QEMU's dump-guest-memory or\n"
		 "`virsh dump --memory-only` (ELF64 core, one PT_LOAD per RAM block, p_paddr =\n"
		 "guest-physical address; page = guest-physical frame number).\n"
		 "\n"
		 "`--guest NAME` names the dumps that follow it.  The dumps of one guest become\n"
		 "its snapshots in the order given; snapshot k of every guest is at time\n"
		 "k * --interval-ms.  Dumps before any --guest belong to a guest named after the\n"
		 "first dump's file name (without its extension).",
	.notes = "A malformed dump (bad magic, truncated, segments beyond the file or overlapping,\n"
		 "absurd counts) is reported with its file and byte offset, exit 3, no output.",
	.opts = import_table,
	.min_args = 1, .max_args = SIZE_MAX, .args_name = "VMCORE", .arg_fn = import_dump,
};

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
	struct import_opts o = { .interval_ms = 1000 };
	struct trace_import_opts io = { .mode = 0600 };
	struct cli_progress prog;
	struct sp_err err = { 0 };
	char *defname = NULL;
	int rc;

	o.in = calloc((size_t)argc, sizeof(*o.in));
	if (!o.in) {
		fprintf(stderr, "sim: out of memory\n");
		return EXIT_FAIL;
	}
	rc = cli_parse_args(&import_spec, argc, argv, &o);
	for (uint32_t i = 0; rc == CLI_GO && i < o.n; i++) {
		if (o.in[i].guest)
			continue;
		if (!defname && !(defname = default_guest(o.in[0].path))) {
			fprintf(stderr, "sim: out of memory\n");
			rc = EXIT_FAIL;
			break;
		}
		o.in[i].guest = defname;
	}
	if (rc == CLI_GO) {
		/* before reading a byte: -o must not be one of the dumps (or unwritable) */
		const char **ins = calloc(o.n ? o.n : 1, sizeof(*ins));
		const char *outs[] = { o.out };

		for (uint32_t i = 0; ins && i < o.n; i++)
			ins[i] = o.in[i].path;
		if (!ins || atomic_file_check(outs, 1, ins, o.n, &err) < 0)
			rc = ins ? cli_fail(&err) : EXIT_FAIL;
		free(ins);
	}
	if (rc == CLI_GO) {
		io.interval_ms = o.interval_ms;
		io.unkeyed = o.no_salt;
		io.progress = import_progress;
		io.arg = &prog;
		cli_progress_init(&prog, "importing");
		rc = trace_import_qemu_elf(o.out, o.in, o.n, &io, &err);
		cli_progress_done(&prog);
		rc = rc < 0 ? cli_fail(&err) : EXIT_OK;
	}
	free(o.in);
	free(defname);
	return rc;
}
