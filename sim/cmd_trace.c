/*
 * cmd_trace.c - `sim trace gen|info|check|export`: make and inspect traces
 * (`record` and `import` live in cmd_record.c).
 */
#include <csv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "fpcount.h"
#include "gen.h"
#include "sim.h"
#include "trace.h"

/* ---- gen -------------------------------------------------------------- */

struct gen_opts {
	struct trace_gen_params p;
	const char *out;
};

#define GEN_U32(n, field, text)                                                               \
	{ .name = n, .type = CLI_U32, .offset = offsetof(struct gen_opts, p.field),           \
	  .metavar = "N", .help = text }
#define GEN_U64(n, field, text)                                                               \
	{ .name = n, .type = CLI_U64, .offset = offsetof(struct gen_opts, p.field),           \
	  .metavar = "N", .help = text }
#define GEN_DOUBLE(n, field, text)                                                            \
	{ .name = n, .type = CLI_DOUBLE, .offset = offsetof(struct gen_opts, p.field),        \
	  .metavar = "F", .help = text }

/* The ranges are trace_gen_check's, so that the library says them once. */
static const struct cli_opt gen_table[] = {
	{ .name = "output", .short_name = 'o', .type = CLI_PATH,
	  .offset = offsetof(struct gen_opts, out), .metavar = "FILE", .required = true,
	  .help = "trace to write (replaced only when complete)" },
	GEN_U32("guests", guests, "guests (default {})"),
	GEN_U64("pages", pages, "pages per guest (default {})"),
	GEN_U32("snapshots", snapshots, "snapshots, the first at time 0 (default {})"),
	GEN_U64("interval-ms", interval_ms, "time between snapshots (default {})"),
	GEN_DOUBLE("shared-fraction", shared_fraction,
		   "fraction of non-zero pages with content shared across\n"
		   "guests, popularity Zipf-distributed (default {})"),
	GEN_U64("shared-contents", shared_contents, "distinct shared contents (default pages/16)"),
	GEN_DOUBLE("zipf", zipf_s, "Zipf exponent of shared-content popularity (default {})"),
	GEN_DOUBLE("zero-fraction", zero_fraction, "fraction of zero-filled pages (default {})"),
	GEN_DOUBLE("write-rate", write_rate,
		   "probability a volatile page is rewritten per interval (default {})"),
	GEN_DOUBLE("volatile-fraction", volatile_fraction,
		   "fraction of pages that are ever rewritten (default {})"),
	GEN_DOUBLE("huge-fraction", huge_fraction, "fraction of 2 MiB regions on huge pages (default {})"),
	GEN_U32("nodes", nodes, "NUMA nodes; guest g on node g % N (default {})"),
	GEN_U32("domains", domains, "security domains; guest g in domain g % N (default {})"),
	GEN_U32("late-guests", late_guests,
		"the last N guests start at the second snapshot, absent\n"
		"before (a clone VM started later; default {})"),
	GEN_U64("seed", seed, "random seed (default {})"),
	GEN_U32("format-version", version,
		"trace format version: 2 has a summary that spares `sim run`\n"
		"a pass; 1 for older readers (default {})"),
	{ 0 },
};

static const struct cli_spec gen_spec = {
	.prog = CLI_PROG,
	.name = "trace gen",
	.usage = "-o FILE [options]",
	.about = "Writes a synthetic trace.  The same options and seed give the same bytes.",
	.opts = gen_table,
};

static void gen_progress(void *arg, uint64_t done, uint64_t total)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "snapshot %llu/%llu", (unsigned long long)done,
		 (unsigned long long)total);
	cli_progress_update(arg, (double)done / (double)total, detail);
}

static int cmd_gen(int argc, char **argv)
{
	struct gen_opts o = { .out = NULL };
	struct sp_err err = { 0 };
	struct cli_progress prog;
	int rc;

	trace_gen_defaults(&o.p);
	rc = cli_parse_args(&gen_spec, argc, argv, &o);
	if (rc != CLI_GO)
		return rc;
	if (trace_gen_check(&o.p, &err) < 0)
		return cli_fail(&err);
	cli_progress_init(&prog, "generating");
	rc = trace_gen_write(&o.p, o.out, gen_progress, &prog, &err);
	cli_progress_done(&prog);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* ---- check ------------------------------------------------------------ */

/* Text from the file (or the user) on the terminal: control bytes escaped (sp_term_escape). */
static void put_text(const char *s)
{
	char buf[4 * TRACE_MAX_DESC + 1];

	sp_term_escape(buf, sizeof(buf), s);
	fputs(buf, stdout);
}


/* The commands that take one trace and no option. */
struct file_opts {
	struct cli_list files;
};

static const struct cli_spec check_spec = {
	.prog = CLI_PROG,
	.name = "trace check",
	.usage = "FILE",
	.about = "Reads and validates the whole trace (every chunk checksum, every record);\n"
		 "exits 0 only if it is sound, else 3 with the byte offset of the fault.",
	.min_args = 1, .max_args = 1, .args_name = "FILE",
	.args_offset = offsetof(struct file_opts, files),
};

static int cmd_check(int argc, char **argv)
{
	struct sp_err err = { 0 };
	struct file_opts o = { .files.n = 0 };
	uint32_t snaps;
	uint64_t records;
	int rc = cli_parse_args(&check_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	if (trace_check(o.files.v[0], &snaps, &records, &err) < 0)
		return cli_fail(&err);
	put_text(o.files.v[0]);
	printf(": ok, %u snapshots, %llu page records\n", snaps, (unsigned long long)records);
	return EXIT_OK;
}

/* ---- info ------------------------------------------------------------- */

/*
 * Content per page, to count present, zero and duplicate pages per snapshot:
 * of the pages the trace mentions (sim_layout), so that a sparse guest costs
 * what its present pages cost, and the whole file is checked first.
 */
struct census {
	struct fpcount contents;  /* every present page, zero pages under fp {0,0} */
	struct sim_layout lay;
	struct sp_fp *fp;
	uint8_t *present;
	uint64_t npresent, nzero, nhuge;
	uint8_t *huge;
	uint8_t *zero;
	uint16_t *node;
};

static int census_init(struct census *c, const char *path, struct sp_err *err)
{
	struct trace_reader *r;
	struct trace_source src;
	uint64_t n;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = trace_reader_open(&r, path, err);
	if (rc < 0)
		return rc;
	src = trace_reader_source(r);
	rc = sim_layout_scan(&c->lay, &src, err);
	trace_reader_close(r);
	if (rc < 0)
		return rc;
	n = c->lay.total ? c->lay.total : 1;
	c->fp = calloc(n, sizeof(*c->fp));
	c->present = calloc(n, 1);
	c->huge = calloc(n, 1);
	c->zero = calloc(n, 1);
	c->node = calloc(n, sizeof(*c->node));
	if (!c->fp || !c->present || !c->huge || !c->zero || !c->node ||
	    fpcount_init(&c->contents, 1024) < 0)
		return sp_err_set(err, SP_ENOMEM, "out of memory for %llu pages", (unsigned long long)n);
	return 0;
}

static void census_release(struct census *c)
{
	fpcount_release(&c->contents);
	free(c->fp);
	free(c->present);
	free(c->huge);
	free(c->zero);
	free(c->node);
	sim_layout_release(&c->lay);
}

static int census_apply(struct census *c, const struct trace_record *rec, struct sp_err *err)
{
	uint64_t i;

	if (sim_layout_index(&c->lay, rec->guest, rec->page, &i) < 0)
		return sp_err_set(err, SP_ECORRUPT, "guest %u page %llu: the trace changed while read",
				  rec->guest, (unsigned long long)rec->page);
	if (c->present[i]) {
		fpcount_remove(&c->contents, c->fp[i], 0);
		c->npresent--;
		c->nzero -= c->zero[i];
		c->nhuge -= c->huge[i];
	}
	c->present[i] = rec->flags & TRACE_PRESENT ? 1 : 0;
	c->zero[i] = rec->flags & TRACE_ZERO ? 1 : 0;
	c->huge[i] = rec->flags & TRACE_HUGE ? 1 : 0;
	c->fp[i] = rec->fp;
	c->node[i] = rec->node;
	if (c->present[i]) {
		if (fpcount_add(&c->contents, rec->fp, 0) < 0)
			return sp_err_set(err, SP_ENOMEM, "out of memory");
		c->npresent++;
		c->nzero += c->zero[i];
		c->nhuge += c->huge[i];
	}
	return 0;
}

static const struct cli_spec info_spec = {
	.prog = CLI_PROG,
	.name = "trace info",
	.usage = "FILE",
	.about = "Prints the trace's header and guests, then per snapshot: time, records,\n"
		 "present, zero, huge, distinct contents and duplicate pages (present - distinct).",
	.min_args = 1, .max_args = 1, .args_name = "FILE",
	.args_offset = offsetof(struct file_opts, files),
};

static void info_header(const char *path, const struct trace_header *h)
{
	fputs("trace        ", stdout);
	put_text(path);
	fputs("\ndescription  ", stdout);
	put_text(h->desc[0] ? h->desc : "(none)");
	putchar('\n');
	printf("page size    %u\n", h->page_size);
	printf("fingerprint  %s, 128 bits%s%s\n",
	       h->fp_algo == TRACE_FP_XXH3_128 ? "XXH3-128 of the page" : "synthetic",
	       h->flags & TRACE_F_KEYED ? ", keyed with a secret salt" : "",
	       h->flags & TRACE_F_FUZZY ? ", fuzzy snapshots" : "");
	printf("guests       %u, %llu pages (%.1f MiB)\n", h->nguests,
	       (unsigned long long)trace_header_total_pages(h),
	       (double)trace_header_total_pages(h) * h->page_size / (1 << 20));
	for (uint32_t g = 0; g < h->nguests; g++) {
		char name[4 * sizeof(h->guests[g].name)];

		sp_term_escape(name, sizeof(name), h->guests[g].name);
		printf("  %-20s node %-3u domain %-4u %llu pages\n", name, h->guests[g].node,
		       h->guests[g].domain, (unsigned long long)h->guests[g].pages);
	}
}

static int cmd_info(int argc, char **argv)
{
	struct file_opts o = { .files.n = 0 };
	struct sp_err err = { 0 };
	struct trace_reader *r;
	const struct trace_header *h;
	struct trace_snapshot s;
	struct trace_record rec;
	struct census c;
	int rc = cli_parse_args(&info_spec, argc, argv, &o);

	if (rc != CLI_GO)
		return rc;
	if (trace_reader_open(&r, o.files.v[0], &err) < 0)
		return cli_fail(&err);
	h = trace_reader_header(r);
	info_header(o.files.v[0], h);
	rc = census_init(&c, o.files.v[0], &err);
	if (rc == 0)
		printf("%8s %10s %10s %10s %10s %10s %10s %10s\n", "snapshot", "time_ms", "records",
		       "present", "zero", "huge", "distinct", "duplicate");
	while (rc == 0 && (rc = trace_reader_next_snapshot(r, &s, &err)) > 0) {
		while ((rc = trace_reader_next_record(r, &rec, &err)) > 0) {
			rc = census_apply(&c, &rec, &err);
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
		printf("%8u %10llu %10llu %10llu %10llu %10llu %10llu %10llu\n", s.index,
		       (unsigned long long)s.time_ms, (unsigned long long)s.records,
		       (unsigned long long)c.npresent, (unsigned long long)c.nzero,
		       (unsigned long long)c.nhuge, (unsigned long long)fpcount_distinct(&c.contents),
		       (unsigned long long)fpcount_duplicates(&c.contents));
	}
	census_release(&c);
	trace_reader_close(r);
	if (rc < 0)
		return cli_fail(&err);
	return EXIT_OK;
}

/* ---- export ----------------------------------------------------------- */

static void put_field(FILE *f, const char *s)
{
	if (strpbrk(s, ",\"\r\n"))
		csv_fwrite(f, s, strlen(s));
	else
		fputs(s, f);
}

struct export_opts {
	struct cli_list files;
	const char *csv;
};

static const struct cli_opt export_table[] = {
	{ .name = "csv", .type = CLI_PATH, .offset = offsetof(struct export_opts, csv),
	  .metavar = "OUT", .required = true, .help = "the CSV to write" },
	{ 0 },
};

static const struct cli_spec export_spec = {
	.prog = CLI_PROG,
	.name = "trace export",
	.usage = "FILE --csv OUT",
	.about = "Writes one CSV row per present page per snapshot:\n"
		 "snapshot,time_ms,guest,page,fingerprint,zero,node,huge (fingerprint in hex,\n"
		 "high word first; zero pages have fingerprint 0).",
	.opts = export_table,
	.min_args = 1, .max_args = 1, .args_name = "FILE",
	.args_offset = offsetof(struct export_opts, files),
};

struct export_cmd {
	struct export_opts o;
	struct trace_reader *r;
	const struct trace_header *h;
	struct census c;
	struct atomic_file af;
	struct sp_err err;
};

/* The input read and checked, the census allocated, the output opened. */
static int export_prepare(struct export_cmd *x)
{
	const char *outs[] = { x->o.csv }, *ins[] = { x->o.files.v[0] };
	int rc;

	/* the output before any work: writable, and not the trace itself */
	if (atomic_file_check(outs, 1, ins, 1, &x->err) < 0)
		return cli_fail(&x->err);
	if (trace_reader_open(&x->r, x->o.files.v[0], &x->err) < 0)
		return cli_fail(&x->err);
	x->h = trace_reader_header(x->r);
	rc = census_init(&x->c, x->o.files.v[0], &x->err);
	if (rc == 0) /* the fingerprints of a private (0600) trace stay private */
		rc = atomic_file_open(&x->af, x->o.csv, atomic_file_mode_from(x->o.files.v[0], 0644),
				      &x->err);
	if (rc < 0) {
		census_release(&x->c);
		trace_reader_close(x->r);
		return cli_fail(&x->err);
	}
	fputs("snapshot,time_ms,guest,page,fingerprint,zero,node,huge\n", x->af.f);
	return EXIT_OK;
}

static void export_rows(struct export_cmd *x, const struct trace_snapshot *s)
{
	const struct trace_header *h = x->h;
	const struct sim_layout *l = &x->c.lay;
	uint64_t i = 0;

	for (uint32_t g = 0; g < h->nguests; g++) {
		for (uint64_t k = 0; k < l->npages[g]; k++, i++) {
			uint64_t p = l->pfn[g] ? l->pfn[g][k] : k;

			if (!x->c.present[i])
				continue;
			fprintf(x->af.f, "%u,%llu,", s->index, (unsigned long long)s->time_ms);
			put_field(x->af.f, h->guests[g].name);
			fprintf(x->af.f, ",%llu,%016llx%016llx,%u,%u,%u\n", (unsigned long long)p,
				(unsigned long long)x->c.fp[i].hi, (unsigned long long)x->c.fp[i].lo,
				x->c.zero[i], x->c.node[i], x->c.huge[i]);
		}
	}
}

/* Every snapshot through the census, its present pages out; 0 or an SP_E* code. */
static int export_run(struct export_cmd *x)
{
	struct cli_progress prog;
	struct trace_snapshot s;
	struct trace_record rec;
	int rc;

	cli_progress_init(&prog, "exporting");
	while ((rc = trace_reader_next_snapshot(x->r, &s, &x->err)) > 0) {
		while ((rc = trace_reader_next_record(x->r, &rec, &x->err)) > 0) {
			rc = census_apply(&x->c, &rec, &x->err);
			if (rc < 0)
				break;
		}
		if (rc < 0)
			break;
		export_rows(x, &s);
		cli_progress_update(&prog, (double)trace_reader_offset(x->r) / (double)trace_reader_size(x->r),
				    NULL);
	}
	cli_progress_done(&prog);
	return rc;
}

static int cmd_export(int argc, char **argv)
{
	struct export_cmd x = { .o.csv = NULL };
	int rc = cli_parse_args(&export_spec, argc, argv, &x.o);

	if (rc != CLI_GO)
		return rc;
	rc = export_prepare(&x);
	if (rc != EXIT_OK)
		return rc;
	rc = export_run(&x);
	census_release(&x.c);
	trace_reader_close(x.r);
	if (rc == 0)
		rc = atomic_file_commit(&x.af, &x.err);
	else
		atomic_file_abort(&x.af);
	return rc < 0 ? cli_fail(&x.err) : EXIT_OK;
}

/* ---- dispatch --------------------------------------------------------- */

const struct cli_command cli_trace_verbs[] = {
	{ "gen", "-o FILE [options]: write a synthetic trace", cmd_gen },
	{ "info", "FILE: header, guests and per-snapshot counts", cmd_info },
	{ "check", "FILE: validate the whole file (exit 0 only if sound)", cmd_check },
	{ "export", "FILE --csv OUT: one CSV row per present page per snapshot", cmd_export },
	{ "record", "-o FILE (--pid PID... | --qemu): snapshots of live memory (root)",
	  cmd_trace_record },
	{ "import", "-o FILE VMCORE...: QEMU ELF memory dumps into a trace", cmd_trace_import },
	{ "replicate", "IN --guests N -o OUT: N guests made from the recorded ones", cmd_trace_replicate },
	{ "subset", "IN [--guest NAME]... -o OUT: some guests, a time window", cmd_trace_subset },
	{ NULL, NULL, NULL },
};

int cmd_trace(int argc, char **argv)
{
	const struct cli_command *c;
	char names[128];

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		FILE *f = argc < 2 ? stderr : stdout;

		fputs("usage: sim trace VERB ...  ('sim trace VERB --help' describes one)\n", f);
		cli_command_list(cli_trace_verbs, "  ", 7, f);
		return argc < 2 ? EXIT_USAGE : EXIT_OK;
	}
	c = cli_command_find(cli_trace_verbs, argv[1]);
	if (c)
		return c->main(argc - 1, argv + 1);
	cli_command_names(cli_trace_verbs, names, sizeof(names));
	cli_errorf("unknown trace verb '%s' (verbs: %s; see 'sim trace --help')", argv[1], names);
	return EXIT_USAGE;
}
